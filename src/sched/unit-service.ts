// The unit operations clients call on any node (fleetctl's submit, load, start, stop, unload, destroy, cat,
// list-unit-files, list-units, list-machines). Every unit file is parsed and validated here, before anything is
// written, so a bad file is refused with its line number and nothing half-parsed is stored.

import type {
  DesiredState,
  DrainStatus,
  MachineInfo,
  UnitInfo,
  UnitStateRow,
  UnitSubmission,
} from "../client/protocol.ts";
import type { KvStore } from "../kv/store.ts";
import { badRequest, ServiceError } from "../service/errors.ts";
import type { KvWriter } from "../service/kv-writer.ts";
import { unitDepsOf } from "../unit/deps.ts";
import { parseUnitName, templateOf, UnitFileError, UnitNameError, xfleetOf } from "../unit/unit-file.ts";
import { type CanonicalUnit, canonicalUnit, UnitCatalog } from "./catalog.ts";
import { isWaitingReason } from "./handoff.ts";
import { resolveMachine } from "./machine.ts";
import { setMachineMetadata } from "./machine-metadata.ts";
import {
  type AgentReport,
  leavingOf,
  machineDrainKey,
  type RegistryView,
  readRegistry,
  readUnitFile,
  type UnitRecord,
  unitFileKey,
  unitKey,
} from "./registry.ts";
import type { RegistryProblem } from "./registry-records.ts";

export class UnitService {
  readonly catalog: UnitCatalog;
  private readonly depsCache = new DepsCache();
  private readonly fileOf = (hash: string): string | null => readUnitFile(this.store, hash);

  constructor(
    private readonly store: KvStore,
    private readonly kv: KvWriter,
  ) {
    this.catalog = new UnitCatalog((hash) => readUnitFile(store, hash));
  }

  async submit(units: UnitSubmission[], replace: boolean): Promise<UnitInfo[]> {
    await this.kv.sync();
    const view = readRegistry(this.store);
    // Validate everything first: one bad file refuses the whole request.
    const prepared = units.map((u) => ({ name: u.name, unit: this.prepare(u, view) }));
    for (const { name, unit } of prepared) {
      const existing = view.units.get(name);
      if (existing && existing.hash !== unit.hash && !replace)
        throw new ServiceError(
          "conflict",
          `unit ${name} already exists with different content (hash ${existing.hash.slice(0, 7)}); use --replace`,
        );
    }
    const changed = prepared.filter(({ name, unit }) => view.units.get(name)?.hash !== unit.hash);
    // Files first, so no replica ever sees a unit whose file it does not have yet.
    const files = new Map(changed.map(({ unit }) => [unit.hash, unit.text]));
    await inParallel([...files], ([hash, text]) =>
      this.kv
        .write({ method: "PUT", key: unitFileKey(hash), value: text, prevExist: false })
        .catch(ignoreExists),
    );
    await inParallel(changed, ({ name, unit }) => {
      const prev = view.units.get(name);
      const record: UnitRecord = { hash: unit.hash, desired: prev?.desired ?? "inactive" };
      // A new unit is created only if still absent: N machines applying one cloud-config submit it at once, and a
      // late copy must not reset the desired state a first one has set meanwhile (a started unit would stop).
      return this.kv
        .write({
          method: "PUT",
          key: unitKey(name),
          value: JSON.stringify(record),
          ...(!prev && { prevExist: false }),
        })
        .catch(async (err) => {
          if (prev || etcdCode(err) !== 105) throw err;
          await this.kv.sync();
          const now = readRegistry(this.store).units.get(name);
          if (now?.hash !== unit.hash)
            throw new ServiceError(
              "conflict",
              `unit ${name} was submitted meanwhile with different content (hash ${now?.hash.slice(0, 7)}); use --replace`,
            );
        });
    });
    return this.infos(prepared.map((p) => p.name));
  }

  async setDesired(names: string[], desired: DesiredState): Promise<UnitInfo[]> {
    await this.kv.sync();
    const view = readRegistry(this.store);
    const missing = names.filter((n) => !view.units.has(n));
    if (missing.length > 0) throw new ServiceError("not_found", `unknown units: ${missing.join(", ")}`);
    if (desired !== "inactive") {
      const templates = names.filter((n) => parseUnitName(n).isTemplate);
      if (templates.length > 0)
        throw badRequest(
          `templates cannot be ${desired}: ${templates.join(", ")} (start an instance, e.g. web@1)`,
        );
    }
    // Stopping a unit stops what is bound to it (systemd's stop propagation), here by their desired state, so
    // that no reconcile starts them again. They go first: the agent then never sees them run without it.
    const dependents = desired === "launched" ? [] : stopDependents(view, names, this.depsCache, this.fileOf);
    await this.writeDesired(view, dependents, "loaded");
    await this.writeDesired(view, names, desired);
    return this.infos([...names, ...dependents]);
  }

