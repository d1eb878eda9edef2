// The cluster's wall clock, as this member should use it for TTLs. The leader stamps every write and every expiry
// with a wall-clock time (src/kv/commands.ts), so one member whose clock is a day ahead would, while it leads,
// expire every key at once and give the keys it writes a day of life. Each member therefore measures the others'
// clocks (NTP-style: ask for the time, keep the answer with the shortest round trip of the recent ones) and takes
// the median of all members' clocks, its own included, as the cluster's time: one wrong clock among three moves
// nothing. Two members can only meet halfway.
//
// Skew beyond SKEW_BOUND_MS is logged, and reported by `berth cluster health` and the console.
import { describeSkew, SKEW_BOUND_MS } from "../client/clock-skew.ts";

export interface ClusterClockDeps {
  self: string;
  /** Every member's name (this one included). */
  members(): string[];
  /** Another member's wall clock (Date.now() there); rejects when it cannot be asked. */
  askTime(member: string, timeoutMs: number): Promise<number>;
  /** The cluster's time moved against this member's clock (settled, or the median shifted): re-plan timers. */
  onShift?(): void;
  wallNow(): number;
  logger(line: string): void;
  setTimer?(fn: () => void, ms: number): () => void;
}

const PROBE_EVERY_MS = 1000;
const PROBE_TIMEOUT_MS = 1000;
/** Samples kept per member: the one with the shortest round trip is the estimate. */
const SAMPLES = 4;
/** Samples older than this are not used (the member may be gone, or its clock stepped since). */
const FRESH_MS = 10_000;
/** Samples with a longer round trip are dropped (their error, up to half of it, would be close to the bound). */
const MAX_RTT_MS = SKEW_BOUND_MS;
/** A change of the estimate worth re-planning for. */
const SHIFT_MS = 50;

interface Sample {
  /** The member's clock minus this member's clock. */
  offset: number;
  rtt: number;
  at: number;
}

export class ClusterClock {
  private readonly samples = new Map<string, Sample[]>();
  private readonly reported = new Set<string>();
  private cancel: (() => void) | null = null;
  private stopped = false;
  private readonly settledWaiters: (() => void)[] = [];

  constructor(private readonly d: ClusterClockDeps) {}

  start(): void {
    this.stopped = false;
    this.round();
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
    for (const w of this.settledWaiters.splice(0)) w();
  }

  /** The cluster's time: this member's wall clock corrected by how far it is off the median. */
  now(): number {
    return this.d.wallNow() - this.selfSkew();
  }

  /** How far this member's clock is ahead of the cluster's (negative: behind). */
  selfSkew(): number {
    return -this.median();
  }

  /** Each member's clock minus the cluster's time, for the members measured recently (this one included). */
  skews(): Map<string, number> {
    const median = this.median();
    const out = new Map<string, number>();
    for (const [member, offset] of this.offsets()) out.set(member, offset - median);
    return out;
  }

  /** A majority of members have been measured (or there is no one else): the cluster's time is known. */
  settled(): boolean {
    const members = this.d.members();
    return this.offsets().size > Math.floor(members.length / 2) || members.length <= 1;
  }

  /** Resolves once settled, or after `timeoutMs` (then the best estimate so far is all there is). */
  whenSettled(timeoutMs: number): Promise<void> {
    if (this.settled() || this.stopped) return Promise.resolve();
    return new Promise((resolveSettled) => {
      const cancel = this.timer(() => done(), timeoutMs);
      const done = () => {
        cancel();
        const i = this.settledWaiters.indexOf(done);
        if (i >= 0) this.settledWaiters.splice(i, 1);
        resolveSettled();
      };
      this.settledWaiters.push(done);
    });
  }

  // -------------------------------------------------------------------------------------------------------------

  private offsets(): Map<string, number> {
    const now = this.d.wallNow();
    const out = new Map<string, number>([[this.d.self, 0]]);
    for (const member of this.d.members()) {
      const fresh = (this.samples.get(member) ?? []).filter((s) => now - s.at < FRESH_MS);
      if (fresh.length === 0) continue;
      out.set(member, fresh.reduce((a, b) => (b.rtt < a.rtt ? b : a)).offset);
    }
    return out;
  }

  private median(): number {
    const xs = [...this.offsets().values()].sort((a, b) => a - b);
    const mid = Math.floor(xs.length / 2);
    return xs.length % 2 === 1 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2;
  }

  private round(): void {
    if (this.stopped) return;
    const others = this.d.members().filter((m) => m !== this.d.self);
    const before = this.settled() ? this.selfSkew() : null;
    void Promise.all(others.map((m) => this.probe(m))).then(() => {
      this.report();
      if (!this.settled()) return;
      for (const w of [...this.settledWaiters]) w();
      if (before === null || Math.abs(this.selfSkew() - before) > SHIFT_MS) this.d.onShift?.();
    });
    this.cancel = this.timer(() => this.round(), PROBE_EVERY_MS);
  }

  private async probe(member: string): Promise<void> {
    const t0 = this.d.wallNow();
    let theirs: number;
    try {
      theirs = await this.d.askTime(member, PROBE_TIMEOUT_MS);
    } catch {
      return;
    }
    const t1 = this.d.wallNow();
    // An answer that took long says little: the offset is only known within half the round trip.
    if (!Number.isFinite(theirs) || t1 - t0 > MAX_RTT_MS) return;
    const list = this.samples.get(member) ?? [];
    list.push({ offset: theirs - (t0 + t1) / 2, rtt: t1 - t0, at: t1 });
    if (list.length > SAMPLES) list.shift();
    this.samples.set(member, list);
  }

  /** Logs each member whose clock crosses the bound, and when it is back within it. */
  private report(): void {
    for (const [member, skew] of this.skews()) {
      const off = Math.abs(skew) > SKEW_BOUND_MS;
      if (off === this.reported.has(member)) continue;
      if (off) {
        this.reported.add(member);
        this.d.logger(
          `[clock] ${member === this.d.self ? "this member's" : `${member}'s`} clock is ${describeSkew(skew)} ` +
            "the cluster's; TTLs follow the cluster's time (the median of the members' clocks)",
        );
      } else {
        this.reported.delete(member);
        this.d.logger(`[clock] ${member}'s clock agrees with the cluster's again`);
      }
    }
  }

  private timer(fn: () => void, ms: number): () => void {
    if (this.d.setTimer) return this.d.setTimer(fn, ms);
    const t = setTimeout(fn, ms);
    t.unref?.();
    return () => clearTimeout(t);
  }
}
