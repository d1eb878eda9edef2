// The leader's own stalls are not the other machines' silence: StallClock (time this process could watch) and
// Liveness on top of it, with a fake real clock and the ticks driven by hand, as the node's timer drives them.
import { describe, expect, it } from "vitest";
import { Liveness } from "../src/sched/liveness.ts";
import { StallClock } from "../src/sched/stall-clock.ts";

const PERIOD = 250;
const TTL = 2000;

function setup() {
  let real = 1_000_000;
  const clock = new StallClock({ periodMs: PERIOD, settleMs: PERIOD, real: () => real });
  const liveness = new Liveness(TTL, () => clock.now());
  /** The process runs normally for `ms`: its timer ticks on time. */
  const run = (ms: number, each?: () => void) => {
    for (let t = 0; t < ms; t += PERIOD) {
      real += PERIOD;
      clock.tick();
      each?.();
    }
  };
  /** The process cannot run for `ms` (the real clock moves on, no timer fires). */
  const freeze = (ms: number) => {
    real += ms;
  };
  /** The tick comes `ms` late (the event loop was busy or the process starved), and runs. */
  const late = (ms: number) => {
    real += PERIOD + ms;
    return clock.tick();
  };
  return { clock, liveness, run, freeze, late };
}

describe("StallClock", () => {
  it("follows the real clock while its ticks come on time", () => {
    const { clock, run } = setup();
    const t0 = clock.now();
    run(10 * PERIOD);
    expect(clock.now() - t0).toBe(10 * PERIOD);
  });

  it("does not advance over a pause, even when asked before the late tick has run", () => {
    const { clock, run, freeze } = setup();
    run(PERIOD);
    const t0 = clock.now();
    freeze(7000);
    // Right after the thaw, other timers may run before the tick: the clock stopped where it was last read.
    expect(clock.now() - t0).toBe(0);
    expect(clock.tick()).toBe(7000 - PERIOD);
    expect(clock.now() - t0).toBe(0);
  });

  it("counts a routine lag up to the due tick, and after a stall stands still for one settle period", () => {
    const { clock, run, freeze, late } = setup();
    const t0 = clock.now();
    expect(late(40)).toBe(40); // not counted, but no stall
    expect(clock.now() - t0).toBe(PERIOD);
    run(PERIOD);
    expect(clock.now() - t0).toBe(2 * PERIOD);
    expect(late(600)).toBe(600); // a stall: not even the period before it counts past the last reading
    const t1 = clock.now();
    expect(t1 - t0).toBe(2 * PERIOD);
    freeze(PERIOD - 1); // the sockets are being read
    expect(clock.now()).toBe(t1);
    freeze(1);
    clock.tick();
    expect(clock.now()).toBe(t1);
    run(PERIOD);
    expect(clock.now()).toBe(t1 + PERIOD);
  });
});

describe("Liveness on a stall clock", () => {
  it("declares nobody lost after the whole host was paused for longer than the TTL", () => {
    const { liveness, run, freeze } = setup();
    const talk = () => {
      liveness.heardFrom("n2");
      liveness.heardFrom("n3");
    };
    run(1000, talk);
    freeze(7000); // every process paused: n2 and n3 too, their messages sent after the thaw
    expect(liveness.alive("n2")).toBe(true);
    run(PERIOD, talk);
    expect(liveness.alive("n2")).toBe(true);
    expect(liveness.alive("n3")).toBe(true);
  });

  it("keeps the previous leader's exemption from the grace, and does not count a stall against it either", () => {
    const { liveness, run, freeze } = setup();
    run(1000, () => liveness.heardFrom("old-leader")); // a follower hears only from its leader
    freeze(7000); // the host paused; after the thaw the old leader is gone for good, and an election takes 1 s
    run(1000);
    // The late tick's period and the settle period after it do not count.
    expect(liveness.silentFor("old-leader")).toBe(1000 - 2 * PERIOD);
    liveness.grantGrace("old-leader");
    run(TTL - 3 * PERIOD);
    expect(liveness.alive("old-leader")).toBe(true);
    run(PERIOD); // a TTL of time this node could watch since its last message
    expect(liveness.alive("old-leader")).toBe(false);
    expect(liveness.alive("never-heard")).toBe(true); // the others' grace began at the election
  });

  it("waits for a machine's own TTL when it is longer than the observer's (it fences by its own)", () => {
    const { liveness, run } = setup();
    liveness.heardFrom("slow");
    run(TTL + PERIOD);
    expect(liveness.alive("slow")).toBe(false);
    expect(liveness.alive("slow", 2 * TTL)).toBe(true);
    expect(liveness.alive("slow", TTL / 2)).toBe(false);
    run(TTL);
    expect(liveness.alive("slow", 2 * TTL)).toBe(false);
  });

  it("still declares a machine lost that was frozen alone: only the observer's own stall is excused", () => {
    const { liveness, run } = setup();
    liveness.heardFrom("n3");
    run(TTL - PERIOD);
    expect(liveness.alive("n3")).toBe(true);
    run(PERIOD);
    expect(liveness.alive("n3")).toBe(false);
    expect(liveness.silentFor("n3")).toBe(TTL);
  });

  it("gives a machine near its TTL when the observer stalls one settle period to be heard", () => {
    const { liveness, run, freeze } = setup();
    liveness.heardFrom("n3");
    run(TTL - PERIOD);
    freeze(3000); // n3's messages from before the thaw may still wait in the socket
    expect(liveness.alive("n3")).toBe(true);
    run(PERIOD); // the late tick
    expect(liveness.alive("n3")).toBe(true);
    run(PERIOD); // the settle period: the socket has not necessarily been read yet
    expect(liveness.alive("n3")).toBe(true);
    run(PERIOD);
    expect(liveness.alive("n3")).toBe(false); // read since, and still nothing
  });

  it("keeps a machine lost before the observer's stall lost while the observer catches up", () => {
    const { liveness, run, freeze } = setup();
    liveness.heardFrom("n3");
    run(TTL);
    expect(liveness.alive("n3")).toBe(false);
    freeze(3000);
    expect(liveness.alive("n3")).toBe(false);
    run(PERIOD);
    expect(liveness.alive("n3")).toBe(false); // not "back" for the settle period, then lost again
    liveness.heardFrom("n3");
    expect(liveness.alive("n3")).toBe(true); // but back as soon as it is heard
  });

  it("on a loaded machine excuses the measured event-loop lag, and a silent machine is still found out", () => {
    const { liveness, late } = setup();
    let realElapsed = 0;
    liveness.heardFrom("talks");
    liveness.heardFrom("dead");
    // Ticks 150 ms late, over and over: the process runs, but its sockets are read late each time.
    while (liveness.alive("dead")) {
      late(150);
      realElapsed += PERIOD + 150;
      liveness.heardFrom("talks");
    }
    expect(realElapsed).toBeGreaterThan(TTL);
    expect(realElapsed).toBeLessThan(2 * TTL);
    expect(liveness.alive("talks")).toBe(true);
  });
});