  /**
   * fleet ignores unknown names here; the result says which units were destroyed. Units bound to a destroyed one
   * (Requires=/BindsTo=/PartOf= on its machine) are stopped (desired state loaded), as by a stop of it.
   */
  async destroy(names: string[]): Promise<{ destroyed: string[]; stopped?: string[] }> {
    await this.kv.sync();
    const view = readRegistry(this.store);
    const destroyed = names.filter((name) => view.units.has(name));
    const stopped = stopDependents(view, destroyed, this.depsCache, this.fileOf);
    await this.writeDesired(view, stopped, "loaded");
    // A unit already gone was destroyed by a concurrent request (a client resending one that timed out).
    await inParallel(destroyed, (name) =>
      this.kv.write({ method: "DELETE", key: unitKey(name) }).catch(ignoreMissing),
    );
    return stopped.length > 0 ? { destroyed, stopped } : { destroyed };
  }

  private async writeDesired(view: RegistryView, names: string[], desired: DesiredState): Promise<void> {
    const changing = names.filter((name) => view.units.get(name)!.desired !== desired);
    await inParallel(changing, (name) => {
      const rec = view.units.get(name)!;
      return this.kv
        .write({
          method: "PUT",
          key: unitKey(name),
          value: JSON.stringify({ ...rec, desired }),
          // Compare-and-swap on what was read, so a concurrent --replace is not undone.
          prevValue: JSON.stringify(rec),
        })
        .catch(async (err) => {
          // Lost to a concurrent request that set the same state (a client resending one that timed out): done.
          if (etcdCode(err) !== 101) throw err;
          await this.kv.sync();
          if (readRegistry(this.store).units.get(name)?.desired !== desired) throw err;
        });
    });
  }

  async list(): Promise<UnitInfo[]> {
    await this.kv.sync();
    return this.infos([...readRegistry(this.store).units.keys()]);
  }

  async cat(name: string): Promise<{ name: string; text: string }> {
    await this.kv.sync();
    const rec = readRegistry(this.store).units.get(name);
    const text = rec ? readUnitFile(this.store, rec.hash) : null;
    if (!rec || text === null) throw new ServiceError("not_found", `unit ${name} not found`);
    return { name, text };
  }

  /** list-units: one row per unit per machine it is scheduled on, plus units waiting to be placed. */
  async states(): Promise<UnitStateRow[]> {
    await this.kv.sync();
    const view = readRegistry(this.store);
    const rows: UnitStateRow[] = [];
    for (const [name, rec] of view.units) {
      const sched = view.schedule.get(name);
      for (const machine of sched?.machines ?? []) {
        const rep = view.states.get(name)?.get(machine);
        rows.push(
          rep
            ? { name, machine, ...rep }
            : { name, machine, hash: rec.hash, load: "-", active: "-", sub: "-", mainPid: null, since: 0 },
        );
      }
      if (rec.desired !== "inactive" && (sched?.machines.length ?? 0) === 0 && sched?.reason)
        rows.push({
          name,
          machine: "-",
          hash: rec.hash,
          load: "-",
          active: "inactive",
          sub: "dead",
          mainPid: null,
          since: 0,
          // A unit moving between machines waits for the old one to stop it: not a placement failure.
          note:
            isWaitingReason(sched.reason) && leavingOf(sched).length > 0
              ? sched.reason
              : `cannot be placed: ${sched.reason}`,
        });
    }
    // A destroyed unit stays listed while its agent still reports it (until it has stopped and been forgotten).
    for (const [name, perMachine] of view.states) {
      if (view.units.has(name)) continue;
      for (const [machine, rep] of perMachine) rows.push({ name, machine, ...rep, note: "destroyed" });
    }
    return rows.sort((a, b) => cmp(a.name, b.name) || cmp(a.machine, b.machine));
  }

