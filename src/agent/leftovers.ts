// Process groups and unit cgroups the agent started, recorded in its data directory. A node killed with SIGKILL
// leaves its unit processes behind (they run in their own groups); the next agent start kills what is still
// recorded, so a unit is never left running twice. Each process group is recorded with its leader's start time, so
// a reused pid is left alone; a unit's cgroup is the agent's own, so whatever is in it is killed (children that
// left the process group with setsid too).
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { killGroup, processStartTime } from "./proc.ts";
import { UnitCgroup } from "./unit-cgroup.ts";

interface Entry {
  unit: string;
  /** Field 22 of /proc/PID/stat: start time in clock ticks since boot; identifies the process beyond its pid
   * (undefined until the record is saved; null when the process was gone by then). */
  startTime: string | null | undefined;
}

export class GroupRecord {
  /** Process group → its unit; saved to `file` as { "<pgid>": Entry } (tests and benches read it too). */
  private readonly groups = new Map<number, Entry>();
  /** Unit → the directories of its cgroup (one per hierarchy) while the group exists; saved to `cgroupFile`. */
  private readonly cgroups = new Map<string, string[]>();
  private saveQueued = false;

  constructor(
    private readonly file: string,
    private readonly cgroupFile: string,
  ) {}

  add(pgid: number, unit: string): void {
    // The start time is read when the record is saved, a turn later: reading /proc/PID/stat of a process in the
    // middle of its exec waits for the exec, which made each of a burst of starts ~0.5 ms slower.
    this.groups.set(pgid, { unit, startTime: undefined });
    this.saveSoon();
  }

  remove(pgid: number): void {
    if (this.groups.delete(pgid)) this.saveSoon();
  }

  addCgroup(unit: string, dirs: string[]): void {
    this.cgroups.set(unit, dirs);
    this.saveSoon();
  }

  removeCgroup(unit: string): void {
    if (this.cgroups.delete(unit)) this.saveSoon();
  }

  /**
   * One write for a whole burst (a machine taking over hundreds of units): a crash can forget only the groups
   * started in the same event-loop turn.
   */
  private saveSoon(): void {
    if (this.saveQueued) return;
    this.saveQueued = true;
    setImmediate(() => {
      this.saveQueued = false;
      this.save();
    });
  }

  /**
   * Kills (SIGKILL) every process in a recorded cgroup, then removes the group, and every recorded process group
   * whose leader is still the process that was recorded.
   */
  killLeftovers(log: (line: string) => void): number {
    let killed = 0;
    for (const [unit, dirs] of Object.entries(readRecord<string[]>(this.cgroupFile, log))) {
      const cg = new UnitCgroup(dirs);
      const n = cg.pids().length;
      if (n > 0) {
        cg.killAll();
        killed++;
        log(`killed ${n} processes of ${unit} in ${cg.path}, left running by a previous agent`);
      }
      if (!cg.removeSync()) log(`${cg.path} could not be removed: something in it outlived SIGKILL`);
    }
    for (const [pid, e] of Object.entries(readRecord<Entry>(this.file, log))) {
      const pgid = Number(pid);
      const now = processStartTime(pgid);
      if (now === null || now !== e.startTime) continue;
      if (killGroup(pgid, "SIGKILL")) {
        killed++;
        log(`killed process group ${pgid} of ${e.unit}, left running by a previous agent`);
      }
    }
    this.groups.clear();
    this.cgroups.clear();
    this.save();
    return killed;
  }

  /** Best effort: losing the record (disk full, directory gone) only loses the cleanup after a crash. */
  private save(): void {
    for (const [pgid, e] of this.groups) if (e.startTime === undefined) e.startTime = processStartTime(pgid);
    writeAtomically(this.file, Object.fromEntries(this.groups));
    writeAtomically(this.cgroupFile, Object.fromEntries(this.cgroups));
  }
}

function readRecord<T>(file: string, log: (line: string) => void): Record<string, T> {
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Record<string, T>;
  } catch {
    log(`${file} is unreadable; no leftover processes can be checked`);
    return {};
  }
}

function writeAtomically(file: string, value: object): void {
  const tmp = `${file}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(value));
    renameSync(tmp, file);
  } catch {}
}
