// A cgroup per unit, as systemd keeps one per service: every process a unit starts is born in its group, so one
// that calls setsid (and leaves the process group and session the runner knows) is still found, signalled and
// killed. The groups live under the node's own cgroup: <own>/berth-units/<agent key>/<unit name>.
//
// Which hierarchy: cgroup v2 where /sys/fs/cgroup is cgroup2; else a cgroup2 mounted beside v1 controllers (hybrid
// hosts have a controller-less one at /sys/fs/cgroup/unified, whose groups still offer cgroup.kill and
// cgroup.freeze); else the v1 freezer hierarchy (plus pids, where mounted). Where no group can be made (no cgroup
// file system, no write access) UnitCgroups.open returns null and the runner falls back to a process scan.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { processState } from "./proc.ts";

/** Where this node may make groups: one directory per hierarchy, the first being the one that kills and freezes. */
export type CgroupPlacement =
  | { kind: "v2"; dir: string }
  | { kind: "v1"; freezer: string; pids: string | null };

interface Mount {
  point: string;
  /** The path inside the hierarchy that is mounted at `point` (usually "/"). */
  root: string;
  fstype: string;
  superOptions: string[];
}

function mounts(mountinfo = "/proc/self/mountinfo"): Mount[] {
  let text: string;
  try {
    text = readFileSync(mountinfo, "utf8");
  } catch {
    return [];
  }
  const out: Mount[] = [];
  for (const line of text.split("\n")) {
    // "36 25 0:31 / /sys/fs/cgroup/freezer rw,relatime shared:14 - cgroup cgroup rw,freezer"
    const [left, right] = line.split(" - ");
    if (left === undefined || right === undefined) continue;
    const l = left.split(" ");
    const r = right.split(" ");
    if (r[0] !== "cgroup" && r[0] !== "cgroup2") continue;
    out.push({
      point: unescapeMount(l[4] ?? ""),
      root: unescapeMount(l[3] ?? ""),
      fstype: r[0],
      superOptions: (r[2] ?? "").split(","),
    });
  }
  return out;
}

const unescapeMount = (s: string): string =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

