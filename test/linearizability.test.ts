// The linearizability checker on hand-written histories (both verdicts), shrinking, per-key partitioning,
// and properties over histories produced by a simulated linearizable register.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Operation, OpStatus } from "./chaos/history.ts";
import { checkHistory, formatHistory } from "./chaos/linearizability.ts";

let nextId = 0;

interface OpSpec {
  client?: number;
  key?: string;
  at: [number, number | null];
  status?: OpStatus;
}

function read(value: string | null | undefined, s: OpSpec): Operation {
  return mk("read", {}, s, value);
}
function write(value: string | null, s: OpSpec): Operation {
  return mk("write", { value }, s);
}
function cas(expectValue: string | null, next: string, s: OpSpec): Operation {
  return mk("cas", { expect: expectValue, next }, s);
}
function mk(kind: Operation["kind"], input: Operation["input"], s: OpSpec, value?: string | null): Operation {
  const status = s.status ?? (s.at[1] === null ? "unknown" : "ok");
  const result = kind === "read" && status === "ok" ? { status, value: value ?? null } : { status };
  return {
    id: nextId++,
    client: s.client ?? 0,
    key: s.key ?? "k",
    kind,
    input,
    invokedAt: s.at[0],
    completedAt: s.at[1],
    result,
  };
}

const linearizable = (ops: Operation[]) => expect(checkHistory(ops)).toMatchObject({ ok: true });
const violation = (ops: Operation[]) => {
  const res = checkHistory(ops);
  if (res.ok !== false) throw new Error(`expected a violation, got ${JSON.stringify(res)}`);
  return res;
};

describe("linearizable histories", () => {
  it("accepts the empty history and a sequential one", () => {
    expect(checkHistory([])).toEqual({ ok: true, keys: 0, ops: 0 });
    linearizable([
      read(null, { at: [0, 1] }),
      write("a", { at: [2, 3] }),
      read("a", { at: [4, 5] }),
      write(null, { at: [6, 7] }),
      read(null, { at: [8, 9] }),
    ]);
  });

  it("accepts concurrent writes with reads seeing either order", () => {
    const wa = write("a", { client: 1, at: [0, 10] });
    const wb = write("b", { client: 2, at: [0, 10] });
    linearizable([wa, wb, read("a", { client: 3, at: [11, 12] })]);
    linearizable([wa, wb, read("b", { client: 3, at: [11, 12] })]);
    // A read overlapping the write may see the old or the new value.
    linearizable([
      write("a", { at: [0, 10] }),
      read(null, { client: 1, at: [1, 2] }),
      read("a", { client: 2, at: [3, 4] }),
    ]);
  });

  it("treats touching intervals as concurrent", () => {
    linearizable([write("a", { at: [0, 5] }), read(null, { client: 1, at: [5, 6] })]);
  });

  it("accepts unknown writes whether or not they took effect, even long after invocation", () => {
    const w = write("a", { at: [0, null] });
    linearizable([w, read(null, { client: 1, at: [10, 11] })]);
    linearizable([w, read("a", { client: 1, at: [10, 11] })]);
    linearizable([w, read(null, { client: 1, at: [10, 11] }), read("a", { client: 2, at: [20, 21] })]);
    // An unknown result that did record a completion time is still treated as open-ended.
    linearizable([
      write("a", { at: [0, 1], status: "unknown" }),
      read(null, { client: 1, at: [10, 11] }),
      read("a", { client: 1, at: [12, 13] }),
    ]);
  });

  it("ignores failed writes and failed or unknown reads", () => {
    linearizable([
      write("a", { at: [0, 1], status: "fail" }),
      read(null, { at: [2, 3] }),
      read("zzz", { at: [4, 5], status: "fail" }),
      read(undefined, { at: [6, null] }),
    ]);
  });

  it("accepts cas chains, using failed cas as information", () => {
    linearizable([
      cas(null, "a", { at: [0, 1] }),
      cas("a", "b", { at: [2, 3] }),
      cas("a", "c", { at: [4, 5], status: "fail" }),
      cas("b", "c", { at: [6, 7] }),
      read("c", { at: [8, 9] }),
    ]);
    // Two concurrent cas from the same value: one wins, the other fails.
    linearizable([
      write("a", { at: [0, 1] }),
      cas("a", "x", { client: 1, at: [2, 10] }),
      cas("a", "y", { client: 2, at: [2, 10], status: "fail" }),
      read("x", { at: [11, 12] }),
    ]);
    // An unknown cas may have applied.
    linearizable([write("a", { at: [0, 1] }), cas("a", "b", { at: [2, null] }), read("b", { at: [5, 6] })]);
  });
});

