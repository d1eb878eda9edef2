// Strongly connected components (Tarjan), for the planner (MachineOf= and Replaces= loops, src/sched/placement.ts),
// the agent (ordering and requirement cycles between units, src/agent/agent.ts) and the import-graph check (cycles
// between folders). Iterative, so a long dependency chain cannot overflow the call stack. A module of its own (no
// imports): every layer may use it.

export interface Components {
  /**
   * The component id of each node. Ids are in reverse topological order of the condensation: a component gets its
   * id after every component it reaches.
   */
  of: Int32Array;
  /** The nodes of each component (index = id), in the order Tarjan's stack gives them up. */
  members: number[][];
}

/** The strongly connected components of the graph over nodes 0..n-1 with successors adj[v]. */
export function stronglyConnected(n: number, adj: readonly (readonly number[])[]): Components {
  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const of = new Int32Array(n).fill(-1);
  const onStack = new Uint8Array(n);
  const members: number[][] = [];
  const stack: number[] = [];
  // The depth-first search's own stack: a node and how many of its edges it has followed.
  const calls: number[] = [];
  const edgePos: number[] = [];
  let next = 0;
  const enter = (v: number): void => {
    index[v] = low[v] = next++;
    stack.push(v);
    onStack[v] = 1;
    calls.push(v);
    edgePos.push(0);
  };
  for (let s = 0; s < n; s++) {
    if (index[s] !== -1) continue;
    enter(s);
    while (calls.length > 0) {
      const top = calls.length - 1;
      const v = calls[top]!;
      const edges = adj[v]!;
      const ei = edgePos[top]!;
      if (ei < edges.length) {
        edgePos[top] = ei + 1;
        const w = edges[ei]!;
        if (index[w] === -1) enter(w);
        else if (onStack[w] === 1 && index[w]! < low[v]!) low[v] = index[w]!;
        continue;
      }
      calls.pop();
      edgePos.pop();
      if (calls.length > 0) {
        const p = calls[calls.length - 1]!;
        if (low[v]! < low[p]!) low[p] = low[v]!;
      }
      if (low[v] === index[v]) {
        const id = members.length;
        const comp: number[] = [];
        let w: number;
        do {
          w = stack.pop()!;
          onStack[w] = 0;
          of[w] = id;
          comp.push(w);
        } while (w !== v);
        members.push(comp);
      }
    }
  }
  return { of, members };
}

/**
 * The cycles of a graph given by its nodes and their successors: each strongly connected component of more than
 * one node, in the order found (nodes are searched from in the order given, successors in the order `edges` gives
 * them). Successors missing from `nodes` belong to the graph too.
 */
export function cycles<T>(nodes: Iterable<T>, edges: (n: T) => readonly T[]): T[][] {
  const ids = new Map<T, number>();
  const names: T[] = [];
  const idOf = (n: T): number => {
    let id = ids.get(n);
    if (id === undefined) {
      id = names.length;
      ids.set(n, id);
      names.push(n);
    }
    return id;
  };
  for (const n of nodes) idOf(n);
  const adj: number[][] = [];
  // Numbering the successors as they are met appends them: the search still starts from `nodes` in their order.
  for (let v = 0; v < names.length; v++) adj.push(edges(names[v]!).map(idOf));
  return stronglyConnected(names.length, adj)
    .members.filter((c) => c.length > 1)
    .map((c) => c.map((v) => names[v]!));
}
