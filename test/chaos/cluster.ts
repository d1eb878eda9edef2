// A cluster of real dist/berth node processes whose peer traffic all goes through fault-injecting proxies.
// Every node is known by its proxy's address and listens behind it (--peer-listen-addr), see test/chaos/proxy.ts.
// Processes are tracked by PID and SIGKILLed on stop(), on process exit, and on failure.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { BerthClient } from "../../src/client/client.ts";
import { freePort, killUnitProcesses } from "../support/processes.ts";
import { PeerNetwork } from "./proxy.ts";

export const BINARY = resolve(import.meta.dirname, "../../dist/berth");

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of running) {
    try {
      p.kill("SIGCONT");
      p.kill("SIGKILL");
    } catch {}
  }
});

export interface ChaosNode {
  name: string;
  host: string;
  peerPort: number;
  clientPort: number;
  dataDir: string;
  logFile: string;
  proc: ChildProcess | null;
  paused: boolean;
}

export class ChaosCluster {
  readonly nodes: ChaosNode[] = [];
  readonly dir: string;
  readonly secretFile: string;
  net!: PeerNetwork;
  private stopped = false;

  /** Flags passed on every start (first and restarts), e.g. --agent-ttl, which node.json does not remember. */
  extraArgs: string[] = [];

  constructor(readonly tickMs = 50) {
    this.dir = mkdtempSync(join(tmpdir(), "berth-chaos-"));
    this.secretFile = join(this.dir, "secret");
    writeFileSync(this.secretFile, randomBytes(24).toString("base64url"), { mode: 0o600 });
  }

  static async start(
    size: number,
    opts: { tickMs?: number; requestTimeoutMs?: number; extraArgs?: string[] } = {},
  ) {
    if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run \`npm run build\` first`);
    const c = new ChaosCluster(opts.tickMs ?? 50);
    c.extraArgs = opts.extraArgs ?? [];
    try {
      for (let i = 1; i <= size; i++) {
        const host = `127.0.0.${i}`;
        const name = `n${i}`;
        c.nodes.push({
          name,
          host,
          peerPort: await freePort(host),
          clientPort: await freePort(host),
          dataDir: join(c.dir, name),
          logFile: join(c.dir, `${name}.log`),
          proc: null,
          paused: false,
        });
      }
      c.net = await PeerNetwork.create(c.nodes);
      // Every member is known by its proxy's address (the same list for all); each listens behind its proxy.
      const initial = c.nodes.map((m) => `${m.name}=${c.net.addressOf(m.name)}`).join(",");
      for (const n of c.nodes) {
        c.spawn(n, [
          `--name=${n.name}`,
          `--peer-addr=${c.net.addressOf(n.name)}`,
          `--peer-listen-addr=${n.host}:${n.peerPort}`,
          `--client-addr=${n.host}:${n.clientPort}`,
          "--http-addr=off",
          `--cluster-secret-file=${c.secretFile}`,
          `--tick=${c.tickMs}ms`,
          "--wal-segment-size=4194304",
          `--request-timeout=${opts.requestTimeoutMs ?? 2000}ms`,
          `--initial-cluster=${initial}`,
        ]);
      }
      await c.waitHealthy(30_000);
      return c;
    } catch (err) {
      await c.stop();
      throw err;
    }
  }

  node(name: string): ChaosNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** The node's unix socket: admin (unit operations need it), as root on a member. */
  endpoint(name: string): string {
    return `unix://${join(this.node(name).dataDir, "berth.sock")}`;
  }

  /** Only the first start takes flags; a restart needs the data dir alone (node.json remembers the rest). */
  spawn(n: ChaosNode, firstArgs: string[] = []): void {
    if (this.stopped) return;
    const args = existsSync(join(n.dataDir, "node.json"))
      ? ["node", `--data-dir=${n.dataDir}`, ...this.extraArgs]
      : ["node", `--data-dir=${n.dataDir}`, ...firstArgs, ...this.extraArgs];
    const log = openSync(n.logFile, "a");
    const proc = spawn(BINARY, args, { stdio: ["ignore", log, log] });
    running.add(proc);
    proc.on("exit", () => running.delete(proc));
    n.proc = proc;
    n.paused = false;
  }

  isUp(n: ChaosNode): boolean {
    return n.proc !== null && n.proc.exitCode === null && n.proc.signalCode === null;
  }

  async kill(name: string): Promise<void> {
    const n = this.node(name);
    const proc = n.proc;
    if (!proc || !this.isUp(n)) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill("SIGKILL");
    if (n.paused) proc.kill("SIGCONT");
    await exited;
    n.proc = null;
    n.paused = false;
  }

  restart(name: string): void {
    const n = this.node(name);
    if (!this.isUp(n)) this.spawn(n);
  }

  pause(name: string): void {
    const n = this.node(name);
    if (!this.isUp(n) || n.paused) return;
    n.proc!.kill("SIGSTOP");
    n.paused = true;
  }

  resume(name: string): void {
    const n = this.node(name);
    if (!n.paused || !n.proc) return;
    n.proc.kill("SIGCONT");
    n.paused = false;
  }

  /** Every member answers cluster.health as healthy, asked through each node in turn. */
  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      for (const n of this.nodes) {
        let c: BerthClient | null = null;
        try {
          c = await BerthClient.connect({
            endpoints: [this.endpoint(n.name)],
            timeoutMs: 1000,
            name: "chaos",
          });
          const h = await c.call("cluster.health", {}, 1500);
          if (h.length === this.nodes.length && h.every((m) => m.healthy)) return;
          last = JSON.stringify(h.filter((m) => !m.healthy));
        } catch (err) {
          last = (err as Error).message;
        } finally {
          c?.close();
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`cluster not healthy after ${timeoutMs} ms: ${last}\n${this.logs()}`);
  }

  logs(tail = 3000): string {
    return this.nodes
      .map((n) =>
        existsSync(n.logFile) ? `--- ${n.name}\n${readFileSync(n.logFile, "utf8").slice(-tail)}` : "",
      )
      .join("\n");
  }

  /** The PID of a running node process, or null. */
  pid(name: string): number | null {
    const n = this.node(name);
    return this.isUp(n) ? (n.proc!.pid ?? null) : null;
  }

  /** Kills every node process (by the PIDs started here) and every unit process group their agents recorded,
   * closes the proxies, removes the data unless kept. */
  async stop(keepDir = false): Promise<void> {
    this.stopped = true;
    await Promise.all(this.nodes.map((n) => this.kill(n.name)));
    for (const n of this.nodes) killUnitProcesses(n.dataDir);
    await this.net?.close();
    if (!keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
