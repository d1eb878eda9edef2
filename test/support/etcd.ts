// A real etcd 3.4 member (Debian's etcd-server) on loopback, for tests that run the same client against etcd and
// Berth side by side. Started as scripts/capture-etcd-fixtures.sh starts it: --enable-v2=true, a temporary data dir,
// ready once healthy with the cluster version decided; stopped by PID (SIGKILL) and its dir removed.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { freePort, signalAndWait, waitFor } from "./processes.ts";

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

export class EtcdMember {
  private constructor(
    readonly url: string,
    readonly port: number,
    private readonly dir: string,
    private readonly proc: ChildProcess,
  ) {}

  /** A fresh single-member etcd cluster on `host` (etcd must be on PATH: scripts/setup.sh installs it). */
  static async start(host = "127.0.0.1"): Promise<EtcdMember> {
    const dir = mkdtempSync(join(tmpdir(), "berth-etcd-"));
    const [client, peer] = [await freePort(host), await freePort(host)];
    const url = `http://${host}:${client}`;
    const peerUrl = `http://${host}:${peer}`;
    const log = openSync(join(dir, "etcd.log"), "a");
    const proc = spawn(
      "etcd",
      [
        "--name=e1",
        `--data-dir=${join(dir, "data")}`,
        "--enable-v2=true",
        `--listen-client-urls=${url}`,
        `--advertise-client-urls=${url}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=e1=${peerUrl}`,
        "--initial-cluster-state=new",
        "--log-level=warn",
      ],
      { stdio: ["ignore", log, log] },
    );
    running.add(proc);
    proc.on("exit", () => running.delete(proc));
    const member = new EtcdMember(url, client, dir, proc);
    try {
      await waitFor("etcd healthy with its cluster version decided", async () => {
        if (proc.exitCode !== null) throw new Error(`etcd exited with ${proc.exitCode}`);
        const health = await fetch(`${url}/health`).then((r) => r.text());
        const version = (await fetch(`${url}/version`).then((r) => r.json())) as { etcdcluster?: string };
        return health.includes('"health":"true"') && /^\d/.test(version.etcdcluster ?? "");
      });
    } catch (err) {
      const log = readFileSync(join(dir, "etcd.log"), "utf8").slice(-3000);
      await member.stop();
      throw new Error(`${(err as Error).message}\n${log}`);
    }
    return member;
  }

  async stop(): Promise<void> {
    await signalAndWait(this.proc, "SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}
