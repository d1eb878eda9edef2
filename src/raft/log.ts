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
  /** Highest index the application has applied. */
  applied = 0;
  /** Highest index handed out to the application in committed entries (applied, or being applied). */
  private applying = 0;
  /** Entries from this index on are not known to be durable. */
  private unstableFrom = 1;
  /** Entries up to here were handed to storage in a Ready (durable, or being written). */
  private handedOutTo = 0;
  /** A snapshot received from the leader that storage and the state machine have not taken yet. */
  pendingSnapshot: Snapshot | null = null;

  constructor(snapshot: SnapshotMeta | null, entries: Entry[], committed: number) {
    if (snapshot) {
      this.snapshotIndex = snapshot.index;
      this.snapshotTerm = snapshot.term;
    }
    this.entries = entries.filter((e) => e.index > this.snapshotIndex);
    this.unstableFrom = this.lastIndex() + 1;
    this.handedOutTo = this.lastIndex();
    this.committed = Math.max(committed, this.snapshotIndex);
    this.applied = this.snapshotIndex;
    this.applying = this.snapshotIndex;
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
    this.handedOutTo = Math.min(this.handedOutTo, first - 1);
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
    const from = Math.max(this.unstableFrom, this.handedOutTo + 1);
    if (from > this.lastIndex()) return [];
    return this.slice(from, this.lastIndex() + 1);
  }

  /** The entries up to `index` were handed to storage: the next Ready starts after them. */
  handedOut(index: number): void {
    this.handedOutTo = Math.max(this.handedOutTo, index);
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

  /** Whether nextCommitted() has entries. None while a snapshot is pending: the application must take it first. */
  hasNextCommitted(): boolean {
    if (this.pendingSnapshot) return false;
    return this.committed >= Math.max(this.applying + 1, this.applied + 1, this.firstIndex());
  }

  /** Committed entries not yet handed to the application; they count as handed out from now on. */
  nextCommitted(maxBytes = Number.POSITIVE_INFINITY): Entry[] {
    if (this.pendingSnapshot) return [];
    const lo = Math.max(this.applying + 1, this.applied + 1, this.firstIndex());
    if (this.committed < lo) return [];
    const out = this.slice(lo, this.committed + 1, maxBytes);
    this.applying = out[out.length - 1]?.index ?? this.applying;
    return out;
  }

  appliedTo(index: number): void {
    if (index > this.applied) this.applied = index;
    if (index > this.applying) this.applying = index;
  }

  /** Replaces the whole log with a snapshot the leader sent. */
  restore(snapshot: Snapshot): void {
    this.snapshotIndex = snapshot.meta.index;
    this.snapshotTerm = snapshot.meta.term;
    this.entries = [];
    this.committed = snapshot.meta.index;
    this.unstableFrom = snapshot.meta.index + 1;
    this.handedOutTo = snapshot.meta.index;
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
