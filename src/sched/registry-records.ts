// The shape of every record under /_berth, checked in one place: the read model skips (and reports) a record
// that fails, so the engine and `list-machines` never meet one, and a client's write there that would store one
// is refused before it is proposed. A record from an older version or written around these checks is the
// reason the read side checks too.
import { createHash } from "node:crypto";
import type { KvWriteRequest } from "../client/protocol.ts";
import { cleanKey } from "../kv/path.ts";
import { isValidUnitName } from "../unit/unit-file.ts";
import {
  type AgentReport,
  CLUSTER_ID_KEY,
  MACHINES_DIR,
  type MachineRecord,
  MEMBERS_DIR,
  type MetadataOverride,
  REGISTRY_DIR,
  SCHEDULE_DIR,
  type ScheduleRecord,
  STATES_DIR,
  TIMERS_DIR,
  type TimerStamp,
  UNIT_FILES_DIR,
  UNITS_DIR,
  type UnitRecord,
} from "./registry.ts";

/** A record as read, or why it cannot be used. */
export type Checked<T> = { record: T } | { problem: string };

/** A record that could not be read: its key and why (what `list-machines` warns about and the engine logs). */
export interface RegistryProblem {
  key: string;
  problem: string;
}

const DESIRED = ["inactive", "loaded", "launched"];
const SHA1_RE = /^[0-9a-f]{40}$/;

export function checkUnitRecord(value: string): Checked<UnitRecord> {
  return checkJson(value, (o) => {
    if (typeof o.hash !== "string" || !SHA1_RE.test(o.hash)) return '"hash" must be 40 hex digits';
    if (!DESIRED.includes(o.desired as string)) return `"desired" must be one of ${DESIRED.join(", ")}`;
    return null;
  });
}

export function checkScheduleRecord(value: string): Checked<ScheduleRecord> {
  return checkJson(value, (o) => {
    if (!Array.isArray(o.machines) || o.machines.some((m) => typeof m !== "string"))
      return '"machines" must be a list of machine ids';
    if (o.reason !== undefined && typeof o.reason !== "string") return '"reason" must be a string';
    if (
      o.leaving !== undefined &&
      (!Array.isArray(o.leaving) || o.leaving.some((m) => typeof m !== "string"))
    )
      return '"leaving" must be a list of machine ids';
    return null;
  });
}

/** A machine's info record; `id` is the one its key names. */
export function checkMachineRecord(value: string, id: string): Checked<MachineRecord> {
  return checkJson(value, (o) => {
    if (o.id !== id) return `"id" must be ${JSON.stringify(id)}, the id in its key`;
    if (typeof o.name !== "string") return '"name" must be a string';
    if (o.publicIp !== null && typeof o.publicIp !== "string") return '"publicIp" must be a string or null';
    if (!isStringMap(o.metadata)) return '"metadata" must be a map of strings';
    if (o.agentTtlMs !== undefined && !(typeof o.agentTtlMs === "number" && o.agentTtlMs > 0))
      return '"agentTtlMs" must be a positive number of milliseconds';
    return null;
  });
}

export function checkMetadataOverride(value: string): Checked<MetadataOverride> {
  return checkJson(value, (o) => {
    if (!isStringMap(o.set)) return '"set" must be a map of strings';
    if (!Array.isArray(o.unset) || o.unset.some((k) => typeof k !== "string"))
      return '"unset" must be a list of keys';
    return null;
  });
}

export function checkMachineState(value: string): Checked<"up" | "lost"> {
  return value === "up" || value === "lost" ? { record: value } : { problem: 'must be "up" or "lost"' };
}

/** `berth machine drain`'s mark on a machine. */
export function checkDrainRecord(value: string): Checked<{ since: number }> {
  return checkJson(value, (o) => (typeof o.since === "number" ? null : '"since" must be a number'));
}

/** The store index a machine's agent last acted on (a decimal integer). */
export function checkActedIndex(value: string): Checked<number> {
  const index = Number(value);
  return /^[1-9][0-9]*$/.test(value) && Number.isSafeInteger(index)
    ? { record: index }
    : { problem: "must be a store index (a positive whole number)" };
}

export function checkAgentReport(value: string): Checked<AgentReport> {
  return checkJson(value, (o) => {
    for (const f of ["hash", "load", "active", "sub"])
      if (typeof o[f] !== "string") return `"${f}" must be a string`;
    if (o.mainPid !== null && !Number.isInteger(o.mainPid)) return '"mainPid" must be a number or null';
    if (typeof o.since !== "number") return '"since" must be a number';
    return null;
  });
}

