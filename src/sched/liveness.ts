// Machine liveness as the leader sees it: every message a member sends over its peer connection counts as a
// heartbeat, so staying alive costs no Raft write (fleet's per-machine TTL writes were its scaling limit). Only
// the transitions (a machine lost, a machine back) go through the log, written by the engine.
export class Liveness {
  private readonly heard = new Map<string, number>();
  private graceFrom = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  heardFrom(name: string): void {
    this.heard.set(name, this.now());
  }

  /** A new leader has not heard from anyone yet: every machine gets a full TTL before it can be declared lost. */
  grantGrace(): void {
    this.graceFrom = this.now();
  }

  alive(name: string): boolean {
    const last = Math.max(this.heard.get(name) ?? 0, this.graceFrom);
    return this.now() - last < this.ttlMs;
  }

  /** Milliseconds since `name` was last heard from (or since the grace period began). */
  silentFor(name: string): number {
    return this.now() - Math.max(this.heard.get(name) ?? 0, this.graceFrom);
  }
}
