// The scheduling engine: runs on the Raft leader only. Each pass reads the registry from the leader's replica,
// decides which machines are alive, asks the pure placement for the minimal plan, and writes only what changed
// (schedule keys, machine up/lost transitions, states of lost machines). Passes are triggered by registry changes
// and liveness transitions, and also run on a timer as a safety net; they never overlap.
//
// A draining machine (`berth machine drain`) is alive but offered to no unit, so the placement moves its units
// off; like every move between two live machines, each goes through the handoff (handoff.ts): unscheduled there
// first, placed elsewhere once that machine has acted on it.
//
// The scheduling pipeline, outermost first: Scheduling (scheduling.ts: a node's part, on every node) runs the
// Engine (engine.ts: passes on the Raft leader, reading and writing the registry), whose passes ask the Planner
// (placement.ts: reconcile(), pure) for a plan.
import type { KvWriteRequest } from "../client/protocol.ts";
import { parseUnitName } from "../unit/unit-file.ts";
import type { UnitCatalog } from "./catalog.ts";
import { handoff, waitingReason } from "./handoff.ts";
import { type Assignment, applyPlan, reconcile, type UnitView } from "./placement.ts";
import {
  leavingOf,
  machineStateKey,
  type RegistryView,
  type ScheduleRecord,
  scheduleKey,
  stateKey,
} from "./registry.ts";
import type { RegistryProblem } from "./registry-records.ts";
import { withTriggerPlacement } from "./triggers.ts";

export interface EngineDeps {
  readView(): RegistryView;
  catalog: UnitCatalog;
  write(req: KvWriteRequest): Promise<unknown>;
  /** The store index a unit's schedule record was last written at (0 when it has none), from readView's store. */
  scheduleIndex(unit: string): number;
  /** Whether the machine of this member name is alive (the leader's own machine always is). */
  alive(name: string): boolean;
  logger?: (line: string) => void;
  /** Safety-net interval for full passes (default 5 s) and how often liveness is checked (default 250 ms). */
  reconcileEveryMs?: number;
  livenessEveryMs?: number;
}

/** Pause between back-to-back passes, so the changes arriving meanwhile are planned together. */
const PASS_GAP_MS = 50;

/** Writes in flight at once during a pass (a thousand new units should not take a thousand round trips). */
const WRITE_CONCURRENCY = 64;

export class Engine {
  private running = false;
  private again = false;
  private stopped = true;
  private timers: ReturnType<typeof setInterval>[] = [];
  private lastAlive = new Map<string, boolean>();
  /** Unreadable registry records already logged (key -> why), so each is logged once, not every pass. */
  private logged = new Map<string, string>();
  /** Resolves when the current pass (and any pass it queued) is over; for tests and shutdown. */
  private idle: Promise<void> = Promise.resolve();