describe("non-linearizable histories", () => {
  it("rejects a stale read after a completed write", () => {
    const res = violation([
      write("a", { at: [0, 1] }),
      write("b", { at: [2, 3] }),
      read("a", { client: 1, at: [4, 5] }),
    ]);
    expect(res.key).toBe("k");
    expect(res.violation).toHaveLength(3);
    expect(res.explanation).toMatch(/read\(\) +-> ok "a"/);
  });

  it("rejects a read of a value never written", () => {
    const res = violation([write("a", { at: [0, 1] }), read("ghost", { at: [2, 3] })]);
    expect(res.violation.map((o) => o.kind)).toEqual(["read"]);
    expect(res.explanation).toContain('never written by any op: "ghost"');
  });

  it("rejects a read of null after a completed write", () => {
    violation([write("a", { at: [0, 1] }), read(null, { at: [2, 3] })]);
  });

  it("rejects two sequential cas ok from the same expected value", () => {
    violation([
      write("a", { at: [0, 1] }),
      cas("a", "b", { client: 1, at: [2, 3] }),
      cas("a", "c", { client: 2, at: [4, 5] }),
    ]);
  });

  it("rejects a failed cas whose compare must have succeeded", () => {
    violation([write("a", { at: [0, 1] }), cas("a", "b", { at: [2, 3], status: "fail" })]);
  });

  it("rejects two readers seeing new then old (the classic)", () => {
    const res = violation([
      write("a", { at: [0, 1] }),
      write("b", { client: 1, at: [2, 20] }),
      read("b", { client: 2, at: [3, 4] }),
      read("a", { client: 3, at: [5, 6] }),
    ]);
    expect(res.violation).toHaveLength(4);
  });

  it("rejects a stale read despite an unknown write that could be placed anywhere", () => {
    violation([
      write("a", { at: [0, 1] }),
      write("x", { client: 9, at: [0, null] }),
      write("b", { at: [2, 3] }),
      read("a", { client: 1, at: [4, 5] }),
    ]);
  });
});

describe("shrinking and reporting", () => {
  it("shrinks a stale read buried in 200 unrelated ops to a tiny sub-history", () => {
    const noise: Operation[] = [];
    for (let i = 0; i < 200; i++) {
      const t = 100 + i * 10;
      const c = 10 + (i % 5);
      noise.push(
        i % 3 === 0
          ? write(`n${i}`, { client: c, at: [t, t + 15] })
          : read(null, { client: c, key: `other${i % 4}`, at: [t, t + 15] }),
      );
    }
    const bug = [
      write("a", { at: [0, 1] }),
      write("b", { at: [2, 3] }),
      read("a", { client: 1, at: [4, 5] }),
    ];
    const res = violation([...noise.slice(0, 100), ...bug, ...noise.slice(100)]);
    expect(res.violation.length).toBeLessThanOrEqual(4);
    expect(res.violation).toEqual(expect.arrayContaining(bug));
    expect(res.explanation).toContain("shrunk from");
    expect(res.explanation.split("\n")[1]).toMatch(/^\[\+0 \.\. \+1\]/);
  });

  it("formats a readable timeline", () => {
    const text = formatHistory([
      write("a", { client: 1, at: [100, 110] }),
      cas(null, "b", { client: 2, at: [105, null] }),
      read(null, { client: 3, at: [120, 130] }),
    ]);
    const lines = text.split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^\[\+0 \.\. \+10\] +c1 .* write\("a"\) +-> ok$/);
    expect(lines[1]).toMatch(/\[\+5 \.\. never\] +c2 .* cas\(null -> "b"\) +-> unknown$/);
    expect(lines[2]).toMatch(/read\(\) +-> ok null \(absent\)$/);
  });
});

