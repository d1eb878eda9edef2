// What a Raft message from a peer must look like before the core may step it. The core trusts its inputs (a
// `snap` without a snapshot, or entries that leave a gap, would throw inside a pass and stop the node), so the
// transport checks every message at the boundary and drops what fails, naming the problem.
import type { Entry, MessageType, Snapshot } from "./types.ts";

const TYPES = new Set<MessageType>([
  "app",
  "appResp",
  "vote",
  "voteResp",
  "preVote",
  "preVoteResp",
  "heartbeat",
  "heartbeatResp",
  "snap",
  "timeoutNow",
  "readIndex",
  "readIndexResp",
]);

const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
const isBytes = (b: unknown): b is Uint8Array => b instanceof Uint8Array;
const isIds = (a: unknown): a is string[] => Array.isArray(a) && a.every((x) => typeof x === "string");

/** Why `m` is not a well-formed Raft message, or null when it is one. */
export function messageProblem(m: unknown): string | null {
  if (!m || typeof m !== "object") return "not an object";
  const o = m as Record<string, unknown>;
  if (typeof o.type !== "string" || !TYPES.has(o.type as MessageType))
    return `unknown type ${String(o.type)}`;
  if (typeof o.from !== "string" || typeof o.to !== "string") return "from/to are not names";
  if (!isCount(o.term)) return "term is not a non-negative integer";
  for (const k of ["logTerm", "index", "commit", "rejectHint", "rejectTerm"] as const) {
    if (o[k] !== undefined && !isCount(o[k])) return `${k} is not a non-negative integer`;
  }
  for (const k of ["reject", "force"] as const) {
    if (o[k] !== undefined && typeof o[k] !== "boolean") return `${k} is not a boolean`;
  }
  if (o.context !== undefined && !isBytes(o.context)) return "context is not bytes";
  if (o.entries !== undefined) {
    const problem = entriesProblem(o.entries, (o.index as number | undefined) ?? 0, o.term);
    if (problem) return problem;
  }
  if (o.type === "snap" || o.snapshot !== undefined) {
    const problem = snapshotProblem(o.snapshot);
    if (problem) return `snapshot: ${problem}`;
  }
  return null;
}

/** Entries must follow `prevIndex` without a gap, with terms that never decrease nor pass the sender's term. */
function entriesProblem(entries: unknown, prevIndex: number, term: number): string | null {
  if (!Array.isArray(entries)) return "entries is not a list";
  let prevTerm = 0;
  for (let k = 0; k < entries.length; k++) {
    const e = entries[k] as Partial<Entry> | null;
    if (!e || typeof e !== "object") return `entry ${k} is not an object`;
    if (e.index !== prevIndex + 1 + k)
      return `entry ${k} has index ${String(e.index)}, not ${prevIndex + 1 + k}`;
    if (!isCount(e.term) || e.term < prevTerm || e.term > term) return `entry ${e.index} has a bad term`;
    if (e.type !== "normal" && e.type !== "conf") return `entry ${e.index} has type ${String(e.type)}`;
    if (!isBytes(e.data)) return `entry ${e.index} data is not bytes`;
    prevTerm = e.term;
  }
  return null;
}

function snapshotProblem(s: unknown): string | null {
  if (!s || typeof s !== "object") return "missing";
  const { meta, data } = s as Partial<Snapshot>;
  if (!meta || typeof meta !== "object") return "no metadata";
  if (!isCount(meta.index) || !isCount(meta.term)) return "index/term are not non-negative integers";
  const conf = meta.confState;
  if (!conf || !isIds(conf.voters) || !isIds(conf.learners)) return "confState is not two lists of names";
  if (!isBytes(data)) return "data is not bytes";
  return null;
}
