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

/** Process group and start time (clock ticks after boot) of a live process; null for one gone or a zombie. */
function statOf(pid: number): { pgid: number; start: string } | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return null;
  }
  // pid (comm) state ppid pgrp ... starttime (field 22): comm may hold spaces and ')', so split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[0] === "Z" ? null : { pgid: Number(fields[2]), start: fields[19]! };
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

/**
 * The unit a process's environment named, by pid and start time (a pid reused later is another process): what a
 * unit process inherited stays, and reading environments is the expensive part of a scan. Only hits are kept: a
 * child the node just forked holds the node's environment until it executes the unit's command.
 */
type UnitCache = Map<number, { start: string; unit: string }>;

function procOf(pid: number, tag: string, cache?: UnitCache): UnitProc | null {
  const st = statOf(pid);
  if (st === null) return null;
  const known = cache?.get(pid);
  let unit = known?.start === st.start ? known.unit : null;
  if (unit === null) {
    // Read after the stat: a process that exited in between has no environment left to read.
    unit = unitOf(pid, tag);
    if (unit !== null) cache?.set(pid, { start: st.start, unit });
  }
  return unit === null ? null : { pid, pgid: st.pgid, unit };
}

/** Every live unit process of this run on the machine, whoever its parent is now. */
export function allUnitProcs(tag: string, cache?: UnitCache): UnitProc[] {
  const found: UnitProc[] = [];
  const seen = new Set<number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    seen.add(Number(entry));
    const p = procOf(Number(entry), tag, cache);
    if (p) found.push(p);
  }
  if (cache) for (const pid of cache.keys()) if (!seen.has(pid)) cache.delete(pid);
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
  private readonly cache: UnitCache = new Map();

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
    const procs = allUnitProcs(this.tag, this.cache);
    for (const p of procs) count.set(p.unit, (count.get(p.unit) ?? 0) + 1);
    this.fewest = this.scans === 1 ? procs.length : Math.min(this.fewest, procs.length);
    this.most = Math.max(this.most, procs.length);
    for (const [unit, n] of count)
      if (n > 1) this.doubled.set(unit, Math.max(n, this.doubled.get(unit) ?? 0));
  }
}
