// Where units, their schedule, machines and reported unit states live in the replicated store (hidden keys under
// /_berth/, so `berth kv ls /` never shows them), and a read model built from one replica's store.
//
//   /_berth/unit-files/<sha1>         canonical unit file text (content-addressed, written once)
//   /_berth/units/<name>              {"hash","desired"}                     written by clients (through a node)
//   /_berth/schedule/<name>           {"machines":[ids],"reason"?,"leaving"?:[ids]}  written by the leader's engine
//   /_berth/machines/<id>/info        {"id","name","publicIp","metadata"}    written by each node for itself
//   /_berth/machines/<id>/state       "up" | "lost"                          written by the leader's engine
//   /_berth/machines/<id>/drain       {"since"}                              written by `berth machine drain`
//   /_berth/machines/<id>/acted       store index (decimal)                  written by that machine's agent bridge
//   /_berth/states/<name>/<machine>   the agent's report for that unit        written by that machine's agent
//   /_berth/timers/<name>             {"lastTrigger"}                        written by the bridge of the timer's machine
//   /_berth/members/<member name>     {"clientAddr","httpAddr","version"}    written by each node for itself
//   /_berth/cluster-id                the cluster's id                        written once by the first leader
//
// A record that does not have its shape (registry-records.ts) is left out of the view and listed in its problems.
import type { DesiredState, MachineInfo } from "../client/protocol.ts";
import type { KvStore, TreeNode } from "../kv/store.ts";
import {
  type Checked,
  checkActedIndex,
  checkAgentReport,
  checkDrainRecord,
  checkMachineRecord,
  checkMachineState,
  checkMetadataOverride,
  checkScheduleRecord,
  checkTimerStamp,
  checkUnitRecord,
  type RegistryProblem,
} from "./registry-records.ts";

/** Everything below is the cluster's own (hidden from listings by the leading "_"). */
export const REGISTRY_DIR = "/_berth";
export const UNIT_FILES_DIR = `${REGISTRY_DIR}/unit-files`;
export const UNITS_DIR = `${REGISTRY_DIR}/units`;
export const SCHEDULE_DIR = `${REGISTRY_DIR}/schedule`;
export const MACHINES_DIR = `${REGISTRY_DIR}/machines`;
export const STATES_DIR = `${REGISTRY_DIR}/states`;
export const MEMBERS_DIR = `${REGISTRY_DIR}/members`;
export const TIMERS_DIR = `${REGISTRY_DIR}/timers`;
export const CLUSTER_ID_KEY = `${REGISTRY_DIR}/cluster-id`;

export const unitFileKey = (hash: string) => `${UNIT_FILES_DIR}/${hash}`;
export const unitKey = (name: string) => `${UNITS_DIR}/${name}`;
export const scheduleKey = (name: string) => `${SCHEDULE_DIR}/${name}`;
export const machineInfoKey = (id: string) => `${MACHINES_DIR}/${id}/info`;
export const machineStateKey = (id: string) => `${MACHINES_DIR}/${id}/state`;
export const machineDrainKey = (id: string) => `${MACHINES_DIR}/${id}/drain`;
export const machineActedKey = (id: string) => `${MACHINES_DIR}/${id}/acted`;
export const machineMetadataKey = (id: string) => `${MACHINES_DIR}/${id}/metadata`;
export const timerStampKey = (name: string) => `${TIMERS_DIR}/${name}`;
export const stateKey = (unit: string, machine: string) => `${STATES_DIR}/${unit}/${machine}`;

export interface UnitRecord {
  hash: string;
  desired: DesiredState;
}

export interface ScheduleRecord {
  machines: string[];
  /** Why the unit could not be placed (the last time the engine tried). */
  reason?: string;
  /**
   * Live machines the unit was unscheduled from that may still be stopping it (the handoff, see engine.ts): the
   * unit is placed on another machine only once each of them has acted on this record (its acted index reached
   * the record's modifiedIndex) or is lost.
   */
  leaving?: string[];
}

/** The machines a schedule record waits for (only well-formed ids: the record may have been written by hand). */
export function leavingOf(rec: ScheduleRecord | null | undefined): string[] {
  const l = rec?.leaving;
  return Array.isArray(l) ? l.filter((m): m is string => typeof m === "string") : [];
}

/**
 * A Persistent= timer's last trigger (systemd keeps it in /var/lib/systemd/timers/stamp-NAME): in the registry, so
 * the machine the timer moves to knows which calendar events it missed.
 */