describe("per-key partitioning", () => {
  it("checks keys independently and reports the bad one", () => {
    const ok = [write("1", { key: "x", at: [0, 1] }), read("1", { key: "x", at: [2, 3] })];
    // Reading "1" on y would be fine if keys were conflated; per key it is a phantom value.
    const bad = [write("2", { key: "y", at: [0, 1] }), read("1", { key: "y", at: [2, 3] })];
    expect(checkHistory(ok)).toEqual({ ok: true, keys: 1, ops: 2 });
    const res = violation([...ok, ...bad]);
    expect(res.key).toBe("y");
    expect(res.violation.every((o) => o.key === "y")).toBe(true);
    // Interleaving keys in time does not create cross-key constraints.
    linearizable([
      write("a", { key: "x", at: [0, 1] }),
      write("b", { key: "y", at: [2, 3] }),
      read(null, { key: "z", at: [4, 5] }),
      read("a", { key: "x", at: [6, 7] }),
    ]);
  });

  it("reports unknown on timeout", () => {
    // A zero budget hits the deadline check on a history big enough to need more than 1024 steps.
    const ops: Operation[] = [];
    for (let i = 0; i < 3000; i++) ops.push(write(`v${i}`, { client: i, at: [0, 100] }));
    ops.push(read("nope", { at: [200, 201] }));
    const res = checkHistory(ops, { timeoutMs: 0 });
    expect(res).toEqual({ ok: "unknown", key: "k", reason: "timeout" });
  });
});

// ---- simulated linearizable register ----------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SimParams {
  seed: number;
  clients: number;
  opsPerClient: number;
  keys: number;
  unknownRate: number;
}

/**
 * Clients issue ops one after another with random durations; each op takes effect at a random instant
 * inside its interval (its linearization point), results are computed by applying ops in point order.
 * Some ops time out: they may take effect later (even after the client moved on) or never.
 */
