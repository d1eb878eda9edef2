// A private Docker engine for tests: its own socket, data root and exec root in a temp dir, no bridge, no
// iptables (containers use network none or host), and a local image built from Debian's busybox-static (no pulls).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface PrivateDocker {
  dir: string;
  socket: string;
  pid: number;
  /** Runs the docker CLI against this engine; returns trimmed stdout. */
  cli(...args: string[]): string;
  /** Removes every container, kills the engine by its PID and removes the directory. */
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

export async function startPrivateDocker(): Promise<PrivateDocker> {
  // Short path: unix socket paths are limited to 108 bytes.
  const dir = mkdtempSync(join(tmpdir(), "berth-dk-"));
  const socket = join(dir, "docker.sock");
  const docker = which("docker")!;
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
  const pid = child.pid!;
  const cli = (...args: string[]): string =>
    execFileSync(docker, ["-H", `unix://${socket}`, ...args], {
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
    }).trim();
  const stop = async (): Promise<void> => {
    try {
      const ids = cli("ps", "-aq").split("\n").filter(Boolean);
      if (ids.length > 0) cli("rm", "-f", ...ids);
    } catch {}
    if (alive(pid)) process.kill(pid, "SIGTERM");
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
    if (alive(pid)) process.kill(pid, "SIGKILL");
    for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
    // containerd shims of this engine live under its exec root; by now they are gone with their containers.
    try {
      execFileSync("umount", ["-R", join(dir, "root")], { stdio: "ignore" });
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (existsSync(socket)) {
      try {
        cli("version", "--format", "{{.Server.Version}}");
        break;
      } catch {}
    }
    if (!alive(pid) || Date.now() > deadline) {
      await stop();
      throw new Error("private dockerd did not come up");
    }
    await sleep(100);
  }
  return { dir, socket, pid, cli, stop };
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
