// Machine liveness as the leader sees it: every message a member sends over its peer connection counts as a
// heartbeat, so staying alive costs no Raft write (fleet's per-machine TTL writes were its scaling limit). Only
// the transitions (a machine lost, a machine back) go through the log, written by the engine.
// Each machine fences its units by its own agent TTL (lease.ts), so a machine is declared lost only after the
// longer of its TTL (published in its record) and the observer's: members with different TTLs never overlap.
// Silence is timed on a clock that stops while this process cannot run (StallClock): a stall of the observer (or of
// the whole host) is not the others' silence.
export class Liveness {
  private readonly heard = new Map<string, number>();
  private graceFrom = 0;
  private exempt: string | null = null;

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  heardFrom(name: string): void {
    this.heard.set(name, this.now());
  }

  /**
   * A new leader has not been hearing from the other machines: each gets a full TTL before it can be declared
   * lost. The previous leader is the exception: this node was following it, so its last-heard time is exact (and
   * a dead leader's units need not wait for an election plus a whole TTL).
   */
  grantGrace(previousLeader: string | null = null): void {
    this.graceFrom = this.now();
    this.exempt = previousLeader;
  }

  /** `ttlMs`: the machine's own TTL when it is longer than this observer's (it fences by its own). */
  alive(name: string, ttlMs = this.ttlMs): boolean {
    return this.silentFor(name) < Math.max(ttlMs, this.ttlMs);
  }

  /** Milliseconds since `name` was last heard from (or since the grace period began). */
  silentFor(name: string): number {
    const heard = this.heard.get(name) ?? 0;
    return this.now() - (name === this.exempt ? heard : Math.max(heard, this.graceFrom));
  }
}
