// The etcd-v2 store (etcd's v2store) as a deterministic state machine: every write carries the leader's clock
// (`cmd.now`), so replicas compute identical indexes, expirations and events. Client mistakes are returned as
// KvError values, never thrown.
import { Packr } from "msgpackr";
import type { KvCommand } from "./commands.ts";
import { EventHistory, type HistoryEntry } from "./history.ts";
import { cleanKey, joinKey, keyLimitError, segments } from "./path.ts";
import { eventNode, repr, reprForGet } from "./render.ts";
import { newNode, pathOf, type TreeNode, TtlHeap } from "./tree.ts";

export type { TreeNode } from "./tree.ts";

import { EVENT_HISTORY_SIZE, KvError, type KvErrorCode, type KvEvent, type KvNode } from "./types.ts";
import { WatcherHub, type WatchHandle } from "./watchers.ts";

export type { WatchHandle } from "./watchers.ts";

const STAT_NAMES = [
  "getsSuccess",
  "getsFail",
  "setsSuccess",
  "setsFail",
  "deleteSuccess",
  "deleteFail",
  "updateSuccess",
  "updateFail",
  "createSuccess",
  "createFail",
  "compareAndSwapSuccess",
  "compareAndSwapFail",
  "compareAndDeleteSuccess",
  "compareAndDeleteFail",
  "expireCount",
] as const;
type StatName = (typeof STAT_NAMES)[number];

/** Which success/failure counters each client command feeds. */
const STAT_OF: Record<Exclude<KvCommand["op"], "expire">, [StatName, StatName]> = {
  set: ["setsSuccess", "setsFail"],
  create: ["createSuccess", "createFail"],
  update: ["updateSuccess", "updateFail"],
  cas: ["compareAndSwapSuccess", "compareAndSwapFail"],
  delete: ["deleteSuccess", "deleteFail"],
  cad: ["compareAndDeleteSuccess", "compareAndDeleteFail"],
};

/**
 * Snapshot layout (version 2): nodes flat in pre-order so a deep or wide tree never recurses while encoding, each
 * with its depth and own name, so the size is linear in the data (version 1 held every node's full path:
 * quadratic in a key's depth; still restored).
 */
interface SnapshotDoc {
  v: 2;
  index: number;
  /** [depth (1 = below the root), name, dir (1|0), value, createdIndex, modifiedIndex, expireTime | null]. */
  nodes: [number, string, number, string, number, number, number | null][];
  history: [KvEvent, number][];
  stats: number[];
}

/** Version 1: [path, dir, value, createdIndex, modifiedIndex, expireTime], parents before children. */
type SnapshotNodeV1 = [string, number, string, number, number, number | null];
type SnapshotV1 = { v: 1; nodes: SnapshotNodeV1[] };

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
/**
 * The nodes of a snapshot in pre-order, as they were when it was taken. A node's name, kind and creation index
 * never change once it exists, so only the fields writes change are copied (in columns: no object per node), with
 * each node's depth (1 = below the root).
 */
interface CapturedNodes {
  nodes: TreeNode[];
  depths: number[];
  values: string[];
  modified: number[];
  expires: (number | null)[];
}

/** A snapshot part ends after this many nodes or this many characters of paths and values (some 10-30 ms). */
const NODES_PER_PART = 10_000;
const CHARS_PER_PART = 1024 * 1024;

/**
 * The msgpack encoding of a SnapshotDoc, written piece by piece (msgpack is concatenative: a map or an array is
 * its header followed by its items), so that unpacking the concatenation gives the whole document. Its own
 * packer, as the bytes a packer returns are only valid until that packer's next call: each part is copied.
 */
