// A cloud-config's cluster units, applied so that N machines applying the same file submit each unit once:
//   - a unit the registry does not have is submitted (create-only on the server) and brought to its command's state;
//   - a unit the registry has with the same content is left alone, except that one still desired "inactive" is
//     brought to the command's state (an apply interrupted between its submit and its start is finished);
//   - a unit the registry has with other content is not touched: it is reported as a conflict (the registry's copy
//     wins; change it with `berth submit --replace` or destroy it first).
import type { DesiredState, UnitInfo, UnitSubmission } from "../client/protocol.ts";
import { retry, UNTIL_A_LEADER_ANSWERS } from "../retry.ts";
import type { CloudUnit, UnitCommand } from "./cloud-config.ts";

export interface UnitsApi {
  list(): Promise<UnitInfo[]>;
  submit(units: UnitSubmission[]): Promise<unknown>;
  setDesired(names: string[], desired: DesiredState): Promise<unknown>;
}

export interface ApplyReport {
  submitted: string[];
  /** Already in the registry with this content. */
  unchanged: string[];
  /** Already in the registry with other content: left as they are. */
  conflicts: string[];
}

const TARGET: Record<UnitCommand, DesiredState> = { submit: "inactive", load: "loaded", start: "launched" };

export async function applyUnits(api: UnitsApi, units: CloudUnit[]): Promise<ApplyReport> {
  const report: ApplyReport = { submitted: [], unchanged: [], conflicts: [] };
  const existing = new Map((await api.list()).map((u) => [u.name, u]));
  const raise = new Map<DesiredState, string[]>();
  for (const u of units) {
    const current = existing.get(u.name);
    if (!current) {
      try {
        await api.submit([{ name: u.name, ...(u.text !== undefined && { text: u.text }) }]);
        report.submitted.push(u.name);
      } catch (err) {
        if ((err as { code?: string }).code !== "conflict") throw err;
        // Another machine submitted other content under this name meanwhile.
        report.conflicts.push(u.name);
        continue;
      }
    } else if (u.hash !== undefined && current.hash !== u.hash) {
      report.conflicts.push(u.name);
      continue;
    } else report.unchanged.push(u.name);
    const target = TARGET[u.command];
    if (target !== "inactive" && (current === undefined || current.desired === "inactive"))
      raise.set(target, [...(raise.get(target) ?? []), u.name]);
  }
  for (const [desired, names] of raise) await api.setDesired(names, desired);
  return report;
}

/**
 * `berth node --cloud-config`: applies once the cluster is up (a leader elected, this member caught up), trying
 * again while it is not; gives up only when `stopped()` says the node is going away.
 */
export async function applyWhenUp(
  api: UnitsApi,
  units: CloudUnit[],
  log: (line: string) => void,
  stopped: () => boolean,
): Promise<ApplyReport | null> {
  if (stopped()) return null;
  let lastProblem = "";
  let r: ApplyReport;
  try {
    r = await retry(() => applyUnits(api, units), {
      ...UNTIL_A_LEADER_ANSWERS,
      stopped,
      onRetry: (err) => {
        const problem = (err as Error).message;
        if (problem !== lastProblem) log(`[cloud-config] cannot apply the units yet (${problem}); retrying`);
        lastProblem = problem;
      },
    });
  } catch (err) {
    if (stopped()) return null;
    throw err;
  }
  log(
    `[cloud-config] units: ${r.submitted.length} submitted (${r.submitted.join(", ") || "-"}), ` +
      `${r.unchanged.length} already in the registry`,
  );
  for (const name of r.conflicts)
    log(
      `[cloud-config] unit ${name} is in the registry with other content: left as it is (the registry's copy ` +
        "wins; `berth submit --replace` changes it)",
    );
  return r;
}
