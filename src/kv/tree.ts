// The in-memory node tree and the TTL heap (etcd's node.go and ttl_key_heap.go).

export interface TreeNode {
  /**
   * The node's own segment ("" for the root). Not the full path: a chain of N levels would then hold N paths of
   * up to N segments, memory quadratic in the key (pathOf builds the path when one is needed).
   */
  name: string;
  /** Files only; "" for directories. */
  value: string;
  /** null for files: a directory is exactly a node with a children map (etcd's IsDir). */
  children: Map<string, TreeNode> | null;
  parent: TreeNode | null;
  createdIndex: number;
  modifiedIndex: number;
  /** ms since the epoch; null = permanent. */
  expireTime: number | null;
  /** Position in the TTL heap, -1 when not in it. */
  heapIndex: number;
}

export function newNode(
  name: string,
  dir: boolean,
  value: string,
  index: number,
  parent: TreeNode | null,
  expireTime: number | null,
): TreeNode {
  return {
    name,
    value: dir ? "" : value,
    children: dir ? new Map() : null,
    parent,
    createdIndex: index,
    modifiedIndex: index,
    expireTime,
    heapIndex: -1,
  };
}

/** The node's key, built from the names up to the root ("/" for the root itself). */
export function pathOf(node: TreeNode): string {
  const names: string[] = [];
  for (let n: TreeNode | null = node; n?.parent; n = n.parent) names.push(n.name);
  return `/${names.reverse().join("/")}`;
}

/** etcd's IsHidden: the node's own name starts with "_". */
export function isHiddenNode(node: TreeNode): boolean {
  return node.name.startsWith("_");
}

/**
 * Min-heap of nodes with a TTL, ordered by (expireTime, path). The path tie-break makes the expiry order a
 * function of the tree alone, so every replica (and a restored one) expires equal-time keys in the same order.
 */
export class TtlHeap {
  private items: TreeNode[] = [];

  get size(): number {
    return this.items.length;
  }

  top(): TreeNode | null {
    return this.items[0] ?? null;
  }

  push(n: TreeNode): void {
    n.heapIndex = this.items.length;
    this.items.push(n);
    this.up(n.heapIndex);
  }

  remove(n: TreeNode): void {
    const i = n.heapIndex;
    if (i < 0 || this.items[i] !== n) return;
    const last = this.items.pop() as TreeNode;
    n.heapIndex = -1;
    if (last === n) return;
    this.items[i] = last;
    last.heapIndex = i;
    this.fix(i);
  }

  /** Re-positions a node whose expireTime changed. */
  update(n: TreeNode): void {
    if (n.heapIndex < 0) this.push(n);
    else this.fix(n.heapIndex);
  }

  clear(): void {
    for (const n of this.items) n.heapIndex = -1;
    this.items = [];
  }

  private fix(i: number): void {
    if (i > 0 && this.less(i, (i - 1) >> 1)) this.up(i);
    else this.down(i);
  }

  private less(a: number, b: number): boolean {
    const x = this.items[a] as TreeNode;
    const y = this.items[b] as TreeNode;
    const dx = x.expireTime as number;
    const dy = y.expireTime as number;
    // Paths are built only on a tie (keys written in the same millisecond with the same TTL).
    return dx < dy || (dx === dy && pathOf(x) < pathOf(y));
  }

  private swap(a: number, b: number): void {
    const x = this.items[a] as TreeNode;
    const y = this.items[b] as TreeNode;
    this.items[a] = y;
    this.items[b] = x;
    x.heapIndex = b;
    y.heapIndex = a;
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) return;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const n = this.items.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(l, m)) m = l;
      if (r < n && this.less(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}