function* encodeSnapshotDoc(
  index: number,
  at: CapturedNodes,
  history: SnapshotDoc["history"],
  stats: number[],
): Generator<Uint8Array> {
  const p = new Packr({ useRecords: false, mapsAsObjects: true });
  const pack = (v: unknown) => new Uint8Array(p.pack(v));
  const count = at.nodes.length;
  const head = Buffer.alloc(5);
  head[0] = 0xdd; // array 32
  head.writeUInt32BE(count, 1);
  yield Buffer.concat([
    Buffer.from([0x85]),
    pack("v"),
    pack(2),
    pack("index"),
    pack(index),
    pack("nodes"),
    head,
  ]);
  let rows: SnapshotDoc["nodes"] = [];
  let chars = 0;
  for (let i = 0; i < count; i++) {
    const n = at.nodes[i] as TreeNode;
    const value = at.values[i] as string;
    rows.push([
      at.depths[i]!,
      n.name,
      n.children ? 1 : 0,
      value,
      n.createdIndex,
      at.modified[i]!,
      at.expires[i]!,
    ]);
    chars += n.name.length + value.length;
    if (rows.length < NODES_PER_PART && chars < CHARS_PER_PART && i < count - 1) continue;
    const slice = p.pack(rows);
    yield new Uint8Array(slice.subarray(arrayHeaderLength(slice[0]!)));
    rows = [];
    chars = 0;
  }
  yield Buffer.concat([pack("history"), pack(history), pack("stats"), pack(stats)]);
}

function arrayHeaderLength(first: number): number {
  if (first >= 0x90 && first <= 0x9f) return 1;
  if (first === 0xdc) return 3;
  if (first === 0xdd) return 5;
  throw new Error(`not a msgpack array (0x${first.toString(16)})`);
}

export class KvStore {
  private root: TreeNode = newNode("", true, "", 0, null, null);
  /** Keys and directories in the tree, the root not counted (/metrics' berth_store_keys). */
  private nodes = 0;
  private currentIndex = 0;
  private ttlHeap = new TtlHeap();
  private hub = new WatcherHub(new EventHistory(EVENT_HISTORY_SIZE));
  private counters = new Map<StatName, number>(STAT_NAMES.map((n) => [n, 0]));
  private changeHooks: ((path: string) => void)[] = [];

  /** etcd's CurrentIndex: bumped once by every successful modification (and once per expired node). */
  get index(): number {
    return this.currentIndex;
  }

  apply(cmd: KvCommand): KvEvent | KvEvent[] | KvError {
    if (cmd.op === "expire") return this.expire(cmd.now);
    const result = this.overLimit(cmd) ?? this.applyWrite(cmd);
    const [ok, fail] = STAT_OF[cmd.op];
    this.bump(result instanceof KvError ? fail : ok);
    return result;
  }

  get(key: string, opts: { recursive: boolean; sorted: boolean }, now: number): KvEvent | KvError {
    const n = this.lookup(cleanKey(key));
    if (n instanceof KvError) {
      this.bump("getsFail");
      return n;
    }
    this.bump("getsSuccess");
    return { action: "get", node: reprForGet(n, opts.recursive, opts.sorted, now) };
  }

  /**
   * Calls `cb` synchronously whenever the node at a path, or the subtree under it, changed ("/" after a restore):
   * for read models kept next to the store, which must never be behind it (watch events arrive a microtask later).
   */
  onChange(cb: (path: string) => void): void {
    this.changeHooks.push(cb);
  }

  private changed(path: string): void {
    for (const cb of this.changeHooks) cb(path);
  }

  /**
   * The node at `key` as it is in the tree, or null when there is none: a read for the node's own bookkeeping
   * (the scheduler's registry), with no documents built and no stats counted. The result must not be modified.
   */
  peek(key: string): Readonly<TreeNode> | null {
    let cur: TreeNode | undefined = this.root;
    for (const seg of segments(cleanKey(key))) {
      cur = cur.children?.get(seg);
      if (cur === undefined) return null;
    }
    return cur;
  }

  watch(
    key: string,
    opts: { recursive: boolean; stream: boolean; sinceIndex?: number },
    listener: (e: KvEvent) => void,
  ): WatchHandle | KvError {
    const since = opts.sinceIndex && opts.sinceIndex > 0 ? opts.sinceIndex : this.currentIndex + 1;
    return this.hub.watch(cleanKey(key), opts.recursive, opts.stream, since, this.currentIndex, listener);
  }

