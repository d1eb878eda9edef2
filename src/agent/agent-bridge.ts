// Connects this machine's agent (in the unit supervisor) to the registry: the units scheduled here (read from the
// local replica) become the agent's desired set, and what the agent reports is written back under
// /_berth/states/<unit>/<machine>, only when it changed. A machine that was cut off and comes back catches up with
// its replica, sees its units scheduled elsewhere, and stops them. The bridge also renews the machine's lease on
// its units (lease.ts) with a read point every renewal period, and with the read point of every reconcile.
//
// The agent acts only on current state: every reconcile first passes a linearizable read point (ReadIndex through
// the leader) and then reads the registry, so what it acts on includes everything the cluster committed before the
// pass began. A node restarted from its data directory replays a log that may be far behind (its units moved away
// while it was down); a node that rejoins after a partition applies the missed entries in batches. Neither starts,
// stops or restarts anything on the way: until a read point is confirmed the agent only waits.
//
// Handoffs (src/sched/handoff.ts): when a schedule record waits for this machine to stop a unit (its `leaving`
// names this machine), the bridge tells the engine once it has acted on that record: after the reconcile on a
// view that no longer gives it the unit, a round trip to the supervisor finds the unit no longer held (so the
// reconcile was taken and the unit is stopped) and its report is gone; then it writes the store index of that
// view to /_berth/machines/<id>/acted. Only then may the engine start the unit on another machine.

import type { KvWriteRequest } from "../client/protocol.ts";
import type { KvStore } from "../kv/store.ts";
import { KvError } from "../kv/types.ts";
import { retry } from "../retry.ts";
import {
  type AgentReport,
  leavingOf,
  machineActedKey,
  REGISTRY_DIR,
  type RegistryView,
  readRegistry,
  readTimerStamp,
  readUnitFile,
  SCHEDULE_DIR,
  STATES_DIR,
  stateKey,
  type TimerStamp,
  timerStampKey,
  UNIT_FILES_DIR,
  UNITS_DIR,
} from "../sched/registry.ts";
import type { UnitSpec, UnitState } from "./agent.ts";
import { LeaseRenewer, monotonicMs } from "./lease.ts";
import type { LeasedUnitHost } from "./unit-host.ts";

export interface AgentBridgeDeps {
  machineId: string;
  store: KvStore;
  units: LeasedUnitHost;
  write(req: KvWriteRequest): Promise<unknown>;
  /** Resolves once the local replica has applied everything committed before the call (ReadIndex). */
  sync(): Promise<void>;
  /** How long a lease renewal lets the units run (lease.ts's fenceForTtl of the agent TTL). */
  fenceMs: number;
  /** This replica's applied Raft index (for the log line saying what the agent caught up to). */
  appliedIndex(): number;
  logger: (line: string) => void;
}

/** Registry changes within this window are handed to the agent as one reconcile. */
const RECONCILE_DELAY_MS = 50;
/** Report writes that failed (no leader) are retried after this long. */
const RETRY_MS = 200;
/** A read point that failed (no leader, no quorum) is tried again soon, backing off to about every 2 s. */
const SYNC_RETRY = { firstMs: 200, maxMs: 4000 } as const;
/** Reports written at once (a machine starting hundreds of units must not report them one round trip each). */
const REPORT_CONCURRENCY = 64;
/** While a handoff waits for a unit to stop here, the agent is reconciled again this often (a reconcile the
 * supervisor ignored, without a valid lease, is sent again). */
const HANDOFF_RETRY_MS = 1000;

