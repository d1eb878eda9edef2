// Process helpers for the agent: process groups, /proc memory accounting, /etc/passwd lookups.
import { readdirSync, readFileSync } from "node:fs";

const PAGE_SIZE = 4096;

/** Sends a signal to a whole process group; false when the group no longer exists. */
export function killGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * True while a live (non-zombie) process is in the group. Zombies do not count: an orphan that already died is
 * waiting for PID 1 to reap it, which some container inits only do now and then.
 */
export function groupAlive(pgid: number): boolean {
  if (!killGroup(pgid, 0)) return false;
  // Usually the group's leader still runs: one read of its stat answers without scanning every process.
  const leader = statOf(pgid);
  if (leader !== null && leader.pgid === pgid && leader.state !== "Z") return true;
  const members = groupMembers(pgid);
  return members === null || members.some((m) => m.state !== "Z");
}

/** State letter and process group of one process, or null when it does not exist. */
function statOf(pid: number): { state: string; pgid: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "", pgid: Number(fields[2]) };
  } catch {
    return null;
  }
}

/**
 * The fields of /proc/PID/stat after the command name (which may hold spaces and parentheses): [0] state, [1] ppid,
 * [2] pgrp, [3] session, ... [21] rss in pages; null when the process does not exist.
 */
function statFields(pid: number | string): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** Every process on the host with its stat fields, from one scan of /proc; null when /proc is not readable. */
function scanProcesses(): { pid: number; fields: string[] }[] | null {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return null;
  }
  const out: { pid: number; fields: string[] }[] = [];
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const fields = statFields(e);
    if (fields !== null) out.push({ pid: Number(e), fields });
  }
  return out;
}

/** Field 22 of /proc/PID/stat: start time in clock ticks since boot, which tells a process from a reused pid. */
export function processStartTime(pid: number): string | null {
  return statFields(pid)?.[19] ?? null;
}

let boot: string | null = null;
/** This boot's random id (/proc/sys/kernel/random/boot_id): records of processes and times since boot from an
 * earlier boot mean nothing now. "" where it cannot be read. */
export function bootId(): string {
  if (boot === null) {
    try {
      boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    } catch {
      boot = "";
    }
  }
  return boot;
}

/** State letter of one process ("R", "S", "Z", ...), or null when it does not exist. */
export function processState(pid: number): string | null {
  return statFields(pid)?.[0] ?? null;
}

/** The parent's PID, from /proc/PID/stat; null when the process is gone. */
export function parentPid(pid: number): number | null {
  const f = statFields(pid);
  return f === null ? null : Number(f[1]);
}

interface Member {
  pid: number;
  state: string;
  rssBytes: number;
}

/** Every process on the host by process group, from one scan of /proc; null when /proc is not readable. */
function scanGroups(): Map<number, Member[]> | null {
  const all = scanProcesses();
  if (all === null) return null;
  const groups = new Map<number, Member[]>();
  for (const { pid, fields } of all) {
    const pgid = Number(fields[2]);
    const list = groups.get(pgid) ?? [];
    list.push({ pid, state: fields[0]!, rssBytes: Number(fields[21]) * PAGE_SIZE });
    groups.set(pgid, list);
  }
  return groups;
}

/**
 * How old a scan may be when asked whether a group is gone: many units stopping at once share one scan instead of
 * each reading all of /proc every poll. A shared scan is used only when it lists the group: then its members that
 * were all dead at the time cannot have forked since, and a live one makes the caller poll again later. A group
 * the scan does not list may have been created after it, so that takes a fresh scan.
 */
const ALIVE_SCAN_MAX_AGE_MS = 15;
let aliveScan: { at: number; groups: Map<number, Member[]> | null } | null = null;

function groupMembers(pgid: number): Member[] | null {
  const now = Date.now();
  const cached = aliveScan !== null && now - aliveScan.at <= ALIVE_SCAN_MAX_AGE_MS ? aliveScan.groups : null;
  const hit = cached?.get(pgid);
  if (hit !== undefined) return hit;
  aliveScan = { at: now, groups: scanGroups() };
  return aliveScan.groups === null ? null : (aliveScan.groups.get(pgid) ?? []);
}

/** Memory figures may be up to this old: one /proc scan serves every unit's state for a while. */
const MEMORY_SCAN_MAX_AGE_MS = 1000;
let memoryScan: { at: number; groups: Map<number, Member[]> | null } | null = null;

/** Resident memory of every process in the group, from /proc; null when nothing of it is left. */
export function groupRssBytes(pgid: number): number | null {
  const now = Date.now();
  if (memoryScan === null || now - memoryScan.at > MEMORY_SCAN_MAX_AGE_MS)
    memoryScan = { at: now, groups: scanGroups() };
  const members = memoryScan.groups?.get(pgid)?.filter((m) => m.state !== "Z");
  if (members === undefined || members.length === 0) return null;
  return members.reduce((sum, m) => sum + m.rssBytes, 0);
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

/** Looks a user up by name or numeric id in /etc/passwd. */
export function lookupUser(user: string, passwdPath = "/etc/passwd"): PasswdEntry | null {
  let text: string;
  try {
    text = readFileSync(passwdPath, "utf8");
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 7) continue;
    const entry = { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]!, shell: f[6]! };
    if (entry.name === user || (/^\d+$/.test(user) && entry.uid === Number(user))) return entry;
  }
  return null;
}

/** Looks a group up by name or numeric id in /etc/group. */
export function lookupGroup(group: string, groupPath = "/etc/group"): number | null {
  if (/^\d+$/.test(group)) return Number(group);
  let text: string;
  try {
    text = readFileSync(groupPath, "utf8");
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length >= 3 && f[0] === group) return Number(f[2]);
  }
  return null;
}

/**
 * Where a unit has no cgroup: the live processes of the group and session `leader` started (the runner makes every
 * process it spawns the leader of both), and their descendants while these still have their parent. A child that
 * called setsid and whose parent has exited is out of reach: only a cgroup finds that one.
 */
export function sessionProcesses(leader: number): number[] {
  const children = new Map<number, number[]>();
  const found = new Set<number>();
  const live = new Set<number>();
  for (const { pid, fields: f } of scanProcesses() ?? []) {
    if (f[0] !== "Z") live.add(pid);
    const ppid = Number(f[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    if (Number(f[2]) === leader || Number(f[3]) === leader) found.add(pid);
  }
  const queue = [...found];
  while (queue.length > 0) {
    for (const c of children.get(queue.pop()!) ?? []) {
      if (!found.has(c)) {
        found.add(c);
        queue.push(c);
      }
    }
  }
  return [...found].filter((p) => live.has(p) && p !== process.pid);
}

/** Resident memory of the given processes, from /proc; null when none of them is left. */
export function rssBytesOf(pids: number[]): number | null {
  let sum = 0;
  let any = false;
  for (const pid of pids) {
    try {
      sum += Number(readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[1]) * PAGE_SIZE;
      any = true;
    } catch {}
  }
  return any ? sum : null;
}