export interface TimerStamp {
  /** ms since the epoch. */
  lastTrigger: number;
}

/** The stamp of a timer, or null when it has none (or an unreadable one). */
export function readTimerStamp(store: KvStore, name: string): TimerStamp | null {
  const n = store.peek(timerStampKey(name));
  if (!n || n.children !== null) return null;
  const c = checkTimerStamp(n.value);
  return "record" in c ? c.record : null;
}

/** A machine `berth machine drain` took out of placement: it gets no units and its units move off. */
export interface DrainRecord {
  /** When the drain was asked for (ms since the epoch, the clock of the node that took the request). */
  since: number;
}

export type MachineRecord = Omit<MachineInfo, "state">;

/**
 * Metadata changed at run time (`berth machine set-metadata`), kept apart from the record the node publishes
 * from its flags: keys set here win over the node's, keys in `unset` are removed from them. It stays when the
 * node restarts, until `set-metadata --reset` removes it.
 */
export interface MetadataOverride {
  set: Record<string, string>;
  unset: string[];
}

/** The machine's metadata as placement sees it: the node's own with the run-time changes applied. */
export function effectiveMetadata(
  own: Record<string, string>,
  o: MetadataOverride | null,
): Record<string, string> {
  if (o === null) return own;
  const out: Record<string, string> = { ...own };
  for (const k of o.unset) delete out[k];
  return Object.assign(out, o.set);
}

/** What an agent reports for one unit on its machine. */
export interface AgentReport {
  hash: string;
  load: string;
  active: string;
  sub: string;
  mainPid: number | null;
  since: number;
  /** Whether the agent has issued the unit's start (fleet's "launched"); missing in reports of older nodes. */
  launched?: boolean;
  /** Why it failed (systemd's Result=: exit-code, signal, timeout, start-limit-hit, dependency). */
  result?: string;
  /** Why it could not be loaded or started (the unit file's error, the failed dependency). */
  error?: string;
  /** Type=oneshot without RemainAfterExit=: inactive after its start means it ran. */
  oneshot?: boolean;
}

export interface RegistryView {
  units: Map<string, UnitRecord>;
  schedule: Map<string, ScheduleRecord>;
  machines: Map<string, MachineInfo>;
  /** unit -> machine -> report */
  states: Map<string, Map<string, AgentReport>>;
  /** Records left out because they could not be read, by key. */
  problems: RegistryProblem[];
  /** Machines being drained (machine id -> record). */
  drains: Map<string, DrainRecord>;
  /** machine id -> the store index of the registry its agent last acted on, when a handoff waited for it. */
  acted: Map<string, number>;
}

/**
 * Reads the whole registry from a local replica. A read model per store is kept next to it, updated from the
 * store's change hook (synchronous, so never behind) for just the keys that changed; a read then costs a copy of
 * a few maps. The maps are the caller's own; the records in them are shared and must not be modified.
 */
export function readRegistry(store: KvStore): RegistryView {
  let model = models.get(store);
  if (model === undefined) {
    model = new RegistryModel(store);
    models.set(store, model);
  }
  return model.read();
}

const models = new WeakMap<KvStore, RegistryModel>();

/** The registry as readRegistry builds it in full, kept up to date key by key (maps in key order, as a get lists). */
class RegistryModel {
  private full = true;
  private readonly dirtyUnits = new Set<string>();
  private readonly dirtySchedule = new Set<string>();
  private readonly dirtyStates = new Set<string>();
  private dirtyMachines = false;
  private units = new Map<string, UnitRecord>();
  private schedule = new Map<string, ScheduleRecord>();
  private machines = new Map<string, MachineInfo>();
  private states = new Map<string, Map<string, AgentReport>>();
  /** key -> why its record was left out; kept key by key like the maps. */
  private readonly problems = new Map<string, string>();
  private readonly report = (key: string, problem: string) => this.problems.set(key, problem);
  private facts: MachineFacts = { drains: new Map(), acted: new Map() };

  constructor(private readonly store: KvStore) {
    store.onChange((path) => this.changed(path));
  }

