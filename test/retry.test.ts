// The retry helper (src/retry.ts) on a clock of its own: which errors are retried, the backoff ceilings with
// full jitter, the deadline cutting the last wait, and stopping.
import { describe, expect, it } from "vitest";
import { backoffCeiling, type RetryClock, retry } from "../src/retry.ts";

/** A clock whose sleeps pass at once, recording each wait. */
function fakeClock(start = 1000): RetryClock & { waits: number[] } {
  let now = start;
  const waits: number[] = [];
  return {
    waits,
    now: () => now,
    sleep: async (ms) => {
      waits.push(ms);
      now += ms;
    },
  };
}

/** An operation failing with `errors` in turn, then answering "done". */
function failing(...errors: Error[]) {
  const calls: number[] = [];
  return {
    calls,
    run: async (n: number) => {
      calls.push(n);
      const e = errors[n - 1];
      if (e) throw e;
      return "done";
    },
  };
}

describe("retry", () => {
  it("waits a random share of a ceiling that doubles per failure up to the cap", async () => {
    const clock = fakeClock();
    const op = failing(...Array.from({ length: 6 }, (_, i) => new Error(`e${i}`)));
    const shares = [0.5, 0.25, 1 - 2 ** -20, 0, 0.5, 0.5];
    let i = 0;
    const seen: [string, number, number][] = [];
    const r = await retry(op.run, {
      firstMs: 100,
      maxMs: 1000,
      clock,
      random: () => shares[i++]!,
      onRetry: (err, wait, n) => seen.push([(err as Error).message, wait, n]),
    });
    expect(r).toBe("done");
    expect(op.calls).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // Ceilings 100, 200, 400, 800, 1000, 1000.
    expect(clock.waits).toEqual([50, 50, 400 * (1 - 2 ** -20), 0, 500, 500]);
    expect(seen[0]).toEqual(["e0", 50, 1]);
    expect(seen.map((s) => s[2])).toEqual([1, 2, 3, 4, 5, 6]);
    expect([1, 2, 3, 4, 5, 60].map((n) => backoffCeiling({ firstMs: 100, maxMs: 1000 }, n))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
  });

  it("throws an error the predicate does not retry at once, as it is", async () => {
    class Final extends Error {}
    const clock = fakeClock();
    const final = new Final("no");
    const op = failing(new Error("again"), final);
    await expect(
      retry(op.run, {
        firstMs: 10,
        maxMs: 10,
        clock,
        random: () => 1,
        retriable: (e) => !(e instanceof Final),
      }),
    ).rejects.toBe(final);
    expect(op.calls).toEqual([1, 2]);
    expect(clock.waits).toEqual([10]);
  });

  it("cuts the last wait to the deadline, tries once more there, then throws the last error", async () => {
    const clock = fakeClock(0);
    const errors = Array.from({ length: 10 }, (_, i) => new Error(`e${i}`));
    const op = failing(...errors);
    await expect(
      retry(op.run, { firstMs: 100, maxMs: 100, deadline: 250, clock, random: () => 1 }),
    ).rejects.toBe(errors[3]);
    expect(clock.waits).toEqual([100, 100, 50]);
    expect(op.calls).toEqual([1, 2, 3, 4]);
    // A deadline already past: one attempt, no wait.
    const once = failing(errors[0]!);
    await expect(retry(once.run, { firstMs: 1, maxMs: 1, deadline: -1, clock })).rejects.toBe(errors[0]);
    expect(once.calls).toEqual([1]);
  });

  it("stops when the caller no longer wants the result, after a failure or after a wait", async () => {
    const clock = fakeClock();
    const errors = Array.from({ length: 10 }, (_, i) => new Error(`e${i}`));
    const op = failing(...errors);
    await expect(
      retry(op.run, {
        firstMs: 10,
        maxMs: 10,
        clock,
        random: () => 0.5,
        stopped: () => clock.waits.length >= 2,
      }),
    ).rejects.toBe(errors[1]);
    expect(op.calls).toEqual([1, 2]);
    const none = failing(...errors);
    await expect(
      retry(none.run, { firstMs: 10, maxMs: 10, clock, random: () => 0.5, stopped: () => true }),
    ).rejects.toBe(errors[0]);
    expect(none.calls).toEqual([1]);
  });

  it("sleeps for real by default", async () => {
    const op = failing(new Error("once"));
    const started = performance.now();
    expect(await retry(op.run, { firstMs: 30, maxMs: 30, random: () => 1 })).toBe("done");
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
  });
});
