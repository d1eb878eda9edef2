// A private Docker engine for tests: its own socket, data root and exec root in a temp dir, no bridge, no
// iptables (containers use network none or host), and a local image built from Debian's busybox-static (no pulls).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface PrivateDocker {
  dir: string;
  socket: string;
  /** The running engine's PID (a new one after restart()). */
  readonly pid: number;
  /** Runs the docker CLI against this engine; returns trimmed stdout. */
  cli(...args: string[]): string;
  /**
   * Stops the engine as an init system would (SIGTERM by PID: it stops its containers, no live-restore), unless
   * it is down already, and starts it again with the same command, data root and socket; resolves once it answers.
   */
  restart(): Promise<void>;
  /** Kills the engine with SIGKILL (a crash: its containers run on until it is started again, which kills them). */
  crash(): Promise<void>;
  /**
   * Removes every container (starting a crashed engine again for that), stops the engine by its PID and removes
   * the directory.
   */
  stop(): Promise<void>;
}

export function which(cmd: string): string | null {
  for (const d of ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin", "/sbin", "/bin"]) {
    if (existsSync(join(d, cmd))) return join(d, cmd);
  }
  return null;
}

export const dockerAvailable = (): boolean =>
  which("dockerd") !== null &&
  which("docker") !== null &&
  which("busybox") !== null &&
  process.getuid?.() === 0;

/** The container tests run in CI (scripts/setup.sh installs what they need): a missing piece fails, loudly. */
export function requireDocker(): void {
  if (!dockerAvailable())
    throw new Error(
      "the container tests need root, dockerd, docker and busybox: run scripts/setup.sh (docker.io, busybox-static)",
    );
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return "";
  }
}

/** Lazily unmounts whatever the engine mounted under dir (its data root, network namespaces), deepest first. */
function unmountUnder(dir: string): void {
  const mounts = readFileSafe("/proc/mounts")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(`${dir}/`))
    .sort()
    .reverse();
  for (const m of mounts) {
    try {
      execFileSync("umount", ["-l", m], { stdio: "ignore" });
    } catch {}
  }
}

export async function startPrivateDocker(): Promise<PrivateDocker> {
  // Short path: unix socket paths are limited to 108 bytes.
  const dir = mkdtempSync(join(tmpdir(), "berth-dk-"));
  const socket = join(dir, "docker.sock");
  const docker = which("docker")!;
  const spawnEngine = (): number => {
    const child: ChildProcess = spawn(
      which("dockerd")!,
      [
        "--host",
        `unix://${socket}`,
        "--data-root",
        join(dir, "root"),
        "--exec-root",
        join(dir, "exec"),
        "--pidfile",
        join(dir, "pid"),
        "--bridge=none",
        "--iptables=false",
        "--ip-forward=false",
        "--ip-masq=false",
      ],
      { stdio: ["ignore", "ignore", "ignore"], detached: false },
    );
    return child.pid!;
  };
  let pid = spawnEngine();
  /** Whether the engine ever came up (one that never did has nothing to clean up). */
  let answered = false;
  const cli = (...args: string[]): string =>
    execFileSync(docker, ["-H", `unix://${socket}`, ...args], {
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
    }).trim();
  /** SIGTERM, SIGKILL if it is still there after graceMs; resolves once the process is gone. */
  const terminate = async (graceMs: number): Promise<void> => {
    if (alive(pid)) process.kill(pid, "SIGTERM");
    for (let i = 0; i < graceMs / 100 && alive(pid); i++) await sleep(100);
    if (alive(pid)) process.kill(pid, "SIGKILL");
    for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
  };
  const stop = async (): Promise<void> => {
    // An engine that crashed (crash(), or a test that failed before restarting it) left its containers running:
    // started again, it stops them.
    if (answered && !alive(pid)) {
      pid = spawnEngine();
      await waitUp().catch(() => {});
    }
    try {
      const ids = cli("ps", "-aq").split("\n").filter(Boolean);
      if (ids.length > 0) cli("rm", "-f", ...ids);
    } catch {}
    await terminate(10_000);
    // containerd shims of this engine live under its exec root; by now they are gone with their containers.
    unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  };
  const waitUp = async (): Promise<void> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (existsSync(socket)) {
        try {
          cli("version", "--format", "{{.Server.Version}}");
          answered = true;
          return;
        } catch {}
      }
      if (!alive(pid) || Date.now() > deadline) throw new Error("private dockerd did not come up");
      await sleep(100);
    }
  };
  const restart = async (): Promise<void> => {
    // Past dockerd's own shutdown timeout (15 s), so its containers are stopped by dockerd, not left to us.
    await terminate(30_000);
    pid = spawnEngine();
    await waitUp();
  };
  const crash = async (): Promise<void> => {
    // The engine's containerd dies with it (its parent-death signal); a new engine that still sees it takes it
    // for running and waits for it in vain, so wait for it too.
    const containerd = Number(readFileSafe(join(dir, "exec", "containerd", "containerd.pid")));
    if (alive(pid)) process.kill(pid, "SIGKILL");
    for (let i = 0; i < 100 && (alive(pid) || (containerd > 0 && alive(containerd))); i++) await sleep(100);
  };
  try {
    await waitUp();
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    dir,
    socket,
    get pid() {
      return pid;
    },
    cli,
    restart,
    crash,
    stop,
  };
}

/** Imports a one-layer image (busybox and its applet links) as `tag`. */
export function buildBusyboxImage(d: PrivateDocker, tag = "local/busybox"): void {
  const rootfs = join(d.dir, "rootfs");
  mkdirSync(join(rootfs, "bin"), { recursive: true });
  copyFileSync(which("busybox")!, join(rootfs, "bin", "busybox"));
  for (const app of ["sh", "sleep", "echo", "cat", "true", "false", "trap", "kill", "ls", "env"]) {
    symlinkSync("busybox", join(rootfs, "bin", app));
  }
  const tar = join(d.dir, "rootfs.tar");
  execFileSync("tar", ["-C", rootfs, "-cf", tar, "."]);
  execFileSync(which("docker")!, ["-H", `unix://${d.socket}`, "import", tar, tag], { stdio: "ignore" });
}
