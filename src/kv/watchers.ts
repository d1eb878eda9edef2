// etcd's watcherHub: watchers keyed by path, notified for events at their path, below it (recursive) or when
// a directory above them is deleted; past events are served from the event history.
import { type EventHistory, eventIndex } from "./history.ts";
import { isHiddenBelow } from "./path.ts";
import { KvError, type KvEvent } from "./types.ts";

export interface WatchHandle {
  cancel(): void;
}

interface Watcher {
  key: string;
  recursive: boolean;
  stream: boolean;
  /** Lowest event index still wanted: the watch's sinceIndex, then one past the last delivered event. */
  next: number;
  listener: (e: KvEvent) => void;
  removed: boolean;
  pending: KvEvent[];
  scheduled: boolean;
}

/** Does a history event concern a watch on `key`? (etcd's EventHistory.scan match, plus the hidden-key rule.) */
function historyMatch(e: KvEvent, key: string, recursive: boolean): boolean {
  const k = e.node.key;
  if (k === key) return true;
  if (recursive) {
    const prefix = key === "/" ? "/" : `${key}/`;
    if (k.startsWith(prefix) && !isHiddenBelow(key, k)) return true;
  }
  // Deleting or expiring a directory ends the watches below it too.
  const prev = e.prevNode;
  if ((e.action === "delete" || e.action === "expire") && prev?.dir) {
    return key === prev.key || key.startsWith(prev.key === "/" ? "/" : `${prev.key}/`);
  }
  return false;
}

export class WatcherHub {
  private watchers = new Map<string, Set<Watcher>>();
  private live = 0;

  constructor(readonly history: EventHistory) {}

  /** Registered watchers (etcd's stats "watchers"). */
  get count(): number {
    return this.live;
  }

  watch(
    key: string,
    recursive: boolean,
    stream: boolean,
    sinceIndex: number,
    storeIndex: number,
    listener: (e: KvEvent) => void,
  ): WatchHandle | KvError {
    const start = this.history.startIndex;
    if (sinceIndex < start) {
      return new KvError(401, `the requested history has been cleared [${start}/${sinceIndex}]`, storeIndex);
    }
    const w: Watcher = {
      key,
      recursive,
      stream,
      next: sinceIndex,
      listener,
      removed: false,
      pending: [],
      scheduled: false,
    };
    const handle = {
      cancel: () => {
        // Events queued but not yet handed over are dropped: after cancel() the listener hears nothing.
        w.pending = [];
        this.remove(w);
      },
    };
    if (sinceIndex <= storeIndex) {
      const past = this.history.since(sinceIndex).filter((e) => historyMatch(e, key, recursive));
      // A one-shot watch is answered by the first past event and never registered (etcd).
      if (!stream && past.length > 0) {
        this.deliver(w, past[0] as KvEvent);
        w.removed = true;
        return handle;
      }
      // A stream replays every past match, then continues live (etcd would stop after the first).
      for (const e of past) this.deliver(w, e);
      w.next = Math.max(w.next, storeIndex + 1);
    }
    let set = this.watchers.get(key);
    if (!set) {
      set = new Set();
      this.watchers.set(key, set);
    }
    set.add(w);
    this.live++;
    return handle;
  }

  /** Records an event and notifies watchers on the event's path and on every ancestor (etcd's notify). */
  notify(e: KvEvent, delivered: Set<object> = new Set()): void {
    this.history.add({ event: e, refresh: false });
    const key = e.node.key;
    this.notifyPath(e, "/", false, delivered);
    if (key === "/") return;
    let at = 0;
    while (at >= 0) {
      at = key.indexOf("/", at + 1);
      this.notifyPath(e, at < 0 ? key : key.slice(0, at), false, delivered);
    }
  }

  /** A refresh takes its place in history but is shown to nobody. */
  addRefresh(e: KvEvent): void {
    this.history.add({ event: e, refresh: true });
  }

  /**
   * Notifies the watchers sitting exactly on `path`, a node being removed by event `e` (etcd's callback from
   * node.Remove). `delivered` makes sure a watcher sees each event once even when reached twice.
   */
  notifyPath(e: KvEvent, path: string, deleted: boolean, delivered: Set<object>): void {
    const set = this.watchers.get(path);
    if (!set) return;
    const original = e.node.key === path;
    if (!original && isHiddenBelow(path, e.node.key)) return;
    for (const w of set) {
      if (delivered.has(w)) continue;
      if (!(w.recursive || original || deleted) || eventIndex(e) < w.next) continue;
      delivered.add(w);
      this.deliver(w, e);
      if (!w.stream) this.remove(w);
    }
  }

  /** After a snapshot is installed: watchers catch up from the restored history, then continue live. */
  afterRestore(storeIndex: number): void {
    for (const set of [...this.watchers.values()]) {
      for (const w of [...set]) {
        if (w.next > storeIndex) continue;
        const past = this.history.since(w.next).filter((e) => historyMatch(e, w.key, w.recursive));
        for (const e of past) {
          this.deliver(w, e);
          if (!w.stream) break;
        }
        if (!w.stream && past.length > 0) this.remove(w);
        else w.next = storeIndex + 1;
      }
    }
  }

  private remove(w: Watcher): void {
    if (w.removed) return;
    w.removed = true;
    const set = this.watchers.get(w.key);
    if (set?.delete(w)) {
      this.live--;
      if (set.size === 0) this.watchers.delete(w.key);
    }
  }

  /**
   * Listeners always run in a microtask, in event order per watcher: never inside apply() or watch(), so a
   * listener cannot re-enter the store mid-command, and a throwing listener cannot break replication.
   */
  private deliver(w: Watcher, e: KvEvent): void {
    w.next = Math.max(w.next, eventIndex(e) + 1);
    w.pending.push(e);
    if (w.scheduled) return;
    w.scheduled = true;
    queueMicrotask(() => {
      w.scheduled = false;
      const batch = w.pending;
      w.pending = [];
      for (const ev of batch) {
        try {
          w.listener(ev);
        } catch {
          // A listener's failure is its own; the store and the other watchers carry on.
        }
      }
    });
  }
}
