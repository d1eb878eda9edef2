// Where units, their schedule, machines and reported unit states live in the replicated store (hidden keys under
// /_berth/, so `berth kv ls /` never shows them), and a read model built from one replica's store.
//
//   /_berth/unit-files/<sha1>         canonical unit file text (content-addressed, written once)
//   /_berth/units/<name>              {"hash","desired"}                     written by clients (through a node)
//   /_berth/schedule/<name>           {"machines":[ids],"reason"?}           written by the leader's engine
//   /_berth/machines/<id>/info        {"id","name","publicIp","metadata"}    written by each node for itself
//   /_berth/machines/<id>/state       "up" | "lost"                          written by the leader's engine
//   /_berth/states/<name>/<machine>   the agent's report for that unit        written by that machine's agent
import type { DesiredState, MachineInfo } from "../client/protocol.ts";
import type { KvStore } from "../kv/store.ts";
import { KvError, type KvNode } from "../kv/types.ts";

export const UNIT_FILES_DIR = "/_berth/unit-files";
export const UNITS_DIR = "/_berth/units";
export const SCHEDULE_DIR = "/_berth/schedule";
export const MACHINES_DIR = "/_berth/machines";
export const STATES_DIR = "/_berth/states";

export const unitFileKey = (hash: string) => `${UNIT_FILES_DIR}/${hash}`;
export const unitKey = (name: string) => `${UNITS_DIR}/${name}`;
export const scheduleKey = (name: string) => `${SCHEDULE_DIR}/${name}`;
export const machineInfoKey = (id: string) => `${MACHINES_DIR}/${id}/info`;
export const machineStateKey = (id: string) => `${MACHINES_DIR}/${id}/state`;
export const stateKey = (unit: string, machine: string) => `${STATES_DIR}/${unit}/${machine}`;

export interface UnitRecord {
  hash: string;
  desired: DesiredState;
}

export interface ScheduleRecord {
  machines: string[];
  /** Why the unit could not be placed (the last time the engine tried). */
  reason?: string;
}

export type MachineRecord = Omit<MachineInfo, "state">;

/** What an agent reports for one unit on its machine. */
export interface AgentReport {
  hash: string;
  load: string;
  active: string;
  sub: string;
  mainPid: number | null;
  since: number;
}

export interface RegistryView {
  units: Map<string, UnitRecord>;
  schedule: Map<string, ScheduleRecord>;
  machines: Map<string, MachineInfo>;
  /** unit -> machine -> report */
  states: Map<string, Map<string, AgentReport>>;
}

/** Reads the whole registry from a local replica (cheap: no I/O, a few ms for thousands of units). */
export function readRegistry(store: KvStore): RegistryView {
  const units = new Map<string, UnitRecord>();
  for (const n of children(store, UNITS_DIR)) {
    const rec = parseJson<UnitRecord>(n.value);
    if (rec && typeof rec.hash === "string") units.set(baseName(n.key), rec);
  }
  const schedule = new Map<string, ScheduleRecord>();
  for (const n of children(store, SCHEDULE_DIR)) {
    const rec = parseJson<ScheduleRecord>(n.value);
    if (rec && Array.isArray(rec.machines)) schedule.set(baseName(n.key), rec);
  }
  const machines = new Map<string, MachineInfo>();
  for (const dir of children(store, MACHINES_DIR, true)) {
    const info = dir.nodes?.find((c) => c.key.endsWith("/info"));
    const state = dir.nodes?.find((c) => c.key.endsWith("/state"))?.value;
    const rec = parseJson<MachineRecord>(info?.value);
    if (!rec) continue;
    machines.set(rec.id, { ...rec, state: state === "lost" ? "lost" : "up" });
  }
  const states = new Map<string, Map<string, AgentReport>>();
  for (const unitDir of children(store, STATES_DIR, true)) {
    const perMachine = new Map<string, AgentReport>();
    for (const n of unitDir.nodes ?? []) {
      const rep = parseJson<AgentReport>(n.value);
      if (rep) perMachine.set(baseName(n.key), rep);
    }
    if (perMachine.size > 0) states.set(baseName(unitDir.key), perMachine);
  }
  return { units, schedule, machines, states };
}

/** The canonical text of a unit file by hash, or null when missing. */
export function readUnitFile(store: KvStore, hash: string): string | null {
  const r = store.get(unitFileKey(hash), { recursive: false, sorted: false }, Date.now());
  return r instanceof KvError ? null : (r.node.value ?? null);
}

function children(store: KvStore, dir: string, recursive = false): KvNode[] {
  const r = store.get(dir, { recursive, sorted: true }, Date.now());
  if (r instanceof KvError) return [];
  return r.node.nodes ?? [];
}

function baseName(key: string): string {
  return key.slice(key.lastIndexOf("/") + 1);
}

function parseJson<T>(text: string | undefined): T | null {
  if (text === undefined) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}