  constructor(private readonly d: EngineDeps) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.lastAlive.clear();
    this.timers.push(setInterval(() => this.trigger(), this.d.reconcileEveryMs ?? 5000));
    this.timers.push(setInterval(() => this.checkLiveness(), this.d.livenessEveryMs ?? 250));
    this.trigger();
  }

  stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    return this.idle;
  }

  /** Resolves when the pass under way, and any pass it queued, is over (at once when none is). */
  settled(): Promise<void> {
    return this.idle;
  }

  /** Asks for a pass; passes requested while one runs collapse into one more. */
  trigger(): Promise<void> {
    if (this.stopped) return this.idle;
    if (this.running) {
      this.again = true;
      return this.idle;
    }
    this.running = true;
    this.idle = (async () => {
      try {
        for (;;) {
          this.again = false;
          await this.pass().catch((err) => this.d.logger?.(`engine pass failed: ${(err as Error).message}`));
          if (!this.again || this.stopped) break;
          // A burst of changes (a thousand units started) is handled in a few passes, not one per change.
          await new Promise((r) => setTimeout(r, PASS_GAP_MS));
        }
      } finally {
        this.running = false;
      }
    })();
    return this.idle;
  }

  /** Cheap check between passes: a machine that changed between alive and silent triggers a pass at once. */
  private checkLiveness(): void {
    for (const [name, was] of this.lastAlive) {
      if (this.d.alive(name) !== was) {
        this.trigger();
        return;
      }
    }
  }

  private async pass(): Promise<void> {
    const view = this.d.readView();
    this.logProblems(view.problems);
    const writes: KvWriteRequest[] = [];

    // 1. Machines: who is alive now, and the transitions to record.
    const alive = new Set<string>();
    this.lastAlive.clear();
    for (const m of view.machines.values()) {
      const ok = this.d.alive(m.name);
      this.lastAlive.set(m.name, ok);
      if (ok) alive.add(m.id);
      const state = ok ? "up" : "lost";
      if (state !== m.state) {
        this.d.logger?.(`machine ${m.id.slice(0, 8)} (${m.name}) is ${ok ? "back" : "lost"}`);
        writes.push({ method: "PUT", key: machineStateKey(m.id), value: state });
      }
    }

    // 2. Units the placement sees (templates are never scheduled; unusable files are reported as unplaceable).
    let units: UnitView[] = [];
    const reasons = new Map<string, string>();
    const globals = new Set<string>();
    const triggered = new Map<string, string>();
    for (const [name, rec] of view.units) {
      if (parseUnitName(name).isTemplate) continue;
      const t = this.d.catalog.triggered(name, rec.hash);
      if (t !== undefined) triggered.set(name, t);
      const xfleet = this.d.catalog.options(name, rec.hash);
      if (xfleet instanceof Error) reasons.set(name, xfleet.message);
      else {
        units.push({ name, desired: rec.desired, xfleet });
        if (xfleet.global) globals.add(name);
      }
    }
    // A unit a timer starts runs on the timer's machine (an implicit MachineOf=, triggers.ts).
    units = withTriggerPlacement(units, triggered);
    const current: Assignment[] = [];
    for (const [unit, s] of view.schedule) for (const machine of s.machines) current.push({ unit, machine });

    // 3. The plan, and the schedule it leads to (draining machines are offered nothing).
    const plan = reconcile({
      machines: [...view.machines.values()]
        .filter((m) => alive.has(m.id) && !view.drains.has(m.id))
        .map((m) => ({ id: m.id, metadata: m.metadata })),
      units,
      current,
    });
    for (const u of plan.unplaceable) reasons.set(u.unit, u.reason);
    const next = new Map<string, string[]>();
    for (const a of applyPlan(current, plan)) next.set(a.unit, [...(next.get(a.unit) ?? []), a.machine]);

    // 4. Schedule keys that differ from what is stored, each move between live machines as a handoff.
    const names = new Set([...view.units.keys(), ...view.schedule.keys()]);
    const machineName = (id: string) => view.machines.get(id)?.name || id.slice(0, 8);
    for (const name of names) {
      const have = view.schedule.get(name) ?? null;
      const h = handoff({
        global: globals.has(name),
        stored: have,
        storedIndex: have ? this.d.scheduleIndex(name) : 0,
        next: (next.get(name) ?? []).sort(),
        alive,
        acted: view.acted,
        reports: view.states.get(name),
      });
      const machines = h.machines;
      let reason = view.units.get(name)?.desired === "inactive" ? undefined : reasons.get(name);
      if (h.waiting && machines.length === 0) reason = waitingReason(h.leaving.map(machineName));
      const leaving = h.leaving.length > 0 ? { leaving: h.leaving } : {};
      const want: ScheduleRecord | null =
        machines.length > 0 || reason || h.leaving.length > 0
          ? { machines, ...(reason ? { reason } : {}), ...leaving }
          : null;
      if (sameSchedule(have, want)) continue;
      if (want) writes.push({ method: "PUT", key: scheduleKey(name), value: JSON.stringify(want) });
      else writes.push({ method: "DELETE", key: scheduleKey(name) });
      if (want && !have?.reason && want.reason && !h.waiting)
        this.d.logger?.(`cannot place ${name}: ${want.reason}`);
    }

    // 5. Reports from lost machines are stale: their units have moved (a machine that returns reports anew).
    for (const [unit, perMachine] of view.states)
      for (const machine of perMachine.keys())
        if (!alive.has(machine) && view.machines.has(machine))
          writes.push({ method: "DELETE", key: stateKey(unit, machine) });

    await this.apply(writes);
  }

  /** The registry leaves unreadable records out of the view; the pass goes on without them, and says so. */
  private logProblems(problems: RegistryProblem[]): void {
    const now = new Map(problems.map((p) => [p.key, p.problem]));
    for (const [key, problem] of now)
      if (this.logged.get(key) !== problem) this.d.logger?.(`skipping registry record ${key}: ${problem}`);
    this.logged = now;
  }

  private async apply(writes: KvWriteRequest[]): Promise<void> {
    let i = 0;
    const worker = async () => {
      while (i < writes.length && !this.stopped) {
        const w = writes[i++]!;
        await this.d.write(w).catch((err) => {
          // A key already gone is fine; anything else is retried by the next pass.
          if ((err as { data?: { errorCode?: number } }).data?.errorCode === 100) return;
          this.d.logger?.(`engine write ${w.method} ${w.key} failed: ${(err as Error).message}`);
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, writes.length) }, worker));
  }
}

function sameSchedule(a: ScheduleRecord | null, b: ScheduleRecord | null): boolean {
  if (a === null || b === null) return a === b;
  if ((a.reason ?? "") !== (b.reason ?? "")) return false;
  return sameIds(a.machines, b.machines) && sameIds(leavingOf(a), b.leaving ?? []);
}

/** Whether two id lists hold the same ids (`b` sorted). */
function sameIds(a: string[], b: string[]): boolean {
  const as = [...a].sort();
  return as.length === b.length && as.every((m, i) => m === b[i]);
}
