// The history model for the fault-injection harness: what clients invoked, when, and what they saw.
// Pure data plus a printer; the checker lives in linearizability.ts.

export type OpKind = "read" | "write" | "cas";
export type OpStatus = "ok" | "fail" | "unknown";

export interface OpInput {
  /** write: the value written (null deletes). */
  value?: string | null;
  /** cas: the value expected to be current (null = key absent). */
  expect?: string | null;
  /** cas: the value installed when the compare succeeds. */
  next?: string;
}

export interface OpResult {
  /**
   * ok: took effect and returned. fail: certainly did not take effect (for a cas this still tells us the
   * current value differed from expect). unknown: timed out; may take effect at any time after invocation,
   * or never.
   */
  status: OpStatus;
  /** read result; null = key absent. */
  value?: string | null;
}

export interface Operation {
  id: number;
  client: number;
  key: string;
  kind: OpKind;
  input: OpInput;
  invokedAt: number;
  /** null = never completed (timeout, crash); the checker treats it as completing at +infinity. */
  completedAt: number | null;
  result: OpResult;
}

const show = (v: string | null | undefined): string =>
  v === null || v === undefined ? "null" : JSON.stringify(v);

/** `write("a")`, `cas(null -> "b")`, `read()`. */
export function describeCall(op: Operation): string {
  switch (op.kind) {
    case "read":
      return "read()";
    case "write":
      return `write(${show(op.input.value)})`;
    case "cas":
      return `cas(${show(op.input.expect)} -> ${show(op.input.next)})`;
  }
}

/** `ok "a"`, `ok null (absent)`, `fail`, `unknown`. */
export function describeResult(op: Operation): string {
  const { status } = op.result;
  if (status !== "ok" || op.kind !== "read") return status;
  const v = op.result.value;
  return v === null || v === undefined ? "ok null (absent)" : `ok ${show(v)}`;
}

/**
 * A readable timeline, one op per line, ordered by invocation, times relative to the first invocation:
 * `[+0 .. +12]  c1  #4  k  write("a")  -> ok`.
 */
export function formatHistory(ops: readonly Operation[]): string {
  if (ops.length === 0) return "(empty history)";
  const sorted = [...ops].sort((a, b) => a.invokedAt - b.invokedAt || a.id - b.id);
  const base = sorted[0]!.invokedAt;
  const rows = sorted.map((op) => {
    const end = op.completedAt === null ? "never" : `+${op.completedAt - base}`;
    return [
      `[+${op.invokedAt - base} .. ${end}]`,
      `c${op.client}`,
      `#${op.id}`,
      op.key,
      describeCall(op),
      `-> ${describeResult(op)}`,
    ];
  });
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, col) => cell.padEnd(widths[col]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
