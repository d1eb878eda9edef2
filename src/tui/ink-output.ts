// A faster Output.get() for Ink 6.8, producing the same text. Profiled at 10,000 units in a 200x50 terminal, a
// keystroke's frame spent ~85% of its time in Ink's Output.get(): it turns every cell of the screen back into text,
// comparing each cell's styles with the one before it (three Sets and four arrays per cell, 10,000 cells per frame),
// and tokenizes and clips every line it is given again on each frame, though a frame changes a few of them. Here:
// a cell with the same styles as the one before it adds nothing (what that comparison answers anyway), and the
// tokenized, clipped and measured lines are kept across frames (bounded), not per frame. Installed once, by
// installFastOutput(); test/console-ink-output.test.ts checks it against Ink's own get() frame by frame.
import {
  type AnsiCode,
  ansiCodesToString,
  diffAnsiCodes,
  type StyledChar,
  styledCharsFromTokens,
  tokenize,
} from "@alcalzone/ansi-tokenize";
import sliceAnsi from "slice-ansi";
import stringWidth from "string-width";
// Not in ink's exports: the class its renderer builds each frame with (the same module instance as Ink's own).
import Output from "../../node_modules/ink/build/output.js";

type Operation =
  | { type: "write"; x: number; y: number; text: string; transformers: ((s: string, i: number) => string)[] }
  | { type: "clip"; clip: { x1?: number; x2?: number; y1?: number; y2?: number } }
  | { type: "unclip" };

/** Entries kept per cache: a few screens' worth of lines; past it a cache starts again (a resize, a new view). */
const KEEP = 4000;

/** A map that forgets everything when it grows past KEEP (cheaper than an LRU, and screens repeat their lines). */
class FrameCache<V> {
  private map = new Map<string, V>();
  get(key: string, make: () => V): V {
    let v = this.map.get(key);
    if (v === undefined) {
      if (this.map.size >= KEEP) this.map = new Map();
      v = make();
      this.map.set(key, v);
    }
    return v;
  }
  get size(): number {
    return this.map.size;
  }
}

/** What frames share: a line's styled characters, a text's width, a clipped line. */
export const caches = {
  styledChars: new FrameCache<StyledChar[]>(),
  widths: new FrameCache<number>(),
  blockWidths: new FrameCache<number>(),
  slices: new FrameCache<string>(),
};

const styledChars = (line: string) =>
  caches.styledChars.get(line, () => styledCharsFromTokens(tokenize(line)));
const widthOf = (text: string) => caches.widths.get(text, () => stringWidth(text));
const widestLine = (text: string) =>
  caches.blockWidths.get(text, () => {
    let w = 0;
    for (const line of text.split("\n")) w = Math.max(w, widthOf(line));
    return w;
  });
const slice = (line: string, from: number, to: number) =>
  caches.slices.get(`${from},${to},${line}`, () => sliceAnsi(line, from, to));

/** A printable ASCII character, one column wide (what string-width answers, without asking it per cell). */
function isAscii(value: string): boolean {
  if (value.length !== 1) return false;
  const c = value.charCodeAt(0);
  return c >= 0x20 && c < 0x7f;
}

function sameStyles(a: AnsiCode[], b: AnsiCode[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++)
    if (a[i]!.code !== b[i]!.code || a[i]!.endCode !== b[i]!.endCode) return false;
  return true;
}

/** ansi-tokenize's styledCharsToString, without diffing two cells whose styles are the same (the diff is empty). */
export function styledCharsText(chars: StyledChar[]): string {
  let ret = "";
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i]!;
    if (i === 0) ret += ansiCodesToString(char.styles);
    else {
      const before = chars[i - 1]!.styles;
      if (!sameStyles(before, char.styles)) ret += ansiCodesToString(diffAnsiCodes(before, char.styles));
    }
    ret += char.value;
    if (i === chars.length - 1 && char.styles.length > 0)
      ret += ansiCodesToString(diffAnsiCodes(char.styles, []));
  }
  return ret;
}

/** Ink 6.8's Output.get() (build/output.js), with the caches above and styledCharsText. */
function get(this: { width: number; height: number; operations: Operation[] }): {
  output: string;
  height: number;
} {
  const blank: StyledChar = { type: "char", value: " ", fullWidth: false, styles: [] };
  const output: (StyledChar | undefined)[][] = [];
  for (let y = 0; y < this.height; y++) output.push(new Array(this.width).fill(blank));
  const clips: Extract<Operation, { type: "clip" }>["clip"][] = [];
  for (const operation of this.operations) {
    if (operation.type === "clip") clips.push(operation.clip);
    if (operation.type === "unclip") clips.pop();
    if (operation.type !== "write") continue;
    const { text, transformers } = operation;
    let { x, y } = operation;
    let lines = text.split("\n");
    const clip = clips.at(-1);
    if (clip) {
      const clipHorizontally = typeof clip.x1 === "number" && typeof clip.x2 === "number";
      const clipVertically = typeof clip.y1 === "number" && typeof clip.y2 === "number";
      if (clipHorizontally) {
        const width = widestLine(text);
        if (x + width < clip.x1! || x > clip.x2!) continue;
      }
      if (clipVertically) {
        if (y + lines.length < clip.y1! || y > clip.y2!) continue;
      }
      if (clipHorizontally) {
        lines = lines.map((line) => {
          const from = x < clip.x1! ? clip.x1! - x : 0;
          const width = widthOf(line);
          const to = x + width > clip.x2! ? clip.x2! - x : width;
          return slice(line, from, to);
        });
        if (x < clip.x1!) x = clip.x1!;
      }
      if (clipVertically) {
        const from = y < clip.y1! ? clip.y1! - y : 0;
        const to = y + lines.length > clip.y2! ? clip.y2! - y : lines.length;
        lines = lines.slice(from, to);
        if (y < clip.y1!) y = clip.y1!;
      }
    }
    let offsetY = 0;
    for (let [index, line] of lines.entries()) {
      const currentLine = output[y + offsetY];
      if (!currentLine) continue;
      for (const transformer of transformers) line = transformer(line, index);
      let offsetX = x;
      for (const character of styledChars(line)) {
        currentLine[offsetX] = character;
        const characterWidth = isAscii(character.value) ? 1 : Math.max(1, widthOf(character.value));
        for (let i = 1; i < characterWidth; i++)
          currentLine[offsetX + i] = { type: "char", value: "", fullWidth: false, styles: character.styles };
        offsetX += characterWidth;
      }
      offsetY++;
    }
  }
  const generated = output
    .map((line) => styledCharsText(line.filter((c): c is StyledChar => c !== undefined)).trimEnd())
    .join("\n");
  return { output: generated, height: output.length };
}

/** Ink's own get(), kept for the test that compares the two. */
export const inkGet = Output.prototype.get;

let installed = false;

/** Makes every Ink frame from now on use the get() above (once per process). */
export function installFastOutput(): void {
  if (installed) return;
  installed = true;
  (Output.prototype as unknown as { get: typeof get }).get = get;
}

export { Output };
