// etcd's EventHistory: the last EVENT_HISTORY_SIZE events, so a watch can start from a recent past index.
import type { KvEvent } from "./types.ts";

export interface HistoryEntry {
  event: KvEvent;
  /** Refreshes take an index (and a slot) but are never shown to watchers, as in etcd. */
  refresh: boolean;
}

export function eventIndex(e: KvEvent): number {
  return e.node.modifiedIndex;
}

export class EventHistory {
  // A ring buffer: `start` is the oldest slot, `length` the number of events kept.
  private slots: (HistoryEntry | undefined)[];
  private start = 0;
  private length = 0;

  constructor(readonly capacity: number) {
    this.slots = new Array(capacity);
  }

  add(entry: HistoryEntry): void {
    if (this.length < this.capacity) {
      this.slots[(this.start + this.length) % this.capacity] = entry;
      this.length++;
    } else {
      this.slots[this.start] = entry;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  /** Index of the oldest event kept, 0 when empty (etcd's StartIndex). */
  get startIndex(): number {
    return this.length === 0 ? 0 : eventIndex((this.slots[this.start] as HistoryEntry).event);
  }

  /** Oldest first. */
  entries(): HistoryEntry[] {
    const out: HistoryEntry[] = [];
    for (let i = 0; i < this.length; i++)
      out.push(this.slots[(this.start + i) % this.capacity] as HistoryEntry);
    return out;
  }

  /** Non-refresh events with index >= sinceIndex, oldest first (binary search: indexes increase along the log). */
  since(sinceIndex: number): KvEvent[] {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const e = (this.slots[(this.start + mid) % this.capacity] as HistoryEntry).event;
      if (eventIndex(e) < sinceIndex) lo = mid + 1;
      else hi = mid;
    }
    const out: KvEvent[] = [];
    for (let i = lo; i < this.length; i++) {
      const entry = this.slots[(this.start + i) % this.capacity] as HistoryEntry;
      if (!entry.refresh) out.push(entry.event);
    }
    return out;
  }

  reset(entries: HistoryEntry[]): void {
    this.slots = new Array(this.capacity);
    this.start = 0;
    this.length = 0;
    for (const e of entries.slice(-this.capacity)) this.add(e);
  }
}