  private changed(path: string): void {
    if (this.full) return;
    if (!path.startsWith(`${REGISTRY_DIR}/`)) {
      // The root (a restore) or /_berth itself: anything may have changed.
      if (path === "/" || path === REGISTRY_DIR) this.full = true;
      return;
    }
    const dirty = (dir: string, set: Set<string>): boolean => {
      if (path === dir) {
        this.full = true;
        return true;
      }
      if (!path.startsWith(`${dir}/`)) return false;
      const rest = path.slice(dir.length + 1);
      const slash = rest.indexOf("/");
      set.add(slash < 0 ? rest : rest.slice(0, slash));
      return true;
    };
    if (dirty(UNITS_DIR, this.dirtyUnits) || dirty(SCHEDULE_DIR, this.dirtySchedule)) return;
    if (dirty(STATES_DIR, this.dirtyStates)) return;
    if (path === MACHINES_DIR || path.startsWith(`${MACHINES_DIR}/`)) this.dirtyMachines = true;
  }

  read(): RegistryView {
    if (this.full) this.rebuild();
    else this.catchUp();
    return {
      units: new Map(this.units),
      schedule: new Map(this.schedule),
      machines: new Map(this.machines),
      states: new Map(this.states),
      problems: [...this.problems]
        .map(([key, problem]) => ({ key, problem }))
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
      drains: new Map(this.facts.drains),
      acted: new Map(this.facts.acted),
    };
  }

  /** Forgets the problems of keys about to be read again. */
  private forget(prefix: string): void {
    for (const key of this.problems.keys())
      if (key === prefix || key.startsWith(`${prefix}/`)) this.problems.delete(key);
  }

  private rebuild(): void {
    this.full = false;
    this.dirtyUnits.clear();
    this.dirtySchedule.clear();
    this.dirtyStates.clear();
    this.dirtyMachines = false;
    this.problems.clear();
    const store = this.store;
    const report = this.report;
    this.units = new Map();
    for (const [name, n] of children(store, UNITS_DIR)) {
      const rec = record(n, unitKey(name), checkUnitRecord, report);
      if (rec) this.units.set(name, rec);
    }
    this.schedule = new Map();
    for (const [name, n] of children(store, SCHEDULE_DIR)) {
      const rec = record(n, scheduleKey(name), checkScheduleRecord, report);
      if (rec) this.schedule.set(name, rec);
    }
    this.machines = readMachines(store, report);
    this.facts = readMachineFacts(store, report);
    this.states = new Map();
    for (const [unit, unitDir] of children(store, STATES_DIR)) {
      const perMachine = reports(unit, unitDir, report);
      if (perMachine.size > 0) this.states.set(unit, perMachine);
    }
  }

  private catchUp(): void {
    const store = this.store;
    const report = this.report;
    if (this.dirtyUnits.size > 0) {
      this.units = update(this.units, this.dirtyUnits, (name) => {
        this.forget(unitKey(name));
        return record(store.peek(unitKey(name)), unitKey(name), checkUnitRecord, report);
      });
      this.dirtyUnits.clear();
    }
    if (this.dirtySchedule.size > 0) {
      this.schedule = update(this.schedule, this.dirtySchedule, (name) => {
        this.forget(scheduleKey(name));
        return record(store.peek(scheduleKey(name)), scheduleKey(name), checkScheduleRecord, report);
      });
      this.dirtySchedule.clear();
    }
    if (this.dirtyStates.size > 0) {
      this.states = update(this.states, this.dirtyStates, (unit) => {
        this.forget(`${STATES_DIR}/${unit}`);
        const dir = store.peek(`${STATES_DIR}/${unit}`);
        const perMachine = dir ? reports(unit, dir, report) : null;
        return perMachine && perMachine.size > 0 ? perMachine : null;
      });
      this.dirtyStates.clear();
    }
    if (this.dirtyMachines) {
      this.forget(MACHINES_DIR);
      this.machines = readMachines(store, report);
      this.facts = readMachineFacts(store, report);
      this.dirtyMachines = false;
    }
  }
}

/**
 * Re-reads the changed names of one map (hidden names are never listed, as in a get). Entries are replaced, never
 * modified, so earlier copies of the map keep what they saw; a new name puts the map back in key order.
 */