  async machines(): Promise<MachineInfo[]> {
    await this.kv.sync();
    const view = readRegistry(this.store);
    return [...view.machines.values()].map((m) => withDrainState(m, view)).sort((a, b) => cmp(a.id, b.id));
  }

  /**
   * `berth machine drain|undrain`: records (or lifts) the drain of a machine; the leader's engine then moves its
   * units off, each through the handoff (src/sched/handoff.ts). Lifting it moves nothing back.
   */
  async drain(machine: string, drain: boolean): Promise<DrainStatus> {
    await this.kv.sync();
    const m = resolveMachine(readRegistry(this.store).machines.values(), machine);
    const key = machineDrainKey(m.id);
    // A record that does not parse (written by hand) counts as no drain: drain overwrites it, undrain removes it.
    if (drain && !readRegistry(this.store).drains.has(m.id))
      await this.kv.write({ method: "PUT", key, value: JSON.stringify({ since: Date.now() }) });
    else if (!drain && this.store.peek(key) !== null)
      await this.kv.write({ method: "DELETE", key, recursive: true }).catch(ignoreMissing);
    return this.drainOf(m.id);
  }

  /** `berth machine set-metadata` (machine-metadata.ts): the machine with its metadata as placement now sees it. */
  async setMetadata(params: unknown): Promise<MachineInfo> {
    const m = await setMachineMetadata(this.store, this.kv, params);
    return withDrainState(m, readRegistry(this.store));
  }

  async drainStatus(machine: string): Promise<DrainStatus> {
    await this.kv.sync();
    return this.drainOf(resolveMachine(readRegistry(this.store).machines.values(), machine).id);
  }

  private drainOf(id: string): DrainStatus {
    const view = readRegistry(this.store);
    const m = view.machines.get(id);
    if (!m) throw new ServiceError("not_found", `Machine ${id} does not exist.`);
    return { machine: withDrainState(m, view), units: heldBy(id, view) };
  }

  /** The registry records left out because they could not be read. */
  async problems(): Promise<RegistryProblem[]> {
    await this.kv.sync();
    return readRegistry(this.store).problems;
  }

  private prepare(u: UnitSubmission, view: RegistryView): CanonicalUnit {
    const name = u.name;
    try {
      const parsedName = parseUnitName(name);
      let text = u.text;
      if (text === undefined) {
        // An instance without a file of its own is created from the template the cluster already has.
        const template = parsedName.isInstance ? view.units.get(templateOf(name)) : undefined;
        text = template ? (readUnitFile(this.store, template.hash) ?? undefined) : undefined;
        if (text === undefined)
          throw new ServiceError(
            "not_found",
            parsedName.isInstance
              ? `unit ${name}: no file was given and the cluster has no template ${templateOf(name)}`
              : `unit ${name}: no file was given`,
          );
      }
      const unit = canonicalUnit(name, text);
      xfleetOf(unit.file, { unitName: name }); // refuses fleet's invalid [X-Fleet] combinations
      return unit;
    } catch (err) {
      if (err instanceof UnitFileError || err instanceof UnitNameError) {
        const message =
          err instanceof UnitFileError && !err.unitName ? `${name}: ${err.message}` : err.message;
        throw badRequest(message);
      }
      throw err;
    }
  }

  private infos(names: string[]): UnitInfo[] {
    const view = readRegistry(this.store);
    const out: UnitInfo[] = [];
    for (const name of names) {
      const rec = view.units.get(name);
      if (!rec) continue;
      const options = this.catalog.options(name, rec.hash);
      const global = !(options instanceof Error) && options.global;
      const sched = view.schedule.get(name);
      const machines = sched?.machines ?? [];
      out.push({
        name,
        hash: rec.hash,
        desired: rec.desired,
        current: global ? null : currentState(rec, machines, view.states.get(name)),
        global,
        machines,
        description: this.catalog.description(rec.hash),
        // Waiting for another machine to stop it is not a placement failure (start keeps waiting then).
        unplaceable:
          machines.length === 0 && !(isWaitingReason(sched?.reason) && leavingOf(sched).length > 0)
            ? (sched?.reason ?? null)
            : null,
      });
    }
    return out.sort((a, b) => cmp(a.name, b.name));
  }
}

/**
 * fleet's derived state: inactive until scheduled, launched once the target's agent has issued the start (whatever
 * became of it since: `berth start` and the agent's state say that); from nodes whose reports do not say whether
 * it issued the start, once it reports the unit active.
 */
