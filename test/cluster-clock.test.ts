// The cluster's time is the median of the members' clocks: one wrong clock among three moves nothing, the wrong
// member itself follows the others, skew is reported past the bound, and nothing counts before a majority was measured.
import { describe, expect, it } from "vitest";
import { ClusterClock, type ClusterClockDeps } from "../src/service/cluster-clock.ts";

const DAY = 86_400_000;

/** Members whose clocks are `offsets` (ms) ahead of true time; `self` is asked from. Timers run by hand. */
function fixture(self: string, offsets: Record<string, number>, opts: { rttMs?: number } = {}) {
  let trueNow = 1_800_000_000_000;
  const timers: (() => void)[] = [];
  const logs: string[] = [];
  const down = new Set<string>();
  const deps: ClusterClockDeps = {
    self,
    members: () => Object.keys(offsets),
    askTime: async (m) => {
      if (down.has(m)) throw new Error("unreachable");
      trueNow += (opts.rttMs ?? 2) / 2;
      const theirs = trueNow + offsets[m]!;
      trueNow += (opts.rttMs ?? 2) / 2;
      return theirs;
    },
    wallNow: () => trueNow + offsets[self]!,
    logger: (l) => logs.push(l),
    setTimer: (fn) => {
      timers.push(fn);
      return () => {};
    },
  };
  const clock = new ClusterClock(deps);
  const round = async () => {
    timers.shift()?.();
    await new Promise((r) => setTimeout(r, 0));
  };
  return { clock, logs, down, round, trueNow: () => trueNow };
}

describe("the cluster clock", () => {
  it("a member a day ahead keeps the cluster's time and reports itself", async () => {
    const f = fixture("n1", { n1: DAY, n2: 0, n3: 30 });
    expect(f.clock.settled()).toBe(false);
    f.clock.start();
    await new Promise((r) => setTimeout(r, 0));
    expect(f.clock.settled()).toBe(true);
    expect(Math.abs(f.clock.now() - f.trueNow())).toBeLessThan(50);
    expect(f.clock.selfSkew()).toBeGreaterThan(DAY - 50);
    expect(f.logs.join("\n")).toMatch(/this member's clock is 86400\.0 s ahead of the cluster's/);
    const skews = f.clock.skews();
    expect(Math.abs(skews.get("n2")!)).toBeLessThan(50);
    expect(skews.get("n1")!).toBeGreaterThan(DAY - 50);
    f.clock.stop();
  });

  it("the other members are not moved by the wrong one", async () => {
    const f = fixture("n2", { n1: DAY, n2: 0, n3: 30 });
    f.clock.start();
    await new Promise((r) => setTimeout(r, 0));
    expect(Math.abs(f.clock.now() - f.trueNow())).toBeLessThan(50);
    expect(f.logs.join("\n")).toMatch(/n1's clock is 86400\.0 s ahead of the cluster's/);
    f.clock.stop();
  });

  it("is not settled until a majority was measured, and then only counts fresh samples", async () => {
    const f = fixture("n1", { n1: DAY, n2: 0, n3: 0, n4: 0, n5: 0 });
    f.down.add("n3").add("n4").add("n5");
    f.clock.start();
    await new Promise((r) => setTimeout(r, 0));
    expect(f.clock.settled()).toBe(false);
    // Only n1 and n2: the median is halfway, which is why nothing is stamped before a majority answered.
    f.down.delete("n3");
    await f.round();
    expect(f.clock.settled()).toBe(true);
    expect(Math.abs(f.clock.now() - f.trueNow())).toBeLessThan(50);
    f.clock.stop();
  });

  it("drops answers that took too long to say anything", async () => {
    const f = fixture("n1", { n1: 0, n2: 5000, n3: 5000 }, { rttMs: 3000 });
    f.clock.start();
    await new Promise((r) => setTimeout(r, 0));
    expect(f.clock.settled()).toBe(false);
    expect(f.clock.now()).toBe(f.trueNow());
    f.clock.stop();
  });

  it("whenSettled resolves at the timeout when no majority answers", async () => {
    const f = fixture("n1", { n1: 0, n2: 0, n3: 0 });
    f.down.add("n2").add("n3");
    let resolved = false;
    void f.clock.whenSettled(100).then(() => {
      resolved = true;
    });
    f.clock.start();
    await new Promise((r) => setTimeout(r, 0));
    expect(resolved).toBe(false);
    // The timers list holds the next round and the wait's timeout: fire the timeout.
    await f.round();
    await f.round();
    expect(resolved).toBe(true);
    f.clock.stop();
  });
});
