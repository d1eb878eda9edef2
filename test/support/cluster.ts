// Real clusters for integration tests: dist/berth node processes on 127.0.0.x, killed for real, always cleaned up.
// The one place that spawns node processes, picks their flags, keeps their logs and removes them: the chaos
// harness (test/chaos/cluster.ts) builds on it, adding fault-injecting proxies in front of the peer ports.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { freePort, killUnitProcesses, waitFor } from "./processes.ts";

export { freePort, waitFor };

export const BINARY = resolve(import.meta.dirname, "../../dist/berth");

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real binary to completion. */
export function berth(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runProcess(BINARY, args, opts);
}

export interface RunOptions {
  env?: Record<string, string>;
  /** Killed (SIGKILL) after this long; default 20 s. */
  timeoutMs?: number;
  /** Written to stdin (then closed), after `inputDelayMs` (a question the program asks first). */
  input?: string;
  inputDelayMs?: number;
}

/** Runs a program to completion, collecting its output; killed with the test process if that ends first. */
export function runProcess(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, {
      env: { ...process.env, ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    running.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 20_000);
    child.on("error", reject);
    // A program that exits without reading its input (one failing at once) closes the pipe: not the test's error.
    child.stdin.on("error", () => {});
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolveRun({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
    const end = () => child.stdin.end(opts.input ?? "");
    if (opts.inputDelayMs) setTimeout(end, opts.inputDelayMs);
    else end();
  });
}

/** Throws unless dist/berth has been built. */
export function requireBinary(): void {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run \`npm run build\` first`);
}

export interface TestNode {
  name: string;
  host: string;
  peerPort: number;
  clientPort: number;
  httpPort: number;
  dataDir: string;
  logFile: string;
  proc: ChildProcess | null;
  /** Flags after the first start's, on every start (node.json does not remember e.g. --agent-ttl). */
  extraArgs: string[];
  /**
   * The peer address the cluster knows this member by (--peer-addr), when it is not where the node listens
   * (host:peerPort, then --peer-listen-addr): the chaos harness's proxy.
   */
  peerAddr?: string;
  /** Stopped with SIGSTOP (pause()) and not resumed yet. */
  paused: boolean;
  /** Extra environment for this node's process (e.g. libfaketime). */
  env?: Record<string, string>;
  /** The host name this node's machine has: the node runs in a UTS namespace of its own with it (%H, journal). */
  hostname?: string;
}

export class TestCluster {
  readonly nodes: TestNode[] = [];
  readonly dir: string;
  readonly secretFile: string;
  /** Appended to every `cli()` run (e.g. --ca-file/--cert-file/--key-file for a TLS cluster). */
  cliArgs: string[] = [];
  /** "https" when the nodes serve the HTTP API with TLS. */
  httpScheme: "http" | "https" = "http";
  /** A command the binary runs under (e.g. ["prlimit", "--nofile=512:512", "--"]). */
  launcher: string[] = [];
  /** Where the members' data directories go (default: this.dir); their logs stay in this.dir. */
  dataRoot = "";
  /** --tick of first starts. */
  tickMs = 50;
  /** Whether first starts serve the HTTP API (--http-addr on httpPort, else off). */
  http = true;
  /** Set by stop(): nothing is spawned any more (a fault schedule may still be restarting nodes). */
  private stopped = false;

  protected constructor(prefix = "berth-test-") {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    this.secretFile = join(this.dir, "secret");
    writeFileSync(this.secretFile, randomBytes(24).toString("base64url"), { mode: 0o600 });
  }

  /** Starts `size` founding members on 127.0.0.1..size and waits until every one is healthy. */
  static async start(
    size: number,
    opts: {
      extraArgs?: string[];
      cliArgs?: string[];
      httpScheme?: "http" | "https";
      launcher?: string[];
      /** A directory for the data directories, e.g. a small file system the test mounted (the test removes it). */
      dataRoot?: string;
      /** Per node (by index): its own flags after extraArgs, and a host name of its own (see TestNode.hostname). */
      perNode?: { extraArgs?: string[]; hostname?: string }[];
    } = {},
  ): Promise<TestCluster> {
    requireBinary();
    const c = new TestCluster();
    c.cliArgs = opts.cliArgs ?? [];
    c.launcher = opts.launcher ?? [];
    c.httpScheme = opts.httpScheme ?? "http";
    c.dataRoot = opts.dataRoot ?? c.dir;
    for (let i = 1; i <= size; i++) {
      const own = opts.perNode?.[i - 1];
      const n = await c.define(`n${i}`, `127.0.0.${i}`, [
        ...(opts.extraArgs ?? []),
        ...(own?.extraArgs ?? []),
      ]);
      if (own?.hostname) n.hostname = own.hostname;
    }
    const initial = c.initialCluster();
    for (const n of c.nodes) c.spawn(n, [`--initial-cluster=${initial}`]);
    await c.waitHealthy();
    return c;
  }

