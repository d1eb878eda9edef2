// At-most-once probes: units that hold an exclusive file lock (flock(1)) while they run. A copy that finds its
// lock taken appends a line to the `doubles` file and exits 1, so any overlap of two runs of one unit is recorded
// whatever happens to the cluster afterwards. Every start is appended to the `starts` file (restarts show there). The same script runs on the host (process units) and inside
// containers (the probe directory is bind-mounted at /probe; the image carries flock and its libraries), so a
// container copy and a host copy of a unit exclude each other too.
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  type Stats,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type PrivateDocker, which } from "../support/docker.ts";

export const PROBE_IMAGE = "local/probe";
/** flock's exit status when the lock is taken (-E): any other failure (a killed child) is not a double run. */
const TAKEN = 200;

export class ProbeKit {
  readonly dir: string;
  readonly script: string;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "berth-probe-"));
    mkdirSync(join(this.dir, "locks"));
    this.script = join(this.dir, "probe.sh");
    // $1: the lock's name; $2: a marker for `ps` (unused here); $3: `stdin` = hold the lock until stdin closes (a
    // docker-run container whose client died), else sleep. No `exec`: the shell must live to see flock's status.
    writeFileSync(
      this.script,
      `#!/bin/sh
d=$(dirname "$0")
echo "$1 $$" >> "$d/starts"
if [ "$3" = stdin ]; then hold="cat"; else hold="sleep 100000"; fi
flock -n -E ${TAKEN} "$d/locks/$1" $hold
if [ $? -eq ${TAKEN} ]; then t=$(date +%s.%N); case $t in *N) t=$(date +%s);; esac; echo "$t $1 double run (pid $$)" >> "$d/doubles"; exit 1; fi
`,
    );
    chmodSync(this.script, 0o755);
  }

  /** ExecStart= of a process probe; `lock` may hold specifiers (%n, %m). */
  execStart(lock: string, marker: string): string {
    return `${this.script} ${lock} ${marker}`;
  }

  /** The shell command of a docker-run probe on `machine`: the `docker run` client's stdin is a pipe from the
   * probe's own `sleep`, and the container holds the lock until its stdin closes, so the container lives as long
   * as the unit's processes (a SIGKILLed client alone would leave it running). */
  dockerRunCommand(socket: string, name: string, machine: string): string {
    return `sleep 100000 | ${which("docker")} -H unix://${socket} run -i --rm --name ${this.containerName(name, machine)} --label berth-probe=${machine} --network none -v ${this.dir}:/probe ${PROBE_IMAGE} /bin/sh /probe/probe.sh ${name} - stdin`;
  }

  containerName(name: string, machine: string): string {
    return `probe-${name.replace(/[@.]/g, "-")}-${machine}`;
  }

  /** A docker-run unit in fleet's style (see dockerRunCommand). */
  dockerRunService(socket: string, name: string, marker: string): string {
    const container = this.containerName(name, "%m");
    const docker = `${which("docker")} -H unix://${socket}`;
    return `[Unit]
Description=docker-run probe
[Service]
ExecStartPre=-${docker} rm -f ${container}
ExecStart=/bin/sh -c "${this.dockerRunCommand(socket, name, "%m")}" ${marker}
ExecStop=-${docker} stop -t 2 ${container}
Restart=on-failure
RestartSec=1
`;
  }

  /** A [Container] unit running the probe. Its name carries the machine: all nodes share one engine here, and a
   * unit starting on one machine removes a container of its own name (as a leftover), which would hide a double. */
  containerService(name: string, marker: string): string {
    return `[Unit]
Description=[Container] probe
[Container]
Image=${PROBE_IMAGE}
Network=none
ContainerName=${this.containerName(name, "%m")}
Volume=${this.dir}:/probe
Exec=/bin/sh /probe/probe.sh ${name} ${marker}
[Service]
Restart=on-failure
RestartSec=1
TimeoutStopSec=2
`;
  }

  /** How many times probes started (all of them, or those of one lock). */
  starts(lock?: string): number {
    const f = join(this.dir, "starts");
    const lines = existsSync(f) ? readFileSync(f, "utf8").trim().split("\n").filter(Boolean) : [];
    return lock === undefined ? lines.length : lines.filter((l) => l.split(" ")[0] === lock).length;
  }

  /** Every double run recorded so far, one line each. */
  doubles(): string[] {
    const f = join(this.dir, "doubles");
    return existsSync(f) ? readFileSync(f, "utf8").trim().split("\n").filter(Boolean) : [];
  }

  /**
   * Whether some process holds the lock now (one lock holder = the probe runs), read from /proc/locks: taking the
   * lock to find out would make a probe starting at that moment record a double run.
   */
  held(lock: string): boolean {
    let st: Stats;
    try {
      st = statSync(join(this.dir, "locks", lock));
    } catch {
      return false;
    }
    // /proc/locks names the file as major:minor:inode, the device numbers in hex (Linux's new_encode_dev).
    const dev = `${((st.dev >> 8) & 0xfff).toString(16).padStart(2, "0")}:${((st.dev & 0xff) | ((st.dev >> 12) & 0xfff00)).toString(16).padStart(2, "0")}:${st.ino}`;
    return readFileSync("/proc/locks", "utf8")
      .split("\n")
      .some((l) => / FLOCK /.test(l) && !/->/.test(l) && l.split(/\s+/)[5] === dev);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Running containers of the engine (by label filter): the host PID of each one's init (which leads its own process
 * group) and the machine it runs for (label berth.machine of a [Container] unit, berth-probe of a docker-run
 * probe). A container that is gone by the time it is inspected is left out.
 */
export function runningContainers(d: PrivateDocker, filter?: string): { pid: number; machine: string }[] {
  const ids = d
    .cli("ps", "-q", ...(filter ? ["--filter", filter] : []))
    .split("\n")
    .filter(Boolean);
  const fmt = '{{.State.Pid}} {{index .Config.Labels "berth.machine"}}{{index .Config.Labels "berth-probe"}}';
  const out: { pid: number; machine: string }[] = [];
  for (const id of ids) {
    try {
      const [pid, machine = ""] = d.cli("inspect", "--format", fmt, id).split(" ");
      if (Number(pid) > 0) out.push({ pid: Number(pid), machine });
    } catch {}
  }
  return out;
}

/** Imports an image of busybox plus flock(1) and the libraries it loads (no pulls: the host's own files). */
export function buildProbeImage(d: PrivateDocker): void {
  const rootfs = join(d.dir, "probe-rootfs");
  mkdirSync(join(rootfs, "bin"), { recursive: true });
  copyFileSync(which("busybox")!, join(rootfs, "bin", "busybox"));
  for (const app of ["sh", "sleep", "cat", "date", "dirname", "echo", "true"])
    execFileSync("ln", ["-s", "busybox", join(rootfs, "bin", app)]);
  const flock = which("flock")!;
  const libs = execFileSync("ldd", [flock], { encoding: "utf8" })
    .split("\n")
    .map((l) => /(\/\S+)\s+\(0x/.exec(l)?.[1])
    .filter((p): p is string => p !== undefined);
  for (const f of [flock, ...libs]) {
    mkdirSync(join(rootfs, dirname(f)), { recursive: true });
    copyFileSync(f, join(rootfs, f));
  }
  execFileSync("ln", ["-s", flock, join(rootfs, "bin", "flock")]);
  const tar = join(d.dir, "probe-rootfs.tar");
  execFileSync("tar", ["-C", rootfs, "-cf", tar, "."]);
  d.cli("import", tar, PROBE_IMAGE);
}
