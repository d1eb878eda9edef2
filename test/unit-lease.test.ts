// The machine's lease on its units (src/agent/lease.ts) on a simulated clock: renewed by read points, fenced when
// none comes for the fence time, not fenced by a stall the cluster confirms right after, and lifted again.
import { describe, expect, it } from "vitest";
import { STALL_CONFIRM_MS, UnitLease } from "../src/agent/lease.ts";

/** Virtual time: timers fire in order as the test advances the clock. */
class SimClock {
  t = 0;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  now = () => this.t;
  setTimer = (fn: () => void, ms: number) => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return () => void this.timers.delete(id);
  };
  /** Runs every timer due up to t + ms (and microtasks between them). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      const next = [...this.timers.entries()].sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (!next || next[1].at > end) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
    await flush();
  }
  /** The process was stopped: time jumps without any timer running. */
  stall(ms: number): void {
    this.t += ms;
  }
}

const flush = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

function setup(fenceMs = 1200) {
  const clock = new SimClock();
  const events: string[] = [];
  /** Whether the cluster answers read points (each answered at once). */
  let answering = true;
  const lease = new UnitLease({
    fenceMs,
    clock,
    readPoint: () => (answering ? Promise.resolve() : new Promise<void>(() => {})),
    onFence: () => events.push(`fence@${clock.t}`),
    onRenewedAfterFence: () => events.push(`renewed@${clock.t}`),
    logger: () => {},
  });
  return {
    clock,
    events,
    lease,
    setAnswering: (a: boolean) => {
      answering = a;
    },
  };
}

describe("unit lease", () => {
  it("holds while read points come, fences within the fence time once they stop, and lifts when they return", async () => {
    const { clock, events, lease, setAnswering } = setup(1200);
    lease.start();
    await clock.advance(5000);
    expect(events).toEqual([]);
    const cut = clock.t;
    setAnswering(false);
    await clock.advance(3000);
    expect(events).toHaveLength(1);
    const fencedAt = Number(events[0]!.split("@")[1]);
    // The last read point was issued at most one renewal period before the cut; the fence falls 1200 ms after it.
    expect(fencedAt).toBeGreaterThan(cut + 1200 - lease.renewEveryMs - 1);
    expect(fencedAt).toBeLessThanOrEqual(cut + 1200);
    expect(lease.isFenced()).toBe(true);
    setAnswering(true);
    await clock.advance(1000);
    expect(events[1]).toMatch(/^renewed@/);
    expect(lease.isFenced()).toBe(false);
  });

  it("never fences before a first read point", async () => {
    const { clock, events, lease, setAnswering } = setup();
    setAnswering(false);
    lease.start();
    await clock.advance(10_000);
    expect(events).toEqual([]);
  });

  it("after a stall past the lease, fences only when the cluster does not confirm within the bound", async () => {
    const a = setup();
    a.lease.start();
    await a.clock.advance(2000);
    a.clock.stall(7000);
    await a.clock.advance(2000);
    expect(a.events).toEqual([]);

    const b = setup();
    b.lease.start();
    await b.clock.advance(2000);
    b.setAnswering(false);
    const stalledAt = b.clock.t;
    b.clock.stall(7000);
    await b.clock.advance(3000);
    expect(b.events).toEqual([`fence@${stalledAt + 7000 + STALL_CONFIRM_MS}`]);
  });

  it("stops renewing and fencing when stopped", async () => {
    const { clock, events, lease, setAnswering } = setup();
    lease.start();
    await clock.advance(1000);
    lease.stop();
    setAnswering(false);
    await clock.advance(10_000);
    expect(events).toEqual([]);
  });
});
