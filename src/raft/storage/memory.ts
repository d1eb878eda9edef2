// In-memory RaftStorage for tests: the same contract as FileRaftStorage (suffix replacement, snapshot-relative
// loads, compaction) with nothing on disk. Values are copied in and out so callers cannot alias stored state.
import type { Entry, HardState, RaftStorage, Snapshot, StoredState } from "../types.ts";
import { EMPTY_HARD_STATE } from "../types.ts";

const copyEntry = (e: Entry): Entry => ({ term: e.term, index: e.index, type: e.type, data: e.data.slice() });

const copySnapshot = (s: Snapshot): Snapshot => ({
  meta: {
    index: s.meta.index,
    term: s.meta.term,
    confState: { voters: [...s.meta.confState.voters], learners: [...s.meta.confState.learners] },
  },
  data: s.data.slice(),
});

export class MemoryRaftStorage implements RaftStorage {
  private hardState: HardState = { ...EMPTY_HARD_STATE };
  private snapshot: Snapshot | null = null;
  private entries: Entry[] = [];
  private closed = false;

  async load(): Promise<StoredState> {
    this.checkOpen();
    const snapIndex = this.snapshot?.meta.index ?? 0;
    return {
      hardState: { ...this.hardState },
      snapshot: this.snapshot ? copySnapshot(this.snapshot) : null,
      entries: this.entries.filter((e) => e.index > snapIndex).map(copyEntry),
      report: { notes: [], truncatedBytes: 0 },
    };
  }

  async save(hardState: HardState | null, entries: Entry[], _sync = true): Promise<void> {
    this.checkOpen();
    if (hardState) this.hardState = { ...hardState };
    const first = entries[0];
    if (!first) return;
    const last = this.entries[this.entries.length - 1];
    if (last && first.index > last.index + 1) {
      throw new Error(`memory storage: entry ${first.index} leaves a gap after ${last.index}`);
    }
    // Last writer wins: drop the stored suffix the new entries replace.
    this.entries = this.entries.filter((e) => e.index < first.index);
    for (const e of entries) this.entries.push(copyEntry(e));
  }

  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.checkOpen();
    if (this.snapshot && this.snapshot.meta.index >= snapshot.meta.index) return;
    this.snapshot = copySnapshot(snapshot);
    // A snapshot past the log's end (installed from a leader) starts a new log after it.
    const last = this.entries[this.entries.length - 1];
    if (!last || last.index < snapshot.meta.index) this.entries = [];
  }

  async compact(index: number): Promise<void> {
    this.checkOpen();
    this.entries = this.entries.filter((e) => e.index > index);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error("memory storage: closed");
  }
}
