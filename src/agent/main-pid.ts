// Where a Type=forking service's main process is found once the process ExecStart= started has exited
// (systemd.service(5)): the PID in PIDFile=, else, with GuessMainPID=yes, the one process of the unit's cgroup
// whose parent is outside it (the daemon, reparented away by its double fork). Pure but for /proc and the file.
import { readFileSync } from "node:fs";
import { parentPid, processState } from "./proc.ts";

/** The PID a PID file holds: null while it is missing or holds no PID yet (the daemon may not have written it). */
export function readPidFile(path: string): number | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return null;
  }
  const m = /^\s*(\d+)\s*$/.exec(text);
  const pid = m === null ? 0 : Number(m[1]);
  return pid > 0 ? pid : null;
}

/** A process that runs (exists and is not a zombie). */
export function runs(pid: number): boolean {
  const s = processState(pid);
  return s !== null && s !== "Z";
}

/**
 * systemd's GuessMainPID: among `pids` (a cgroup's), the ones whose parent is not in the group; exactly one is the
 * main process, none or several leave it unknown (systemd: "cannot determine main PID").
 */
export function guessMainPid(pids: readonly number[], parentOf = parentPid): number | null {
  const inGroup = new Set(pids);
  const roots = pids.filter((p) => {
    const parent = parentOf(p);
    return parent !== null && !inGroup.has(parent);
  });
  return roots.length === 1 ? roots[0]! : null;
}
