// Is a long-running process's memory (or fd count) growing? A fresh process climbs for minutes while its heap,
// JIT code and caches warm up, then settles into a band; comparing the run's start with its end reads that warm-up
// as growth. So the first quarter of the samples is left out, and the rest is judged by the average of its last
// third against that of its first third, with a least-squares slope for the report.

export interface Growth {
  /** Samples left out at the start as warm-up. */
  warmup: number;
  /** Averages of the first and the last third of the samples after the warm-up. */
  earlier: number;
  later: number;
  /** (later - earlier) / earlier. */
  change: number;
  /** Least-squares slope over the samples after the warm-up, in units per hour. */
  slopePerHour: number;
}

export const WARMUP_SHARE = 0.25;

/** `points` are [seconds since start, value]; null when there are too few to judge (fewer than 8). */
export function growthOf(points: readonly (readonly [number, number])[]): Growth | null {
  if (points.length < 8) return null;
  const warmup = Math.floor(points.length * WARMUP_SHARE);
  const kept = points.slice(warmup);
  const third = Math.floor(kept.length / 3);
  const avg = (xs: readonly (readonly [number, number])[]) => xs.reduce((a, [, v]) => a + v, 0) / xs.length;
  const earlier = avg(kept.slice(0, third));
  const later = avg(kept.slice(kept.length - third));
  const mt = kept.reduce((a, [t]) => a + t, 0) / kept.length;
  const mv = avg(kept);
  let num = 0;
  let den = 0;
  for (const [t, v] of kept) {
    num += (t - mt) * (v - mv);
    den += (t - mt) ** 2;
  }
  const slopePerSecond = den === 0 ? 0 : num / den;
  return {
    warmup,
    earlier,
    later,
    change: earlier === 0 ? 0 : (later - earlier) / earlier,
    slopePerHour: slopePerSecond * 3600,
  };
}
