// The handoff rule: a unit leaves a live machine in two steps, so at no instant do two copies run. Both machines
// are alive, so neither a lease nor a fence separates them: the old machine's agent may have read the old schedule
// and be starting the unit right now, its report not written yet. So the engine first unschedules the unit there
// (the record names that machine in `leaving`), and places it elsewhere only once that machine has ACTED on the
// record: its agent's acted index (the store index of the registry view it last converged on, written by
// agent-bridge.ts once every unit that view no longer gives it is stopped and its report removed) has reached the
// record's modifiedIndex, and it reports no copy. A lost machine needs no such wait: its lease fence stops its
// units before any leader may reschedule them. Global units run one copy per machine and never wait.
import { type AgentReport, leavingOf, type ScheduleRecord } from "./registry.ts";

export interface HandoffInput {
  /** Global units: one copy per machine, nothing is handed off. */
  global: boolean;
  /** The stored schedule record (null: none) and the store index it was last written at. */
  stored: ScheduleRecord | null;
  storedIndex: number;
  /** Where the placement puts the unit now (sorted machine ids). */
  next: string[];
  /** Machines the leader hears from (draining ones included). */
  alive: ReadonlySet<string>;
  /** machine id -> the store index its agent has acted on. */
  acted: ReadonlyMap<string, number>;
  /** The unit's reports, by machine. */
  reports: ReadonlyMap<string, AgentReport> | undefined;
}

export interface HandoffDecision {
  /** Where the unit is scheduled now (the placement's choice, minus new machines while others still stop it). */
  machines: string[];
  /** Live machines that may still be stopping it (sorted). */
  leaving: string[];
  /** True when the placement's new machines are held back until `leaving` have acted. */
  waiting: boolean;
}

export function handoff(i: HandoffInput): HandoffDecision {
  if (i.global) return { machines: i.next, leaving: [], waiting: false };
  const prev = i.stored?.machines ?? [];
  const recorded = new Set(leavingOf(i.stored));
  const nextSet = new Set(i.next);
  const candidates = new Set([...recorded, ...prev.filter((m) => !nextSet.has(m))]);
  const leaving: string[] = [];
  for (const m of candidates) {
    // Given back to it: that machine's copy is the only one.
    if (nextSet.has(m)) continue;
    // Lost (or gone from the registry): its lease fence stops the unit before the leader's reschedule delay.
    if (!i.alive.has(m)) continue;
    const acted = recorded.has(m) && (i.acted.get(m) ?? 0) >= i.storedIndex && !i.reports?.has(m);
    if (!acted) leaving.push(m);
  }
  leaving.sort();
  const prevSet = new Set(prev);
  const added = i.next.some((m) => !prevSet.has(m));
  if (leaving.length > 0 && added)
    return { machines: i.next.filter((m) => prevSet.has(m)), leaving, waiting: true };
  return { machines: i.next, leaving, waiting: false };
}

/** The reason a schedule record gives while the unit waits for machines (named) to stop it. */
export function waitingReason(machines: string[]): string {
  return `waiting for ${machines.join(", ")} to stop it`;
}

export function isWaitingReason(reason: string | undefined): boolean {
  return reason?.startsWith("waiting for ") === true;
}
