// Process groups and unit cgroups the agent started, recorded in its data directory. A node killed with SIGKILL
// leaves its unit processes behind (they run in their own groups); the next agent start kills what is still
// recorded, so a unit is never left running twice. Each process group is recorded with its leader's start time, so
// a reused pid is left alone; a unit's cgroup is the agent's own, so whatever is in it is killed (children that
// left the process group with setsid too).
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { killGroup } from "./proc.ts";
import { UnitCgroup } from "./unit-cgroup.ts";

interface Entry {
  unit: string;
  /** Field 22 of /proc/PID/stat: start time in clock ticks since boot; identifies the process beyond its pid. */
  startTime: string | null;
}

interface Saved {
  groups: Record<string, Entry>;
  cgroups: Record<string, string[]>;
}

export class GroupRecord {
  private readonly groups = new Map<number, Entry>();
  /** Unit → the directories of its cgroup (one per hierarchy), while the group exists. */
  private readonly cgroups = new Map<string, string[]>();
  private saveQueued = false;

  constructor(private readonly file: string) {}

  add(pgid: number, unit: string): void {
    this.groups.set(pgid, { unit, startTime: startTimeOf(pgid) });
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
   * Kills (SIGKILL) every process in a recorded cgroup, and every recorded process group whose leader is still the
   * process that was recorded. The emptied cgroups are removed.
   */
  killLeftovers(log: (line: string) => void): number {
    if (!existsSync(this.file)) return 0;
    let recorded: Saved = { groups: {}, cgroups: {} };
    try {
      const raw = JSON.parse(readFileSync(this.file, "utf8")) as Saved | Record<string, Entry>;
      // Before cgroups were recorded, the file held the process groups alone.
      recorded =
        "groups" in raw && "cgroups" in raw
          ? (raw as Saved)
          : { groups: raw as Record<string, Entry>, cgroups: {} };
    } catch {
      log(`${this.file} is unreadable; no leftover processes can be checked`);
    }
    let killed = 0;
    for (const [unit, dirs] of Object.entries(recorded.cgroups)) {
      const cg = new UnitCgroup(dirs);
      const n = cg.pids().length;
      if (n > 0) {
        cg.killAll();
        killed++;
        log(`killed ${n} processes of ${unit} in ${cg.path}, left running by a previous agent`);
      }
      if (!cg.removeSync()) log(`${cg.path} could not be removed: something in it outlived SIGKILL`);
    }
    for (const [pid, e] of Object.entries(recorded.groups)) {
      const pgid = Number(pid);
      const now = startTimeOf(pgid);
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
    const tmp = `${this.file}.tmp`;
    try {
      const saved: Saved = {
        groups: Object.fromEntries(this.groups),
        cgroups: Object.fromEntries(this.cgroups),
      };
      writeFileSync(tmp, JSON.stringify(saved));
      renameSync(tmp, this.file);
    } catch {}
  }
}

function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}
