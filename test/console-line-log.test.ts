import { describe, expect, it } from "vitest";
import { createLineLog } from "../src/tui/line-log.ts";

/** A stream that keeps what was written to it, write by write. */
function recorder() {
  const writes: string[] = [];
  return { writes, stream: { write: (s: string) => writes.push(s) > 0 } };
}

// Ink hands a frame shorter than the terminal over with a trailing newline.
const frame = (...lines: string[]) => `${lines.join("\n")}\n`;

describe("the console's line log", () => {
  it("writes a first frame whole, each line at its row, and nothing for an unchanged frame", () => {
    const { writes, stream } = recorder();
    const log = createLineLog(stream);
    expect(log(frame("header", "row a", "row b"))).toBe(true);
    expect(writes).toEqual(["\x1b[?25l\x1b[1;1H\x1b[2Kheader\x1b[2;1H\x1b[2Krow a\x1b[3;1H\x1b[2Krow b"]);
    expect(log.willRender(frame("header", "row a", "row b"))).toBe(false);
    expect(log(frame("header", "row a", "row b"))).toBe(false);
    expect(writes).toHaveLength(1);
  });

  it("rewrites only the lines that changed, and erases the rows a shorter frame leaves", () => {
    const { writes, stream } = recorder();
    const log = createLineLog(stream);
    log(frame("header", "> row a", "  row b", "footer"));
    log(frame("header", "  row a", "> row b", "footer"));
    expect(writes[1]).toBe("\x1b[2;1H\x1b[2K  row a\x1b[3;1H\x1b[2K> row b");
    log(frame("header", "  row a"));
    expect(writes[2]).toBe("\x1b[3;1H\x1b[J");
  });

  it("after clear (Ink wrote something of its own) and after sync (Ink drew a frame itself) starts from there", () => {
    const { writes, stream } = recorder();
    const log = createLineLog(stream);
    log(frame("a", "b"));
    log.clear();
    expect(writes[1]).toBe("\x1b[1;1H\x1b[J");
    log(frame("a", "b"));
    expect(writes[2]).toBe("\x1b[1;1H\x1b[2Ka\x1b[2;1H\x1b[2Kb");
    log.sync(frame("a", "c"));
    log(frame("a", "c", "d"));
    expect(writes[3]).toBe("\x1b[3;1H\x1b[2Kd");
    log.done();
    expect(writes[4]).toBe("\x1b[?25h");
  });
});
