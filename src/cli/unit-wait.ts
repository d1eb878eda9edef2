// How the unit verbs wait for their units (fleetctl's tryWaitForUnitStates and assertSystemdActiveState), with what
// fleet left out: a unit that failed, exited, was refused by its agent or cannot be placed ends the wait with its
// reason instead of blocking forever, and a long wait reports progress and, when it runs out, how far it got.
import type { MachineInfo, UnitInfo, UnitStateRow } from "../client/protocol.ts";
import type { ClientContext } from "./client-command.ts";
import { EXIT } from "./exit-codes.ts";
import { machineLegend } from "./unit-support.ts";

/**
 * fleetctl's timing: poll every 250 ms, one "attempt" = 2 s. An unplaceable unit is given up on once the engine
 * has reported it unplaceable continuously for unplaceableGraceMs. A wait for more than PROGRESS_MIN units says how
 * far it got every progressMs. Tests shorten these.
 */
export const WAIT_TIMING = { pollMs: 250, attemptMs: 2000, unplaceableGraceMs: 4000, progressMs: 5000 };

export const PROGRESS_MIN = 50;
/** Units named one by one when a wait runs out; the rest are counted. */
const NAMED_MAX = 10;

/**
 * launched: the agent issued the start ("Unit X launched on M") and the unit is active (a oneshot: ran);
 * loaded: placed on a machine; stopped: placed and no longer running there; inactive: placed nowhere and running
 * nowhere.
 */
export type WaitGoal = "launched" | "loaded" | "stopped" | "inactive";

/** The word for units that got there, in progress lines and in "N of M ...". */
const DONE_WORD: Record<WaitGoal, string> = {
  launched: "launched",
  loaded: "loaded",
  stopped: "stopped",
  inactive: "unloaded",
};

export interface WaitOutcome {
  code: number;
  final: Map<string, UnitInfo>;
}

const out = (s: string) => process.stdout.write(`${s}\n`);
const err = (s: string) => process.stderr.write(`${s}\n`);

const running = (active: string): boolean =>
  active === "active" || active === "activating" || active === "deactivating";

/**
 * Why a started unit will not become active, from its agent's report; null while it still may. A report counts
 * only once the agent issued this start (launched), so what a previous run left is not taken for this one's end;
 * a dependency that failed fails the unit before its start is issued.
 */
export function startFailure(rep: UnitStateRow, where: string): string | null {
  if (rep.load === "error") return `failed to load on ${where}: ${rep.error ?? "the unit file was refused"}`;
  if (rep.active === "failed" && (rep.launched === true || rep.result === "dependency")) {
    const result = rep.result ? ` (Result: ${rep.result})` : "";
    return `failed on ${where}: ${rep.active}${result}${rep.error ? `: ${rep.error}` : ""}`;
  }
  return null;
}

/** A started unit that went back to inactive (not a finished oneshot): it exited on its own. */
function exited(rep: UnitStateRow): boolean {
  return rep.launched === true && rep.active === "inactive" && rep.oneshot !== true;
}

/**
 * Waits until every unit reaches `goal`, printing `Unit X <state> [on <machine>]` as each gets there (fleetctl's
 * lines). attempts: -1 = do not wait ("Triggered unit X <verb>"), 0 = until done, N = N attempts of attemptMs.
 * Exit code: 1 when a unit failed, exited, was refused or cannot be placed; 4 when one disappeared; 3 when the
 * attempts ran out first (with "N of M <state>").
 */
