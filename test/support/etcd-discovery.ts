// Debian's etcd-discovery (the discovery.etcd.io service) in front of a real etcd, for the discovery tests. Its
// config path is fixed (/etc/etcd-discovery/etcd-discovery.conf) and the package's default binds :8087 on every
// interface, so it runs in a private mount namespace where a config of the test's own is bound over that path,
// listening on the test's loopback address only. Stopped by PID (SIGKILL); unshare execs it, so the PID is its own.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, signalAndWait, waitFor } from "./processes.ts";

export const DISCOVERY_BINARY = "/usr/bin/discovery.etcd.io";
export const FIXED_CONFIG = "/etc/etcd-discovery/etcd-discovery.conf";

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

export class EtcdDiscoveryService {
  private constructor(
    readonly url: string,
    private readonly dir: string,
    private readonly proc: ChildProcess,
  ) {}

  static async start(host: string, etcdUrl: string): Promise<EtcdDiscoveryService> {
    if (!existsSync(DISCOVERY_BINARY) || !existsSync(FIXED_CONFIG))
      throw new Error(`${DISCOVERY_BINARY} is missing: scripts/setup.sh installs Debian's etcd-discovery`);
    const dir = mkdtempSync(join(tmpdir(), "berth-etcd-discovery-"));
    const port = await freePort(host);
    const url = `http://${host}:${port}`;
    const conf = join(dir, "etcd-discovery.conf");
    writeFileSync(
      conf,
      `[server]\nprefix_url=${url}\nweb_service_address=${host}:${port}\n\n[etcd]\nendpoint_location=${etcdUrl}\n`,
    );
    const log = openSync(join(dir, "service.log"), "a");
    const proc = spawn(
      "unshare",
      [
        "--mount",
        "--propagation=private",
        "--",
        "/bin/sh",
        "-c",
        'mount --bind "$1" "$2" && exec "$3"',
        "sh",
        conf,
        FIXED_CONFIG,
        DISCOVERY_BINARY,
      ],
      { stdio: ["ignore", log, log] },
    );
    running.add(proc);
    proc.on("exit", () => running.delete(proc));
    const service = new EtcdDiscoveryService(url, dir, proc);
    try {
      await waitFor("etcd-discovery answering", async () => {
        if (proc.exitCode !== null) throw new Error(`etcd-discovery exited with ${proc.exitCode}`);
        return (await fetch(`${url}/robots.txt`).catch(() => null))?.status === 200;
      });
    } catch (err) {
      const text = readFileSync(join(dir, "service.log"), "utf8").slice(-3000);
      await service.stop();
      throw new Error(`${(err as Error).message}\n${text}`);
    }
    return service;
  }

  async stop(): Promise<void> {
    await signalAndWait(this.proc, "SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}
