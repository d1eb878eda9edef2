// The console's faster Ink Output.get() (src/tui/ink-output.ts): the same text as Ink's own for frames of styled,
// clipped, wide-character lines, and what frames share (tokenized lines) kept from one frame to the next.
import { describe, expect, it } from "vitest";
import { caches, inkGet, installFastOutput, Output } from "../src/tui/ink-output.ts";
import { pick, prng } from "./support/prng.ts";

const STYLES = [
  ["\x1b[31m", "\x1b[39m"],
  ["\x1b[32m", "\x1b[39m"],
  ["\x1b[7m", "\x1b[27m"],
  ["\x1b[1m", "\x1b[22m"],
  ["\x1b[2m", "\x1b[22m"],
  ["\x1b[4m", "\x1b[24m"],
  ["\x1b[38;5;208m", "\x1b[39m"],
];
const WORDS = ["sleep@1.service", "active", "running", "n1", "漢字", "—", "  ", "…", "x"];

/** A line of words, some styled (nested at times), as Ink's Text gives them. */
function styledLine(rand: () => number): string {
  let line = "";
  const n = 1 + Math.floor(rand() * 8);
  for (let i = 0; i < n; i++) {
    let word = pick(rand, WORDS);
    if (rand() < 0.5) {
      const [open, close] = pick(rand, STYLES);
      word = `${open}${word}${rand() < 0.3 ? `${pick(rand, STYLES)[0]}${pick(rand, WORDS)}` : ""}${close}`;
    }
    line += word + (rand() < 0.5 ? " " : "");
  }
  return line;
}

type Out = InstanceType<typeof Output>;

function randomFrame(rand: () => number, width: number, height: number): Out {
  const o = new Output({ width, height });
  const ops = 3 + Math.floor(rand() * 20);
  let clipped = 0;
  for (let i = 0; i < ops; i++) {
    const r = rand();
    if (r < 0.15) {
      const x1 = Math.floor(rand() * width);
      const y1 = Math.floor(rand() * height);
      o.clip(
        rand() < 0.3
          ? { x1: undefined, x2: undefined, y1, y2: y1 + Math.floor(rand() * height) }
          : { x1, x2: x1 + Math.floor(rand() * width), y1, y2: y1 + Math.floor(rand() * height) },
      );
      clipped++;
    } else if (r < 0.2 && clipped > 0) {
      o.unclip();
      clipped--;
    } else {
      const lines = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => styledLine(rand));
      const transformers = rand() < 0.2 ? [(s: string) => `\x1b[2m${s}\x1b[22m`] : [];
      o.write(Math.floor(rand() * width), Math.floor(rand() * height), lines.join("\n"), { transformers });
    }
  }
  return o;
}

describe("the console's Ink output", () => {
  it("gives the same text as Ink's own Output.get() for random styled, clipped frames", () => {
    installFastOutput();
    for (let seed = 1; seed <= 200; seed++) {
      const frame = randomFrame(prng(seed), 10 + (seed % 70), 1 + (seed % 12));
      expect(frame.get(), `seed ${seed}`).toEqual(inkGet.call(frame));
    }
  });

  it("keeps a line's styled characters from one frame to the next", () => {
    installFastOutput();
    const line = "\x1b[7mkept from one frame to the next\x1b[27m  and plain";
    const draw = () => {
      const o = new Output({ width: 80, height: 3 });
      o.write(0, 1, line, { transformers: [] });
      return o.get().output;
    };
    const first = draw();
    const known = caches.styledChars.size;
    expect(known).toBeGreaterThan(0);
    expect(draw()).toBe(first);
    expect(caches.styledChars.size).toBe(known);
  });
});