  /** A cluster with no members yet: the test defines and spawns them (e.g. on restored data directories). */
  static empty(): TestCluster {
    requireBinary();
    return new TestCluster();
  }

  async define(name: string, host: string, extraArgs: string[] = []): Promise<TestNode> {
    const node: TestNode = {
      name,
      host,
      peerPort: await freePort(host),
      clientPort: await freePort(host),
      httpPort: await freePort(host),
      dataDir: join(this.dataRoot || this.dir, name),
      logFile: join(this.dir, `${name}.log`),
      proc: null,
      extraArgs,
      paused: false,
    };
    this.nodes.push(node);
    return node;
  }

  node(name: string): TestNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** --initial-cluster naming every defined node by its peer address. */
  initialCluster(): string {
    return this.nodes.map((n) => `${n.name}=${this.peerAddr(n)}`).join(",");
  }

  /** The address the cluster knows `node` by (see TestNode.peerAddr). */
  peerAddr(node: TestNode): string {
    return node.peerAddr ?? `${node.host}:${node.peerPort}`;
  }

  /** The node's unix socket (DATA_DIR/berth.sock): the test runs as root, so it is admin there (src/etcdv2/access.ts). */
  endpoint(name: string): string {
    const n = this.node(name);
    const flag = n.extraArgs.find((a) => a.startsWith("--client-socket="));
    return `unix://${flag ? flag.slice("--client-socket=".length) : join(n.dataDir, "berth.sock")}`;
  }

  /** The node's TCP client port: anonymous (a guest), or the user of a TLS client certificate. */
  tcpEndpoint(name: string): string {
    const n = this.node(name);
    return `${n.host}:${n.clientPort}`;
  }

  httpUrl(name: string): string {
    const n = this.node(name);
    return `${this.httpScheme}://${n.host}:${n.httpPort}`;
  }

  /** Every node's unix socket: what `cli()` uses, so tests act as admin as root on a member does. */
  endpoints(): string {
    return this.nodes.map((n) => this.endpoint(n.name)).join(",");
  }

  /** Every node's TCP client port (anonymous clients, TLS). */
  tcpEndpoints(): string {
    return this.nodes.map((n) => this.tcpEndpoint(n.name)).join(",");
  }

  /** Starts (or restarts) a node. First starts pass the full flag set; restarts need only the data dir. */
  spawn(node: TestNode, firstStartArgs: string[] = []): void {
    if (this.stopped) return;
    const listenPeer = `${node.host}:${node.peerPort}`;
    const args = existsSync(join(node.dataDir, "node.json"))
      ? ["node", `--data-dir=${node.dataDir}`, ...node.extraArgs]
      : [
          "node",
          `--name=${node.name}`,
          `--data-dir=${node.dataDir}`,
          `--peer-addr=${this.peerAddr(node)}`,
          ...(this.peerAddr(node) === listenPeer ? [] : [`--peer-listen-addr=${listenPeer}`]),
          `--client-addr=${node.host}:${node.clientPort}`,
          `--http-addr=${this.http ? `${node.host}:${node.httpPort}` : "off"}`,
          `--cluster-secret-file=${this.secretFile}`,
          `--tick=${this.tickMs}ms`,
          // Small preallocated WAL segments: dozens of test nodes must not each write 64 MiB of zeros.
          "--wal-segment-size=4194304",
          ...firstStartArgs,
          ...node.extraArgs,
        ];
    const log = openSync(node.logFile, "a");
    // unshare execs the shell, which sets the name and execs the launcher: the PID stays the node's.
    const uts = node.hostname
      ? [
          "unshare",
          "--uts",
          "--",
          "/bin/sh",
          "-c",
          'hostname "$1" && shift && exec "$@"',
          "sh",
          node.hostname,
        ]
      : [];
    const [cmd, ...pre] = [...uts, ...this.launcher, BINARY];
    const proc = spawn(cmd!, [...pre, ...args], {
      stdio: ["ignore", log, log],
      env: { ...process.env, ...node.env },
    });
    running.add(proc);
    proc.on("exit", () => running.delete(proc));
    node.proc = proc;
    node.paused = false;
  }