export async function waitForUnits(
  ctx: ClientContext,
  units: UnitInfo[],
  goal: WaitGoal,
  attempts: number,
  verb: string,
): Promise<WaitOutcome> {
  const table = ctx.output === "table";
  const final = new Map(units.map((u) => [u.name, u]));
  const pending = new Set<string>();
  for (const u of units) {
    if (u.global) {
      if (table) out(`Triggered global unit ${u.name} ${verb}`);
    } else if (attempts < 0) {
      if (table) out(`Triggered unit ${u.name} ${verb}`);
    } else pending.add(u.name);
  }
  let code: number = EXIT.ok;
  const total = pending.size;
  if (total === 0) return { code, final };
  // A unit that failed outweighs one that was merely slow; one that disappeared outweighs both.
  const rank = (c: number): number => [EXIT.ok, EXIT.unavailable, EXIT.error, EXIT.notFound].indexOf(c as 0);
  const fail = (c: number) => {
    if (rank(c) > rank(code)) code = c;
  };
  let machines = new Map<string, MachineInfo>();
  const legend = async (id: string): Promise<string> => {
    if (!machines.has(id))
      machines = new Map((await ctx.client.call("machines.list", {})).map((m) => [m.id, m]));
    return machineLegend(id, machines);
  };
  const announced = new Set<string>();
  const endSeen = new Map<string, string>();
  const unplaceableSince = new Map<string, number>();
  const started = Date.now();
  const deadline = attempts === 0 ? Number.POSITIVE_INFINITY : started + attempts * WAIT_TIMING.attemptMs;
  let nextProgress = started + WAIT_TIMING.progressMs;
  let lastReason = new Map<string, string>();
  let lastRows = new Map<string, UnitStateRow>();
  for (;;) {
    const list = new Map((await ctx.client.call("units.list", {})).map((u) => [u.name, u]));
    const rows = goal === "loaded" ? [] : await ctx.client.call("units.states", {});
    const rowOn = new Map<string, UnitStateRow>();
    const runningAnywhere = new Set<string>();
    for (const r of rows) {
      rowOn.set(`${r.name}\n${r.machine}`, r);
      if (running(r.active)) runningAnywhere.add(r.name);
    }
    lastRows = new Map();
    const now = Date.now();
    lastReason = new Map();
    for (const name of [...pending]) {
      const u = list.get(name);
      if (!u) {
        err(`Unit ${name} disappeared from the cluster while waiting for it to be ${DONE_WORD[goal]}`);
        pending.delete(name);
        fail(EXIT.notFound);
        continue;
      }
      final.set(name, u);
      const machine = u.machines[0];
      const rep = machine === undefined ? undefined : rowOn.get(`${name}\n${machine}`);
      const current = rep !== undefined && rep.hash === u.hash ? rep : undefined;
      if (current !== undefined) lastRows.set(name, current);
      let reached = false;
      switch (goal) {
        case "launched": {
          if (u.current === "launched" && !announced.has(name)) {
            announced.add(name);
            if (table) out(`Unit ${name} launched on ${await legend(machine!)}`);
          }
          if (current === undefined) break;
          const why = startFailure(current, await legend(machine!));
          const gone = exited(current);
          // An end counts once seen on two polls in a row with the same timestamp: not the moment between a run
          // and its automatic restart (Restart=), or between a stop and the start that follows it.
          if (why !== null || gone) {
            const key = `${current.active} ${current.since}`;
            if (endSeen.get(name) === key) {
              err(
                `Unit ${name} ${why ?? `exited on ${await legend(machine!)} right after its start (inactive/dead); see berth status ${name}`}`,
              );
              pending.delete(name);
              fail(EXIT.error);
              continue;
            }
            endSeen.set(name, key);
          } else endSeen.delete(name);
          reached =
            announced.has(name) &&
            (current.active === "active" || (current.oneshot === true && current.active === "inactive"));
          break;
        }
        case "loaded":
          reached = u.current === "loaded";
          if (reached && table) out(`Unit ${name} loaded on ${await legend(machine!)}`);
          break;
        case "stopped":
          if (machine === undefined && u.unplaceable !== null) {
            // It lost its place while stopping (a MachineOf= follower taken along by the destroy of its unit): it
            // is stopped once it runs nowhere, as it will never be loaded anywhere again.
            reached = !runningAnywhere.has(name);
            if (reached && table) out(`Unit ${name} inactive`);
            break;
          }
          reached = u.current === "loaded" && !(rep !== undefined && running(rep.active));
          if (reached && table) out(`Unit ${name} loaded on ${await legend(machine!)}`);
          break;
        case "inactive":
          reached = u.current === "inactive" && !runningAnywhere.has(name);
          if (reached && table) out(`Unit ${name} inactive`);
          break;
      }
      if (reached) {
        pending.delete(name);
        continue;
      }
      if (u.unplaceable && (goal === "launched" || goal === "loaded") && u.machines.length === 0) {
        lastReason.set(name, u.unplaceable);
        const since = unplaceableSince.get(name) ?? now;
        unplaceableSince.set(name, since);
        if (now - since >= WAIT_TIMING.unplaceableGraceMs) {
          err(`Unit ${name} cannot be placed: ${u.unplaceable}`);
          pending.delete(name);
          fail(EXIT.error);
        }
      } else unplaceableSince.delete(name);
    }
    if (pending.size === 0) break;
    if (Date.now() + WAIT_TIMING.pollMs > deadline) {
      const timedOut = await ranOut(pending, lastReason, lastRows, final, goal, attempts, legend, fail);
      if (timedOut) err(`${total - pending.size} of ${total} units ${DONE_WORD[goal]}`);
      break;
    }
    if (total > PROGRESS_MIN && Date.now() >= nextProgress) {
      nextProgress = Date.now() + WAIT_TIMING.progressMs;
      err(`Waiting: ${total - pending.size} of ${total} units ${DONE_WORD[goal]}`);
    }
    await new Promise((r) => setTimeout(r, WAIT_TIMING.pollMs));
  }
  return { code, final };
}

/**
 * The attempts ran out: why each pending unit is not there yet (the first NAMED_MAX), exit 3 (1 if unplaceable).
 * True when some unit simply was not there yet (not one the cluster cannot place).
 */
async function ranOut(
  pending: Set<string>,
  lastReason: Map<string, string>,
  lastRows: Map<string, UnitStateRow>,
  final: Map<string, UnitInfo>,
  goal: WaitGoal,
  attempts: number,
  legend: (id: string) => Promise<string>,
  fail: (code: number) => void,
): Promise<boolean> {
  let named = 0;
  let timedOut = false;
  for (const name of pending) {
    const reason = lastReason.get(name);
    if (reason !== undefined) fail(EXIT.error);
    else {
      fail(EXIT.unavailable);
      timedOut = true;
    }
    if (named++ >= NAMED_MAX) continue;
    if (reason !== undefined) {
      err(`Unit ${name} cannot be placed: ${reason}`);
      continue;
    }
    const u = final.get(name);
    const rep = lastRows.get(name);
    const agent = rep
      ? `; on ${await legend(rep.machine)}: ${rep.active} (${rep.sub})${rep.note ? ` ${rep.note}` : ""}`
      : "";
    err(
      `Unit ${name} did not become ${DONE_WORD[goal]} after ${attempts} attempt${attempts === 1 ? "" : "s"} (current state ${u?.current ?? "-"})${agent}`,
    );
  }
  if (named > NAMED_MAX) err(`... and ${named - NAMED_MAX} more`);
  return timedOut;
}
