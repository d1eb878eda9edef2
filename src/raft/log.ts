import type { Entry, Snapshot, SnapshotMeta } from "./types.ts";

/**
 * The in-memory view of one node's log: entries after the last snapshot, plus the indexes that track how far
 * they have been persisted, committed and handed to the application. Pure: storage happens at the edge.
 */
export class RaftLog {
  /** Index and term of the last entry covered by the snapshot (0/0 for an empty log). */
  snapshotIndex = 0;
  snapshotTerm = 0;
  /** entries[k] has index snapshotIndex + 1 + k. */
  private entries: Entry[] = [];
  committed = 0;
  /** Highest index handed out to the application in committed entries. */
  applied = 0;
  /** Entries from this index on have not been handed to storage yet. */
  private unstableFrom = 1;
  /** A snapshot received from the leader that storage and the state machine have not taken yet. */
  pendingSnapshot: Snapshot | null = null;

  constructor(snapshot: SnapshotMeta | null, entries: Entry[], committed: number) {
    if (snapshot) {
      this.snapshotIndex = snapshot.index;
      this.snapshotTerm = snapshot.term;
    }
    this.entries = entries.filter((e) => e.index > this.snapshotIndex);
    this.unstableFrom = this.lastIndex() + 1;
    this.committed = Math.max(committed, this.snapshotIndex);
    this.applied = this.snapshotIndex;
  }

  firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** The term of the entry at `index`, or undefined when it is compacted away or beyond the log. */
  term(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    if (index < this.snapshotIndex || index > this.lastIndex()) return undefined;
    return this.entries[index - this.snapshotIndex - 1]!.term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft's "at least as up to date" rule for granting votes. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The largest index <= `index` whose term is <= `term`: where a follower and leader can agree quickly after a
   * rejection (fast back-off skips a whole conflicting term per round trip).
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    for (; i > this.snapshotIndex; i--) {
      if ((this.term(i) ?? 0) <= term) return i;
    }
    return i;
  }

  /** Entries in [lo, hi), cut after `maxBytes` of data (always at least one entry). */
  slice(lo: number, hi: number, maxBytes = Number.POSITIVE_INFINITY): Entry[] {
    if (lo < this.firstIndex()) throw new Error(`slice from ${lo}: compacted below ${this.firstIndex()}`);
    const start = lo - this.snapshotIndex - 1;
    const end = Math.min(hi, this.lastIndex() + 1) - this.snapshotIndex - 1;
    const out: Entry[] = [];
    let bytes = 0;
    for (let k = start; k < end; k++) {
      const e = this.entries[k]!;
      bytes += e.data.length + 16;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** Appends entries, replacing any existing suffix from the first new index on. Returns the new last index. */
  append(entries: Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const first = entries[0]!.index;
    if (first <= this.committed)
      throw new Error(`append at ${first} would overwrite committed ${this.committed}`);
    if (first > this.lastIndex() + 1)
      throw new Error(`append at ${first} leaves a gap after ${this.lastIndex()}`);
    this.entries.length = first - this.snapshotIndex - 1;
    for (const e of entries) this.entries.push(e);
    this.unstableFrom = Math.min(this.unstableFrom, first);
    return this.lastIndex();
  }

  /**
   * A follower's handling of the leader's entries after (prevIndex, prevTerm): skips what already matches and
   * truncates at the first conflict. Returns the index of the last entry now known to match the leader, or
   * null when the log does not contain prevIndex at prevTerm.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: Entry[]): number | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = prevIndex + entries.length;
    let firstConflict = -1;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      if (!this.matchTerm(e.index, e.term)) {
        firstConflict = k;
        break;
      }
    }
    if (firstConflict >= 0) this.append(entries.slice(firstConflict));
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  commitTo(index: number): void {
    if (index > this.committed) {
      if (index > this.lastIndex())
        throw new Error(`commit ${index} is beyond the last index ${this.lastIndex()}`);
      this.committed = index;
    }
  }

  /** Entries not yet handed to storage. */
  unstableEntries(): Entry[] {
    if (this.unstableFrom > this.lastIndex()) return [];
    return this.slice(this.unstableFrom, this.lastIndex() + 1);
  }

  /** The last index storage holds durably. */
  persistedIndex(): number {
    return Math.min(this.unstableFrom - 1, this.lastIndex());
  }

  /**
   * Storage has taken everything up to the entry at `index` of `term` (the last unstable entry of a Ready). Ignored
   * when the log no longer holds that entry: a conflicting append replaced it while it was being written, and the
   * replacement still has to be handed to storage (etcd's unstable.stableTo does the same).
   */
  stableTo(index: number, term: number): boolean {
    if (this.term(index) !== term) return false;
    this.unstableFrom = Math.max(this.unstableFrom, index + 1);
    return true;
  }

  /** Committed entries not yet handed to the application. */
  nextCommitted(maxBytes = Number.POSITIVE_INFINITY): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed < lo) return [];
    return this.slice(lo, this.committed + 1, maxBytes);
  }

  appliedTo(index: number): void {
    if (index > this.applied) this.applied = index;
  }

  /** Replaces the whole log with a snapshot the leader sent. */
  restore(snapshot: Snapshot): void {
    this.snapshotIndex = snapshot.meta.index;
    this.snapshotTerm = snapshot.meta.term;
    this.entries = [];
    this.committed = snapshot.meta.index;
    this.unstableFrom = snapshot.meta.index + 1;
    this.pendingSnapshot = snapshot;
  }

  /** Forgets entries up to `index`, which a snapshot already covers. */
  compact(index: number): void {
    if (index <= this.snapshotIndex) return;
    if (index > this.applied) throw new Error(`compact to ${index} beyond applied ${this.applied}`);
    const term = this.term(index)!;
    this.entries = this.entries.slice(index - this.snapshotIndex);
    this.snapshotIndex = index;
    this.snapshotTerm = term;
  }
}
