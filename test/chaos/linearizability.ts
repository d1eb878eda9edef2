// A linearizability checker for per-key registers (pure, no I/O).
//
// Keys are independent registers, so a history is linearizable iff each key's sub-history is
// (P-compositionality); each key is checked with the Wing–Gong/Lowe search as in Porcupine's checkSingle:
// entry/return events in a doubly-linked list, linearize a call by lifting it and its return out of the
// list, backtrack on reaching a return whose call is not yet linearized, and memoise (linearized set, state)
// so equivalent prefixes are explored once. Unknown (timed-out) ops return at +infinity and are optional.
import { formatHistory, type Operation } from "./history.ts";

export type { Operation } from "./history.ts";
export { formatHistory } from "./history.ts";

export interface CheckOptions {
  /** Total budget for the search over all keys (default 10 s). */
  timeoutMs?: number;
  /** Extra budget for shrinking a violation (default 2 s). */
  shrinkMs?: number;
}

export type CheckResult =
  | { ok: true; keys: number; ops: number }
  | { ok: false; key: string; violation: Operation[]; explanation: string }
  | { ok: "unknown"; key: string; reason: "timeout" };

type Outcome = "ok" | "fail" | "timeout";

// Step kinds of the register model, over interned values (0 = null/absent).
const READ = 0; // ok read of value a
const WRITE = 1; // set a
const CAS_OK = 2; // requires state === a, sets b
const CAS_FAIL = 3; // requires state !== a

interface Model {
  ops: Operation[];
  kind: Int8Array;
  a: Int32Array;
  b: Int32Array;
  /** Unknown result: may be linearized anywhere after invocation, or never. */
  optional: Uint8Array;
}

export function checkHistory(ops: readonly Operation[], opts: CheckOptions = {}): CheckResult {
  const deadline = performance.now() + (opts.timeoutMs ?? 10_000);
  const byKey = groupByKey(ops);
  let timedOut: string | undefined;
  for (const [key, keyOps] of byKey) {
    const started = performance.now();
    const outcome = checkKey(keyOps, deadline);
    if (outcome === "fail") {
      // Relaxed candidates can be exponentially harder than the original; cap each try by what it cost.
      const perTryMs = Math.max(20, 2 * (performance.now() - started));
      const violation = shrink(keyOps, performance.now() + (opts.shrinkMs ?? 2_000), perTryMs);
      return { ok: false, key, violation, explanation: explain(key, violation, keyOps.length) };
    }
    // Keep going: another key may still yield a definite violation.
    if (outcome === "timeout") timedOut ??= key;
  }
  if (timedOut !== undefined) return { ok: "unknown", key: timedOut, reason: "timeout" };
  return { ok: true, keys: byKey.size, ops: ops.length };
}

function groupByKey(ops: readonly Operation[]): Map<string, Operation[]> {
  const byKey = new Map<string, Operation[]>();
  for (const op of ops) {
    const list = byKey.get(op.key);
    if (list) list.push(op);
    else byKey.set(op.key, [op]);
  }
  return byKey;
}

/** Check one key's ops, all assumed to be on the same register. */
function checkKey(ops: readonly Operation[], deadline: number): Outcome {
  return search(buildModel(ops), deadline);
}

// ---- model -------------------------------------------------------------------------------------------

/** Drops ops that carry no information and had no effect, and interns values to small ints. */
function buildModel(all: readonly Operation[]): Model {
  const ops = all.filter(isRelevant);
  const n = ops.length;
  const model: Model = {
    ops,
    kind: new Int8Array(n),
    a: new Int32Array(n),
    b: new Int32Array(n),
    optional: new Uint8Array(n),
  };
  const ids = new Map<string | null, number>([[null, 0]]);
  const intern = (v: string | null | undefined): number => {
    const k = v ?? null;
    let id = ids.get(k);
    if (id === undefined) {
      id = ids.size;
      ids.set(k, id);
    }
    return id;
  };
  ops.forEach((op, i) => {
    const status = op.result.status;
    model.optional[i] = status === "unknown" ? 1 : 0;
    if (op.kind === "read") {
      model.kind[i] = READ;
      model.a[i] = intern(op.result.value);
    } else if (op.kind === "write") {
      model.kind[i] = WRITE;
      model.a[i] = intern(op.input.value);
    } else {
      // An unknown cas either happened (and then its compare succeeded) or is simply never linearized.
      model.kind[i] = status === "fail" ? CAS_FAIL : CAS_OK;
      model.a[i] = intern(op.input.expect);
      model.b[i] = intern(op.input.next);
    }
  });
  return model;
}

