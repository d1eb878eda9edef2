// The node agent's process side: the set of units this machine should hold, each run by a UnitRunner.
//
// reconcile() only records what is wanted; a per-unit driver then converges one step at a time (stop the old
// hash, load the new one, start or stop it), so a burst of reconcile calls never races two runners of the same
// unit against each other.
//
// Dependencies between the units of this machine (systemd.unit(5), see deps.ts and the Dependencies section below):
//   After=B / B's Before=A  A starts once B's start finished (active; a oneshot B: ran successfully), and when both
//                           stop, A stops first.
//   Requires=B / BindsTo=B  B is started along with A (even when B itself is only "loaded"; it stops again when no
//                           launched unit needs it). If B fails (to load, to start, or later), A does not start: it
//                           is failed with result "dependency". If B stops, fails or restarts while A runs, A is
//                           stopped too (first, when A is after B). Unlike systemd, whose job would be over, A starts
//                           again once B is active again: the desired state still says A should run.
//   Wants=B                 B is started along with A; what becomes of B does not affect A.
//   WantedBy=/RequiredBy=   ([Install]) T's Wants=/Requires= of this unit (install.ts).
// A .timer, .socket or .path unit (timer-runner.ts, socket-runner.ts, path-runner.ts) starts its unit through
// trigger(): launched until it is inactive again. A service gets the sockets of its socket units (listenFds).
// Only units present on this machine (in the last reconcile) count: a reference to anything else — a system unit
// Berth does not manage (After=docker.service, Requires=network-online.target), or a Berth unit scheduled elsewhere
// — is ignored rather than failed or waited on, since the agent has no way to tell the two apart or to start either.
// An ordering cycle among units to be started is refused: each unit of it is failed with "ordering cycle: a → b → a"
// and never started (systemd would break the cycle by dropping a job at random); the others proceed.
import { existsSync, mkdirSync, readdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { cycles } from "../graph.ts";
import { noDeps, type UnitDeps, unitDepsOf } from "../unit/deps.ts";
import { UnitFileError, UnitNameError } from "../unit/unit-file.ts";
import type { Activation } from "./activation.ts";
import { BrokenUnit } from "./broken-unit.ts";
import {
  type Adoption,
  ContainerRunner,
  DEFAULT_DOCKER_SOCKET,
  sweepContainers,
} from "./container-runner.ts";
import { hostSpecifierValues } from "./host-specifiers.ts";
import { withInstallEdges } from "./install.ts";
import { Journal, type JournalLine } from "./journal.ts";
import { GroupRecord, type Leftover, type TimerMemory } from "./leftovers.ts";
import type { NotifySocketOpener } from "./notify-socket.ts";
import type { OutputFifos } from "./output-fifo.ts";
import { PathRunner } from "./path-runner.ts";
import { ServiceRunner } from "./runner.ts";
import { SocketRunner } from "./socket-runner.ts";
import { TargetRunner } from "./target-runner.ts";
import { machineBootTime, TimerRunner } from "./timer-runner.ts";
import {
  agentKey,
  type CgroupPlacement,
  detectPlacement,
  type UnitCgroup,
  UnitCgroups,
} from "./unit-cgroup.ts";
import { compileUnit } from "./unit-check.ts";
import type { UnitHost } from "./unit-host.ts";
import {
  type ActiveState,
  type ListenFds,
  processlessState,
  type RunnerContext,
  type UnitRunner,
  type UnitState,
} from "./unit-types.ts";

export type { JournalLine } from "./journal.ts";
export type { StepRecord, UnitState } from "./unit-types.ts";

export interface UnitSpec {
  name: string;
  hash: string;
  text: string;
  desired: "loaded" | "launched";
  /** Timers with Persistent=yes: their last trigger as the cluster recorded it (ms since the epoch). */
  lastTrigger?: number;
}

export interface AgentOptions {
  machineId: string;
  hostname: string;
  dataDir: string;
  logger?: (l: string) => void;
  now?: () => number;
  /** The Docker engine's unix socket that [Container] units run against (the node's --docker-socket). */
  dockerSocket?: string;
  /** Where unit cgroups go (tests); by default the node's own cgroup, found as unit-cgroup.ts describes; null: none. */
  cgroups?: CgroupPlacement | null;
  /** Opens notify sockets for Type=notify and WatchdogSec= units (runtimeNotifySocket); none: they cannot start. */
  notifySocket?: NotifySocketOpener | null;
  /** Listening sockets and inotify for .socket and .path units (runtimeActivation); none: they cannot start. */
  activation?: Activation | null;
  /** When the machine booted, ms since the epoch (OnBootSec=); by default from /proc/uptime. */
  bootTime?: number;
  /** FIFOs for main processes' output (runtimeOutputFifos): what lets another process adopt running units. */
  outputFifos?: OutputFifos | null;
  /**
   * A supervisor taking over from one that crashed: the services it left running are kept until the first
   * reconcile, which adopts those still wanted here unchanged and kills the rest (killLeftovers() kills them all
   * sooner). Otherwise (the default) everything left running is killed at once.
   */
  keepLeftovers?: boolean;
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
  /** The [Unit] dependencies of `want` (of the last want once the unit is being removed). */
  deps: UnitDeps;
  depsKey: string | null;
  /** What the dependencies make of the unit while its runner is not running: waiting, or failed. */
  overlay: Overlay | null;
  /** Bumped each time the unit leaves "active": units that require it and started before stop. */
  downSeq: number;
  lastActive: ActiveState | null;
  /** The downSeq of each required unit when this one was last started. */
  seen: Map<string, number>;
  kicked: boolean;
  /**
   * Stopped explicitly (desired launched → loaded): units already running no longer pull it in with Wants=/Requires=
   * (systemd's stop job), until one of them starts afresh or it is started again.
   */
  stopped: boolean;
  /** Started by a timer (trigger()): launched until it is inactive again, as a systemd start job. */
  triggered: boolean;
}

type Overlay = { kind: "waiting"; on: string[] } | { kind: "failed"; reason: string; since?: number };

/** The dependency graph between the units present on this machine, rebuilt on every reconcile. */
interface Graph {
  /** A → the units A starts after (After=, and Before= of the others). */
  after: Map<string, string[]>;
  /** B → the units that start after B. */
  afterRev: Map<string, string[]>;
  /** A → the units it requires (Requires=, BindsTo=); only units still wanted here. */
  requires: Map<string, string[]>;
  requiredBy: Map<string, string[]>;
  /** The units to be started: launched ones and everything they require or want, transitively. */
  launch: Set<string>;
  /** Units in an ordering cycle among those to be started → the cycle. */
  cycle: Map<string, string>;
  /** Each unit in an ordering cycle of the whole graph → its cycle's id (stop order ignores those edges). */
  scc: Map<string, number>;
}

type DepStatus = "ok" | "pending" | "down" | { failed: string };

const EMPTY: readonly string[] = [];
/** How long one event-loop turn may spend starting unit drivers (pumpDrivers). */
const DRIVE_BUDGET_MS = 100;

export class Agent implements UnitHost {
  readonly journalStore: Journal;
  private readonly opts: AgentOptions;
  private readonly logger: (l: string) => void;
  private readonly now: () => number;
  private readonly slots = new Map<string, Slot>();
  private graph: Graph = {
    after: new Map(),
    afterRev: new Map(),
    requires: new Map(),
    requiredBy: new Map(),
    launch: new Set(),
    cycle: new Map(),
    scc: new Map(),
  };
  private readonly listeners: ((s: UnitState) => void)[] = [];
  /** Timers watching the units they start, by unit. */
  private readonly unitWatchers = new Map<string, Set<(s: UnitState) => void>>();
  /** Each unit's dependencies with the [Install] edges of the others (install.ts), as of the last rebuild. */
  private effectiveDeps = new Map<string, UnitDeps>();
  private readonly startupTime: number;
  private readonly forgetListeners: ((name: string) => void)[] = [];
  private closed = false;
  /** Set by fence(): nothing is loaded, started or restarted until unfence(). */
  private fenced = false;
  /** Units whose driver is to start (drive → pumpDrivers), and the next one to start. */
  private driveQueue: Slot[] = [];
  private driveHead = 0;
  private pumpScheduled = false;
  private readonly groups: GroupRecord;
  /** A cgroup per service unit; null where none can be made. */
  private readonly cgroups: UnitCgroups | null;
  /** Containers a previous agent left running, found on the first reconcile: unit → container id. */
  private sweep: Promise<Map<string, string>> | null = null;
  /** Services a previous agent left running, held until the first reconcile decides (keepLeftovers); else null. */
  private leftovers: Map<string, Leftover> | null = null;
  /** Every unit a previous agent left something of, while `leftovers` are held (adoptable or not, all still run). */
  private leftoverUnits = new Set<string>();
  /** Kept by the first reconcile: adopted when their unit is loaded (step), the rest killed once drivers ran. */
  private readonly adoptable = new Map<string, Leftover>();
  /** Timers a previous agent had started (keepLeftovers): resumed when the first reconcile starts them again. */
  private timerMemory = new Map<string, TimerMemory>();
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
    this.startupTime = this.now();
    this.journalStore = new Journal(join(opts.dataDir, "journal"));
    mkdirSync(opts.dataDir, { recursive: true });
    this.groups = new GroupRecord(
      join(opts.dataDir, "process-groups.json"),
      join(opts.dataDir, "unit-cgroups.json"),
      join(opts.dataDir, "unit-mains.json"),
      join(opts.dataDir, "unit-timers.json"),
    );
    if (opts.keepLeftovers) this.timerMemory = this.groups.savedTimers(this.logger);
    const left = opts.keepLeftovers ? this.groups.adoptable(this.logger) : new Map<string, Leftover>();
    if (left.size > 0) {
      this.leftovers = left;
      this.leftoverUnits = this.groups.recordedUnits(this.logger);
      this.logger(
        `${left.size} services left running by a previous supervisor, kept until the first reconcile`,
      );
    } else this.groups.killLeftovers(this.logger);
    if (opts.outputFifos) {
      mkdirSync(this.outputDir, { recursive: true, mode: 0o700 });
      this.sweepOutputDir(left);
    }
    const placement = opts.cgroups === undefined ? detectPlacement() : opts.cgroups;
    this.cgroups = UnitCgroups.open(placement, agentKey(opts.dataDir), this.logger);
  }

  /** Whether services a previous agent left are still waiting for the first reconcile to adopt or kill them. */
  holdsLeftovers(): boolean {
    return this.leftovers !== null || this.adoptable.size > 0;
  }

  /** Kills everything a previous agent left, adoptable or not (its lease ran out before a reconcile came). */
  killLeftovers(): void {
    this.leftovers = null;
    this.leftoverUnits.clear();
    this.adoptable.clear();
    this.groups.killLeftovers(this.logger);
  }

  reconcile(specs: UnitSpec[]): void {
    if (this.closed || this.fenced) return;
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
          deps: noDeps(spec.name),
          depsKey: null,
          overlay: null,
          downSeq: 0,
          lastActive: null,
          seen: new Map(),
          kicked: false,
          stopped: false,
          triggered: false,
        };
        this.slots.set(spec.name, slot);
      }
      if (spec.desired === "launched") slot.stopped = false;
      else if (slot.want?.desired === "launched") slot.stopped = true;
      slot.want = spec;
      const key = `${spec.hash}\n${spec.text}`;
      if (slot.depsKey !== key) {
        slot.depsKey = key;
        slot.deps =
          typeof spec.text === "string"
            ? unitDepsOf(spec.name, spec.text, {
                hostname: this.opts.hostname,
                machineId: this.opts.machineId,
                host: hostSpecifierValues(this.opts.hostname),
              })
            : noDeps(spec.name);
        for (const w of slot.deps.warnings) this.logger(`${spec.name}: ${w}`);
      }
    }
    const gone: Slot[] = [];
    for (const slot of this.slots.values()) {
      if (!seen.has(slot.name) && slot.want !== null) {
        slot.want = null;
        gone.push(slot);
      }
    }
    this.rebuildGraph();
    if (this.leftovers !== null) this.settleLeftovers();
    for (const name of seen) this.drive(this.slots.get(name)!);
    for (const slot of gone) this.drive(slot);
  }

  /**
   * The first reconcile decides on what a previous agent left: a service still to run here, with the same hash, is
   * kept for adoption (only on current state: a node reconciles once it has caught up with the cluster); anything
   * else is killed before any unit starts.
   */
  private settleLeftovers(): void {
    const keep = new Map<string, Leftover>();
    const activated = this.socketActivated();
    let triggered = false;
    for (const [unit, left] of this.leftovers!) {
      const slot = this.slots.get(unit);
      const want = slot?.want;
      if (!want || String(want.hash) !== left.hash || activated.has(unit)) continue;
      if (this.graph.launch.has(unit)) keep.set(unit, left);
      else if (left.triggered === true) {
        // A timer or path unit had started it: it runs on to its end, as it would have.
        keep.set(unit, left);
        slot!.triggered = true;
        triggered = true;
      }
    }
    this.leftovers = null;
    this.leftoverUnits.clear();
    this.groups.killLeftovers(this.logger, keep);
    for (const [unit, left] of keep) this.adoptable.set(unit, left);
    if (triggered) this.rebuildGraph();
  }

  /**
   * The services that socket units of this machine activate. Not adopted: the service holds the listening sockets
   * the crashed supervisor made, so the socket unit could not bind them again; it is restarted with them instead.
   */
  private socketActivated(): Set<string> {
    const out = new Set<string>();
    for (const slot of this.slots.values()) {
      const text = slot.want?.text;
      if (!slot.name.endsWith(".socket") || typeof text !== "string") continue;
      try {
        const unit = compileUnit(slot.name, text, {
          hostname: this.opts.hostname,
          machineId: this.opts.machineId,
        });
        if (unit.kind === "socket") out.add(unit.config.service);
      } catch {}
    }
    return out;
  }

  /** Removes the output FIFOs no unit of `kept` writes to (left by units that died with a crashed agent). */
  private sweepOutputDir(kept: ReadonlyMap<string, Leftover>): void {
    const inUse = new Set<string>();
    for (const l of kept.values()) if (l.output !== null) inUse.add(l.output.stdout).add(l.output.stderr);
    let names: string[] = [];
    try {
      names = readdirSync(this.outputDir);
    } catch {}
    for (const n of names) {
      const path = join(this.outputDir, n);
      if (inUse.has(path)) continue;
      try {
        unlinkSync(path);
      } catch {}
    }
  }

  states(): UnitState[] {
    const out: UnitState[] = [];
    for (const slot of this.slots.values())
      if (slot.runner !== null) out.push(this.view(slot, slot.runner.state()));
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** One unit's state (cheaper than states() when the agent runs many units). */
  state(name: string): UnitState | null {
    const slot = this.slots.get(name);
    return slot?.runner ? this.view(slot, slot.runner.state()) : null;
  }

  onForget(cb: (name: string) => void): void {
    this.forgetListeners.push(cb);
  }

  /**
   * The unit's state; a unit a previous agent left running and the first reconcile has not settled yet is held
   * (active): the node must not tell the cluster it stopped here (a handoff would start it elsewhere meanwhile).
   */
  async status(name: string): Promise<UnitState | null> {
    const s = this.state(name);
    if (s !== null || this.leftovers === null || !this.leftoverUnits.has(name)) return s;
    const left = this.leftovers.get(name);
    return {
      ...processlessState({
        name,
        hash: left?.hash ?? "",
        active: "active",
        sub: "running",
        since: this.startupTime,
      }),
      mainPid: left && left.pid > 0 ? left.pid : null,
    };
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

  /** A service unit's cgroup (freeze, thaw, kill every process), for a supervisor; null where it has none. */
  unitCgroup(name: string): UnitCgroup | null {
    const r = this.slots.get(name)?.runner;
    return r instanceof ServiceRunner ? r.unitCgroup() : null;
  }

  /**
   * Starts a unit of this machine for a timer (systemd's start job): it runs until it is inactive again, even when
   * its desired state is only "loaded"; one that already ran (a oneshot, or one that failed) runs again. Returns
   * true, or why it cannot be started.
   */
  trigger(name: string): true | string {
    const slot = this.present(name);
    if (slot === undefined) return "the unit is not loaded on this machine";
    const st = slot.runner?.state();
    if (st?.load === "error") return `the unit failed to load: ${st.error ?? "unknown error"}`;
    slot.triggered = true;
    slot.stopped = false;
    if (slot.launched && st !== undefined && (st.active === "inactive" || st.active === "failed"))
      slot.launched = false;
    this.rebuildGraph();
    this.kick(slot);
    return true;
  }

  /** The listening sockets of this machine's socket units that activate `service` (systemd's Sockets=). */
  private listenFds(service: string): ListenFds {
    const out: ListenFds = { fds: [], names: [] };
    for (const slot of this.slots.values()) {
      const r = slot.runner;
      if (!(r instanceof SocketRunner) || r.config.service !== service) continue;
      const l = r.listenFds();
      out.fds.push(...l.fds);
      out.names.push(...l.names);
    }
    return out;
  }

  /** Stops every unit (ExecStop semantics) and refuses further reconciles. */
  async stop(): Promise<void> {
    this.closed = true;
    // Units a previous agent left and no reconcile adopted yet have no runner to stop them: killed.
    if (this.holdsLeftovers()) this.killLeftovers();
    for (const slot of this.slots.values()) {
      if (slot.want !== null) slot.want = { ...slot.want, desired: "loaded" };
    }
    this.rebuildGraph();
    for (const slot of this.slots.values()) this.drive(slot);
    await this.settled();
    // A runner may have been mid-start when the drivers finished: make sure nothing is left.
    await Promise.all([...this.slots.values()].map((s) => s.runner?.stop()));
    this.cgroups?.close();
    this.journalStore.flush();
  }

  /**
   * The machine's lease on its units ran out (see lease.ts): every unit is killed now — SIGKILL to its processes,
   * `docker kill` for its container, no ExecStop and no restart — and forgotten. Reconciles are ignored until
   * unfence(); the next one then starts what is (still) scheduled here afresh.
   */
  async fence(): Promise<void> {
    this.fenced = true;
    const runners: UnitRunner[] = [];
    for (const slot of this.slots.values()) {
      slot.want = null;
      if (slot.runner !== null) runners.push(slot.runner);
    }
    const names = [...this.slots.keys()];
    this.slots.clear();
    this.rebuildGraph();
    this.leftovers = null;
    this.adoptable.clear();
    await Promise.all(runners.map((r) => r.kill()));
    for (const name of names) for (const cb of this.forgetListeners) cb(name);
    // Processes no runner knows any more (a runner mid-start, or one a previous agent left) die too.
    this.groups.killLeftovers((l) => this.logger(l));
  }

  unfence(): void {
    this.fenced = false;
  }

  /** Resolves once every unit has converged on what the last reconcile asked for (for tests and shutdown). */
  async settled(): Promise<void> {
    // A unit waiting for another (to start, or to stop first) is driven again when that one changes: settled once
    // no driver runs and no such wake-up is pending.
    for (;;) {
      await Promise.all([...this.slots.values()].map((s) => s.idle));
      await new Promise<void>((r) => setImmediate(r));
      let busy = false;
      for (const s of this.slots.values()) if (s.driving || s.kicked) busy = true;
      if (!busy) return;
    }
  }

  // -------------------------------------------------------------------------------------------------------------

  private get outputDir(): string {
    return join(this.opts.dataDir, "output");
  }

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

  private watchUnit(name: string, cb: (s: UnitState) => void): () => void {
    let set = this.unitWatchers.get(name);
    if (set === undefined) {
      set = new Set();
      this.unitWatchers.set(name, set);
    }
    set.add(cb);
    return () => {
      set.delete(cb);
      if (set.size === 0) this.unitWatchers.delete(name);
    };
  }

  private forget(slot: Slot): void {
    if (this.slots.get(slot.name) !== slot) return;
    this.slots.delete(slot.name);
    for (const cb of this.forgetListeners) cb(slot.name);
  }

  private emit(s: UnitState): void {
    for (const cb of this.unitWatchers.get(s.name) ?? []) cb(s);
    for (const cb of this.listeners) {
      try {
        cb(s);
      } catch (e) {
        this.logger(`agent: onStateChange listener failed: ${(e as Error).message}`);
      }
    }
  }

  /** Drives a unit towards what is wanted: queued, and started by pumpDrivers a time budget per turn. */
  private drive(slot: Slot): void {
    if (slot.driving) {
      slot.dirty = true;
      return;
    }
    slot.driving = true;
    this.driveQueue.push(slot);
    if (!this.pumpScheduled) {
      this.pumpScheduled = true;
      setImmediate(() => this.pumpDrivers());
    }
  }

  /**
   * Starts the queued drivers, at most DRIVE_BUDGET_MS of them per event-loop turn: a unit's first step (spawn, its
   * cgroup) costs 1-3 ms, and a machine taking over hundreds of units must still read its node's lease renewals
   * in between (a turn held for a second looks like a stall of this process, and may cost the lease). 100 ms: well
   * below a stall (STALL_MS) and the renewal period; 20 ms made 1,000 units start ~0.5 s later in the sched bench.
   */
  private pumpDrivers(): void {
    this.pumpScheduled = false;
    const until = performance.now() + DRIVE_BUDGET_MS;
    while (this.driveHead < this.driveQueue.length) {
      const slot = this.driveQueue[this.driveHead++]!;
      this.runDriver(slot);
      if (performance.now() >= until) break;
    }
    if (this.driveHead < this.driveQueue.length) {
      this.pumpScheduled = true;
      setImmediate(() => this.pumpDrivers());
    } else {
      this.driveQueue = [];
      this.driveHead = 0;
      // Every unit kept for adoption had its driver run (and its first step is synchronous): what is left was not
      // adopted after all (its unit did not load as the same service).
      for (const unit of this.adoptable.keys()) this.groups.killUnit(unit, this.logger);
      this.adoptable.clear();
      for (const unit of this.timerMemory.keys()) this.groups.removeTimer(unit);
      this.timerMemory.clear();
    }
  }

  private runDriver(slot: Slot): void {
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
    if (this.fenced) return;
    const want = slot.want;
    const runner = slot.runner;
    if (runner !== null && (want === null || want.hash !== runner.hash)) {
      if (this.stopBlocked(slot)) return;
      slot.launched = false;
      await runner.stop();
      slot.runner = null;
      slot.launched = false;
      if (slot.want === null) {
        this.forget(slot);
        return;
      }
      slot.dirty = true;
      return;
    }
    if (want === null) {
      this.forget(slot);
      return;
    }
    if (runner === null) {
      slot.overlay = null;
      slot.lastActive = null;
      slot.runner = this.load(want, slot);
      slot.launched = false;
      this.emitSlot(slot, slot.runner.state());
    }
    const r = slot.runner!;
    if (this.adoptLeftover(slot, r)) return;
    let launch = this.graph.launch.has(slot.name);
    if (launch && !slot.launched && this.pullAgain(slot)) launch = this.graph.launch.has(slot.name);
    if (launch && !slot.launched) {
      const gate = this.startGate(slot);
      if (gate !== null) {
        this.setOverlay(slot, gate);
        return;
      }
      this.setOverlay(slot, null);
      this.noteRequired(slot);
      slot.launched = true;
      r.start();
      // Reported even when the start changed nothing the runner shows (already running, or a broken unit).
      this.emit(this.view(slot, r.state()));
    } else if (slot.launched && (!launch || this.mustStop(slot))) {
      if (this.stopBlocked(slot)) return;
      slot.launched = false;
      this.emit(this.view(slot, r.state()));
      await r.stop();
      // Stopped for a dependency: wait for it (or fail) and start again when it is back.
      if (this.graph.launch.has(slot.name)) slot.dirty = true;
    } else if (!launch) this.setOverlay(slot, null);
  }

  /** Notes where the units this one requires stand as it starts: it stops when one of them goes down after. */
  private noteRequired(slot: Slot): void {
    slot.seen.clear();
    for (const b of this.graph.requires.get(slot.name) ?? EMPTY) {
      const bs = this.present(b);
      if (bs !== undefined) slot.seen.set(b, bs.downSeq);
    }
  }

  /** What a previous agent saved of this timer, if the first reconcile starts it again unchanged. */
  private resumedTimer(spec: UnitSpec): TimerMemory | null {
    const memory = this.timerMemory.get(spec.name);
    if (memory === undefined) return null;
    this.timerMemory.delete(spec.name);
    if (memory.hash !== String(spec.hash) || !this.graph.launch.has(spec.name)) {
      this.groups.removeTimer(spec.name);
      return null;
    }
    this.logger(`${spec.name}: resumed as the previous supervisor left it`);
    return memory;
  }

  /** Takes over the unit's main process a previous agent left, kept by settleLeftovers; false when there is none. */
  private adoptLeftover(slot: Slot, r: UnitRunner): boolean {
    const left = this.adoptable.get(slot.name);
    if (left === undefined) return false;
    this.adoptable.delete(slot.name);
    if (!slot.launched && r instanceof ServiceRunner && r.hash === left.hash && r.adopt(left)) {
      this.noteRequired(slot);
      slot.launched = true;
      this.emit(this.view(slot, r.state()));
      return true;
    }
    this.groups.killUnit(slot.name, this.logger);
    return false;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Dependencies

  /** A unit that the last reconcile put on this machine, or undefined (references to others are ignored). */
  private present(name: string): Slot | undefined {
    const s = this.slots.get(name);
    return s !== undefined && s.want !== null ? s : undefined;
  }

  private rebuildGraph(): void {
    const after = new Map<string, string[]>();
    const afterRev = new Map<string, string[]>();
    const requires = new Map<string, string[]>();
    const requiredBy = new Map<string, string[]>();
    const pulls = new Map<string, string[]>();
    const add = (m: Map<string, string[]>, k: string, v: string): void => {
      const l = m.get(k);
      if (l === undefined) m.set(k, [v]);
      else if (!l.includes(v)) l.push(v);
    };
    this.effectiveDeps = withInstallEdges(new Map([...this.slots].map(([n, s]) => [n, s.deps])));
    for (const slot of this.slots.values()) {
      const a = slot.name;
      const deps = this.depsOf(slot);
      // Ordering also counts for units on their way out: they stop in order too.
      for (const b of deps.after) {
        if (b !== a && this.slots.has(b)) {
          add(after, a, b);
          add(afterRev, b, a);
        }
      }
      for (const b of deps.before) {
        if (b !== a && this.slots.has(b)) {
          add(after, b, a);
          add(afterRev, a, b);
        }
      }
      if (slot.want === null) continue;
      // A unit stopped explicitly is not pulled in again by the units already running (see Slot.stopped).
      const pulled = (b: string): boolean => !(slot.launched && this.present(b)!.stopped);
      for (const b of deps.requires) {
        if (b === a || this.present(b) === undefined) continue;
        add(requires, a, b);
        add(requiredBy, b, a);
        if (pulled(b)) add(pulls, a, b);
      }
      for (const b of deps.wants) if (b !== a && this.present(b) !== undefined && pulled(b)) add(pulls, a, b);
    }
    const launch = new Set<string>();
    const todo: string[] = [];
    if (!this.closed) {
      for (const slot of this.slots.values()) {
        if (slot.want?.desired === "launched" || (slot.want !== null && slot.triggered)) {
          launch.add(slot.name);
          todo.push(slot.name);
        }
      }
    }
    while (todo.length > 0) {
      for (const b of pulls.get(todo.pop()!) ?? EMPTY) {
        if (!launch.has(b)) {
          launch.add(b);
          todo.push(b);
        }
      }
    }
    const cycle = new Map<string, string>();
    const inLaunch = (n: string): string[] => (after.get(n) ?? EMPTY).filter((b) => launch.has(b));
    for (const comp of cycles(launch, inLaunch)) {
      const set = new Set(comp);
      for (const n of comp) cycle.set(n, cyclePath(n, set, inLaunch).join(" → "));
    }
    const scc = new Map<string, number>();
    cycles(this.slots.keys(), (n) => after.get(n) ?? EMPTY).forEach((comp, i) => {
      for (const n of comp) scc.set(n, i);
    });
    this.graph = { after, afterRev, requires, requiredBy, launch, cycle, scc };
  }

  /**
   * A unit about to start pulls in what it requires and wants again, even units stopped explicitly (systemd's start
   * job does). True when that changed the graph.
   */
  private pullAgain(slot: Slot): boolean {
    let changed = false;
    const deps = this.depsOf(slot);
    for (const b of [...deps.requires, ...deps.wants]) {
      const bs = this.present(b);
      if (bs === undefined || !bs.stopped) continue;
      bs.stopped = false;
      changed = true;
    }
    if (!changed) return false;
    this.rebuildGraph();
    for (const b of [...deps.requires, ...deps.wants]) {
      const bs = this.present(b);
      if (bs !== undefined) this.kick(bs);
    }
    return true;
  }

  private depsOf(slot: Slot): UnitDeps {
    return this.effectiveDeps.get(slot.name) ?? slot.deps;
  }

  /** What a unit that `name` depends on is up to, from the dependent's point of view. */
  private depStatus(name: string): DepStatus {
    const b = this.present(name);
    if (b === undefined) return "ok";
    if (b.runner === null || b.runner.hash !== b.want!.hash) return "pending";
    const st = b.runner.state();
    if (st.load === "error") return { failed: `${name} failed to load: ${st.error ?? "unknown error"}` };
    if (b.overlay?.kind === "failed") return { failed: `${name}: ${b.overlay.reason}` };
    if (!b.launched) return this.graph.launch.has(name) ? "pending" : "down";
    switch (st.active) {
      case "active":
        return "ok";
      case "activating":
      case "deactivating":
        return "pending";
      case "failed":
        return { failed: `${name} failed (${st.sub})` };
      default:
        return b.deps.oneshot ? "ok" : "down";
    }
  }

  /** null when the unit may start now; otherwise what it waits for, or why it cannot start. */
  private startGate(slot: Slot): Overlay | null {
    const name = slot.name;
    const cyc = this.graph.cycle.get(name);
    if (cyc !== undefined) return { kind: "failed", reason: `ordering cycle: ${cyc}` };
    const after = this.graph.after.get(name) ?? EMPTY;
    const waiting: string[] = [];
    for (const b of this.graph.requires.get(name) ?? EMPTY) {
      const st = this.depStatus(b);
      if (typeof st === "object") return { kind: "failed", reason: `dependency failed: ${st.failed}` };
      if (st === "down" || (st === "pending" && after.includes(b))) waiting.push(b);
    }
    for (const b of after) {
      if (!this.graph.launch.has(b) || this.graph.cycle.has(b) || waiting.includes(b)) continue;
      if (this.depStatus(b) === "pending") waiting.push(b);
    }
    return waiting.length > 0 ? { kind: "waiting", on: waiting } : null;
  }

  /** Whether a launched unit has to stop: no longer wanted, replaced, or a unit it requires went (or goes) down. */
  private mustStop(slot: Slot, visiting = new Set([slot.name])): boolean {
    if (slot.want === null || slot.runner === null || slot.runner.hash !== slot.want.hash) return true;
    if (!this.graph.launch.has(slot.name)) return true;
    for (const b of this.graph.requires.get(slot.name) ?? EMPTY) {
      const bs = this.present(b);
      if (bs === undefined) continue;
      const seen = slot.seen.get(b);
      if (seen !== undefined && seen !== bs.downSeq) return true;
      const st = this.depStatus(b);
      if (st === "down" || typeof st === "object") return true;
      if (this.goingDown(bs, visiting)) return true;
    }
    return false;
  }

  /** Whether a unit's runner runs and is about to be (or being) stopped. */
  private goingDown(slot: Slot, visiting: Set<string>): boolean {
    if (visiting.has(slot.name) || slot.runner === null) return false;
    visiting.add(slot.name);
    const a = slot.runner.state().active;
    if (a !== "active" && a !== "activating" && a !== "deactivating") return false;
    return !slot.launched || this.mustStop(slot, visiting);
  }

  /** Stop order: a unit waits while units ordered after it are still running and on their way down too. */
  private stopBlocked(slot: Slot): boolean {
    const mine = this.graph.scc.get(slot.name);
    let blocked = false;
    for (const x of this.graph.afterRev.get(slot.name) ?? EMPTY) {
      if (mine !== undefined && this.graph.scc.get(x) === mine) continue;
      const xs = this.slots.get(x);
      if (xs === undefined || !this.goingDown(xs, new Set())) continue;
      blocked = true;
      this.kick(xs);
    }
    return blocked;
  }

  /** Drives a unit again soon (never re-entrantly from inside a state change). */
  private kick(slot: Slot): void {
    if (slot.kicked) return;
    slot.kicked = true;
    setImmediate(() => {
      slot.kicked = false;
      if (this.slots.get(slot.name) === slot) this.drive(slot);
    });
  }

  private kickDependents(slot: Slot): void {
    const g = this.graph;
    for (const m of [g.afterRev, g.after, g.requiredBy]) {
      for (const n of m.get(slot.name) ?? EMPTY) {
        const s = this.slots.get(n);
        if (s !== undefined) this.kick(s);
      }
    }
  }

  private emitSlot(slot: Slot, s: UnitState): void {
    if (slot.lastActive === "active" && s.active !== "active") slot.downSeq++;
    const down = (a: ActiveState | null): boolean => a === "inactive" || a === "failed";
    if (
      slot.triggered &&
      slot.launched &&
      down(s.active) &&
      slot.lastActive !== null &&
      !down(slot.lastActive)
    ) {
      // What a timer started has run: it stays as it is now (no stop), and runs again at the next trigger.
      slot.triggered = false;
      this.rebuildGraph();
      this.kick(slot);
    }
    slot.lastActive = s.active;
    this.emit(this.view(slot, s));
    this.kickDependents(slot);
  }

  /** A unit's state as its runner reports it, with what its dependencies make of it while it does not run. */
  private view(slot: Slot, s: UnitState): UnitState {
    // Set on the runner's fresh state object (a spread would read its memory figure every time).
    s.launched = slot.launched;
    if (slot.deps.oneshot) s.oneshot = true;
    const o = slot.overlay;
    if (o === null || (s.active !== "inactive" && s.active !== "failed")) return s;
    if (o.kind === "waiting") return { ...s, waitingFor: [...o.on] };
    const since = o.since ?? s.since;
    return {
      ...s,
      active: "failed",
      sub: "failed",
      mainPid: null,
      since,
      result: "dependency",
      error: o.reason,
    };
  }

  private setOverlay(slot: Slot, o: Overlay | null): void {
    const key = (x: Overlay | null): string =>
      x === null ? "" : x.kind === "waiting" ? `w:${x.on.join(" ")}` : `f:${x.reason}`;
    if (key(o) === key(slot.overlay)) return;
    slot.overlay = o;
    const name = slot.name;
    if (o?.kind === "failed") {
      o.since = this.now();
      const log = (text: string): void => {
        this.journalStore.append({ at: this.now(), unit: name, stream: "berth", text });
        this.logger(text);
      };
      if (o.reason.startsWith("ordering cycle")) {
        log(`${name}: Found ${o.reason}`);
        log(`${name}: Job ${name}/start refused: ordering cycle (fix After=/Before= to start it).`);
      } else {
        log(`${name}: ${o.reason}`);
        log(`Dependency failed for ${slot.deps.description}.`);
        log(`${name}: Job ${name}/start failed with result 'dependency'.`);
      }
    } else if (o?.kind === "waiting") {
      this.logger(`${name}: start waits for ${o.on.join(", ")}`);
    }
    if (slot.runner !== null) this.emit(this.view(slot, slot.runner.state()));
    this.kickDependents(slot);
  }

  private load(spec: UnitSpec, slot: Slot): UnitRunner {
    const ctx: RunnerContext = {
      journal: this.journalStore,
      now: this.now,
      logger: this.logger,
      onChange: (s) => {
        if (slot.runner === null || slot.runner.hash === s.hash) this.emitSlot(slot, s);
        else this.emit(s);
      },
      groups: this.groups,
      triggered: () => slot.triggered,
      cgroups: this.cgroups,
      outputFifos: this.opts.outputFifos ? { fifos: this.opts.outputFifos, dir: this.outputDir } : null,
      notifySocket: this.opts.notifySocket ?? null,
      listenFds: (service) => this.listenFds(service),
    };
    try {
      if (typeof spec.text !== "string") throw new UnitFileError("unit text is missing");
      // The same code `berth verify` runs (unit-check.ts), so what it accepts loads here.
      const unit = compileUnit(spec.name, spec.text, {
        hostname: this.opts.hostname,
        machineId: this.opts.machineId,
      });
      if (unit.kind === "timer") {
        return new TimerRunner(spec.hash, unit.config, ctx, {
          trigger: (name) => this.trigger(name),
          watch: (name, cb) => this.watchUnit(name, cb),
          unitState: (name) => this.state(name),
          stamp: typeof spec.lastTrigger === "number" ? spec.lastTrigger : null,
          bootTime: this.opts.bootTime ?? machineBootTime(),
          startupTime: this.startupTime,
          resume: this.resumedTimer(spec),
        });
      }
      if (unit.kind === "target") return new TargetRunner(spec.name, spec.hash, ctx);
      if (unit.kind === "socket" || unit.kind === "path") {
        const hooks = {
          trigger: (name: string) => this.trigger(name),
          watch: (name: string, cb: (s: UnitState) => void) => this.watchUnit(name, cb),
          unitState: (name: string) => this.state(name),
        };
        const activation = this.opts.activation ?? null;
        return unit.kind === "socket"
          ? new SocketRunner(spec.hash, unit.config, ctx, hooks, activation)
          : new PathRunner(spec.hash, unit.config, ctx, hooks, activation);
      }
      if (unit.kind === "container") {
        return new ContainerRunner(spec.hash, unit.config, ctx, {
          socketPath: this.dockerSocket,
          machineId: this.opts.machineId,
          adoption: this.adoption,
        });
      }
      return new ServiceRunner(spec.hash, unit.config, ctx);
    } catch (e) {
      // Named once, as `berth verify` says it: `NAME:LINE: reason` (the line of the text `berth cat` shows).
      const line = e instanceof UnitFileError ? e.line : 0;
      const msg =
        e instanceof UnitFileError
          ? e.reason
          : e instanceof UnitNameError
            ? e.message
            : `${(e as Error).message ?? e}`;
      this.journalStore.append({
        at: this.now(),
        unit: spec.name,
        stream: "berth",
        text: `${spec.name}${line > 0 ? `:${line}` : ""}: ${msg}`,
      });
      const error = line > 0 ? `line ${line}: ${msg}` : msg;
      this.logger(`${spec.name}: failed to load: ${error}`);
      return new BrokenUnit(spec.name, String(spec.hash), error, this.now());
    }
  }
}

/** A shortest cycle from `start` back to itself inside one component: [start, …, start]. */
function cyclePath(start: string, comp: Set<string>, edges: (n: string) => readonly string[]): string[] {
  const parent = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const n = queue.shift()!;
    for (const m of edges(n)) {
      if (!comp.has(m)) continue;
      if (m === start) {
        const path = [start];
        for (let p: string | undefined = n; p !== start && p !== undefined; p = parent.get(p)) path.push(p);
        path.push(start);
        return [path[0]!, ...path.slice(1, -1).reverse(), start];
      }
      if (!parent.has(m)) {
        parent.set(m, n);
        queue.push(m);
      }
    }
  }
  return [start, start];
}