function simulate(p: SimParams): Operation[] {
  const rand = mulberry32(p.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const pending: { op: Operation; point: number; applied: boolean }[] = [];
  let id = 0;
  for (let c = 0; c < p.clients; c++) {
    let t = Math.floor(rand() * 5);
    for (let j = 0; j < p.opsPerClient; j++) {
      const duration = 1 + Math.floor(rand() * 20);
      const unknown = rand() < p.unknownRate;
      const kind = pick(["read", "read", "write", "write", "cas"] as const);
      const op: Operation = {
        id: id++,
        client: c,
        key: `k${Math.floor(rand() * p.keys)}`,
        kind,
        input: kind === "write" ? { value: `c${c}-${j}` } : kind === "cas" ? { next: `c${c}-${j}` } : {},
        invokedAt: t,
        completedAt: unknown ? null : t + duration,
        result: { status: unknown ? "unknown" : "ok" },
      };
      // A timed-out op may land long after its client gave up on it.
      const span = unknown ? duration * (1 + rand() * 10) : duration;
      pending.push({ op, point: t + rand() * span, applied: !unknown || rand() < 0.5 });
      t += duration + Math.floor(rand() * 3);
    }
  }
  pending.sort((a, b) => a.point - b.point);
  const state = new Map<string, string | null>();
  for (const { op, applied } of pending) if (applied) apply(op, state, rand);
  return pending.map((x) => x.op).sort((a, b) => a.id - b.id);
}

/** Fills in the op's result (or cas expectation) from the register state at its linearization point. */
function apply(op: Operation, state: Map<string, string | null>, rand: () => number): void {
  const cur = state.get(op.key) ?? null;
  const known = op.result.status !== "unknown";
  if (op.kind === "read") {
    if (known) op.result.value = cur;
  } else if (op.kind === "write") {
    state.set(op.key, op.input.value ?? null);
  } else {
    op.input.expect = rand() < 0.6 ? cur : rand() < 0.5 ? null : "stale";
    const hit = op.input.expect === cur;
    if (hit) state.set(op.key, op.input.next ?? null);
    if (known) op.result.status = hit ? "ok" : "fail";
  }
}

/** Sim ops that never applied still need a cas expectation; give them one (any is fine). */
function finish(ops: Operation[]): Operation[] {
  for (const op of ops) if (op.kind === "cas" && op.input.expect === undefined) op.input.expect = "never";
  return ops;
}

/** A read invoked after `later` completed, returning the value `earlier` wrote, which `later` overwrote. */
function injectStaleRead(ops: Operation[]): Operation | undefined {
  const writers = ops.filter(
    (o) => o.completedAt !== null && o.result.status === "ok" && (o.kind === "write" || o.kind === "cas"),
  );
  for (const later of writers) {
    const earlier = writers.find((w) => w.key === later.key && w.completedAt! < later.invokedAt);
    if (earlier === undefined) continue;
    const at = later.completedAt! + 1;
    const value = earlier.kind === "write" ? earlier.input.value! : earlier.input.next!;
    return read(value, { client: 99, key: later.key, at: [at, at + 1] });
  }
  return undefined;
}

const simParams = fc.record({
  seed: fc.integer(),
  clients: fc.integer({ min: 1, max: 6 }),
  opsPerClient: fc.integer({ min: 1, max: 25 }),
  keys: fc.integer({ min: 1, max: 3 }),
  unknownRate: fc.constantFrom(0, 0.05, 0.2),
});

describe("properties over simulated registers", () => {
  it("accepts every history of a linearizable register", () => {
    fc.assert(
      fc.property(simParams, (p) => {
        const ops = finish(simulate(p));
        const res = checkHistory(ops);
        if (res.ok !== true)
          throw new Error(`rejected:\n${"explanation" in res ? res.explanation : res.reason}`);
      }),
      { numRuns: 300 },
    );
  });

  it("rejects such a history once a stale read is injected", () => {
    fc.assert(
      fc.property(simParams, (p) => {
        const ops = finish(simulate(p));
        const stale = injectStaleRead(ops);
        fc.pre(stale !== undefined);
        const res = checkHistory([...ops, stale!]);
        expect(res.ok).toBe(false);
        if (res.ok === false) {
          expect(res.key).toBe(stale!.key);
          expect(res.violation).toContain(stale);
          // The shown sub-history is itself a violation.
          expect(checkHistory(res.violation).ok).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("checks 5 clients x 2000 ops on 5 keys quickly", () => {
    const cases = [
      { keys: 5, unknownRate: 0 },
      { keys: 5, unknownRate: 0.01 },
      { keys: 1, unknownRate: 0.01 },
    ];
    for (const { keys, unknownRate } of cases) {
      const ops = finish(simulate({ seed: 42, clients: 5, opsPerClient: 2000, keys, unknownRate }));
      const label = `${ops.length} ops, ${keys} key(s), unknown rate ${unknownRate}`;
      const t0 = performance.now();
      expect(checkHistory(ops)).toEqual({ ok: true, keys, ops: 10_000 });
      const t1 = performance.now();
      const stale = injectStaleRead(ops)!;
      expect(checkHistory([...ops, stale], { shrinkMs: 0 }).ok).toBe(false);
      const t2 = performance.now();
      const bad = checkHistory([...ops, stale]);
      const t3 = performance.now();
      if (bad.ok !== false) throw new Error("stale read not detected");
      console.log(
        `linearizability: ${label}: accepted in ${(t1 - t0).toFixed(1)} ms; stale read detected in ` +
          `${(t2 - t1).toFixed(1)} ms, detected+shrunk to ${bad.violation.length} ops in ${(t3 - t2).toFixed(1)} ms`,
      );
      expect(checkHistory(bad.violation).ok).toBe(false);
    }
  });
});