/** Failed/unknown reads and failed writes neither constrain nor change the register. */
function isRelevant(op: Operation): boolean {
  const status = op.result.status;
  if (op.kind === "read") return status === "ok";
  if (op.kind === "write") return status !== "fail";
  return true;
}

/** The new state, or -1 when the op's recorded result is impossible in `state`. */
function step(m: Model, i: number, state: number): number {
  const a = m.a[i]!;
  switch (m.kind[i]) {
    case READ:
      return state === a ? state : -1;
    case WRITE:
      return a;
    case CAS_OK:
      return state === a ? m.b[i]! : -1;
    default:
      return state !== a ? state : -1;
  }
}

// ---- WGL search --------------------------------------------------------------------------------------

interface EventList {
  next: Int32Array;
  prev: Int32Array;
  /** call node -> its return node; -1 for return nodes. */
  match: Int32Array;
  op: Int32Array;
}

/** Node 0 is the head sentinel; op i has call node 2i+1 and return node 2i+2, linked in time order. */
function buildEvents(m: Model): EventList {
  const n = m.ops.length;
  const size = 2 * n + 1;
  const list: EventList = {
    next: new Int32Array(size),
    prev: new Int32Array(size),
    match: new Int32Array(size).fill(-1),
    op: new Int32Array(size),
  };
  const time = new Float64Array(size);
  // rank breaks time ties: calls before returns (touching intervals count as concurrent, so we never
  // report a false violation from clock granularity), required returns before optional ones.
  const rank = new Uint8Array(size);
  for (let i = 0; i < n; i++) {
    const op = m.ops[i]!;
    const call = 2 * i + 1;
    const ret = call + 1;
    list.op[call] = list.op[ret] = i;
    list.match[call] = ret;
    time[call] = op.invokedAt;
    const open = op.completedAt === null || m.optional[i] === 1;
    time[ret] = open ? Number.POSITIVE_INFINITY : Math.max(op.invokedAt, op.completedAt!);
    rank[ret] = m.optional[i] === 1 ? 2 : 1;
  }
  const order = Array.from({ length: 2 * n }, (_, k) => k + 1);
  order.sort((x, y) => {
    const tx = time[x]!;
    const ty = time[y]!;
    if (tx !== ty) return tx < ty ? -1 : 1;
    return rank[x]! - rank[y]! || x - y;
  });
  let last = 0;
  for (const node of order) {
    list.next[last] = node;
    list.prev[node] = last;
    last = node;
  }
  list.next[last] = -1;
  return list;
}

/** Unlinks a call and its return (dancing links: unlift restores them in LIFO order). */
function lift(l: EventList, call: number): void {
  l.next[l.prev[call]!] = l.next[call]!;
  l.prev[l.next[call]!] = l.prev[call]!;
  const ret = l.match[call]!;
  l.next[l.prev[ret]!] = l.next[ret]!;
  if (l.next[ret] !== -1) l.prev[l.next[ret]!] = l.prev[ret]!;
}

function unlift(l: EventList, call: number): void {
  const ret = l.match[call]!;
  l.next[l.prev[ret]!] = ret;
  if (l.next[ret] !== -1) l.prev[l.next[ret]!] = ret;
  l.next[l.prev[call]!] = call;
  l.prev[l.next[call]!] = call;
}

/** Memo of visited (linearized set, state) pairs, hashed incrementally (Zobrist) and compared exactly. */
class VisitedSet {
  private readonly buckets = new Map<number, { bits: Uint32Array; state: number }[]>();

