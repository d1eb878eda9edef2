// The console source keeps an unchanged answer as the same array (src/tui/source.ts sameOr): compared in place,
// without writing 10,000 units out as text twice per answer.
import { afterEach, describe, expect, it, vi } from "vitest";
import { sameJson, sameOr } from "../src/tui/source.ts";
import { unitInfo } from "./support/fixtures.ts";

afterEach(() => {
  vi.restoreAllMocks();
});

const units = (n: number, over = {}) => Array.from({ length: n }, (_, i) => unitInfo(`u${i}.service`, over));

describe("sameOr", () => {
  it("keeps the previous array when the answer is equal, and compares it without JSON text", () => {
    const stringify = vi.spyOn(JSON, "stringify");
    const before = units(10_000);
    expect(sameOr(before, units(10_000))).toBe(before);
    expect(stringify).not.toHaveBeenCalled();
  });

  it("takes the new answer when anything in it differs", () => {
    const before = units(3);
    const changed = units(3);
    changed[2] = unitInfo("u2.service", { machines: ["m1"] });
    expect(sameOr(before, changed)).toBe(changed);
    expect(sameOr(before, units(4))).not.toBe(before);
    expect(sameOr(before, units(3, { description: "x" }))).not.toBe(before);
  });

  it("compares JSON values as JSON.stringify would", () => {
    const cases: [unknown, unknown][] = [
      [null, null],
      [null, {}],
      [[], {}],
      [
        { a: 1, b: [1, 2] },
        { a: 1, b: [1, 2] },
      ],
      [
        { a: 1, b: 2 },
        { b: 2, a: 1 },
      ],
      [{ a: "1" }, { a: 1 }],
      [
        [1, [2, [3]]],
        [1, [2, [3]]],
      ],
      [
        [1, [2, [3]]],
        [1, [2, [4]]],
      ],
      ["x", "x"],
      [{ a: null }, { a: {} }],
    ];
    for (const [a, b] of cases)
      expect(sameJson(a, b), JSON.stringify([a, b])).toBe(JSON.stringify(a) === JSON.stringify(b));
  });
});
