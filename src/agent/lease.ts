// The machine's lease on its units: how long this machine may keep running them without news from the cluster.
//
// A read point (ReadIndex through the leader) issued at time q and confirmed proves the leader heard from this
// machine after q, so no leader can declare it lost before q + agent TTL. The lease therefore runs until
// q + fence, with fence < TTL: when it runs out (a partition, a leader that cannot reach a quorum, a node that
// cannot get an answer), the units are killed before any leader may give them to another machine.
//
// A lease that ran out while this process itself was stopped (a whole-host stall, a VM pause, SIGSTOP) is
// different: the time passed for the leader too, or it did not, and only the cluster can tell. Killing at once
// would restart every unit after every stall; instead the units get one short chance to confirm a read point
// (STALL_CONFIRM_MS) before the fence falls. That window is the bound on a double run after a whole-VM pause.
export interface LeaseClock {
  now(): number;
  setTimer(fn: () => void, ms: number): () => void;
}

export const realClock: LeaseClock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

export interface LeaseOptions {
  /** How long a confirmed read point lets the units run. */
  fenceMs: number;
  /** Asks the cluster for a read point; resolves once confirmed, rejects (or never settles) when it is not. */
  readPoint(): Promise<void>;
  /** The lease ran out: kill every unit now. */
  onFence(): void;
  /** A read point was confirmed while fenced: the units may be run again (on current state). */
  onRenewedAfterFence(): void;
  logger: (line: string) => void;
  clock?: LeaseClock;
}

/**
 * The fence for an agent TTL: the lease covers 60% of it, leaving the rest for the kill itself, a late timer and
 * the read point's own round trip (2 s of the 5 s default).
 */
export function fenceForTtl(agentTtlMs: number): number {
  return Math.round(agentTtlMs * 0.6);
}

/** A timer firing this much later than asked means this process was not running (stopped, or the host stalled). */
export const STALL_MS = 1000;
/** After a stall, how long a read point may take before the fence falls anyway. */
export const STALL_CONFIRM_MS = 1000;

export class UnitLease {
  private readonly clock: LeaseClock;
  /** The lease runs until this instant (clock time); -Infinity before the first read point. */
  private until = Number.NEGATIVE_INFINITY;
  private fenced = false;
  private stopped = false;
  private cancelExpiry: (() => void) | null = null;
  private cancelRenew: (() => void) | null = null;
  private inFlight = false;

  constructor(private readonly o: LeaseOptions) {
    this.clock = o.clock ?? realClock;
  }

  /** How often a read point is asked for: several chances before the lease runs out. */
  get renewEveryMs(): number {
    return Math.max(50, Math.min(500, this.o.fenceMs / 4));
  }

  /** Starts asking for read points; the units are not fenced before a first lease was held. */
  start(): void {
    this.renewSoon(0);
  }

  stop(): void {
    this.stopped = true;
    this.cancelExpiry?.();
    this.cancelRenew?.();
  }

  isFenced(): boolean {
    return this.fenced;
  }

  /** A read point issued at `issuedAt` was confirmed. */
  renewed(issuedAt: number): void {
    if (this.stopped) return;
    const until = issuedAt + this.o.fenceMs;
    if (until <= this.until) return;
    this.until = until;
    if (this.fenced && until > this.clock.now()) {
      this.fenced = false;
      this.o.logger("[lease] the cluster answers again: units may run");
      this.o.onRenewedAfterFence();
    }
    this.armExpiry();
  }

  private armExpiry(): void {
    this.cancelExpiry?.();
    const due = this.until;
    this.cancelExpiry = this.clock.setTimer(() => this.expire(due), Math.max(0, due - this.clock.now()));
  }

  private expire(due: number): void {
    this.cancelExpiry = null;
    if (this.stopped || this.fenced || due !== this.until) return;
    const late = this.clock.now() - due;
    if (late < STALL_MS) return this.fence(`no read point from the cluster for ${this.o.fenceMs} ms`);
    // This process was stopped past the lease: one quick confirmation before concluding anything.
    this.o.logger(
      `[lease] this process was stalled for about ${Math.round(late)} ms; confirming with the cluster`,
    );
    const issuedAt = this.clock.now();
    let settled = false;
    const cancel = this.clock.setTimer(() => {
      if (settled) return;
      settled = true;
      this.fence(`no read point within ${STALL_CONFIRM_MS} ms after a stall of ${Math.round(late)} ms`);
    }, STALL_CONFIRM_MS);
    this.o.readPoint().then(
      () => {
        if (!settled) cancel();
        settled = true;
        this.renewed(issuedAt);
      },
      () => {},
    );
  }

  private fence(why: string): void {
    if (this.stopped || this.fenced) return;
    this.fenced = true;
    this.o.logger(`[lease] fencing: ${why}; killing every unit before the cluster may run them elsewhere`);
    this.o.onFence();
  }

  private renewSoon(ms: number): void {
    if (this.stopped) return;
    this.cancelRenew = this.clock.setTimer(() => {
      this.cancelRenew = null;
      this.renewOnce();
      this.renewSoon(this.renewEveryMs);
    }, ms);
  }

  /** One read point at a time; one that never settles only delays the next (the lease keeps running out). */
  private renewOnce(): void {
    if (this.inFlight || this.stopped) return;
    this.inFlight = true;
    const issuedAt = this.clock.now();
    const release = this.clock.setTimer(() => {
      this.inFlight = false;
    }, this.o.fenceMs);
    this.o.readPoint().then(
      () => {
        release();
        this.inFlight = false;
        this.renewed(issuedAt);
      },
      () => {
        release();
        this.inFlight = false;
      },
    );
  }
}
