// Turning tree nodes into etcd's NodeExtern documents, with its field order and omitempty rules.
import { joinKey } from "./path.ts";
import type { TreeNode } from "./tree.ts";
import { isHiddenNode, pathOf } from "./tree.ts";
import type { KvNode } from "./types.ts";

/** Go's time.Time.Format(time.RFC3339Nano) in UTC for a ms timestamp: trailing zeros of the fraction trimmed. */
export function rfc3339Nano(ms: number): string {
  const whole = Math.floor(ms);
  const iso = new Date(whole).toISOString(); // 2026-11-25T01:00:24.589Z
  // Sub-millisecond parts (fractional ms) become extra nanosecond digits, as Go would print them.
  const nanos = Math.round((ms - whole) * 1e6);
  let frac = iso.slice(20, 23) + String(nanos).padStart(6, "0");
  frac = frac.replace(/0+$/, "");
  return `${iso.slice(0, 19)}${frac ? `.${frac}` : ""}Z`;
}

/** etcd's expirationAndTTL: whole seconds left rounded up (Go truncating division, then +1 on a positive rest). */
export function ttlSeconds(expireTime: number, now: number): number {
  const left = expireTime - now;
  let ttl = Math.trunc(left / 1000) || 0; // || 0: no -0 for a just-expired node
  if (left % 1000 > 0) ttl++;
  return ttl;
}

/** Adds expiration and ttl to a node document being built (ttl is omitempty in etcd, so 0 is left out). */
function addExpiration(doc: KvNode, n: TreeNode, now: number): void {
  if (n.expireTime === null) return;
  doc.expiration = rfc3339Nano(n.expireTime);
  const ttl = ttlSeconds(n.expireTime, now);
  if (ttl !== 0) doc.ttl = ttl;
}

function visibleChildren(
  n: TreeNode,
  path: string,
  recursive: boolean,
  sorted: boolean,
  now: number,
): KvNode[] {
  const out: KvNode[] = [];
  for (const child of (n.children as Map<string, TreeNode>).values()) {
    if (!isHiddenNode(child)) out.push(repr(child, recursive, sorted, now, joinKey(path, child.name)));
  }
  if (sorted) out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out;
}

/**
 * etcd's node.Repr: a file with its value, a directory with its children only when recursive. Properties are
 * created in NodeExtern order (key, value, dir, expiration, ttl, nodes, modifiedIndex, createdIndex). `path` is
 * the node's key when the caller has it (a listing builds each child's from its parent's).
 */
export function repr(
  n: TreeNode,
  recursive: boolean,
  sorted: boolean,
  now: number,
  path = pathOf(n),
): KvNode {
  const doc = { key: path } as KvNode;
  if (n.children === null) doc.value = n.value;
  else doc.dir = true;
  addExpiration(doc, n, now);
  if (n.children !== null && recursive) {
    const nodes = visibleChildren(n, path, true, sorted, now);
    if (nodes.length > 0) doc.nodes = nodes; // omitempty
  }
  doc.modifiedIndex = n.modifiedIndex;
  doc.createdIndex = n.createdIndex;
  return doc;
}

/** etcd's loadInternalNode (what a get returns): a directory always lists one level of children. */
export function reprForGet(n: TreeNode, recursive: boolean, sorted: boolean, now: number): KvNode {
  // The root is the one node etcd shows without key and indexes (its path and indexes are Go zero values).
  const path = pathOf(n);
  const doc = (path === "/" ? {} : { key: path }) as KvNode;
  if (n.children === null) doc.value = n.value;
  else doc.dir = true;
  addExpiration(doc, n, now);
  if (n.children !== null) {
    const nodes = visibleChildren(n, path, recursive, sorted, now);
    if (nodes.length > 0) doc.nodes = nodes;
  }
  if (path === "/") return doc;
  doc.modifiedIndex = n.modifiedIndex;
  doc.createdIndex = n.createdIndex;
  return doc;
}

/** An event's node document: key, then value/dir, then expiration/ttl, then the indexes. */
export function eventNode(
  key: string,
  kind: { value?: string; dir?: boolean },
  expiry: { expireTime: number | null; now: number } | null,
  modifiedIndex: number,
  createdIndex: number,
): KvNode {
  const doc = { key } as KvNode;
  if (kind.value !== undefined) doc.value = kind.value;
  if (kind.dir) doc.dir = true;
  if (expiry && expiry.expireTime !== null) {
    doc.expiration = rfc3339Nano(expiry.expireTime);
    const ttl = ttlSeconds(expiry.expireTime, expiry.now);
    if (ttl !== 0) doc.ttl = ttl;
  }
  doc.modifiedIndex = modifiedIndex;
  doc.createdIndex = createdIndex;
  return doc;
}
