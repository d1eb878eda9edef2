// The scheduling benchmark's unit processes, found through /proc. Each carries UNIT_TAG_VAR=<run tag>:<instance> in
// its environment (an Environment= line of the unit file), so a scan names the unit of every process it finds and
// never touches another run's (or another helper's) processes. Linux only, as the node's agent is.
import { readdirSync, readFileSync } from "node:fs";

export const UNIT_TAG_VAR = "BERTH_BENCH_UNIT";

export interface UnitProc {
  pid: number;
  pgid: number;
  /** The instance named by %i. */
  unit: string;
}

/** The process group of a live process, or null for a process that is gone or a zombie. */
function pgidOf(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return null;
  }
  // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[0] === "Z" ? null : Number(fields[2]);
}

function unitOf(pid: number, tag: string): string | null {
  let environ: string;
  try {
    environ = readFileSync(`/proc/${pid}/environ`, "latin1");
  } catch {
    return null;
  }
  const prefix = `${UNIT_TAG_VAR}=${tag}:`;
  for (const kv of environ.split("\0")) if (kv.startsWith(prefix)) return kv.slice(prefix.length);
  return null;
}

function procOf(pid: number, tag: string): UnitProc | null {
  const unit = unitOf(pid, tag);
  if (unit === null) return null;
  const pgid = pgidOf(pid);
  return pgid === null ? null : { pid, pgid, unit };
}

/** Every live unit process of this run on the machine, whoever its parent is now. */
export function allUnitProcs(tag: string): UnitProc[] {
  const found: UnitProc[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const p = procOf(Number(entry), tag);
    if (p) found.push(p);
  }
  return found;
}

/** The unit processes the node process `pid` started (its children, over all its threads). */
export function unitProcsOf(pid: number, tag: string): UnitProc[] {
  const children = new Set<number>();
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {}
  for (const t of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, "latin1").split(" "))
        if (c.trim()) children.add(Number(c));
    } catch {}
  }
  return [...children].flatMap((c) => procOf(c, tag) ?? []);
}

/** SIGKILL to each process group (errors ignored: a group may be gone already). */
export function killGroups(pgids: Iterable<number>): void {
  for (const g of pgids) {
    try {
      process.kill(-g, "SIGKILL");
    } catch {}
  }
}

/**
 * Scans this run's unit processes every `everyMs` and keeps the units seen running more than once at the same time
 * (on two machines, or twice on one): a double run, which a machine's crash must never cause.
 */
export class DoubleRunWatch {
  scans = 0;
  /** Unit -> the most processes seen at once, for units seen with more than one. */
  readonly doubled = new Map<string, number>();
  /** Fewest and most unit processes one scan found (the most is the unit count, when nothing ran twice). */
  fewest = 0;
  most = 0;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly tag: string,
    private readonly everyMs = 250,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.scan(), this.everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  scan(): void {
    this.scans++;
    const count = new Map<string, number>();
    const procs = allUnitProcs(this.tag);
    for (const p of procs) count.set(p.unit, (count.get(p.unit) ?? 0) + 1);
    this.fewest = this.scans === 1 ? procs.length : Math.min(this.fewest, procs.length);
    this.most = Math.max(this.most, procs.length);
    for (const [unit, n] of count)
      if (n > 1) this.doubled.set(unit, Math.max(n, this.doubled.get(unit) ?? 0));
  }
}
