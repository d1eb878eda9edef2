// The node agent's process side: the set of units this machine should hold, each run by a UnitRunner.
//
// reconcile() only records what is wanted; a per-unit driver then converges one step at a time (stop the old
// hash, load the new one, start or stop it), so a burst of reconcile calls never races two runners of the same
// unit against each other.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseUnitFile, UnitFileError, UnitNameError } from "../sched/unit-file.ts";
import { loadContainerConfig } from "./container-config.ts";
import {
  type Adoption,
  ContainerRunner,
  DEFAULT_DOCKER_SOCKET,
  sweepContainers,
} from "./container-runner.ts";
import { Journal, type JournalLine } from "./journal.ts";
import { GroupRecord } from "./leftovers.ts";
import { BrokenUnit, type RunnerContext, ServiceRunner, type UnitRunner, type UnitState } from "./runner.ts";
import { loadServiceConfig, unitKindOf } from "./service-config.ts";

export type { JournalLine } from "./journal.ts";
export type { StepRecord, UnitState } from "./runner.ts";

export interface UnitSpec {
  name: string;
  hash: string;
  text: string;
  desired: "loaded" | "launched";
}

export interface AgentOptions {
  machineId: string;
  hostname: string;
  dataDir: string;
  logger?: (l: string) => void;
  now?: () => number;
  /** The Docker engine's unix socket that [Container] units run against (the node's --docker-socket). */
  dockerSocket?: string;
}

interface Slot {
  name: string;
  /** What reconcile asked for last; null = forget the unit. */
  want: UnitSpec | null;
  runner: UnitRunner | null;
  /** What this slot last asked its runner to be. */
  launched: boolean;
  driving: boolean;
  dirty: boolean;
  idle: Promise<void>;
}

export class Agent {
  readonly journalStore: Journal;
  private readonly opts: AgentOptions;
  private readonly logger: (l: string) => void;
  private readonly now: () => number;
  private readonly slots = new Map<string, Slot>();
  private readonly listeners: ((s: UnitState) => void)[] = [];
  private closed = false;
  private readonly groups: GroupRecord;
  /** Containers a previous agent left running, found on the first reconcile: unit → container id. */
  private sweep: Promise<Map<string, string>> | null = null;
  private readonly adoption: Adoption = {
    // The sweep kept only containers whose hash matched the first reconcile; the runner checks the hash again.
    take: async (unit) => {
      const left = this.sweep === null ? undefined : await this.sweep;
      const id = left?.get(unit);
      if (id === undefined) return null;
      left!.delete(unit);
      return id;
    },
  };

  constructor(opts: AgentOptions) {
    this.opts = opts;
    this.logger = opts.logger ?? (() => {});
    this.now = opts.now ?? Date.now;
    this.journalStore = new Journal(join(opts.dataDir, "journal"));
    mkdirSync(opts.dataDir, { recursive: true });
    this.groups = new GroupRecord(join(opts.dataDir, "process-groups.json"));
    this.groups.killLeftovers((l) => this.logger(l));
  }

  reconcile(specs: UnitSpec[]): void {
    if (this.closed) return;
    if (this.sweep === null) this.sweep = this.sweepContainers(specs);
    const seen = new Set<string>();
    for (const spec of specs) {
      if (typeof spec?.name !== "string" || seen.has(spec.name)) continue;
      seen.add(spec.name);
      let slot = this.slots.get(spec.name);
      if (slot === undefined) {
        slot = {
          name: spec.name,
          want: null,
          runner: null,
          launched: false,
          driving: false,
          dirty: false,
          idle: Promise.resolve(),
        };
        this.slots.set(spec.name, slot);
      }
      slot.want = spec;
      this.drive(slot);
    }
    for (const slot of this.slots.values()) {
      if (!seen.has(slot.name) && slot.want !== null) {
        slot.want = null;
        this.drive(slot);
      }
    }
  }

