// "Machines" on one host for the multi-host tests. Each has its own network namespace (a veth pair onto a bridge
// in a "switch" namespace, which doubles as the operator's workstation at 172.17.8.1), its own mount namespace
// (overlays put the tree deploy/install.sh --root staged for it over the host's /etc, /usr/local and /var/lib, and
// a fresh tmpfs on /run), its own UTS namespace (hostname) and its own cgroup (what systemd's Delegate=yes gives
// the service). Nothing is created in the host's network namespace: every address lives in namespaces made here.
//
// A machine's namespaces are held by one long-lived process (its "init"), so the node can stop and start again
// (an upgrade) into the same mounts. Teardown kills every process in a machine by PID (`ip netns del` alone stops
// nothing), then removes its cgroup, namespace and directories; it runs from afterAll and on process exit, and a
// run killed before it could clean up is swept by the next one (names carry the owning test process's PID).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type RunOptions, type RunResult, runProcess, waitFor } from "./cluster.ts";
import { signalAndWait } from "./processes.ts";

export const SUBNET = "172.17.8";
export const WORKSTATION_IP = `${SUBNET}.1`;
export const INSTALL_SH = resolve(import.meta.dirname, "../../deploy/install.sh");

const PREFIX = "berth-mh";
const OWN = `${PREFIX}-${process.pid}`;
const CGROUP_ROOT = "/sys/fs/cgroup/unified";
/** systemd's default PATH for services. */
const SERVICE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function ipCmd(args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Root and `ip` are required: say so loudly rather than skip. */
export function requireNamespaces(): void {
  if (process.getuid?.() !== 0)
    throw new Error("the multi-host test needs root (network and mount namespaces)");
  try {
    ipCmd(["netns", "list"]);
  } catch (e) {
    throw new Error(`the multi-host test needs iproute2's ip with netns support: ${(e as Error).message}`);
  }
  if (!existsSync(join(CGROUP_ROOT, "cgroup.procs")))
    throw new Error(`the multi-host test gives each machine a cgroup under ${CGROUP_ROOT}, which is missing`);
}

/** The switch namespace with its bridge; the operator's workstation (172.17.8.1) lives in it too. */
export class Network {
  readonly netns = `${OWN}-sw`;
  /** Files of the test itself (secrets, unit files), removed with the network. */
  readonly dir = mkdtempSync(join(tmpdir(), `${OWN}-files-`));
  private constructor() {}

  static create(): Network {
    sweepStale();
    const n = new Network();
    live.add(n);
    ipCmd(["netns", "add", n.netns]);
    ipCmd(["-n", n.netns, "link", "set", "lo", "up"]);
    ipCmd(["-n", n.netns, "link", "add", "br0", "type", "bridge"]);
    ipCmd(["-n", n.netns, "addr", "add", `${WORKSTATION_IP}/24`, "dev", "br0"]);
    ipCmd(["-n", n.netns, "link", "set", "br0", "up"]);
    return n;
  }

  /** A machine's namespace, cabled to the bridge: eth0 inside, port `m<index>` on the switch. */
  plug(machineNetns: string, index: number, address: string): void {
    ipCmd([
      "-n",
      this.netns,
      "link",
      "add",
      `m${index}`,
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      machineNetns,
    ]);
    ipCmd(["-n", this.netns, "link", "set", `m${index}`, "master", "br0", "up"]);
    ipCmd(["-n", machineNetns, "link", "set", "lo", "up"]);
    ipCmd(["-n", machineNetns, "addr", "add", `${address}/24`, "dev", "eth0"]);
    ipCmd(["-n", machineNetns, "link", "set", "eth0", "up"]);
  }

  /** The machine's cable pulled (its switch port down) or put back. */
  setPort(index: number, up: boolean): void {
    ipCmd(["-n", this.netns, "link", "set", `m${index}`, up ? "up" : "down"]);
  }

  /** Runs a command on the workstation (the switch namespace: it reaches every machine on 172.17.8.0/24). */
  run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return runProcess("nsenter", [`--net=/run/netns/${this.netns}`, "--", cmd, ...args], opts);
  }

  /** The command prefix that runs a program on the workstation. */
  prefix(): string[] {
    return ["nsenter", `--net=/run/netns/${this.netns}`, "--"];
  }

  destroy(): void {
    live.delete(this);
    removeNetns(this.netns);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface MachineInstall {
  binary: string;
  /** The #cloud-config user-data (install.sh --cloud-config): how the machine finds its cluster, and more. */
  userData: string;
  secretFile: string;
  /** This machine's own metadata (install.sh --metadata: node.env, which wins over the user-data's). */
  metadata?: string;
}

/** One machine: namespaces, staged root, cgroup, and the node started as deploy/berth-node.service starts it. */
export class Machine {
  readonly netns: string;
  /** Holds the machine's own files: root/ (install.sh --root), work/ (overlay work dirs), journal.log. */
  readonly dir: string;
  readonly root: string;
  readonly cgroup: string;
  private init: ChildProcess | null = null;
  private nodeProc: ChildProcess | null = null;

  constructor(
    readonly network: Network,
    readonly index: number,
    readonly name: string,
    readonly ip: string,
  ) {
    this.netns = `${OWN}-${name}`;
    this.dir = mkdtempSync(join(tmpdir(), `${OWN}-${name}-`));
    this.root = join(this.dir, "root");
    this.cgroup = join(CGROUP_ROOT, `${OWN}-${name}`);
    live.add(this);
    ipCmd(["netns", "add", this.netns]);
    network.plug(this.netns, index, this.ip);
  }

  /** deploy/install.sh --root: the layout an operator's install would leave on the machine. */
  install(opts: MachineInstall): void {
    execFileSync(
      INSTALL_SH,
      [
        "--root",
        this.root,
        "--name",
        this.name,
        "--peer-ip",
        this.ip,
        "--cloud-config",
        opts.userData,
        "--secret-file",
        opts.secretFile,
        "--binary",
        opts.binary,
        ...(opts.metadata ? ["--metadata", opts.metadata] : []),
      ],
      { stdio: ["ignore", "ignore", "pipe"] }, // a failure's message carries install.sh's reason
    );
  }

  /** Brings the machine up: its namespaces and mounts, held by one process, in its own cgroup. */
  async boot(): Promise<void> {
    const work = join(this.dir, "work");
    for (const d of ["etc", "usr/local", "var/lib"]) {
      mkdirSync(join(this.root, d), { recursive: true });
      mkdirSync(join(work, d.replace("/", "-")), { recursive: true });
    }
    const ready = join(this.dir, "ready");
    rmSync(ready, { force: true });
    const overlay = (d: string) =>
      `mount -t overlay overlay -o lowerdir=/${d},upperdir=${this.root}/${d},workdir=${work}/${d.replace("/", "-")} /${d}`;
    const script = [
      "set -e",
      overlay("etc"),
      overlay("usr/local"),
      overlay("var/lib"),
      "mount -t tmpfs -o mode=0755 tmpfs /run",
      "mkdir -p /run/sshd", // what the machine's sshd expects (tmpfiles.d on a real one)
      `hostname ${this.name}`,
      `touch ${ready}`,
      "exec sleep infinity",
    ].join("\n");
    writeFileSync(join(this.dir, "init.sh"), `${script}\n`);
    mkdirSync(this.cgroup, { recursive: true });
    this.init = spawn(
      "/bin/sh",
      [
        ...inCgroup(this.cgroup),
        "nsenter",
        `--net=/run/netns/${this.netns}`,
        "--",
        "unshare",
        "--mount",
        "--uts",
        "--propagation",
        "private",
        "/bin/sh",
        join(this.dir, "init.sh"),
      ],
      { stdio: ["ignore", "ignore", this.journalFd()] },
    );
    const init = this.init;
    await waitFor(`machine ${this.name} booted`, () => {
      if (!running(init)) throw new Error(`its init exited ${init.exitCode}: ${this.journal()}`);
      return existsSync(ready);
    });
  }

  /** What the machine's processes wrote (init, node, anything started with run()). */
  journal(): string {
    try {
      return readFileSync(join(this.dir, "journal.log"), "utf8");
    } catch {
      return "";
    }
  }

  /** The ends of what to read when a test fails: the journal, and the log the supervisor keeps while its node is away. */
  logTails(lines = 60): string {
    const tail = (text: string) => text.split("\n").slice(-lines).join("\n");
    let supervisor = "";
    try {
      supervisor = readFileSync(join(this.root, "var/lib/berth/agent/supervisor.log"), "utf8");
    } catch {}
    return `--- ${this.name}: journal ---\n${tail(this.journal())}\n--- ${this.name}: supervisor.log ---\n${tail(supervisor)}`;
  }

  private journalFd(): number {
    const fd = openSync(join(this.dir, "journal.log"), "a");
    setImmediate(() => closeSync(fd)); // the child has its own copy by then
    return fd;
  }

  /** The command prefix that runs a program inside the machine (all its namespaces). */
  prefix(): string[] {
    const pid = this.init?.pid;
    if (!pid || !this.init || !running(this.init)) throw new Error(`machine ${this.name} is not running`);
    return ["nsenter", "-t", String(pid), "-n", "-m", "-u", "--wd=/", "--"];
  }

  run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
    const [nsenter, ...rest] = this.prefix();
    return runProcess(nsenter!, [...rest, cmd, ...args], opts);
  }

  /** The machine's own `berth` (/usr/local/bin/berth), as an admin on it: no flags, it finds the node's socket. */
  berth(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return this.run("/usr/local/bin/berth", args, opts);
  }

  /**
   * Starts the node as systemd starts deploy/berth-node.service (read from the staged root): its Environment=
   * and EnvironmentFile=, its StateDirectory and RuntimeDirectory, its ExecStart, in the machine's cgroup.
   */
  startNode(): ChildProcess {
    if (this.nodeProc && running(this.nodeProc)) throw new Error(`${this.name}: node already running`);
    const unit = parseUnit(readFileSync(join(this.root, "etc/systemd/system/berth-node.service"), "utf8"));
    const env: Record<string, string> = { PATH: SERVICE_PATH };
    for (const e of unit.environment) Object.assign(env, parseEnvLine(e));
    for (const f of unit.environmentFiles) Object.assign(env, parseEnvFile(this.readFile(f)));
    const dirs = [
      ...unit.stateDirectories.map((d) => `mkdir -p -m ${unit.stateMode} /var/lib/${d}`),
      ...unit.runtimeDirectories.map((d) => `mkdir -p -m ${unit.runtimeMode} /run/${d}`),
    ];
    this.nodeProc = spawn(
      "/bin/sh",
      [
        ...inCgroup(this.cgroup),
        ...this.prefix(),
        "/bin/sh",
        "-c",
        `${dirs.join(" && ")} && exec "$@"`,
        "berth-node",
        ...unit.execStart,
      ],
      { env, stdio: ["ignore", this.journalFd(), this.journalFd()] },
    );
    return this.nodeProc;
  }

  /** A long-running program of the machine (a daemon such as the discovery service), in its cgroup and journal. */
  startService(cmd: string, args: string[]): ChildProcess {
    return spawn("/bin/sh", [...inCgroup(this.cgroup), ...this.prefix(), cmd, ...args], {
      env: { PATH: SERVICE_PATH },
      stdio: ["ignore", this.journalFd(), this.journalFd()],
    });
  }

  get nodePid(): number | null {
    return this.nodeProc && running(this.nodeProc) ? (this.nodeProc.pid ?? null) : null;
  }

  /** `systemctl stop` with KillMode=process: SIGTERM to the node alone; its supervisor and units stay. */
  async stopNode(): Promise<void> {
    const p = this.nodeProc;
    if (p) await signalAndWait(p, "SIGTERM");
  }

  /** A file of the machine as its processes see it (the staged root holds what install.sh wrote). */
  readFile(path: string): string {
    return readFileSync(join(this.root, path), "utf8");
  }

  /** Every process in the machine: in its network namespace or its cgroup. */
  pids(): number[] {
    const found = new Set<number>();
    try {
      for (const p of ipCmd(["netns", "pids", this.netns]).split(/\s+/)) if (p) found.add(Number(p));
    } catch {}
    for (const p of cgroupPids(this.cgroup)) found.add(p);
    found.delete(process.pid);
    return [...found].filter(isRunning);
  }

  /** The machine dies: SIGKILL to every process in it, by PID, until none is left. */
  killAll(): void {
    for (let round = 0; round < 50; round++) {
      const pids = this.pids();
      if (pids.length === 0) return;
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
      execFileSync("sleep", ["0.05"]);
    }
    throw new Error(`${this.name}: processes still alive after SIGKILL: ${this.pids().join(" ")}`);
  }

  destroy(): void {
    live.delete(this);
    try {
      this.killAll();
    } finally {
      removeCgroupTree(this.cgroup);
      removeNetns(this.netns);
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** Not yet exited (a process killed by a signal has no exit code, only a signal code). */
function running(p: ChildProcess): boolean {
  return p.exitCode === null && p.signalCode === null;
}

/** A /bin/sh argv prefix that moves itself into `cgroup` and then execs the rest (which keeps its PID). */
function inCgroup(cgroup: string): string[] {
  return ["-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup];
}

interface ServiceUnit {
  execStart: string[];
  environment: string[];
  environmentFiles: string[];
  stateDirectories: string[];
  stateMode: string;
  runtimeDirectories: string[];
  runtimeMode: string;
}

/** The [Service] settings the harness acts on, as systemd reads them (ExecStart split on spaces: no quoting used). */
export function parseUnit(text: string): ServiceUnit {
  const u: ServiceUnit = {
    execStart: [],
    environment: [],
    environmentFiles: [],
    stateDirectories: [],
    stateMode: "0755",
    runtimeDirectories: [],
    runtimeMode: "0755",
  };
  for (const raw of text.split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(raw.trim());
    if (!m) continue;
    const [, key, value] = m as unknown as [string, string, string];
    if (key === "ExecStart") u.execStart = value.split(/\s+/).filter(Boolean);
    else if (key === "Environment") u.environment.push(value);
    else if (key === "EnvironmentFile") u.environmentFiles.push(value.replace(/^-/, ""));
    else if (key === "StateDirectory") u.stateDirectories.push(...value.split(/\s+/));
    else if (key === "StateDirectoryMode") u.stateMode = value;
    else if (key === "RuntimeDirectory") u.runtimeDirectories.push(...value.split(/\s+/));
    else if (key === "RuntimeDirectoryMode") u.runtimeMode = value;
  }
  if (u.execStart.length === 0) throw new Error("the unit has no ExecStart=");
  return u;
}

function parseEnvLine(line: string): Record<string, string> {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
  return m ? { [m[1]!]: m[2]! } : {};
}

export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) if (!/^\s*#/.test(line)) Object.assign(out, parseEnvLine(line));
  return out;
}

/**
 * Whether `pid` is a process that has not exited. A zombie is not: here PID 1 is no systemd and may be slow to reap
 * the orphans (a killed supervisor's units) that end up its children.
 */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function cgroupPids(dir: string): number[] {
  const out: number[] = [];
  try {
    for (const p of readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n")) if (p) out.push(Number(p));
    for (const e of readdirSync(dir, { withFileTypes: true }))
      if (e.isDirectory()) out.push(...cgroupPids(join(dir, e.name)));
  } catch {}
  return out;
}

function removeCgroupTree(dir: string): void {
  try {
    for (const e of readdirSync(dir, { withFileTypes: true }))
      if (e.isDirectory()) removeCgroupTree(join(dir, e.name));
    rmdirSync(dir);
  } catch {}
}

function removeNetns(name: string): void {
  try {
    ipCmd(["netns", "del", name]);
  } catch {}
}

/** Leftovers of runs whose test process is gone (killed before its exit handlers ran). */
function sweepStale(): void {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const stale = (name: string) => {
    const m = new RegExp(`^${PREFIX}-(\\d+)-`).exec(name);
    return m !== null && Number(m[1]) !== process.pid && !alive(Number(m[1]));
  };
  let names: string[] = [];
  try {
    names = ipCmd(["netns", "list"])
      .split("\n")
      .map((l) => l.split(" ")[0]!)
      .filter(Boolean);
  } catch {}
  const cgroups = readdirSync(CGROUP_ROOT).filter(stale);
  for (const ns of names.filter(stale)) {
    try {
      for (const p of ipCmd(["netns", "pids", ns]).split(/\s+/)) if (p) process.kill(Number(p), "SIGKILL");
    } catch {}
  }
  for (const cg of cgroups) for (const p of cgroupPids(join(CGROUP_ROOT, cg))) process.kill(p, "SIGKILL");
  if (names.some(stale) || cgroups.length > 0) execFileSync("sleep", ["0.2"]);
  for (const cg of cgroups) removeCgroupTree(join(CGROUP_ROOT, cg));
  for (const ns of names.filter(stale)) removeNetns(ns);
  for (const d of readdirSync(tmpdir()).filter(stale))
    rmSync(join(tmpdir(), d), { recursive: true, force: true });
}

/** Everything not yet destroyed, torn down (machines first) however the test process ends. */
const live = new Set<Network | Machine>();
export function destroyAll(): void {
  const all = [...live].sort((a, b) => Number(a instanceof Network) - Number(b instanceof Network));
  for (const x of all) {
    try {
      x.destroy();
    } catch {}
  }
}
process.on("exit", destroyAll);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    destroyAll();
    process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1));
  });
}
