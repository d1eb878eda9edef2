// Time as this process could watch it. A process that cannot run (paused with the whole host on a VM migration or
// a swap storm, SIGSTOP, or starved of CPU on a loaded machine) cannot read its sockets either: what its peers sent
// meanwhile waits unread, so that time must not count as their silence. A timer ticks every periodMs; whatever it
// fires late is time this process could not run, and this clock does not advance over it. After a stall it stands
// still a little longer, until the messages the stall held back have been read: silences neither grow nor end then
// (a machine already lost stays lost, one heard from is back), so no verdict is made on stale sockets.
export class StallClock {
  /** This clock's reading at the last tick. */
  private base = 0;
  private lastTick: number;
  /** The last real time this process was seen running (a tick, or a reading before the next tick was due). */
  private lastSeen: number;
  /** Real time until which the clock stands still after a stall. */
  private holdUntil = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly o: {
      /** How often tick() is called. */
      periodMs: number;
      /** A tick at least this late is a stall, and the clock then stands still this long after it. */
      settleMs: number;
      /** A monotonic real clock (performance.now): a wall clock can jump on its own. */
      real: () => number;
    },
  ) {
    this.lastTick = this.lastSeen = o.real();
  }

  /** Called by a timer every periodMs; returns how late it fired (the time not counted). */
  tick(): number {
    const t = this.o.real();
    const due = this.lastTick + this.o.periodMs;
    const lag = Math.max(0, t - due);
    // A routine lag counts up to the moment the tick was due; a stall only up to when this process was last seen
    // running (it may have stopped right after).
    this.base = this.at(lag >= this.o.settleMs ? this.lastSeen : Math.min(t, due));
    this.lastTick = this.lastSeen = t;
    if (lag >= this.o.settleMs) this.holdUntil = t + this.o.settleMs;
    return lag;
  }

  /**
   * Milliseconds from an arbitrary origin, counting only the time this process could run and read. Past the
   * moment the next tick was due, the process has not run since (a check running before the late tick sees the
   * stall too), and the reading stays where it was last seen.
   */
  now(): number {
    const t = this.o.real();
    if (t <= this.lastTick + this.o.periodMs) this.lastSeen = Math.max(this.lastSeen, t);
    return this.at(this.lastSeen);
  }

  /** The reading at real time `t` of the current period (the clock stands still while held after a stall). */
  private at(t: number): number {
    return this.base + Math.max(0, t - Math.max(this.lastTick, this.holdUntil));
  }
}