/** A Persistent= timer's last trigger. */
export function checkTimerStamp(value: string): Checked<TimerStamp> {
  return checkJson(value, (o) =>
    typeof o.lastTrigger === "number" && Number.isFinite(o.lastTrigger) && o.lastTrigger >= 0
      ? null
      : '"lastTrigger" must be a time (ms since the epoch)',
  );
}

function checkMemberAttributes(value: string): Checked<unknown> {
  return checkJson(value, (o) => {
    if (typeof o.clientAddr !== "string") return '"clientAddr" must be a string';
    if (o.httpAddr !== null && typeof o.httpAddr !== "string") return '"httpAddr" must be a string or null';
    if (typeof o.version !== "string") return '"version" must be a string';
    return null;
  });
}

/**
 * Why a client's write under /_berth is refused, or null. Deletes pass (they store nothing, and removing a stale
 * record is what an operator does there); a PUT must store a well-formed record at a key the registry has; a
 * directory, an in-order key or anything else is refused. The answer names the prefix and the commands to use.
 */
export function registryWriteProblem(req: KvWriteRequest): string | null {
  const key = req.key;
  if (!isUnder(REGISTRY_DIR, key) || req.method === "DELETE") return null;
  const problem = writeProblem(req);
  if (problem === null) return null;
  return (
    `${key}: ${problem}. ${REGISTRY_DIR} is Berth's scheduler registry: change it with berth submit, start, ` +
    "stop, unload, destroy (a write there must store a well-formed record; deleting a stale one is allowed)"
  );
}

function writeProblem(req: KvWriteRequest): string | null {
  if (req.method === "POST") return "in-order keys are not registry records";
  if (req.dir) return "directories there are made by the records they hold";
  // A refresh keeps the stored value: only its TTL changes.
  if (req.refresh) return null;
  const check = recordCheck(cleanKey(req.key));
  if (check === null) return "not a key of the registry";
  const c = check(req.value ?? "");
  return "problem" in c ? `not a valid record: ${c.problem}` : null;
}

/** The check for the record a registry key holds, or null when the registry has no such key. */
function recordCheck(key: string): ((value: string) => Checked<unknown>) | null {
  if (key === CLUSTER_ID_KEY) return (v) => (v === "" ? { problem: "empty" } : { record: v });
  const parts = key.slice(REGISTRY_DIR.length + 1).split("/");
  const name = parts[1] ?? "";
  if (name === "" || name.startsWith("_")) return null;
  const dir = `${REGISTRY_DIR}/${parts[0]}`;
  if (parts.length === 2) {
    if (dir === UNITS_DIR && isValidUnitName(name)) return checkUnitRecord;
    if (dir === SCHEDULE_DIR && isValidUnitName(name)) return checkScheduleRecord;
    if (dir === MEMBERS_DIR) return checkMemberAttributes;
    if (dir === TIMERS_DIR && isValidUnitName(name)) return checkTimerStamp;
    if (dir === UNIT_FILES_DIR && SHA1_RE.test(name))
      return (v) =>
        createHash("sha1").update(v).digest("hex") === name
          ? { record: v }
          : { problem: "its text does not hash to the name of its key" };
  }
  if (parts.length === 3 && !(parts[2] ?? "").startsWith("_")) {
    if (dir === MACHINES_DIR && parts[2] === "info") return (v) => checkMachineRecord(v, name);
    if (dir === MACHINES_DIR && parts[2] === "state") return checkMachineState;
    if (dir === MACHINES_DIR && parts[2] === "drain") return checkDrainRecord;
    if (dir === MACHINES_DIR && parts[2] === "acted") return checkActedIndex;
    if (dir === MACHINES_DIR && parts[2] === "metadata") return checkMetadataOverride;
    if (dir === STATES_DIR && isValidUnitName(name)) return checkAgentReport;
  }
  return null;
}

function checkJson<T>(value: string, problemOf: (o: Record<string, unknown>) => string | null): Checked<T> {
  let o: unknown;
  try {
    o = JSON.parse(value);
  } catch {
    return { problem: "not JSON" };
  }
  if (o === null || typeof o !== "object" || Array.isArray(o)) return { problem: "not a JSON object" };
  const problem = problemOf(o as Record<string, unknown>);
  return problem === null ? { record: o as T } : { problem };
}

function isStringMap(v: unknown): boolean {
  return (
    v !== null &&
    typeof v === "object" &&
    !Array.isArray(v) &&
    Object.values(v as object).every((x) => typeof x === "string")
  );
}

function isUnder(dir: string, key: string): boolean {
  const k = cleanKey(key);
  return k === dir || k.startsWith(`${dir}/`);
}
