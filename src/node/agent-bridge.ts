// Connects this machine's agent to the registry: the units scheduled here (read from the local replica) become the
// agent's desired set, and what the agent reports is written back under /_berth/states/<unit>/<machine>, only
// when it changed. A machine that was cut off and comes back catches up with its replica, sees its units
// scheduled elsewhere, and stops them.

import type { Agent, UnitSpec, UnitState } from "../agent/agent.ts";
import type { KvWriteRequest } from "../client/protocol.ts";
import type { KvStore } from "../kv/store.ts";
import { KvError } from "../kv/types.ts";
import {
  type AgentReport,
  REGISTRY_DIR,
  type RegistryView,
  readRegistry,
  readUnitFile,
  SCHEDULE_DIR,
  STATES_DIR,
  stateKey,
  UNIT_FILES_DIR,
  UNITS_DIR,
} from "../sched/registry.ts";

export interface AgentBridgeDeps {
  machineId: string;
  store: KvStore;
  agent: Agent;
  write(req: KvWriteRequest): Promise<unknown>;
  logger: (line: string) => void;
}

/** Registry changes within this window are handed to the agent as one reconcile. */
const RECONCILE_DELAY_MS = 50;
/** Report writes that failed (no leader) are retried after this long. */
const RETRY_MS = 200;
/** Reports written at once (a machine starting hundreds of units must not report them one round trip each). */
const REPORT_CONCURRENCY = 64;

export class AgentBridge {
  private readonly pendingReports = new Set<string>();
  private flushing = false;
  private stopped = false;
  private reconcileQueued = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly cancelWatch: () => void;

  constructor(private readonly d: AgentBridgeDeps) {
    const w = d.store.watch(REGISTRY_DIR, { recursive: true, stream: true }, (e) => {
      const key = e.node.key;
      if (
        key.startsWith(`${SCHEDULE_DIR}/`) ||
        key.startsWith(`${UNITS_DIR}/`) ||
        key.startsWith(`${UNIT_FILES_DIR}/`)
      )
        this.queueReconcile();
      // Someone else removed our report (the engine, while we were thought lost): report again.
      if (key.startsWith(`${STATES_DIR}/`) && key.endsWith(`/${d.machineId}`)) this.queueReport(unitOf(key));
    });
    this.cancelWatch = () => ("cancel" in w ? w.cancel() : undefined);
    d.agent.onStateChange((s) => this.queueReport(s.name));
  }

  start(): void {
    this.queueReconcile();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelWatch();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.d.agent.stop();
  }

  /** The units scheduled on this machine, as the agent wants them. */
  desiredUnits(view: RegistryView = readRegistry(this.d.store)): UnitSpec[] {
    const specs: UnitSpec[] = [];
    for (const [name, sched] of view.schedule) {
      if (!sched.machines.includes(this.d.machineId)) continue;
      const rec = view.units.get(name);
      if (!rec || rec.desired === "inactive") continue;
      const text = readUnitFile(this.d.store, rec.hash);
      if (text === null) continue;
      specs.push({ name, hash: rec.hash, text, desired: rec.desired === "launched" ? "launched" : "loaded" });
    }
    return specs;
  }

  private queueReconcile(): void {
    if (this.reconcileQueued || this.stopped) return;
    this.reconcileQueued = true;
    // Coalesce a burst of registry changes (a thousand units started at once) into one agent pass.
    setTimeout(() => {
      this.reconcileQueued = false;
      if (this.stopped) return;
      const view = readRegistry(this.d.store);
      this.d.agent.reconcile(this.desiredUnits(view));
      // Units the agent forgot (no longer scheduled here) leave no report behind.
      for (const [unit, perMachine] of view.states)
        if (perMachine.has(this.d.machineId)) this.queueReport(unit);
    }, RECONCILE_DELAY_MS);
  }

  private queueReport(unit: string): void {
    if (this.stopped) return;
    this.pendingReports.add(unit);
    void this.flush();
  }

  /** Writes pending reports, several at once (latest state wins); failures are retried shortly. */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.pendingReports.size > 0 && !this.stopped) {
        const batch = [...this.pendingReports].slice(0, REPORT_CONCURRENCY);
        for (const unit of batch) this.pendingReports.delete(unit);
        const failed = (
          await Promise.all(
            batch.map((unit) =>
              this.report(unit).then(
                () => null,
                (err: Error) => ({ unit, err }),
              ),
            ),
          )
        ).filter((f) => f !== null);
        if (failed.length > 0) {
          this.d.logger(
            `[agent] reporting ${failed.length} unit states failed, retrying: ${failed[0]!.err.message}`,
          );
          for (const f of failed) this.pendingReports.add(f.unit);
          this.retryLater();
          return;
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private retryLater(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.flush();
    }, RETRY_MS);
  }

  private async report(unit: string): Promise<void> {
    const state = this.d.agent.state(unit);
    const key = stateKey(unit, this.d.machineId);
    const current = this.d.store.get(key, { recursive: false, sorted: false }, Date.now());
    const stored = current instanceof KvError ? null : (current.node.value ?? null);
    if (!state) {
      if (stored !== null) await this.d.write({ method: "DELETE", key }).catch(ignoreMissing);
      return;
    }
    const next = JSON.stringify(toReport(state));
    if (stored === next) return;
    await this.d.write({ method: "PUT", key, value: next });
  }
}

function toReport(s: UnitState): AgentReport {
  return { hash: s.hash, load: s.load, active: s.active, sub: s.sub, mainPid: s.mainPid, since: s.since };
}

function unitOf(key: string): string {
  const parts = key.split("/");
  return parts[parts.length - 2] ?? "";
}

function ignoreMissing(err: unknown): void {
  if ((err as { data?: { errorCode?: number } }).data?.errorCode !== 100) throw err;
}
