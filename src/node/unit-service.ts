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
import { type CanonicalUnit, canonicalUnit, UnitCatalog } from "../sched/catalog.ts";
import { isWaitingReason } from "../sched/handoff.ts";
import {
  leavingOf,
  machineDrainKey,
  type RegistryView,
  readRegistry,
  readUnitFile,
  type UnitRecord,
  unitFileKey,
  unitKey,
} from "../sched/registry.ts";
import type { RegistryProblem } from "../sched/registry-records.ts";
import { parseUnitName, templateOf, UnitFileError, UnitNameError, xfleetOf } from "../sched/unit-file.ts";
import { badRequest, ServiceError } from "./errors.ts";
import type { KvService } from "./kv-service.ts";
import { resolveMachine } from "./machine.ts";

export class UnitService {
  readonly catalog: UnitCatalog;

  constructor(
    private readonly store: KvStore,
    private readonly kv: KvService,
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
      const record: UnitRecord = { hash: unit.hash, desired: view.units.get(name)?.desired ?? "inactive" };
      return this.kv.write({ method: "PUT", key: unitKey(name), value: JSON.stringify(record) });
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
    const changing = names.filter((name) => view.units.get(name)!.desired !== desired);
    await inParallel(changing, (name) => {
      const rec = view.units.get(name)!;
      return this.kv.write({
        method: "PUT",
        key: unitKey(name),
        value: JSON.stringify({ ...rec, desired }),
        // Compare-and-swap on what was read, so a concurrent --replace is not undone.
        prevValue: JSON.stringify(rec),
      });
    });
    return this.infos(names);
  }

  /** fleet ignores unknown names here; the result says which units were destroyed. */
  async destroy(names: string[]): Promise<{ destroyed: string[] }> {
    await this.kv.sync();
    const view = readRegistry(this.store);
    const destroyed = names.filter((name) => view.units.has(name));
    await inParallel(destroyed, (name) => this.kv.write({ method: "DELETE", key: unitKey(name) }));
    return { destroyed };
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

/** fleet's derived state: inactive until scheduled, launched once the target's agent reports it active. */
function currentState(
  rec: UnitRecord,
  machines: string[],
  reports: Map<string, { hash: string; active: string }> | undefined,
): DesiredState {
  if (machines.length === 0) return "inactive";
  const rep = reports?.get(machines[0]!);
  if (rec.desired === "launched" && rep?.hash === rec.hash && rep.active === "active") return "launched";
  return "loaded";
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

function ignoreMissing(err: unknown): void {
  const data = (err as { data?: { errorCode?: number } }).data;
  if (data?.errorCode !== 100) throw err;
}

function ignoreExists(err: unknown): void {
  const data = (err as { data?: { errorCode?: number } }).data;
  if (data?.errorCode !== 105) throw err;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
