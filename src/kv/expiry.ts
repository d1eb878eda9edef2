// TTL expiry, driven by the leader alone: when the earliest expiration is due, the leader proposes one
// "expire" command stamped with its clock, so every replica deletes exactly the same keys at the same index.
import { encodeCommand } from "./commands.ts";
import type { KvStore } from "./store.ts";

export interface ExpiryDeps {
  store: KvStore;
  isLeader(): boolean;
  propose(data: Uint8Array): Promise<unknown>;
  now(): number;
  /** False while the cluster's time is not known yet (see src/service/cluster-clock.ts): nothing expires meanwhile. */
  clockReady?(): boolean;
  logger?: (line: string) => void;
}

/** Keeps one timer armed for the store's next expiration while this node leads. */
export class TtlExpirer {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private armedFor: number | null = null;
  private inFlight = false;
  private stopped = false;

  constructor(private readonly deps: ExpiryDeps) {}

  /** Re-plans after any change: a write, a restore, or a leadership change; `force` after the clock moved. */
  replan(force = false): void {
    if (this.stopped || this.inFlight) return;
    if (force) this.disarm();
    const next = this.deps.isLeader() ? this.deps.store.nextExpiration() : null;
    if (next === this.armedFor) return;
    this.disarm();
    if (next === null) return;
    this.armedFor = next;
    // setTimeout caps at 2^31-1 ms; longer TTLs are re-planned when the shorter wait ends.
    const wait = Math.min(Math.max(0, next - this.deps.now()), 2 ** 31 - 1);
    this.timer = setTimeout(() => this.fire(), wait);
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = null;
  }

  private async fire(): Promise<void> {
    this.timer = null;
    this.armedFor = null;
    const next = this.deps.store.nextExpiration();
    if (!this.deps.isLeader() || next === null) return;
    if (this.deps.clockReady?.() === false) {
      this.timer = setTimeout(() => this.fire(), 200);
      return;
    }
    const now = this.deps.now();
    if (next > now) return this.replan();
    this.inFlight = true;
    try {
      await this.deps.propose(encodeCommand({ op: "expire", now }));
    } catch (err) {
      // Lost leadership or quorum: the next leader expires the keys; retry shortly if still leader.
      this.deps.logger?.(`ttl expiry not committed: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      this.inFlight = false;
    }
    this.replan();
  }
}
