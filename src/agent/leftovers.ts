// Process groups and unit cgroups the agent started, recorded in its data directory, and the main process of each
// running service. An agent that crashed (a supervisor SIGKILLed) leaves its unit processes behind (they run in
// their own groups). The next agent keeps them until its first reconcile: a running service whose unit is still
// wanted here, with the same hash, is adopted (adoptable()); everything else recorded is killed, so a unit is never
// left running twice. Each process group is recorded with its leader's start time, so a reused pid is left alone;
// a unit's cgroup is the agent's own, so whatever is in it is killed (children that left the process group with
// setsid too). Started timers are recorded too, so that the next agent resumes them instead of starting them afresh.
import { existsSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { killGroup, processStartTime } from "./proc.ts";
import { UnitCgroup } from "./unit-cgroup.ts";

interface Entry {
  unit: string;
  /** Field 22 of /proc/PID/stat: start time in clock ticks since boot; identifies the process beyond its pid
   * (undefined until the record is saved; null when the process was gone by then). */
  startTime: string | null | undefined;
}

/**
 * A service's running main process, as a later agent needs it to adopt the unit; or a oneshot that ran and remains
 * active (RemainAfterExit=yes, `remained`: no process, pid 0), which a later agent must not run again.
 */
export interface MainRecord {
  /** The unit's hash when it started: a unit changed since is started afresh, not adopted. */
  hash: string;
  pid: number;
  /** The process group it leads (the ExecStart process's; for Type=forking the daemon may lead another). */
  pgid: number;
  /** As Entry.startTime, of `pid`. */
  startTime: string | null | undefined;
  /** The FIFOs its stdout and stderr go to (output-fifo.ts); null when they are pipes, which die with the agent. */
  output: { stdout: string; stderr: string } | null;
  remained?: true;
  /** Started by a timer or path unit, not scheduled to run on its own: adopted as such (it runs to its end). */
  triggered?: true;
}

/**
 * A timer's state (timer-runner.ts) while it is started: a later agent resumes it rather than starting it afresh,
 * so that a one-shot value (OnActiveSec=, OnBootSec=, OnStartupSec=) that elapsed does not elapse again.
 */
export interface TimerMemory {
  /** The timer's hash: a changed timer starts afresh. */
  hash: string;
  activatedAt: number;
  /** When the agent that started it started (OnStartupSec= counts from it). */
  startupTime: number;
  lastTrigger: number | null;
  /** The monotonic values (by index) done with. */
  disabled: number[];
  unitActiveAt: number | null;
  unitInactiveAt: number | null;
}

/** A main process a previous agent left running, with its unit's cgroup: what ServiceRunner.adopt() takes. */
export interface Leftover extends MainRecord {
  unit: string;
  cgroup: string[] | null;
}

/** The records a GroupRecord keeps, each in its own file. */
const RECORDS = ["groups", "cgroups", "mains", "timers"] as const;
type RecordName = (typeof RECORDS)[number];

export class GroupRecord {
  /** Process group → its unit; saved to `file` as { "<pgid>": Entry } (tests and benches read it too). */
  private readonly groups = new Map<number, Entry>();
  /** Unit → the directories of its cgroup (one per hierarchy) while the group exists; saved to `cgroupFile`. */
  private readonly cgroups = new Map<string, string[]>();
  /** Unit → its running main process; saved to `mainFile`. */
  private readonly mains = new Map<string, MainRecord>();
  /** Timer → its state while started; saved to `timerFile`. */
  private readonly timers = new Map<string, TimerMemory>();
  private saveQueued = false;
  private readonly dirty = new Set<RecordName>();

  constructor(
    private readonly file: string,
    private readonly cgroupFile: string,
    private readonly mainFile: string,
    private readonly timerFile: string,
  ) {}

  add(pgid: number, unit: string): void {
    // The start time is read when the record is saved, a turn later: reading /proc/PID/stat of a process in the
    // middle of its exec waits for the exec, which made each of a burst of starts ~0.5 ms slower.
    this.groups.set(pgid, { unit, startTime: undefined });
    this.saveSoon("groups");
  }

  remove(pgid: number): void {
    if (this.groups.delete(pgid)) this.saveSoon("groups");
  }

  addCgroup(unit: string, dirs: string[]): void {
    this.cgroups.set(unit, dirs);
    this.saveSoon("cgroups");
  }

  removeCgroup(unit: string): void {
    if (this.cgroups.delete(unit)) this.saveSoon("cgroups");
  }

  addMain(unit: string, main: Omit<MainRecord, "startTime">): void {
    this.mains.set(unit, { ...main, startTime: main.remained ? "" : undefined });
    this.saveSoon("mains");
  }

  saveTimer(unit: string, memory: TimerMemory): void {
    this.timers.set(unit, memory);
    this.saveSoon("timers");
  }

  removeTimer(unit: string): void {
    if (this.timers.delete(unit)) this.saveSoon("timers");
  }

  /**
   * The timers a previous agent had started, as it last saw them; kept in the record (a crash before they are
   * resumed does not lose them) until resumed, or removed.
   */
  savedTimers(log: (line: string) => void): Map<string, TimerMemory> {
    const saved = new Map(Object.entries(readRecord<TimerMemory>(this.timerFile, log)));
    for (const [unit, memory] of saved) this.timers.set(unit, memory);
    return saved;
  }

  /** The main process `pid` of `unit` is gone (a later main of the unit keeps its record). */
  removeMain(unit: string, pid: number): void {
    if (this.mains.get(unit)?.pid === pid && this.mains.delete(unit)) this.saveSoon("mains");
  }

  /**
   * The services a previous agent left running that another process can take over: the recorded main process still
   * runs (the same process: its start time matches) and its output goes to FIFOs; and the oneshots it left active.
   * Touches nothing.
   */
  adoptable(log: (line: string) => void): Map<string, Leftover> {
    const cgroups = readRecord<string[]>(this.cgroupFile, log);
    const out = new Map<string, Leftover>();
    for (const [unit, m] of Object.entries(readRecord<MainRecord>(this.mainFile, log))) {
      const runs =
        m.output !== null && typeof m.startTime === "string" && processStartTime(m.pid) === m.startTime;
      if (!runs && m.remained !== true) continue;
      out.set(unit, { ...m, unit, cgroup: cgroups[unit] ?? null });
    }
    return out;
  }

  /** Every unit something is recorded of (a process group, a cgroup, a main): what a previous agent may have left. */
  recordedUnits(log: (line: string) => void): Set<string> {
    const units = new Set(Object.keys(readRecord<string[]>(this.cgroupFile, log)));
    for (const e of Object.values(readRecord<Entry>(this.file, log))) units.add(e.unit);
    for (const unit of Object.keys(readRecord<MainRecord>(this.mainFile, log))) units.add(unit);
    return units;
  }

  /**
   * Kills (SIGKILL) every process in a recorded cgroup, then removes the group, every recorded process group whose
   * leader is still the process that was recorded, and every recorded main process — except what belongs to a unit
   * in `keep` (kept for adoption: its cgroup, its main's process group and record become this agent's own).
   */
  killLeftovers(log: (line: string) => void, keep: ReadonlyMap<string, Leftover> = new Map()): number {
    const cgroups = readRecord<string[]>(this.cgroupFile, log);
    const groups = readRecord<Entry>(this.file, log);
    const mains = readRecord<MainRecord>(this.mainFile, log);
    this.groups.clear();
    this.cgroups.clear();
    this.mains.clear();
    let killed = 0;
    for (const [unit, dirs] of Object.entries(cgroups)) {
      if (keep.has(unit)) this.cgroups.set(unit, dirs);
      else if (killCgroup(unit, dirs, log)) killed++;
    }
    for (const [pid, e] of Object.entries(groups)) {
      const pgid = Number(pid);
      if (keep.get(e.unit)?.pgid === pgid) this.groups.set(pgid, e);
      else if (killRecordedGroup(pgid, e, log)) killed++;
    }
    for (const [unit, m] of Object.entries(mains)) {
      if (keep.has(unit)) this.mains.set(unit, m);
      else killMain(unit, m, log);
    }
    // The timers too: those read for resuming are kept (savedTimers), and anything else an earlier agent saved
    // (after a reboot, say) must not be resumed by a later one.
    for (const r of RECORDS) this.dirty.add(r);
    this.save();
    return killed;
  }

  /** A unit kept for adoption that was not adopted after all: everything recorded of it is killed. */
  killUnit(unit: string, log: (line: string) => void): void {
    const dirs = this.cgroups.get(unit);
    if (dirs !== undefined) killCgroup(unit, dirs, log);
    for (const [pgid, e] of this.groups) if (e.unit === unit) killRecordedGroup(pgid, e, log);
    const m = this.mains.get(unit);
    if (m !== undefined) killMain(unit, m, log);
    this.cgroups.delete(unit);
    for (const [pgid, e] of this.groups) if (e.unit === unit) this.groups.delete(pgid);
    this.mains.delete(unit);
    this.saveSoon("groups", "cgroups", "mains");
  }

  /**
   * One write for a whole burst (a machine taking over hundreds of units): a crash can forget only the groups
   * started in the same event-loop turn.
   */
  private saveSoon(...records: RecordName[]): void {
    for (const r of records) this.dirty.add(r);
    if (this.saveQueued) return;
    this.saveQueued = true;
    setImmediate(() => {
      this.saveQueued = false;
      this.save();
    });
  }

  /**
   * Writes the records that changed (a timer firing every second rewrites only its own file). Best effort: losing
   * a record (disk full, directory gone) only loses the cleanup after a crash.
   */
  private save(): void {
    const dirty = new Set(this.dirty);
    this.dirty.clear();
    if (dirty.has("groups")) {
      for (const [pgid, e] of this.groups)
        if (e.startTime === undefined) e.startTime = processStartTime(pgid);
      writeAtomically(this.file, Object.fromEntries(this.groups));
    }
    if (dirty.has("cgroups")) writeAtomically(this.cgroupFile, Object.fromEntries(this.cgroups));
    if (dirty.has("mains")) {
      for (const m of this.mains.values())
        if (m.startTime === undefined) m.startTime = processStartTime(m.pid);
      writeAtomically(this.mainFile, Object.fromEntries(this.mains));
    }
    if (dirty.has("timers")) writeAtomically(this.timerFile, Object.fromEntries(this.timers));
  }
}

function killCgroup(unit: string, dirs: string[], log: (line: string) => void): boolean {
  const cg = new UnitCgroup(dirs);
  const n = cg.pids().length;
  if (n > 0) {
    cg.killAll();
    log(`killed ${n} processes of ${unit} in ${cg.path}, left running by a previous agent`);
  }
  if (!cg.removeSync()) log(`${cg.path} could not be removed: something in it outlived SIGKILL`);
  return n > 0;
}

function killRecordedGroup(pgid: number, e: Entry, log: (line: string) => void): boolean {
  const now = processStartTime(pgid);
  if (now === null || now !== e.startTime || !killGroup(pgid, "SIGKILL")) return false;
  log(`killed process group ${pgid} of ${e.unit}, left running by a previous agent`);
  return true;
}

/** A main process outside any recorded group (a Type=forking daemon where no cgroup could be made), and its FIFOs. */
function killMain(unit: string, m: MainRecord, log: (line: string) => void): void {
  if (m.pid > 0 && typeof m.startTime === "string" && processStartTime(m.pid) === m.startTime) {
    try {
      process.kill(m.pid, "SIGKILL");
      log(`killed main process ${m.pid} of ${unit}, left running by a previous agent`);
    } catch {}
  }
  if (m.output !== null) for (const f of [m.output.stdout, m.output.stderr]) removeQuietly(f);
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {}
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