function update<T>(
  map: Map<string, T>,
  names: Set<string>,
  read: (name: string) => T | null,
): Map<string, T> {
  let added = false;
  for (const name of names) {
    const value = name.startsWith("_") ? null : read(name);
    if (value === null) map.delete(name);
    else {
      if (!map.has(name)) added = true;
      map.set(name, value);
    }
  }
  if (!added) return map;
  return new Map([...map].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
}

type Report = (key: string, problem: string) => void;

/** The record a node holds, or null (reported unless the node is simply missing). */
function record<T>(
  n: Readonly<TreeNode> | null | undefined,
  key: string,
  check: (value: string) => Checked<T>,
  report: Report,
): T | null {
  if (!n) return null;
  if (n.children !== null) {
    report(key, "a directory where a record belongs");
    return null;
  }
  const c = checked(n, check);
  if ("record" in c) return c.record;
  report(key, c.problem);
  return null;
}

function readMachines(store: KvStore, report: Report): Map<string, MachineInfo> {
  const machines = new Map<string, MachineInfo>();
  for (const [id, dir] of children(store, MACHINES_DIR)) {
    if (dir.children === null) {
      report(`${MACHINES_DIR}/${id}`, "a record where a machine's directory belongs");
      continue;
    }
    const rec = record(
      dir.children.get("info"),
      machineInfoKey(id),
      (v) => checkMachineRecord(v, id),
      report,
    );
    if (!rec) continue;
    // A machine with no state yet is up (the engine records it); one with an unreadable state is reported as up.
    const state = record(dir.children.get("state"), machineStateKey(id), checkMachineState, report);
    const override = record(
      dir.children.get("metadata"),
      machineMetadataKey(id),
      checkMetadataOverride,
      report,
    );
    machines.set(rec.id, {
      ...rec,
      metadata: effectiveMetadata(rec.metadata, override),
      state: state ?? "up",
    });
  }
  return machines;
}

interface MachineFacts {
  drains: Map<string, DrainRecord>;
  acted: Map<string, number>;
}

/** The drain and acted records of every machine directory (kept apart from readMachines: a machine's info). */
function readMachineFacts(store: KvStore, report: Report): MachineFacts {
  const facts: MachineFacts = { drains: new Map(), acted: new Map() };
  for (const [id, dir] of children(store, MACHINES_DIR)) {
    if (dir.children === null) continue;
    const drain = record(dir.children.get("drain"), `${MACHINES_DIR}/${id}/drain`, checkDrainRecord, report);
    if (drain) facts.drains.set(id, drain);
    const acted = record(dir.children.get("acted"), `${MACHINES_DIR}/${id}/acted`, checkActedIndex, report);
    if (acted !== null) facts.acted.set(id, acted);
  }
  return facts;
}

/** machine -> report of one unit's directory under /_berth/states. */
function reports(unit: string, unitDir: Readonly<TreeNode>, report: Report): Map<string, AgentReport> {
  const perMachine = new Map<string, AgentReport>();
  if (unitDir.children === null) {
    report(`${STATES_DIR}/${unit}`, "a record where a unit's directory of reports belongs");
    return perMachine;
  }
  for (const [machine, n] of sortedVisible(unitDir)) {
    const rep = record(n, stateKey(unit, machine), checkAgentReport, report);
    if (rep) perMachine.set(machine, rep);
  }
  return perMachine;
}

/** The canonical text of a unit file by hash, or null when missing. */
export function readUnitFile(store: KvStore, hash: string): string | null {
  const n = store.peek(unitFileKey(hash));
  // A directory reads as no value, as a get of it would give.
  return n && n.children === null ? n.value : null;
}

/** The visible (not hidden, as a get lists them) children of a directory, sorted by name; [] when missing. */
function children(store: KvStore, dir: string): [string, Readonly<TreeNode>][] {
  const n = store.peek(dir);
  if (!n || n.children === null) return [];
  return sortedVisible(n);
}

function sortedVisible(n: Readonly<TreeNode>): [string, Readonly<TreeNode>][] {
  const out: [string, Readonly<TreeNode>][] = [];
  for (const entry of (n.children as Map<string, TreeNode>).entries())
    if (!entry[0].startsWith("_")) out.push(entry);
  // Map order is insertion order; a get lists children sorted by key, and so does this.
  out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return out;
}

/**
 * Checked records by tree node: a node keeps its object while it is unchanged (a replaced key is a new node, an
 * updated one a new modifiedIndex). Callers share the parsed objects and must not modify them.
 */
const parseCache = new WeakMap<object, { index: number; value: Checked<unknown> }>();

function checked<T>(n: Readonly<TreeNode>, check: (value: string) => Checked<T>): Checked<T> {
  const hit = parseCache.get(n);
  if (hit !== undefined && hit.index === n.modifiedIndex) return hit.value as Checked<T>;
  const value = check(n.value);
  parseCache.set(n, { index: n.modifiedIndex, value });
  return value;
}