  /** Adds the pair; false if it was already present. */
  add(hash: number, bits: Uint32Array, state: number): boolean {
    const h = (hash ^ Math.imul(state + 1, 0x9e3779b1)) >>> 0;
    const bucket = this.buckets.get(h);
    if (bucket === undefined) {
      this.buckets.set(h, [{ bits: bits.slice(), state }]);
      return true;
    }
    for (const e of bucket) if (e.state === state && sameBits(e.bits, bits)) return false;
    bucket.push({ bits: bits.slice(), state });
    return true;
  }
}

function sameBits(x: Uint32Array, y: Uint32Array): boolean {
  for (let w = 0; w < x.length; w++) if (x[w] !== y[w]) return false;
  return true;
}

/** Deterministic per-op random words for the incremental hash of the linearized set. */
function zobrist(n: number): Int32Array {
  const z = new Int32Array(n);
  let s = 0x2545f491;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    z[i] = t ^ (t >>> 14);
  }
  return z;
}

function search(m: Model, deadline: number): Outcome {
  const n = m.ops.length;
  const l = buildEvents(m);
  const z = zobrist(n);
  const bits = new Uint32Array((n + 31) >>> 5);
  const visited = new VisitedSet();
  const stackCall: number[] = [];
  const stackState: number[] = [];
  let state = 0;
  let hash = 0;
  // Done once every required op is linearized: the remaining optional ones simply never happened.
  let required = n - m.optional.reduce((sum, o) => sum + o, 0);
  let entry = l.next[0]!;
  for (let iter = 1; ; iter++) {
    if (required === 0) return "ok";
    if ((iter & 1023) === 0 && performance.now() > deadline) return "timeout";
    const call = entry;
    if (l.match[call] !== -1) {
      const i = l.op[call]!;
      const next = step(m, i, state);
      entry = l.next[call]!;
      if (next < 0) continue;
      bits[i >>> 5]! |= 1 << (i & 31);
      if (!visited.add(hash ^ z[i]!, bits, next)) {
        bits[i >>> 5]! &= ~(1 << (i & 31));
        continue;
      }
      stackCall.push(call);
      stackState.push(state);
      state = next;
      hash ^= z[i]!;
      required -= 1 - m.optional[i]!;
      lift(l, call);
      entry = l.next[0]!;
    } else {
      // A return whose call is still pending: the last choice was wrong, undo it and try the next call.
      const undo = stackCall.pop();
      if (undo === undefined) return "fail";
      const i = l.op[undo]!;
      state = stackState.pop()!;
      bits[i >>> 5]! &= ~(1 << (i & 31));
      hash ^= z[i]!;
      required += 1 - m.optional[i]!;
      unlift(l, undo);
      entry = l.next[undo]!;
    }
  }
}

// ---- shrinking and explanation -----------------------------------------------------------------------

/**
 * Greedily removes ops (halving chunks, then one at a time to a fixpoint) while the sub-history stays
 * non-linearizable. Deleting a read or failed cas only drops constraints, but deleting a write can manufacture
 * a violation (a failed cas or a null read that the write explained), so removed writes whose value the
 * remaining ops could observe are kept in the check as unknown ops, free to happen any time after their
 * invocation or never. That is a relaxation of the original, so a shrunk violation is always a genuine one.
 * Removals that would leave a read of a value nobody in the shown sub-history wrote are also refused
 * (unless the original already had one), so the result shows the real conflict.
 */
function shrink(ops: readonly Operation[], deadline: number, perTryMs: number): Operation[] {
  const allowed = unexplainedValues(ops);
  const stillBad = (cand: Operation[]): boolean => {
    if (cand.length === 0 || ![...unexplainedValues(cand)].every((v) => allowed.has(v))) return false;
    const kept = new Set(cand);
    const removed = ops.filter((op) => !kept.has(op));
    const tryDeadline = Math.min(deadline, performance.now() + perTryMs);
    return checkKey(withRelaxed(cand, removed), tryDeadline) === "fail";
  };
  let cur = narrowWindow(ops, stillBad);
  let chunk = 1;
  while (chunk * 2 <= cur.length / 2) chunk *= 2;
  for (; chunk >= 1; chunk = chunk >>> 1) cur = removePass(cur, chunk, stillBad, deadline);
  for (let before = -1; before !== cur.length && performance.now() < deadline; ) {
    before = cur.length;
    cur = removePass(cur, 1, stillBad, deadline);
  }
  return cur;
}

