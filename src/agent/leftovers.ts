// Process groups the agent started, recorded in its data directory. A node killed with SIGKILL leaves its unit
// processes behind (they run in their own groups); the next agent start kills what is still recorded, so a unit is
// never left running twice. Each group is recorded with its leader's start time, so a reused pid is left alone.
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { killGroup } from "./proc.ts";

interface Entry {
  unit: string;
  /** Field 22 of /proc/PID/stat: start time in clock ticks since boot; identifies the process beyond its pid. */
  startTime: string | null;
}

export class GroupRecord {
  private readonly groups = new Map<number, Entry>();
  private saveQueued = false;

  constructor(private readonly file: string) {}

  add(pgid: number, unit: string): void {
    this.groups.set(pgid, { unit, startTime: startTimeOf(pgid) });
    this.saveSoon();
  }

  remove(pgid: number): void {
    if (this.groups.delete(pgid)) this.saveSoon();
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

  /** Kills (SIGKILL) every recorded group whose leader is still the process that was recorded. */
  killLeftovers(log: (line: string) => void): number {
    if (!existsSync(this.file)) return 0;
    let recorded: Record<string, Entry> = {};
    try {
      recorded = JSON.parse(readFileSync(this.file, "utf8")) as Record<string, Entry>;
    } catch {
      log(`${this.file} is unreadable; no leftover processes can be checked`);
    }
    let killed = 0;
    for (const [pid, e] of Object.entries(recorded)) {
      const pgid = Number(pid);
      const now = startTimeOf(pgid);
      if (now === null || now !== e.startTime) continue;
      if (killGroup(pgid, "SIGKILL")) {
        killed++;
        log(`killed process group ${pgid} of ${e.unit}, left running by a previous agent`);
      }
    }
    this.groups.clear();
    this.save();
    return killed;
  }

  /** Best effort: losing the record (disk full, directory gone) only loses the cleanup after a crash. */
  private save(): void {
    const tmp = `${this.file}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.groups)));
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
