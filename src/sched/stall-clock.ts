// Time as this process could watch it. A process that cannot run (paused with the whole host on a VM migration or
// a swap storm, SIGSTOP, or starved of CPU on a loaded machine) cannot read its sockets either: what its peers sent
// meanwhile waits unread, so that time must not count as their silence. A timer ticks every periodMs; whatever it
// fires late is time this process could not run, and this clock does not advance over it.
export class StallClock {
  private excusedMs = 0;
  private lastTick: number;
  /** Clock time until which the messages a stall held back may still be unread. */
  private settleUntil = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly o: {
      /** How often tick() is called. */
      periodMs: number;
      /** A lag this long is a stall: messages held back by it get settleMs to be read before anyone is judged. */
      settleMs: number;
      /** A monotonic real clock (performance.now): a wall clock can jump on its own. */
      real: () => number;
    },
  ) {
    this.lastTick = o.real();
  }

  /** Called by a timer every periodMs; returns how late it fired (the time excused). */
  tick(): number {
    const t = this.o.real();
    const lag = this.lagAt(t);
    this.excusedMs += lag;
    this.lastTick = t;
    if (lag >= this.o.settleMs) this.settleUntil = this.now() + this.o.settleMs;
    return lag;
  }

  /** Milliseconds from an arbitrary origin, not counting the time this process could not run. */
  now(): number {
    const t = this.o.real();
    return t - this.excusedMs - this.lagAt(t);
  }

  /**
   * True during a stall (a check that runs before the late tick sees it too) and for settleMs after one: the
   * peers' messages it held back may still wait in the sockets.
   */
  settling(): boolean {
    return this.lagAt(this.o.real()) >= this.o.settleMs || this.now() < this.settleUntil;
  }

  /** How far past its due moment the current tick is. */
  private lagAt(t: number): number {
    return Math.max(0, t - this.lastTick - this.o.periodMs);
  }
}