export class AgentBridge {
  private readonly pendingReports = new Set<string>();
  private flushing = false;
  private stopped = false;
  private reconcileQueued = false;
  private reconciling = false;
  private reconcileAgain = false;
  /** When this bridge started waiting for its first read point; null once the agent has acted on current state. */
  private waitingSince: number | null = Date.now();
  private announced = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly cancelWatch: () => void;
  private readonly renewer: LeaseRenewer;
  /** What this machine owes the engine: the units handed off from here, and the store index of the view that
   * no longer gives them to it (written as acted once they are stopped here). */
  private owed: { index: number; units: string[] } | null = null;
  private acting = false;
  private actAgain = false;
  private handoffTimer: ReturnType<typeof setTimeout> | null = null;

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
      if (key.startsWith(`${STATES_DIR}/`) && key.endsWith(`/${d.machineId}`)) {
        this.queueReport(unitOf(key));
        if (this.owed?.units.includes(unitOf(key))) void this.settleOwed();
      }
    });
    this.cancelWatch = () => ("cancel" in w ? w.cancel() : undefined);
    d.units.onStateChange((s) => this.queueReport(s.name));
    d.units.onForget((name) => {
      this.queueReport(name);
      if (this.owed?.units.includes(name)) void this.settleOwed();
    });
    d.units.onUnfenced(() => this.queueReconcile());
    d.units.onReset(() => this.queueReconcile());
    this.renewer = new LeaseRenewer({
      fenceMs: d.fenceMs,
      readPoint: () => d.sync(),
      renewed: (issuedAt) => d.units.renewLease(issuedAt),
    });
  }

  start(): void {
    this.renewer.start();
    this.queueReconcile();
  }

  /** Lets go of the units without stopping them: the supervisor keeps them for the next node, or fences them. */
  stop(): void {
    this.stopped = true;
    this.renewer.stop();
    this.cancelWatch();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.handoffTimer) clearTimeout(this.handoffTimer);
    this.d.units.close();
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
      const spec: UnitSpec = {
        name,
        hash: rec.hash,
        text,
        desired: rec.desired === "launched" ? "launched" : "loaded",
      };
      // A Persistent= timer learns when it last fired, wherever that was (timer-runner.ts).
      const stamp = readTimerStamp(this.d.store, name);
      if (stamp !== null) spec.lastTrigger = stamp.lastTrigger;
      specs.push(spec);
    }
    return specs;
  }

  private queueReconcile(): void {
    if (this.reconcileQueued || this.stopped) return;
    this.reconcileQueued = true;
    // Coalesce a burst of registry changes (a thousand units started at once) into one agent pass.
    setTimeout(() => {
      this.reconcileQueued = false;
      void this.reconcile();
    }, RECONCILE_DELAY_MS);
  }

  /** One agent pass on the registry as of a confirmed read point; changes arriving meanwhile get another pass. */
  private async reconcile(): Promise<void> {
    if (this.reconciling) {
      this.reconcileAgain = true;
      return;
    }
    this.reconciling = true;
    try {
      const issuedAt = await this.confirmCurrent();
      // Not connected to the supervisor yet: its states are unknown. The connection brings another pass (onReset).
      if (this.stopped || !this.d.units.connected()) return;
      // The supervisor runs units only under a lease: this read point renews it before the units it allows.
      this.d.units.renewLease(issuedAt);
      const view = readRegistry(this.d.store);
      const index = this.d.store.index;
      this.d.units.reconcile(this.desiredUnits(view));
      this.owe(view, index);
      // Units the agent forgot (no longer scheduled here) leave no report behind.
      for (const [unit, perMachine] of view.states)
        if (perMachine.has(this.d.machineId)) this.queueReport(unit);
    } catch (err) {
      this.d.logger(`[agent] reconcile failed: ${(err as Error).stack ?? err}`);
    } finally {
      this.reconciling = false;
    }
    if (this.reconcileAgain) {
      this.reconcileAgain = false;
      this.queueReconcile();
    }
  }

  /** Notes the handoffs waiting for this machine in the view just reconciled (at store index `index`). */
  private owe(view: RegistryView, index: number): void {
    const me = this.d.machineId;
    const units: string[] = [];
    for (const [name, rec] of view.schedule) if (leavingOf(rec).includes(me)) units.push(name);
    this.owed = units.length > 0 && index > (view.acted.get(me) ?? 0) ? { index, units } : null;
    if (this.owed !== null) void this.settleOwed();
  }

  /** Writes the acted index once none of the owed units is held or reported here any more. */
  private async settleOwed(): Promise<void> {
    if (this.acting) {
      this.actAgain = true;
      return;
    }
    this.acting = true;
    try {
      do {
        this.actAgain = false;
        const owed = this.owed;
        if (owed === null || this.stopped) return;
        // Asked after the reconcile, in order on the same connection: the supervisor has taken it, so a unit it
        // does not hold now will not be started here again unless the registry gives it back.
        const held = await Promise.all(owed.units.map((u) => this.d.units.status(u)));
        const reported = owed.units.filter((u) => this.d.store.peek(stateKey(u, this.d.machineId)) !== null);
        if (held.some((s) => s !== null) || reported.length > 0) {
          for (const u of reported) this.queueReport(u);
          this.retryHandoff();
          continue;
        }
        if (this.owed !== owed) continue;
        await this.d.write({
          method: "PUT",
          key: machineActedKey(this.d.machineId),
          value: String(owed.index),
        });
        if (this.owed === owed) this.owed = null;
      } while (this.actAgain);
    } catch (err) {
      this.d.logger(`[agent] recording a handoff failed, retrying: ${(err as Error).message}`);
      this.retryHandoff();
    } finally {
      this.acting = false;
    }
  }

  private retryHandoff(): void {
    if (this.handoffTimer || this.stopped) return;
    this.handoffTimer = setTimeout(() => {
      this.handoffTimer = null;
      if (this.owed !== null) this.queueReconcile();
    }, HANDOFF_RETRY_MS);
  }

  /**
   * Waits (retrying without end, as the agent must not act on a replica that may be stale) for a read point;
   * returns when the one that succeeded was issued.
   */
  private async confirmCurrent(): Promise<number> {
    if (this.waitingSince !== null && !this.announced) {
      this.announced = true;
      this.d.logger(
        "[agent] waiting for the cluster to confirm the local replica is current before acting on units",
      );
    }
    let failed = false;
    let issuedAt = 0;
    const confirmed = await retry(
      async () => {
        issuedAt = monotonicMs();
        await this.d.sync();
        return true;
      },
      {
        ...SYNC_RETRY,
        stopped: () => this.stopped,
        onRetry: (err) => {
          if (!failed)
            this.d.logger(
              `[agent] no read point from the cluster yet, still waiting: ${(err as Error).message}`,
            );
          failed = true;
        },
      },
    ).catch((err) => {
      if (this.stopped) return false;
      throw err;
    });
    if (!confirmed) return 0;
    if (this.waitingSince !== null) {
      this.d.logger(
        `[agent] caught up with the cluster at applied index ${this.d.appliedIndex()} ` +
          `${Date.now() - this.waitingSince} ms after start; acting on units now`,
      );
      this.waitingSince = null;
    } else if (failed) this.d.logger("[agent] the cluster answers again; acting on units");
    return issuedAt;
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
    // A unit missing from an empty mirror is not a unit gone: the connection's states come with another pass.
    if (!this.d.units.connected()) return;
    const state = this.d.units.state(unit);
    const key = stateKey(unit, this.d.machineId);
    const current = this.d.store.get(key, { recursive: false, sorted: false }, Date.now());
    const stored = current instanceof KvError ? null : (current.node.value ?? null);
    if (!state) {
      if (stored !== null) await this.d.write({ method: "DELETE", key }).catch(ignoreMissing);
      return;
    }
    await this.stamp(unit, state);
    const next = JSON.stringify(toReport(state));
    if (stored === next) return;
    await this.d.write({ method: "PUT", key, value: next });
  }

  /** A Persistent= timer's last trigger, kept in the registry when it is newer than the one there. */
  private async stamp(unit: string, state: UnitState): Promise<void> {
    const t = state.timer;
    if (t === undefined || !t.persistent || t.lastTrigger === null) return;
    if ((readTimerStamp(this.d.store, unit)?.lastTrigger ?? -1) >= t.lastTrigger) return;
    const value: TimerStamp = { lastTrigger: t.lastTrigger };
    await this.d.write({ method: "PUT", key: timerStampKey(unit), value: JSON.stringify(value) });
  }
}

/** Longest error text kept in a report (a unit file's error names a line; a report is rewritten on each change). */
const REPORT_ERROR_CHARS = 300;

function toReport(s: UnitState): AgentReport {
  const r: AgentReport = {
    hash: s.hash,
    load: s.load,
    active: s.active,
    sub: s.sub,
    mainPid: s.mainPid,
    since: s.since,
  };
  // What a waiting `berth start` needs to tell "started", "failed and why" and "exited" apart.
  if (s.launched !== undefined) r.launched = s.launched;
  if (s.active === "failed" && s.result !== undefined) r.result = s.result;
  if (s.error !== undefined && (s.load === "error" || s.active === "failed"))
    r.error = s.error.slice(0, REPORT_ERROR_CHARS);
  if (s.oneshot === true) r.oneshot = true;
  return r;
}

function unitOf(key: string): string {
  const parts = key.split("/");
  return parts[parts.length - 2] ?? "";
}

function ignoreMissing(err: unknown): void {
  if ((err as { data?: { errorCode?: number } }).data?.errorCode !== 100) throw err;
}
