// The machine's lease on its units (src/agent/lease.ts) on a simulated clock: renewed by the node's read points,
// fenced when none comes for the fence time, not fenced by a stall the cluster confirms right after, lifted again.
import { describe, expect, it } from "vitest";
import { LeaseRenewer, STALL_CONFIRM_MS, UnitLease } from "../src/agent/lease.ts";

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
  const readPoint = () => (answering ? Promise.resolve() : new Promise<void>(() => {}));
  const lease = new UnitLease({
    fenceMs,
    clock,
    readPoint,
    onFence: () => events.push(`fence@${clock.t}`),
    onRenewedAfterFence: () => events.push(`renewed@${clock.t}`),
    logger: () => {},
  });
  const renewer = new LeaseRenewer({ fenceMs, clock, readPoint, renewed: (at) => lease.renewed(at) });
  return {
    clock,
    events,
    lease,
    renewer,
    setAnswering: (a: boolean) => {
      answering = a;
    },
  };
}

describe("unit lease", () => {
  it("holds while read points come, fences within the fence time once they stop, and lifts when they return", async () => {
    const { clock, events, lease, renewer, setAnswering } = setup(1200);
    renewer.start();
    await clock.advance(5000);
    expect(events).toEqual([]);
    const cut = clock.t;
    setAnswering(false);
    await clock.advance(3000);
    expect(events).toHaveLength(1);
    const fencedAt = Number(events[0]!.split("@")[1]);
    // The last read point was issued at most one renewal period before the cut; the fence falls 1200 ms after it.
    expect(fencedAt).toBeGreaterThan(cut + 1200 - renewer.renewEveryMs - 1);
    expect(fencedAt).toBeLessThanOrEqual(cut + 1200);
    expect(lease.isFenced()).toBe(true);
    setAnswering(true);
    await clock.advance(1000);
    expect(events[1]).toMatch(/^renewed@/);
    expect(lease.isFenced()).toBe(false);
  });

  it("never fences before a first read point", async () => {
    const { clock, events, renewer, setAnswering } = setup();
    setAnswering(false);
    renewer.start();
    await clock.advance(10_000);
    expect(events).toEqual([]);
  });

  it("after a stall past the lease, fences only when the cluster does not confirm within the bound", async () => {
    const a = setup();
    a.renewer.start();
    await a.clock.advance(2000);
    a.clock.stall(7000);
    await a.clock.advance(2000);
    expect(a.events).toEqual([]);

    const b = setup();
    b.renewer.start();
    await b.clock.advance(2000);
    b.setAnswering(false);
    const stalledAt = b.clock.t;
    b.clock.stall(7000);
    await b.clock.advance(3000);
    expect(b.events).toEqual([`fence@${stalledAt + 7000 + STALL_CONFIRM_MS}`]);
  });

  it("a renewal that was already stale when it arrived is not taken for a stall of this process", async () => {
    const { clock, events, lease } = setup(1200);
    lease.renewed(0);
    await clock.advance(1000);
    lease.renewed(100); // a read point issued at 100 answered now: valid until 1300
    await clock.advance(5000);
    expect(events).toEqual(["fence@1300"]);
    // A read point issued long ago (before a pause of the node) and answered now proves nothing for now: it fences
    // at once, with no stall of this process assumed (which would have asked the cluster again and carried on).
    const stale = setup(1200);
    stale.lease.renewed(-5000);
    await stale.clock.advance(2000);
    expect(stale.events).toEqual(["fence@0"]);
  });

  it("reads a renewal that waited behind a busy turn before fencing", async () => {
    const { clock, events, lease } = setup(1200);
    lease.renewed(0);
    // Due in the same turn as the expiry, queued after it (input not yet read when the expiry timer runs).
    clock.setTimer(() => lease.renewed(1100), 1200);
    await clock.advance(2000);
    expect(events).toEqual([]);
    await clock.advance(1000);
    expect(events).toEqual(["fence@2300"]);
  });

  it("stops fencing when stopped", async () => {
    const { clock, events, lease, renewer, setAnswering } = setup();
    renewer.start();
    await clock.advance(1000);
    lease.stop();
    setAnswering(false);
    await clock.advance(10_000);
    expect(events).toEqual([]);
  });
});
