import type { NodeId } from "./types.ts";

/**
 * How far the leader believes a follower's log matches its own, and how much it may send it.
 * - probe: the match point is unknown; one append at a time until a reply arrives.
 * - replicate: appends are streamed optimistically, bounded by the in-flight window.
 * - snapshot: a snapshot is on its way; nothing else is sent until it is acknowledged.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** In probe state: an append is outstanding, wait for its answer (or the next heartbeat reply). */
  probeSent = false;
  pendingSnapshot = 0;
  /** Leader ticks since the snapshot was sent; a snapshot lost without a report is retried after a while. */
  snapshotTicks = 0;
  /** Heard from within the current election timeout (check-quorum). */
  recentActive = true;
  /** Last index of each append in flight, oldest first (replicate state). */
  private inflight: number[] = [];

  constructor(
    readonly id: NodeId,
    next: number,
    public learner: boolean,
    private readonly maxInflight: number,
  ) {
    this.next = next;
  }

  becomeProbe(): void {
    // After a snapshot, resume from what it covered; otherwise restart from the known match.
    this.next = this.state === "snapshot" ? Math.max(this.match, this.pendingSnapshot) + 1 : this.match + 1;
    this.state = "probe";
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflight = [];
  }

  becomeReplicate(): void {
    this.state = "replicate";
    this.next = this.match + 1;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflight = [];
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.state = "snapshot";
    this.pendingSnapshot = snapshotIndex;
    this.snapshotTicks = 0;
    this.probeSent = false;
    this.inflight = [];
  }

  /** An append up to `index` was acknowledged; returns whether it told us anything new. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      this.probeSent = false;
      updated = true;
    }
    if (this.next < index + 1) this.next = index + 1;
    while (this.inflight.length > 0 && this.inflight[0]! <= index) this.inflight.shift();
    return updated;
  }

  /**
   * The follower rejected an append at `rejected`; `hint` is the highest index that may still match.
   * Returns false for a stale rejection (one that does not concern the current probe).
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Records an append sent optimistically up to `lastIndex`. */
  sentEntries(lastIndex: number, count: number): void {
    if (this.state === "replicate") {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflight.push(lastIndex);
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    }
  }

  isPaused(): boolean {
    if (this.state === "probe") return this.probeSent;
    if (this.state === "snapshot") return true;
    return this.inflight.length >= this.maxInflight;
  }

  /** A heartbeat answer proves the follower alive: let one more append through a full window. */
  onHeartbeatResponse(): void {
    this.probeSent = false;
    if (this.state === "replicate" && this.inflight.length >= this.maxInflight) this.inflight.shift();
  }

  inflightCount(): number {
    return this.inflight.length;
  }
}

/**
 * Who should lead after this leader (a handover before shutting down, or the leader removing itself): the voter
 * most caught up with its log, among those heard from within the election timeout when there are any.
 */
export function bestSuccessor(
  progress: Iterable<{ id: NodeId; match: number; learner: boolean; recentActive: boolean }>,
  self: NodeId,
): NodeId | null {
  let best: { id: NodeId; match: number; recentActive: boolean } | null = null;
  for (const p of progress) {
    if (p.id === self || p.learner) continue;
    const better =
      best === null ||
      (p.recentActive && !best.recentActive) ||
      (p.recentActive === best.recentActive && p.match > best.match);
    if (better) best = p;
  }
  return best?.id ?? null;
}