  states(): UnitState[] {
    const out: UnitState[] = [];
    for (const slot of this.slots.values()) if (slot.runner !== null) out.push(slot.runner.state());
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** One unit's state (cheaper than states() when the agent runs many units). */
  state(name: string): UnitState | null {
    return this.slots.get(name)?.runner?.state() ?? null;
  }

  onStateChange(cb: (s: UnitState) => void): void {
    this.listeners.push(cb);
  }

  journal(name: string, opts: { lines: number }): Promise<JournalLine[]> {
    return this.journalStore.tail(name, opts.lines);
  }

  followJournal(name: string, onLine: (l: JournalLine) => void): () => void {
    return this.journalStore.follow(name, onLine);
  }

  /** Stops every unit (ExecStop semantics) and refuses further reconciles. */
  async stop(): Promise<void> {
    this.closed = true;
    for (const slot of this.slots.values()) {
      if (slot.want !== null) slot.want = { ...slot.want, desired: "loaded" };
      this.drive(slot);
    }
    await Promise.all([...this.slots.values()].map((s) => s.idle));
    // A runner may have been mid-start when the drivers finished: make sure nothing is left.
    await Promise.all([...this.slots.values()].map((s) => s.runner?.stop()));
    this.journalStore.flush();
  }

  /** Resolves once every unit has converged on what the last reconcile asked for (for tests and shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.slots.values()].map((s) => s.idle));
  }

  // -------------------------------------------------------------------------------------------------------------

  private get dockerSocket(): string {
    return this.opts.dockerSocket ?? DEFAULT_DOCKER_SOCKET;
  }

  /**
   * Once per agent: the containers labelled with this machine that a previous agent left. A running one whose unit
   * the first reconcile wants launched with the same hash is kept for adoption; every other one is removed.
   */
  private sweepContainers(specs: UnitSpec[]): Promise<Map<string, string>> {
    if (!existsSync(this.dockerSocket)) return Promise.resolve(new Map());
    const wanted = new Map<string, string>();
    for (const s of specs) {
      if (typeof s?.name === "string" && s.desired === "launched") wanted.set(s.name, String(s.hash));
    }
    return sweepContainers(this.dockerSocket, this.opts.machineId, wanted, this.logger);
  }

  private emit(s: UnitState): void {
    for (const cb of this.listeners) {
      try {
        cb(s);
      } catch (e) {
        this.logger(`agent: onStateChange listener failed: ${(e as Error).message}`);
      }
    }
  }

  private drive(slot: Slot): void {
    if (slot.driving) {
      slot.dirty = true;
      return;
    }
    slot.driving = true;
    slot.idle = (async () => {
      try {
        do {
          slot.dirty = false;
          await this.step(slot);
        } while (slot.dirty);
      } catch (e) {
        this.logger(`agent: ${slot.name}: ${(e as Error).stack ?? e}`);
      } finally {
        slot.driving = false;
      }
    })();
  }

  /** One convergence step; sets slot.dirty when another step is needed. */
  private async step(slot: Slot): Promise<void> {
    const want = slot.want;
    const runner = slot.runner;
    if (runner !== null && (want === null || want.hash !== runner.hash)) {
      await runner.stop();
      slot.runner = null;
      slot.launched = false;
      if (slot.want === null) {
        if (this.slots.get(slot.name) === slot) this.slots.delete(slot.name);
        return;
      }
      slot.dirty = true;
      return;
    }
    if (want === null) {
      if (this.slots.get(slot.name) === slot) this.slots.delete(slot.name);
      return;
    }
    if (runner === null) {
      slot.runner = this.load(want);
      slot.launched = false;
      this.emit(slot.runner.state());
    }
    const r = slot.runner!;
    if (want.desired === "launched" && !slot.launched) {
      slot.launched = true;
      r.start();
    } else if (want.desired === "loaded" && slot.launched) {
      slot.launched = false;
      await r.stop();
    }
  }

  private load(spec: UnitSpec): UnitRunner {
    const ctx: RunnerContext = {
      journal: this.journalStore,
      now: this.now,
      logger: this.logger,
      onChange: (s) => this.emit(s),
      groups: this.groups,
    };
    try {
      if (typeof spec.text !== "string") throw new UnitFileError("unit text is missing", 0, spec.name);
      if (unitKindOf(parseUnitFile(spec.text, spec.name)) === "container") {
        const ccfg = loadContainerConfig(spec.name, spec.text, {
          hostname: this.opts.hostname,
          machineId: this.opts.machineId,
        });
        return new ContainerRunner(spec.hash, ccfg, ctx, {
          socketPath: this.dockerSocket,
          machineId: this.opts.machineId,
          adoption: this.adoption,
        });
      }
      const cfg = loadServiceConfig(spec.name, spec.text, {
        hostname: this.opts.hostname,
        machineId: this.opts.machineId,
      });
      return new ServiceRunner(spec.hash, cfg, ctx);
    } catch (e) {
      const msg =
        e instanceof UnitFileError || e instanceof UnitNameError ? e.message : `${(e as Error).message ?? e}`;
      this.journalStore.append({
        at: this.now(),
        unit: spec.name,
        stream: "berth",
        text: `${spec.name}: ${msg}`,
      });
      this.logger(`${spec.name}: failed to load: ${msg}`);
      return new BrokenUnit(spec.name, String(spec.hash), msg, this.now());
    }
  }
}
