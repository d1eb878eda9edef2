// The one Tarjan implementation (src/graph.ts) the planner, the agent and the import-graph check share.
import { describe, expect, it } from "vitest";
import { cycles, stronglyConnected } from "../src/graph.ts";

describe("stronglyConnected", () => {
  it("finds the components, numbered in reverse topological order of the condensation", () => {
    // 0 → 1 → 2 → 0 (a loop), 2 → 3, 3 → 4 → 3 (a loop), 5 alone with a self-loop.
    const adj = [[1], [2], [0, 3], [4], [3], [5]];
    const { of, members } = stronglyConnected(adj.length, adj);
    expect([...of]).toEqual([1, 1, 1, 0, 0, 2]);
    expect(members).toEqual([[4, 3], [2, 1, 0], [5]]);
    // Every edge goes from a component to one numbered no higher (reverse topological order).
    adj.forEach((edges, v) => {
      for (const w of edges) expect(of[w]!).toBeLessThanOrEqual(of[v]!);
    });
  });

  it("walks a chain far longer than the call stack would allow", () => {
    const n = 200_000;
    const adj = Array.from({ length: n }, (_, i) => (i + 1 < n ? [i + 1] : [0]));
    const { members } = stronglyConnected(n, adj);
    expect(members).toHaveLength(1);
    expect(members[0]).toHaveLength(n);
  });
});

describe("cycles", () => {
  it("returns the components of more than one node, successors outside the node list included", () => {
    const edges: Record<string, string[]> = {
      a: ["b"],
      b: ["c"],
      c: ["a", "d"],
      d: ["e"],
      e: ["d"],
      f: ["f"],
    };
    // e is reached only as a successor; f loops on itself (one node: not a cycle here).
    expect(cycles(["a", "d", "f"], (n) => edges[n] ?? [])).toEqual([
      ["e", "d"],
      ["c", "b", "a"],
    ]);
    expect(cycles(["x", "y"], () => [])).toEqual([]);
  });
});
