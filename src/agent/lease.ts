// The machine's lease on its units: how long this machine may keep running them without news from the cluster.
// The node renews it (LeaseRenewer: read points) and the supervisor that runs the units holds it (UnitLease:
// expiry and the fence); both measure time on CLOCK_MONOTONIC, which the two processes share.
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
import { readFileSync } from "node:fs";

export interface LeaseClock {
  now(): number;
  setTimer(fn: () => void, ms: number): () => void;
}

/**
 * Milliseconds since boot: the same instant reads the same (within 20 ms) in every process of the host. Bun's
 * process.hrtime counts from the process's own start, so the boot time is read once (/proc/uptime, 10 ms steps)
 * and the process's monotonic performance.now() added to it.
 */
export function monotonicMs(): number {
  return bootOffset() + performance.now();
}

let offset: number | null = null;
function bootOffset(): number {
  if (offset === null) {
    const uptimeMs = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * 1000;
    offset = uptimeMs - performance.now();
  }
  return offset;
}

export const realClock: LeaseClock = {
  now: monotonicMs,
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

export interface LeaseOptions {
  /** How long a confirmed read point lets the units run. */
  fenceMs: number;
  /** After a stall: asks for a read point now; resolves once confirmed, rejects (or never settles) when not. */
  readPoint(): Promise<void>;
  /** The lease ran out: kill every unit now. */
  onFence(): void;
  /** A read point was confirmed while fenced: the units may be run again (on current state). */
  onRenewedAfterFence(): void;
  logger: (line: string) => void;
  clock?: LeaseClock;
}

/**
 * The fence for an agent TTL: the lease covers 72% of it, leaving the rest (0.7 s of the 2.5 s default) for the kill
 * itself, a late timer (a later one counts as a stall, STALL_MS) and the read point's own round trip. The fence in
 * turn must outlast an election (0.5-1 s with the default tick) plus a renewal period, or a lost leader would kill
 * every unit of the cluster.
 */
export function fenceForTtl(agentTtlMs: number): number {
  return Math.round(agentTtlMs * 0.72);
}

/** A timer firing this much later than asked means this process was not running (stopped, or the host stalled);
 * below the TTL's margin over the fence (0.7 s at the default TTL), so a late fence still falls before a move. */
export const STALL_MS = 500;
/** After a stall, how long a read point may take before the fence falls anyway. */
export const STALL_CONFIRM_MS = 1000;

export class UnitLease {
  private readonly clock: LeaseClock;
  /** The lease runs until this instant (clock time); -Infinity before the first read point. */
  private until = Number.NEGATIVE_INFINITY;
  private fenced = false;
  private stopped = false;
  private cancelExpiry: (() => void) | null = null;

  constructor(private readonly o: LeaseOptions) {
    this.clock = o.clock ?? realClock;
  }

  stop(): void {
    this.stopped = true;
    this.cancelExpiry?.();
  }

  isFenced(): boolean {
    return this.fenced;
  }

  /** Units may run now: a lease is held and has not run out. */
  valid(): boolean {
    return !this.fenced && this.until > this.clock.now();
  }

  /** Until when the lease runs (clock time); -Infinity before the first read point. */
  expiresAt(): number {
    return this.until;
  }

  /**
   * Takes over the lease of a supervisor that crashed (its units now this one's): they may run until `until`, when
   * the fence falls unless a read point renewed the lease meanwhile, exactly as it would have in the old one.
   */
  inherit(until: number): void {
    if (this.stopped || until <= this.until) return;
    this.until = until;
    this.armExpiry();
  }

  /** A read point issued at `issuedAt` was confirmed. */
  renewed(issuedAt: number): void {
    if (this.stopped) return;
    const until = issuedAt + this.o.fenceMs;
    if (until <= this.until) return;
    this.until = until;
    // Lifted only by a renewal with a good part of the fence ahead: a read point issued long before and answered
    // only now would lift it for a moment and fence again, restarting every unit twice.
    if (this.fenced && until - this.clock.now() >= this.o.fenceMs / 2) {
      this.fenced = false;
      this.o.logger("[lease] the cluster answers again: units may run");
      this.o.onRenewedAfterFence();
    }
    this.armExpiry();
  }

  private armExpiry(): void {
    this.cancelExpiry?.();
    const due = this.until;
    // A renewal that arrives already expired (its read point was slow) fires at once: that is not a stall.
    const firesAt = Math.max(due, this.clock.now());
    this.cancelExpiry = this.clock.setTimer(() => this.expire(due, firesAt), firesAt - this.clock.now());
  }

  private expire(due: number, firesAt: number): void {
    this.cancelExpiry = null;
    if (this.stopped || this.fenced || due !== this.until) return;
    const late = this.clock.now() - firesAt;
    if (late < STALL_MS) {
      // Renewals may be waiting unread behind a busy turn (a burst of unit starts): read them first.
      this.cancelExpiry = this.clock.setTimer(() => {
        this.cancelExpiry = null;
        if (!this.stopped && !this.fenced && due === this.until)
          this.fence(`no read point from the cluster for ${this.o.fenceMs} ms`);
      }, 0);
      return;
    }
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
    this.o.onFence();
    this.o.logger(`[lease] fencing: ${why}; killing every unit before the cluster may run them elsewhere`);
  }
}

export interface RenewerOptions {
  fenceMs: number;
  /** Asks the cluster for a read point; resolves once confirmed, rejects (or never settles) when it is not. */
  readPoint(): Promise<void>;
  /** A read point issued at `issuedAt` (LeaseClock time) was confirmed. */
  renewed(issuedAt: number): void;
  clock?: LeaseClock;
}

/** How often a lease is renewed: several chances before it runs out (every 300 ms at the default TTL). */
export function renewEveryMs(fenceMs: number): number {
  return Math.max(50, Math.min(500, fenceMs / 6));
}

/** The node's side: a read point every renewEveryMs, each reported with the time it was issued. */
export class LeaseRenewer {
  private readonly clock: LeaseClock;
  private cancelNext: (() => void) | null = null;
  private inFlight = false;
  private stopped = false;

  constructor(private readonly o: RenewerOptions) {
    this.clock = o.clock ?? realClock;
  }

  get renewEveryMs(): number {
    return renewEveryMs(this.o.fenceMs);
  }

  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    this.cancelNext?.();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.cancelNext = this.clock.setTimer(() => {
      this.cancelNext = null;
      this.renewOnce();
      this.schedule(this.renewEveryMs);
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
    const done = (ok: boolean) => {
      release();
      this.inFlight = false;
      if (ok && !this.stopped) this.o.renewed(issuedAt);
    };
    this.o.readPoint().then(
      () => done(true),
      () => done(false),
    );
  }
}