function currentState(
  rec: UnitRecord,
  machines: string[],
  reports: Map<string, AgentReport> | undefined,
): DesiredState {
  if (machines.length === 0) return "inactive";
  const rep = reports?.get(machines[0]!);
  if (rec.desired !== "launched" || rep?.hash !== rec.hash) return "loaded";
  const launched = rep.launched ?? rep.active === "active";
  return launched ? "launched" : "loaded";
}

/**
 * The units that an explicit stop of `names` stops too, as systemd propagates a stop job: launched units on the
 * same machine with Requires=, BindsTo= or PartOf= on one of them, and on those in turn. Global units are left
 * alone (their desired state is every machine's). Dependencies are read with the machine's id for %m; %H expands
 * to nothing here (the cluster does not know the machines' host names).
 */
function stopDependents(
  view: RegistryView,
  names: string[],
  cache: DepsCache,
  fileOf: (hash: string) => string | null,
): string[] {
  const placed = (name: string): string | undefined => {
    const machines = view.schedule.get(name)?.machines ?? [];
    return machines.length === 1 ? machines[0] : undefined;
  };
  // machine + "\n" + unit → the launched units of that machine bound to it
  const boundTo = new Map<string, string[]>();
  for (const [name, rec] of view.units) {
    if (rec.desired !== "launched") continue;
    const machine = placed(name);
    if (machine === undefined) continue;
    const text = fileOf(rec.hash);
    if (text === null) continue;
    for (const target of cache.bindings(name, rec.hash, machine, text)) {
      const key = `${machine}\n${target}`;
      const list = boundTo.get(key);
      if (list === undefined) boundTo.set(key, [name]);
      else list.push(name);
    }
  }
  if (boundTo.size === 0) return [];
  const out: string[] = [];
  const seen = new Set(names);
  const todo = [...names];
  while (todo.length > 0) {
    const name = todo.pop()!;
    const machine = placed(name);
    if (machine === undefined) continue;
    for (const d of boundTo.get(`${machine}\n${name}`) ?? []) {
      if (seen.has(d)) continue;
      seen.add(d);
      out.push(d);
      todo.push(d);
    }
  }
  return out.sort(cmp);
}

/** Requires=/BindsTo=/PartOf= targets per unit file and machine, parsed once (bounded: cleared when full). */
class DepsCache {
  private readonly map = new Map<string, string[]>();

  bindings(name: string, hash: string, machine: string, text: string): string[] {
    const key = `${name}\n${hash}\n${machine}`;
    let hit = this.map.get(key);
    if (hit === undefined) {
      const deps = unitDepsOf(name, text, { hostname: "", machineId: machine });
      hit = [...deps.requires, ...deps.partOf];
      if (this.map.size >= 100_000) this.map.clear();
      this.map.set(key, hit);
    }
    return hit;
  }
}

/** The units a machine still holds: scheduled there, being stopped there (a handoff waits for it), or reported. */
function heldBy(id: string, view: RegistryView): string[] {
  const held = new Set<string>();
  for (const [name, s] of view.schedule)
    if (s.machines.includes(id) || leavingOf(s).includes(id)) held.add(name);
  for (const [name, perMachine] of view.states) if (perMachine.has(id)) held.add(name);
  return [...held].sort(cmp);
}

/** A machine as list-machines shows it: a live machine being drained is draining until it holds nothing. */
function withDrainState(m: MachineInfo, view: RegistryView): MachineInfo {
  if (m.state === "lost" || !view.drains.has(m.id)) return m;
  return { ...m, state: heldBy(m.id, view).length > 0 ? "draining" : "drained" };
}

/** Writes in flight at once for one request (each write is one Raft entry; the log batches them). */
const WRITE_CONCURRENCY = 64;

/** Runs `fn` over `items` with bounded concurrency; rejects with the first failure once all have settled. */
async function inParallel<T>(items: T[], fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  let failure: unknown = null;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item).catch((err) => {
        failure ??= err;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, items.length) }, worker));
  if (failure !== null) throw failure;
}

function etcdCode(err: unknown): number | undefined {
  return (err as { data?: { errorCode?: number } }).data?.errorCode;
}

function ignoreExists(err: unknown): void {
  if (etcdCode(err) !== 105) throw err;
}

function ignoreMissing(err: unknown): void {
  if (etcdCode(err) !== 100) throw err;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
