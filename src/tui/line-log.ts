// How the console's frames reach the terminal: only the lines that changed, each addressed by its row. Ink 6.8's
// own writer erases and rewrites the whole frame on any change (5 KB per `j` at 200x50), and its incremental one
// moves the cursor a line short when the frame ends with a newline, as every frame shorter than the terminal does
// (each update then lands a line low). The console owns the alternate screen, so a frame always starts on its
// first row: a changed line is written where it belongs, and rows the new frame no longer reaches are erased.
// Ink still wraps each write in synchronized output (where the terminal supports it). Installed once per console,
// by installLineLog(), in place of the writer Ink created.
import type { Writable } from "node:stream";
// Not in ink's exports: the map from stdout to the Ink instance render() made (the same module Ink uses).
import instances from "../../node_modules/ink/build/instances.js";

const HIDE_CURSOR = "\x1b[?25l";
const SHOW_CURSOR = "\x1b[?25h";
const ERASE_LINE = "\x1b[2K";
const ERASE_BELOW = "\x1b[J";
const at = (row: number) => `\x1b[${row + 1};1H`;

/** Ink's log-update interface (build/log-update.d.ts), as the Ink instance calls it. */
export interface LineLog {
  (frame: string): boolean;
  clear(): void;
  done(): void;
  sync(frame: string): void;
  setCursorPosition(position: unknown): void;
  isCursorDirty(): boolean;
  willRender(frame: string): boolean;
}

/** A frame's lines on screen: Ink ends a frame shorter than the terminal with a newline, which is no line. */
function linesOf(frame: string): string[] {
  const lines = frame.split("\n");
  if (frame.endsWith("\n")) lines.pop();
  return lines;
}

export function createLineLog(stream: Pick<Writable, "write">): LineLog {
  let previous: string[] = [];
  let previousFrame = "";
  let cursorHidden = false;

  const render = ((frame: string): boolean => {
    if (frame === previousFrame) return false;
    const lines = linesOf(frame);
    let out = cursorHidden ? "" : HIDE_CURSOR;
    cursorHidden = true;
    for (let row = 0; row < lines.length; row++)
      if (lines[row] !== previous[row]) out += at(row) + ERASE_LINE + lines[row];
    if (lines.length < previous.length) out += at(lines.length) + ERASE_BELOW;
    previous = lines;
    previousFrame = frame;
    stream.write(out);
    return true;
  }) as LineLog;
  // Ink writes something of its own next (or the screen was emptied under it): the next frame is written whole.
  render.clear = () => {
    stream.write(at(0) + ERASE_BELOW);
    previous = [];
    previousFrame = "";
  };
  render.done = () => {
    previous = [];
    previousFrame = "";
    stream.write(SHOW_CURSOR);
    cursorHidden = false;
  };
  // Ink drew `frame` itself (a frame as tall as the terminal: cleared and written whole).
  render.sync = (frame: string) => {
    previous = linesOf(frame);
    previousFrame = frame;
  };
  // The console shows no cursor (no text input places one).
  render.setCursorPosition = () => {};
  render.isCursorDirty = () => false;
  render.willRender = (frame: string) => frame !== previousFrame;
  return render;
}

/**
 * Has the Ink instance rendering to `stdout` write its frames with a LineLog from now on. render() already wrote the
 * first frame (from the screen's first row: the console homes the cursor before it), which the log starts from.
 */
export function installLineLog(stdout: NodeJS.WriteStream): void {
  const ink = (instances as unknown as WeakMap<object, { log: LineLog; lastOutputToRender: string }>).get(
    stdout,
  );
  if (!ink) throw new Error("no Ink instance renders to this stream");
  const log = createLineLog(stdout);
  log.sync(ink.lastOutputToRender);
  ink.log = log;
}
