// The soak's growth verdict (test/chaos/growth.ts): a warm-up followed by a flat band is not growth; a steady climb
// is, however long the run.
import { describe, expect, it } from "vitest";
import { growthOf } from "./chaos/growth.ts";

/** One sample every 30 s for `minutes`, value from `f(minute)`. */
function series(minutes: number, f: (minute: number) => number): [number, number][] {
  return Array.from({ length: minutes * 2 + 1 }, (_, i) => [i * 30, f(i / 2)]);
}

describe("soak growth", () => {
  it("leaves a fresh process's warm-up out: a climb to a band, then noise in it, is flat", () => {
    // As measured in the 50-minute soak: about 55 MB at start, 100 MB at 3 min, then a band of 110-150 MB with no
    // trend from minute 12 on (the old rule, first third against last third of all samples, said +24.6% for it).
    const band = (m: number) => 130 + 20 * Math.sin(m * 1.7);
    const rss = (m: number) =>
      m < 3 ? 55 + 15 * m : m < 12 ? 100 + ((band(m) - 100) * (m - 3)) / 9 : band(m);
    const g = growthOf(series(50, rss));
    expect(g).not.toBeNull();
    expect(Math.abs(g!.change)).toBeLessThan(0.05);
    expect(Math.abs(g!.slopePerHour)).toBeLessThan(10);
  });

  it("reports a steady leak as growth, with its slope per hour", () => {
    const g = growthOf(series(30, (m) => 100 + 2 * m))!; // 2 MB a minute
    expect(g.change).toBeGreaterThan(0.2);
    expect(g.slopePerHour).toBeCloseTo(120, 5);
    expect(g.warmup).toBe(15);
  });

  it("judges nothing from too few samples", () => {
    expect(growthOf(series(3, () => 100))).toBeNull();
    expect(growthOf(series(4, () => 100))).toMatchObject({ change: 0, slopePerHour: 0 });
  });
});