  /** Whether the node's process is running (paused or not). */
  isUp(node: TestNode): boolean {
    return node.proc !== null && node.proc.exitCode === null && node.proc.signalCode === null;
  }

  /** The PID of a running node process, or null. */
  pid(name: string): number | null {
    const n = this.node(name);
    return this.isUp(n) ? (n.proc!.pid ?? null) : null;
  }

  async kill(name: string, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const n = this.node(name);
    const proc = n.proc;
    if (!proc || !this.isUp(n)) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill(signal);
    if (n.paused) proc.kill("SIGCONT"); // a stopped process acts on no signal but SIGKILL until continued
    await exited;
    n.proc = null;
    n.paused = false;
  }

  /** Stops the node's process (SIGSTOP): it holds its sockets and answers nothing, as a hung machine. */
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

  /** Starts the node again if its process is not running (a restart after a kill: its data dir alone). */
  revive(name: string): void {
    const n = this.node(name);
    if (!this.isUp(n)) this.spawn(n);
  }

  /**
   * The machine crashes: node, unit supervisor and unit processes SIGKILLed. (A node killed alone leaves its units
   * with the supervisor, which keeps the machine alive: its units do not move.)
   */
  async crash(name: string): Promise<void> {
    await this.kill(name, "SIGKILL");
    killUnitProcesses(this.node(name).dataDir);
  }

  async restart(name: string): Promise<void> {
    await this.kill(name);
    this.spawn(this.node(name));
  }

  /** berth CLI against this cluster (all endpoints unless given). */
  cli(args: string[], endpoint = this.endpoints(), timeoutMs?: number): Promise<RunResult> {
    return berth([...args, `--endpoint=${endpoint}`, ...this.cliArgs], { timeoutMs });
  }

  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: RunResult | null = null;
    while (Date.now() < deadline) {
      last = await this.cli(["cluster", "health", "--request-timeout=1s"]);
      if (last.code === 0) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(
      `cluster not healthy after ${timeoutMs} ms: ${last?.stdout}${last?.stderr}\n${this.logs()}`,
    );
  }

  /** The end (`tail` characters) of each node's log. */
  logs(tail = 4000): string {
    return this.nodes
      .map((n) =>
        existsSync(n.logFile) ? `--- ${n.name}\n${readFileSync(n.logFile, "utf8").slice(-tail)}` : "",
      )
      .join("\n");
  }

  /**
   * Stops every node (SIGKILL, by the PIDs started here) and every unit process their agents started, then
   * removes the data unless kept.
   */
  async stop(keepDir = false): Promise<void> {
    this.stopped = true;
    await Promise.all(this.nodes.map((n) => this.kill(n.name)));
    for (const n of this.nodes) killUnitProcesses(n.dataDir);
    // A SIGKILLed process may still hold a file open for a moment: retried rather than failing the test.
    if (!keepDir) rmSync(this.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  }
}

// ---- Helpers for fault tests (in-process clients against live nodes) ----------------------------------------

/** Nodes whose process is running. */
export function liveNodes(c: TestCluster): TestNode[] {
  return c.nodes.filter((n) => c.isUp(n));
}

/** An in-process client connected to exactly `name` (no failover). */
export async function clientFor(c: TestCluster, name: string, timeoutMs = 5000) {
  const { BerthClient } = await import("../../src/client/client.ts");
  return BerthClient.connect({ endpoints: [c.endpoint(name)], timeoutMs, name: `test-${name}` });
}

/** The leader's name as seen by a live node, once one is known to every live node that answers. */
export async function currentLeader(c: TestCluster, timeoutMs = 15_000): Promise<string> {
  return waitFor(
    "a leader agreed on by the live nodes",
    async () => {
      const seen = new Set<string | null>();
      for (const n of liveNodes(c)) {
        const cl = await clientFor(c, n.name, 1000);
        try {
          seen.add((await cl.call("node.status", {}, 1000)).leader);
        } finally {
          cl.close();
        }
      }
      const [only] = [...seen];
      return seen.size === 1 && only && liveNodes(c).some((n) => n.name === only) ? only : null;
    },
    timeoutMs,
    150,
  );
}