/**
 * `kept` plus, as unknown ops, the removed writes that could matter: those writing a value some kept op
 * (or an already included cas) observes, or all of them when a failed cas is kept (any other value helps it).
 * A write of an unobserved value can always be cut out of a linearization: nobody can act on it before the
 * next write overwrites it.
 */
function withRelaxed(kept: readonly Operation[], removed: readonly Operation[]): Operation[] {
  const writers = removed.filter((op) => op.kind !== "read" && op.result.status !== "fail");
  const all = kept.some((op) => op.kind === "cas" && op.result.status === "fail");
  const observed = new Set<string | null>();
  for (const op of kept) {
    if (op.kind === "read" && op.result.status === "ok") observed.add(op.result.value ?? null);
    if (op.kind === "cas") observed.add(op.input.expect ?? null);
  }
  const chosen = new Set<Operation>();
  for (let grew = true; grew; ) {
    grew = false;
    for (const op of writers) {
      if (chosen.has(op) || !(all || observed.has(writtenValue(op)))) continue;
      chosen.add(op);
      if (op.kind === "cas") observed.add(op.input.expect ?? null);
      grew = true;
    }
  }
  const relaxed = [...chosen].map(
    (op): Operation => ({ ...op, completedAt: null, result: { status: "unknown" } }),
  );
  return [...kept, ...relaxed];
}

function writtenValue(op: Operation): string | null {
  return (op.kind === "write" ? op.input.value : op.input.next) ?? null;
}

/**
 * Violations are usually local in time, so first bisect for the shortest prefix (by invocation) that is
 * still bad, then the latest start; ddmin on the window is then cheap even for huge histories.
 */
function narrowWindow(ops: readonly Operation[], stillBad: (cand: Operation[]) => boolean): Operation[] {
  const sorted = [...ops].sort((a, b) => a.invokedAt - b.invokedAt);
  let lo = 1;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (stillBad(sorted.slice(0, mid))) hi = mid;
    else lo = mid + 1;
  }
  const end = hi;
  lo = 0;
  hi = end - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (stillBad(sorted.slice(mid, end))) lo = mid;
    else hi = mid - 1;
  }
  const window = sorted.slice(lo, end);
  return stillBad(window) ? window : [...ops];
}

function removePass(
  ops: Operation[],
  chunk: number,
  stillBad: (cand: Operation[]) => boolean,
  deadline: number,
): Operation[] {
  let cur = ops;
  for (let i = 0; i < cur.length && performance.now() < deadline; ) {
    const cand = cur.slice(0, i).concat(cur.slice(i + chunk));
    if (stillBad(cand)) cur = cand;
    else i += chunk;
  }
  return cur;
}

/** Values observed (ok reads, ok cas expects) that no op in `ops` could have written. */
function unexplainedValues(ops: readonly Operation[]): Set<string> {
  const written = new Set<string | null>([null]);
  const seen = new Set<string>();
  for (const op of ops) {
    const { status, value } = op.result;
    if (op.kind === "write" && status !== "fail") written.add(op.input.value ?? null);
    if (op.kind === "cas" && status !== "fail") written.add(op.input.next ?? null);
    if (op.kind === "read" && status === "ok" && value != null) seen.add(value);
    if (op.kind === "cas" && status === "ok" && op.input.expect != null) seen.add(op.input.expect);
  }
  for (const v of written) if (v !== null) seen.delete(v);
  return seen;
}

function explain(key: string, violation: readonly Operation[], total: number): string {
  const phantom = [...unexplainedValues(violation)].map((v) => JSON.stringify(v));
  const lines = [
    `key ${JSON.stringify(key)}: no linearization exists for these ${violation.length} ops ` +
      `(shrunk from ${total}); every order consistent with real time contradicts some result.`,
    formatHistory(violation),
  ];
  if (phantom.length > 0) lines.push(`observed value(s) never written by any op: ${phantom.join(", ")}`);
  if (violation.some((op) => op.result.status === "unknown")) {
    lines.push("(unknown ops may take effect at any time after invocation, or never)");
  }
  return lines.join("\n");
}