  /** Earliest expiration (ms since the epoch) of any node, or null when nothing has a TTL. */
  nextExpiration(): number | null {
    return this.ttlHeap.top()?.expireTime ?? null;
  }

  /** Keys and directories in the store, hidden ones too (the root is not counted). */
  get keyCount(): number {
    return this.nodes;
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of STAT_NAMES) out[name] = this.counters.get(name) ?? 0;
    out.watchers = this.hub.count;
    return out;
  }

  snapshot(): Uint8Array {
    return Buffer.concat([...this.snapshotParts()]);
  }

  /**
   * The snapshot as a sequence of byte strings whose concatenation is exactly snapshot()'s bytes. The state is
   * captured when this is called (a flat copy of every node's fields: cheap next to encoding it); the parts are
   * encoded only as they are taken, so a caller can spread the encoding over several turns of the event loop
   * while the store goes on changing.
   */
  snapshotParts(): Iterable<Uint8Array> {
    const at: CapturedNodes = { nodes: [], depths: [], values: [], modified: [], expires: [] };
    // Pre-order without recursion (a tree may be deep): a stack of the directories' iterators.
    const open: Iterator<TreeNode>[] = [(this.root.children as Map<string, TreeNode>).values()];
    while (open.length > 0) {
      const next = (open[open.length - 1] as Iterator<TreeNode>).next();
      if (next.done) {
        open.pop();
        continue;
      }
      const n = next.value;
      at.nodes.push(n);
      at.depths.push(open.length);
      at.values.push(n.value);
      at.modified.push(n.modifiedIndex);
      at.expires.push(n.expireTime);
      if (n.children) open.push(n.children.values());
    }
    const index = this.currentIndex;
    const history: SnapshotDoc["history"] = this.hub.history
      .entries()
      .map((h) => [h.event, h.refresh ? 1 : 0]);
    const stats = STAT_NAMES.map((n) => this.counters.get(n) ?? 0);
    return encodeSnapshotDoc(index, at, history, stats);
  }

  /**
   * Replaces the whole state. Unlike etcd (which drops watchers with error 400), existing watchers survive:
   * they are caught up from the restored history and then continue with new events.
   */
  restore(data: Uint8Array): void {
    const doc = packr.unpack(data) as SnapshotDoc | (Omit<SnapshotDoc, "v" | "nodes"> & SnapshotV1);
    if (doc?.v !== 1 && doc?.v !== 2) throw new Error("not a key/value store snapshot");
    this.ttlHeap.clear();
    this.root = newNode("", true, "", 0, null, null);
    this.nodes = 0;
    const add = (parent: TreeNode | undefined, name: string, node: SnapshotNodeV1, where: () => string) => {
      if (!parent?.children) throw new Error(`snapshot node ${where()} has no parent directory`);
      const [, dir, value, created, modified, expireTime] = node;
      const n = newNode(name, dir === 1, value, created, parent, expireTime ?? null);
      n.modifiedIndex = modified;
      parent.children.set(name, n);
      this.nodes++;
      if (n.expireTime !== null) this.ttlHeap.push(n);
      return n;
    };
    if (doc.v === 1) {
      const byPath = new Map<string, TreeNode>([["/", this.root]]);
      for (const node of doc.nodes) {
        const path = node[0];
        const slash = path.lastIndexOf("/");
        const n = add(byPath.get(path.slice(0, Math.max(1, slash))), path.slice(slash + 1), node, () => path);
        if (n.children) byPath.set(path, n);
      }
    } else {
      // chain[d] is the directory the next node of depth d + 1 goes into (pre-order: its latest one).
      const chain: TreeNode[] = [this.root];
      for (const [depth, name, ...rest] of doc.nodes) {
        const parent = depth >= 1 && depth <= chain.length ? chain[depth - 1] : undefined;
        const n = add(parent, name, [name, ...rest], () => `${name} (depth ${depth})`);
        chain.length = depth;
        chain.push(n);
      }
    }
    this.currentIndex = doc.index;
    this.hub.history.reset(doc.history.map(([event, r]): HistoryEntry => ({ event, refresh: r === 1 })));
    STAT_NAMES.forEach((name, i) => {
      this.counters.set(name, doc.stats[i] ?? 0);
    });
    this.changed("/");
    this.hub.afterRestore(this.currentIndex);
  }

  // --- writes -------------------------------------------------------------------------------------------------

  private applyWrite(cmd: Exclude<KvCommand, { op: "expire" }>): KvEvent | KvError {
    switch (cmd.op) {
      case "set":
        return this.set(cmd.key, cmd.dir, cmd.value, expireAt(cmd.ttl, cmd.now), cmd.refresh, cmd.now);
      case "create": {
        const r = this.create(
          cmd.key,
          cmd.dir,
          cmd.value,
          cmd.unique,
          false,
          expireAt(cmd.ttl, cmd.now),
          cmd.now,
        );
        if (r instanceof KvError) return r;
        this.hub.notify(r);
        return r;
      }
      case "update":
        return this.update(cmd.key, cmd.value, expireAt(cmd.ttl, cmd.now), cmd.refresh, cmd.now);
      case "cas":
        return this.compareAndSwap(cmd, expireAt(cmd.ttl, cmd.now));
      case "delete":
        return this.delete(cmd.key, cmd.dir, cmd.recursive, cmd.now);
      case "cad":
        return this.compareAndDelete(cmd.key, cmd.prevValue, cmd.prevIndex, cmd.now);
    }
  }

  private set(
    key: string,
    dir: boolean,
    value: string,
    expireTime: number | null,
    refresh: boolean,
    now: number,
  ): KvEvent | KvError {
    const prev = this.lookup(cleanKey(key));
    if (prev instanceof KvError && prev.errorCode !== 100) return prev;
    if (refresh) {
      if (prev instanceof KvError) return prev;
      value = prev.value; // a refresh keeps the value and only resets the TTL
    }
    const e = this.create(key, dir, value, false, true, expireTime, now);
    if (e instanceof KvError) return e;
    this.publish(e, refresh);
    return e;
  }

  /** etcd's internalCreate: creates missing parent directories; `replace` lets a file (never a dir) be overwritten. */
  private create(
    key: string,
    dir: boolean,
    value: string,
    unique: boolean,
    replace: boolean,
    expireTime: number | null,
    now: number,
  ): KvEvent | KvError {
    const next = this.currentIndex + 1;
    // In-order keys are named by the index they are created at, zero-padded so they sort as strings.
    const path = cleanKey(unique ? `${key}/${String(next).padStart(20, "0")}` : key);
    if (path === "/") return this.error(107, "/");
    const segs = segments(path);
    const name = segs.pop() as string;
    let d = this.root;
    for (const seg of segs) {
      const children = d.children as Map<string, TreeNode>;
      const child = children.get(seg);
      if (child) {
        if (!child.children) return this.error(104, pathOf(child));
        d = child;
      } else {
        const made = newNode(seg, true, "", next, d, null);
        children.set(seg, made);
        this.nodes++;
        d = made;
      }
    }
    const children = d.children as Map<string, TreeNode>;
    const existing = children.get(name);
    let prevNode: KvNode | undefined;
    if (existing) {
      if (!replace) return this.error(105, path);
      if (existing.children) return this.error(102, path);
      prevNode = repr(existing, false, false, now);
      this.detach(existing); // a replaced file is not announced as deleted (etcd passes no callback)
    }
    const n = newNode(name, dir, value, next, d, expireTime);
    children.set(name, n);
    this.nodes++;
    if (expireTime !== null) this.ttlHeap.push(n);
    this.currentIndex = next;
    this.changed(path);
    const node = eventNode(path, dir ? { dir: true } : { value }, { expireTime, now }, next, next);
    const action = replace ? "set" : "create";
    return prevNode ? { action, node, prevNode } : { action, node };
  }

  private update(
    key: string,
    value: string,
    expireTime: number | null,
    refresh: boolean,
    now: number,
  ): KvEvent | KvError {
    const path = cleanKey(key);
    if (path === "/") return this.error(107, "/");
    const n = this.lookup(path);
    if (n instanceof KvError) return n;
    if (n.children && value !== "") return this.error(102, path);
    if (refresh) value = n.value;
    const next = this.currentIndex + 1;
    const prevNode = repr(n, false, false, now);
    // A directory has no value: an update only changes its TTL (etcd's "update dir").
    if (!n.children) n.value = value;
    n.modifiedIndex = next;
    this.updateTtl(n, expireTime);
    const node = eventNode(
      path,
      n.children ? { dir: true } : { value },
      { expireTime: n.expireTime, now },
      next,
      n.createdIndex,
    );
    const e: KvEvent = { action: "update", node, prevNode };
    this.currentIndex = next;
    this.changed(path);
    this.publish(e, refresh);
    return e;
  }

  private compareAndSwap(
    cmd: Extract<KvCommand, { op: "cas" }>,
    expireTime: number | null,
  ): KvEvent | KvError {
    const path = cleanKey(cmd.key);
    if (path === "/") return this.error(107, "/");
    const n = this.lookup(path);
    if (n instanceof KvError) return n;
    if (n.children) return this.error(102, path);
    const failed = compareFailure(n, cmd.prevValue, cmd.prevIndex);
    if (failed !== null) return this.error(101, failed);
    const value = cmd.refresh ? n.value : cmd.value;
    const next = this.currentIndex + 1;
    const prevNode = repr(n, false, false, cmd.now);
    n.value = value;
    n.modifiedIndex = next;
    this.updateTtl(n, expireTime);
    this.currentIndex = next;
    this.changed(path);
    const node = eventNode(path, { value }, { expireTime: n.expireTime, now: cmd.now }, next, n.createdIndex);
    const e: KvEvent = { action: "compareAndSwap", node, prevNode };
    this.publish(e, cmd.refresh);
    return e;
  }

  private delete(key: string, dir: boolean, recursive: boolean, now: number): KvEvent | KvError {
    const path = cleanKey(key);
    if (path === "/") return this.error(107, "/");
    const n = this.lookup(path);
    if (n instanceof KvError) return n;
    if (recursive) dir = true;
    if (n.children) {
      if (!dir) return this.error(102, path);
      if (n.children.size > 0 && !recursive) return this.error(108, path);
    }
    const next = this.currentIndex + 1;
    const e: KvEvent = {
      action: "delete",
      node: eventNode(path, n.children ? { dir: true } : {}, null, next, n.createdIndex),
      prevNode: repr(n, false, false, now),
    };
    this.removeAndNotify(n, e);
    return e;
  }

  private compareAndDelete(
    key: string,
    prevValue: string | undefined,
    prevIndex: number | undefined,
    now: number,
  ): KvEvent | KvError {
    const path = cleanKey(key);
    // No read-only check here, as in etcd: the root is a directory, so this answers 102.
    const n = this.lookup(path);
    if (n instanceof KvError) return n;
    if (n.children) return this.error(102, path);
    const failed = compareFailure(n, prevValue, prevIndex);
    if (failed !== null) return this.error(101, failed);
    const next = this.currentIndex + 1;
    const e: KvEvent = {
      action: "compareAndDelete",
      node: eventNode(path, {}, null, next, n.createdIndex),
      prevNode: repr(n, false, false, now),
    };
    this.removeAndNotify(n, e);
    return e;
  }

  /** etcd's DeleteExpiredKeys: earliest first, one event (and one index) per expired node. */
  private expire(now: number): KvEvent[] {
    const events: KvEvent[] = [];
    for (;;) {
      const n = this.ttlHeap.top();
      if (!n || (n.expireTime as number) > now) break;
      const next = this.currentIndex + 1;
      const e: KvEvent = {
        action: "expire",
        node: eventNode(pathOf(n), n.children ? { dir: true } : {}, null, next, n.createdIndex),
        prevNode: repr(n, false, false, now),
      };
      this.removeAndNotify(n, e);
      this.bump("expireCount");
      events.push(e);
    }
    return events;
  }

  // --- helpers ------------------------------------------------------------------------------------------------

  /** Removes `n` and everything below it, telling watchers on each removed path, then publishes `e`. */
  private removeAndNotify(n: TreeNode, e: KvEvent): void {
    const delivered = new Set<object>();
    const removeTree = (node: TreeNode, path: string): void => {
      if (node.children)
        for (const child of [...node.children.values()]) removeTree(child, joinKey(path, child.name));
      this.detach(node);
      this.hub.notifyPath(e, path, true, delivered);
    };
    removeTree(n, e.node.key);
    this.currentIndex = e.node.modifiedIndex;
    this.changed(e.node.key);
    this.hub.notify(e, delivered);
  }

  private detach(n: TreeNode): void {
    if (n.parent?.children?.get(n.name) === n) {
      n.parent.children.delete(n.name);
      this.nodes--;
    }
    this.ttlHeap.remove(n);
  }

  /**
   * A write whose key is over the limits is refused here too, not only before it is proposed: an entry written
   * by an older version (or a bug) is answered with an error on every replica instead of building its tree.
   * Deletes are exempt: they build nothing, and they can remove an over-limit key an older version stored.
   */
  private overLimit(cmd: Exclude<KvCommand, { op: "expire" }>): KvError | null {
    if (cmd.op === "delete" || cmd.op === "cad") return null;
    const why = keyLimitError(cmd.key);
    return why === null ? null : this.error(209, why);
  }

  /** etcd's node.UpdateTTL: null makes the node permanent. */
  private updateTtl(n: TreeNode, expireTime: number | null): void {
    n.expireTime = expireTime;
    if (expireTime === null) this.ttlHeap.remove(n);
    else this.ttlHeap.update(n);
  }

  private publish(e: KvEvent, refresh: boolean): void {
    if (refresh) this.hub.addRefresh(e);
    else this.hub.notify(e);
  }

  /** etcd's internalGet: 104 names the file met on the way, 100 the first missing path. */
  private lookup(path: string): TreeNode | KvError {
    let cur = this.root;
    const segs = segments(path);
    // The causes name a prefix of `path`, built only on failure (building each level's path costs depth squared).
    const prefix = (levels: number) => `/${segs.slice(0, levels).join("/")}`;
    for (let i = 0; i < segs.length; i++) {
      if (!cur.children) return this.error(104, prefix(i));
      const child = cur.children.get(segs[i] as string);
      if (!child) return this.error(100, prefix(i + 1));
      cur = child;
    }
    return cur;
  }

  private error(code: KvErrorCode, cause: string): KvError {
    return new KvError(code, cause, this.currentIndex);
  }

  private bump(name: StatName): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + 1);
  }
}

function expireAt(ttl: number | null, now: number): number | null {
  return ttl === null ? null : now + ttl * 1000;
}

/** etcd's Compare + getCompareFailCause: "[given != actual]", both parts when both differ. */
function compareFailure(
  n: TreeNode,
  prevValue: string | undefined,
  prevIndex: number | undefined,
): string | null {
  const pv = prevValue ?? "";
  const pi = prevIndex ?? 0;
  const indexMatch = pi === 0 || n.modifiedIndex === pi;
  const valueMatch = pv === "" || n.value === pv;
  if (indexMatch && valueMatch) return null;
  if (indexMatch) return `[${pv} != ${n.value}]`;
  if (valueMatch) return `[${pi} != ${n.modifiedIndex}]`;
  return `[${pv} != ${n.value}] [${pi} != ${n.modifiedIndex}]`;
}