/** This process's cgroup path in a hierarchy: "0::/x" for cgroup2, "N:freezer:/x" for a v1 controller. */
function ownPath(m: Mount, procCgroup = "/proc/self/cgroup"): string | null {
  let text: string;
  try {
    text = readFileSync(procCgroup, "utf8");
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    const first = line.indexOf(":");
    const second = line.indexOf(":", first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    const match =
      m.fstype === "cgroup2"
        ? line.startsWith("0::")
        : controllers !== "" && controllers.split(",").every((c) => m.superOptions.includes(c));
    if (match) return path;
  }
  return null;
}

/** The directory of this process's own cgroup in the hierarchy mounted as `m`, or null when it is not visible. */
function ownDir(m: Mount): string | null {
  const path = ownPath(m);
  if (path === null) return null;
  const root = m.root === "/" ? "" : m.root;
  if (path !== root && !path.startsWith(`${root}/`)) return null;
  return join(m.point, path.slice(root.length));
}

/** mountOf's answers: mounts do not move under a running node, and reading mountinfo costs more than a move. */
const mountCache = new Map<string, Mount | null>();

/** The mount a directory lies in (the longest mount point that holds it). */
function mountOf(dir: string): Mount | null {
  const cached = mountCache.get(dir);
  if (cached !== undefined) return cached;
  let best: Mount | null = null;
  for (const m of mounts()) {
    const inside = dir === m.point || dir.startsWith(m.point.endsWith("/") ? m.point : `${m.point}/`);
    if (inside && (best === null || m.point.length > best.point.length)) best = m;
  }
  if (best !== null) mountCache.set(dir, best);
  return best;
}

/** The node's own cgroup in the hierarchy systemd would use on this host; null when there is none. */
export function detectPlacement(): CgroupPlacement | null {
  const all = mounts();
  const v2 =
    all.find((m) => m.fstype === "cgroup2" && m.point === "/sys/fs/cgroup") ??
    all.find((m) => m.fstype === "cgroup2");
  const v2dir = v2 === undefined ? null : ownDir(v2);
  if (v2dir !== null) return { kind: "v2", dir: v2dir };
  const freezer = all.find((m) => m.fstype === "cgroup" && m.superOptions.includes("freezer"));
  const pids = all.find((m) => m.fstype === "cgroup" && m.superOptions.includes("pids"));
  const freezerDir = freezer === undefined ? null : ownDir(freezer);
  if (freezerDir === null) return null;
  return { kind: "v1", freezer: freezerDir, pids: pids === undefined ? null : ownDir(pids) };
}

/** A name for one agent's directory: several nodes may share a host and a cgroup (tests, local clusters). */
export function agentKey(dataDir: string): string {
  return `node-${createHash("sha256").update(resolve(dataDir)).digest("hex").slice(0, 12)}`;
}

const UNITS_DIR = "berth-units";

/** The unit groups of one agent. */
export class UnitCgroups {
  private constructor(
    /** The agent's directory in each hierarchy (the first kills and freezes). */
    private readonly bases: string[],
  ) {}

  /**
   * Makes the agent's directory under `placement` and checks that this process may move itself into it and back
   * (which is how units are spawned inside their group). Null, with the reason logged, when it cannot.
   */
  static open(placement: CgroupPlacement | null, key: string, log: (l: string) => void): UnitCgroups | null {
    if (placement === null) return null;
    const parents =
      placement.kind === "v2"
        ? [placement.dir]
        : [placement.freezer, ...(placement.pids === null ? [] : [placement.pids])];
    const bases = parents.map((p) => join(p, UNITS_DIR, key));
    const made: string[] = [];
    try {
      for (const b of bases) {
        mkdirRetry(b);
        made.push(b);
        if (!existsSync(join(b, "cgroup.procs"))) throw new Error(`${b} is not a cgroup`);
      }
      // The round trip each spawn makes: into the group and back home.
      const home = bases.map(homeOf);
      const moved = new UnitCgroup(bases).adopt(process.pid);
      for (const h of home) writeFileSync(join(h, "cgroup.procs"), String(process.pid));
      if (!moved) throw new Error(`cannot move a process into ${bases[0]}`);
      return new UnitCgroups(bases);
    } catch (e) {
      for (const b of made.reverse()) removeDirs(b);
      log(
        `agent: no cgroup for units (${(e as Error).message}); units are tracked by process group and session`,
      );
      return null;
    }
  }

  /** The group of one unit, made if missing; null when it cannot be made. */
  group(unit: string): UnitCgroup | null {
    try {
      const dirs = this.bases.map((b) => join(b, unit));
      for (const d of dirs) mkdirRetry(d);
      return new UnitCgroup(dirs);
    } catch {
      return null;
    }
  }

  /** Removes the agent's directories and every empty unit group left in them. */
  close(): void {
    for (const b of this.bases) removeDirs(b);
  }
}

/** One unit's group (a directory per hierarchy; the first kills and freezes). */
export class UnitCgroup {
  constructor(readonly dirs: string[]) {}

  /** The directory that names the group (recorded for cleanup after a crash). */
  get path(): string {
    return this.dirs[0]!;
  }

  /**
   * Runs `spawn` with this process inside the group, then moves it back: what it forks is born in the group, so no
   * child can fork before being moved. Synchronous, so nothing else of this process forks meanwhile. Should the
   * move fail, the child is moved in right after it started instead (a child it forked meanwhile would escape).
   */
  spawnInside<T extends { pid?: number | undefined }>(spawn: () => T): T {
    const home = this.dirs.map(homeOf);
    const moved: string[] = [];
    let inside = true;
    try {
      for (const d of this.dirs) {
        writeFileSync(join(d, "cgroup.procs"), String(process.pid));
        moved.push(home[this.dirs.indexOf(d)]!);
      }
    } catch {
      inside = false;
    }
    let child: T;
    try {
      child = spawn();
    } finally {
      for (const h of moved) writeFileSync(join(h, "cgroup.procs"), String(process.pid));
    }
    if (!inside && child.pid !== undefined) this.adopt(child.pid);
    return child;
  }

  /** Moves a running process into the group; false when it cannot be moved. */
  adopt(pid: number): boolean {
    try {
      for (const d of this.dirs) writeFileSync(join(d, "cgroup.procs"), String(pid));
      return true;
    } catch {
      return false;
    }
  }

  /** Live (non-zombie) processes of the unit. */
  pids(): number[] {
    let text: string;
    try {
      text = readFileSync(join(this.path, "cgroup.procs"), "utf8");
    } catch {
      return [];
    }
    const out: number[] = [];
    for (const l of text.split("\n")) {
      const pid = Number(l);
      if (l === "" || pid === process.pid) continue;
      const s = processState(pid);
      if (s !== null && s !== "Z") out.push(pid);
    }
    return out;
  }

  /** Is anything of the unit still running. */
  alive(): boolean {
    return this.pids().length > 0;
  }

  /**
   * Sends a signal to every process of the unit, again to those forked meanwhile until no new one shows up (as
   * systemd does). Returns how many were signalled.
   */
  signal(sig: NodeJS.Signals): number {
    const done = new Set<number>();
    for (let round = 0; round < 10; round++) {
      const fresh = this.pids().filter((p) => !done.has(p));
      if (fresh.length === 0) break;
      for (const p of fresh) {
        done.add(p);
        try {
          process.kill(p, sig);
        } catch {}
      }
    }
    return done.size;
  }

  /** SIGKILL to every process at once: cgroup.kill where the kernel has it, else freeze, kill each, thaw. */
  killAll(): void {
    if (this.pids().length === 0) return;
    const kill = join(this.path, "cgroup.kill");
    if (existsSync(kill)) {
      try {
        writeFileSync(kill, "1");
        return;
      } catch {}
    }
    const frozen = this.freezeSync();
    for (const p of this.pids()) {
      try {
        process.kill(p, "SIGKILL");
      } catch {}
    }
    if (frozen) this.thaw();
  }

  /** Stops every process of the unit where it stands (cgroup.freeze, or the v1 freezer); false if it cannot. */
  async freeze(timeoutMs = 1000): Promise<boolean> {
    if (!this.requestFreeze()) return false;
    const until = Date.now() + timeoutMs;
    while (!this.isFrozen()) {
      if (Date.now() >= until) return false;
      await new Promise((r) => setTimeout(r, 5));
    }
    return true;
  }

  thaw(): void {
    try {
      if (existsSync(join(this.path, "cgroup.freeze"))) writeFileSync(join(this.path, "cgroup.freeze"), "0");
      else writeFileSync(join(this.path, "freezer.state"), "THAWED");
    } catch {}
  }

  /** Removes the group once it is empty, trying for up to `waitMs`; false when it is still there. */
  async remove(waitMs = 2000): Promise<boolean> {
    const until = Date.now() + waitMs;
    for (;;) {
      if (this.dirs.every(tryRmdir)) return true;
      if (Date.now() >= until) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** remove() for a caller that must not yield (the crash-time cleanup in the agent's constructor). */
  removeSync(waitMs = 1000): boolean {
    for (let i = 0; i < waitMs; i++) {
      if (this.dirs.every(tryRmdir)) return true;
      pause(1);
    }
    return false;
  }

  private requestFreeze(): boolean {
    try {
      if (existsSync(join(this.path, "cgroup.freeze"))) writeFileSync(join(this.path, "cgroup.freeze"), "1");
      else writeFileSync(join(this.path, "freezer.state"), "FROZEN");
      return true;
    } catch {
      return false;
    }
  }

  private isFrozen(): boolean {
    try {
      if (existsSync(join(this.path, "cgroup.events")))
        return /^frozen 1$/m.test(readFileSync(join(this.path, "cgroup.events"), "utf8"));
      return readFileSync(join(this.path, "freezer.state"), "utf8").trim() === "FROZEN";
    } catch {
      return false;
    }
  }

  /** For killAll, which must not yield (a crash-time cleanup runs in a constructor): waits at most 1 s. */
  private freezeSync(): boolean {
    if (!this.requestFreeze()) return false;
    for (let i = 0; i < 1000 && !this.isFrozen(); i++) pause(1);
    return true;
  }
}

const tick = new Int32Array(new SharedArrayBuffer(4));
/** Blocks this thread for `ms` (only where a caller cannot yield). */
const pause = (ms: number): void => void Atomics.wait(tick, 0, 0, ms);

/** The directory of this process's current cgroup in the hierarchy that holds `dir`. */
function homeOf(dir: string): string {
  const m = mountOf(dir);
  const own = m === null ? null : ownDir(m);
  if (own === null) throw new Error(`cannot tell this process's cgroup in the hierarchy of ${dir}`);
  return own;
}

/** mkdir -p; retried because another agent on the host may remove the shared berth-units directory meanwhile. */
function mkdirRetry(dir: string): void {
  for (let i = 0; ; i++) {
    try {
      mkdirSync(dir, { recursive: true });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT" || i >= 3) throw e;
    }
  }
}

function tryRmdir(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT";
  }
}

/** Removes `base`'s empty child groups, `base`, and the shared berth-units above it when no other agent uses it. */
function removeDirs(base: string): void {
  try {
    for (const e of readdirSync(base, { withFileTypes: true }))
      if (e.isDirectory()) tryRmdir(join(base, e.name));
  } catch {}
  // rmdir fails (EBUSY, ENOTEMPTY) on a group that still has processes or children: those stay.
  if (tryRmdir(base)) tryRmdir(join(base, ".."));
}

/**
 * The processes of a unit's group by pid, each with its command line as systemctl's CGroup: tree shows it
 * (argv joined by spaces; a kernel thread or a zombie's name in brackets). Read by whoever asks for a status,
 * from the group's directory the agent reports. Missing group: [].
 */
export function groupProcesses(dir: string): { pid: number; command: string }[] {
  let text: string;
  try {
    text = readFileSync(join(dir, "cgroup.procs"), "utf8");
  } catch {
    return [];
  }
  const pids = text
    .split("\n")
    .filter((l) => l !== "")
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && pid > 0 && processState(pid) !== "Z")
    .sort((a, b) => a - b);
  return pids.map((pid) => ({ pid, command: commandLine(pid) }));
}

function commandLine(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    while (argv.length > 0 && argv[argv.length - 1] === "") argv.pop();
    if (argv.length > 0) return argv.join(" ");
  } catch {
    // gone meanwhile: its name, if still readable
  }
  try {
    return `[${readFileSync(`/proc/${pid}/comm`, "utf8").trim()}]`;
  } catch {
    return "[?]";
  }
}
