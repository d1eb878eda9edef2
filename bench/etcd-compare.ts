// Berth vs. a real etcd 3.4 through the same etcd-v2 HTTP load generator, plus Berth through its msgpack client.
// Both clusters: 3 members on 127.0.0.1..3, fresh data dirs on the same disk, default durability and ticks.
// Usage: bun bench/etcd-compare.ts [--seconds N]
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { BerthClient } from "../src/client/client.ts";
import { freePort, stopSupervisor } from "../test/support/processes.ts";

const ROOT = resolve(import.meta.dirname, "..");
// Diagnostics: BERTH_BIN picks another binary (A/B runs); BENCH_ONLY=berth skips etcd and msgpack; BENCH_ROWS=1,16 keeps
// only those PUT in-flight rows; BENCH_ROUNDS=N splits each row into N alternating turns per system (default 3);
// BENCH_DIR=/dev/shm puts both clusters' data on tmpfs (no fsync wait: what is left is CPU and scheduling).
const BERTH = process.env.BERTH_BIN ?? join(ROOT, "dist/berth");
const DATA_PARENT = process.env.BENCH_DIR ?? tmpdir();
const ONLY_BERTH = process.env.BENCH_ONLY === "berth";
const HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
const VALUE = "v".repeat(256);
const KEYSPACE = 1024;

export interface LoadResult {
  ok: number;
  errors: number;
  seconds: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Share of requests slower than 2 ms (where the x1 tails of the two systems differ most). */
  over2MsShare?: number;
  firstError?: string;
  /** Every successful request's latency (ms), sorted: rounds of one row are merged from these. */
  latencies?: number[];
  /** CPU seconds (user+sys) used during the row by the cluster's processes and by this (load-generating) process. */
  serverCpuS?: number;
  loadgenCpuS?: number;
}

export interface CompareRow {
  label: string;
  inFlight: number;
  etcd: LoadResult;
  berthHttp: LoadResult;
  berthMsgpack: LoadResult;
}

// ---------------------------------------------------------------------------------------------------------------
// etcd availability

function which(cmd: string): string | null {
  const r = spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() || null : null;
}

/** True when etcd is on PATH, or could be installed from Debian (apt-get present and running as root). */
export function etcdInstalledOrInstallable(): boolean {
  if (which("etcd")) return true;
  return which("apt-get") !== null && process.getuid?.() === 0;
}

export function ensureEtcd(): string {
  const found = which("etcd");
  if (found) return found;
  if (!etcdInstalledOrInstallable()) throw new Error("etcd is not installed and apt-get is unavailable");
  console.log("etcd not found: installing Debian's etcd-server (apt-get)...");
  execFileSync(
    "sh",
    ["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server"],
    {
      stdio: "inherit",
    },
  );
  // Debian's package starts a system etcd on 2379/2380; stop it so it does not share the CPU with the benchmark.
  spawnSync("sh", ["-c", "systemctl stop etcd 2>/dev/null; service etcd stop 2>/dev/null; true"]);
  const after = which("etcd");
  if (!after) throw new Error("etcd-server installed but `etcd` is not on PATH");
  return after;
}

export function ensureBerth(): void {
  if (existsSync(BERTH)) return;
  console.log("dist/berth missing: running `npm run build`...");
  execFileSync("npm", ["run", "build"], { cwd: ROOT, stdio: "inherit" });
}

// ---------------------------------------------------------------------------------------------------------------
// processes

const started = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(proc: ChildProcess): void {
  started.add(proc);
  proc.on("exit", () => started.delete(proc));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", killStarted);
  }
}

/** SIGKILLs every process this file started that is still running (on exit, or when a bench is interrupted). */
export function killStarted(): void {
  for (const p of started) if (p.pid) p.kill("SIGKILL");
}

async function killAll(procs: ChildProcess[]): Promise<void> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((done) => {
          if (p.exitCode !== null || p.signalCode !== null) return done();
          p.once("exit", () => done());
          p.kill("SIGKILL"); // by the PID of the process this file spawned, nothing else
        }),
    ),
  );
}

export interface Cluster {
  name: string;
  /** http://HOST:PORT of each member's etcd-v2 API */
  httpUrls: string[];
  /** HOST:PORT of each member's msgpack client address (Berth only) */
  clientAddrs: string[];
  procs: ChildProcess[];
  logs: string[];
  dir: string;
}

function tailLogs(c: Cluster): string {
  return c.logs
    .map((l) => (existsSync(l) ? `--- ${l}\n${readFileSync(l, "utf8").slice(-3000)}` : ""))
    .join("\n");
}

/**
 * Where members are and how they are known to each other: their hosts (one each, 127.0.0.1..3 unless given), and
 * optionally a hook that puts proxies in front of their peer listeners. The hook gets each member's name, host and
 * real peer port and answers the HOST:PORT the member is to be known by (its proxy): members then advertise that
 * address and listen on the real one.
 */
export interface ClusterPlacement {
  hosts?: string[];
  peerProxy?: (
    members: { name: string; host: string; peerPort: number }[],
  ) => Promise<(name: string) => string>;
}

/** The address each member is known by to its peers: its proxy's when a hook places one, else its own. */
async function advertised(
  members: { name: string; host: string; peer: number }[],
  placement: ClusterPlacement,
): Promise<(name: string) => string> {
  if (!placement.peerProxy) {
    const own = new Map(members.map((m) => [m.name, `${m.host}:${m.peer}`]));
    return (name) => own.get(name)!;
  }
  return placement.peerProxy(members.map((m) => ({ name: m.name, host: m.host, peerPort: m.peer })));
}

export async function stopCluster(c: Cluster | null): Promise<void> {
  if (!c) return;
  await killAll(c.procs);
  // Berth members leave their unit supervisors (which run no unit here) behind.
  for (const member of readdirSync(c.dir)) await stopSupervisor(join(c.dir, member), "SIGKILL");
  rmSync(c.dir, { recursive: true, force: true });
}

export async function startEtcd(
  etcdBin: string,
  parent: string,
  placement: ClusterPlacement = {},
): Promise<Cluster> {
  const dir = mkdtempSync(join(parent, "etcd-"));
  const members = [];
  for (const [i, host] of (placement.hosts ?? HOSTS).entries())
    members.push({ name: `e${i + 1}`, host, peer: await freePort(host), client: await freePort(host) });
  const peerAddr = await advertised(members, placement);
  const initial = members.map((m) => `${m.name}=http://${peerAddr(m.name)}`).join(",");
  const c: Cluster = {
    name: "etcd",
    httpUrls: members.map((m) => `http://${m.host}:${m.client}`),
    clientAddrs: [],
    procs: [],
    logs: [],
    dir,
  };
  for (const m of members) {
    const log = join(dir, `${m.name}.log`);
    c.logs.push(log);
    const proc = spawn(
      etcdBin,
      [
        `--name=${m.name}`,
        `--data-dir=${join(dir, m.name)}`,
        `--listen-peer-urls=http://${m.host}:${m.peer}`,
        `--initial-advertise-peer-urls=http://${peerAddr(m.name)}`,
        `--listen-client-urls=http://${m.host}:${m.client}`,
        `--advertise-client-urls=http://${m.host}:${m.client}`,
        `--initial-cluster=${initial}`,
        "--initial-cluster-state=new",
        `--initial-cluster-token=bench-${process.pid}`,
        "--enable-v2=true",
        "--log-level=warn",
      ],
      { stdio: ["ignore", openSync(log, "a"), openSync(log, "a")] },
    );
    track(proc);
    c.procs.push(proc);
  }
  return c;
}

export async function startBerth(parent: string, placement: ClusterPlacement = {}): Promise<Cluster> {
  const dir = mkdtempSync(join(parent, "berth-"));
  const secretFile = join(dir, "secret");
  writeFileSync(secretFile, randomBytes(24).toString("base64url"), { mode: 0o600 });
  const members = [];
  for (const [i, host] of (placement.hosts ?? HOSTS).entries())
    members.push({
      name: `n${i + 1}`,
      host,
      peer: await freePort(host),
      client: await freePort(host),
      http: await freePort(host),
    });
  const peerAddr = await advertised(members, placement);
  const initial = members.map((m) => `${m.name}=${peerAddr(m.name)}`).join(",");
  const c: Cluster = {
    name: "berth",
    httpUrls: members.map((m) => `http://${m.host}:${m.http}`),
    clientAddrs: members.map((m) => `${m.host}:${m.client}`),
    procs: [],
    logs: [],
    dir,
  };
  for (const m of members) {
    const log = join(dir, `${m.name}.log`);
    c.logs.push(log);
    // Berth defaults: no --tick, no --snapshot-count.
    const proc = spawn(
      BERTH,
      [
        "node",
        `--name=${m.name}`,
        `--data-dir=${join(dir, m.name)}`,
        `--peer-addr=${peerAddr(m.name)}`,
        `--peer-listen-addr=${m.host}:${m.peer}`,
        `--client-addr=${m.host}:${m.client}`,
        `--http-addr=${m.host}:${m.http}`,
        `--cluster-secret-file=${secretFile}`,
        `--initial-cluster=${initial}`,
      ],
      {
        stdio: ["ignore", openSync(log, "a"), openSync(log, "a")],
        env: { ...process.env, MSGPACKR_NATIVE_ACCELERATION_DISABLED: "true" },
      },
    );
    track(proc);
    c.procs.push(proc);
  }
  return c;
}

/** Waits until a PUT through every member's HTTP API succeeds (so a leader exists and each member forwards). */
export async function waitReady(c: Cluster, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const agent = new Agent({ keepAlive: false });
  let last = "";
  try {
    for (const [i, url] of c.httpUrls.entries()) {
      for (;;) {
        for (const p of c.procs)
          if (p.exitCode !== null) throw new Error(`${c.name} member exited (${p.exitCode})\n${tailLogs(c)}`);
        const r = await httpOnce(agent, url, "PUT", `/v2/keys/bench/ready${i}`, "value=1", 2000);
        if (r.status >= 200 && r.status < 300) break;
        last = `${url}: ${r.status} ${r.error ?? ""}`;
        if (Date.now() > deadline)
          throw new Error(`${c.name} not ready after ${timeoutMs} ms: ${last}\n${tailLogs(c)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    agent.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// load generators

export function httpOnce(
  agent: Agent,
  base: string,
  method: "GET" | "PUT",
  path: string,
  body: string | null,
  timeoutMs: number,
): Promise<{ status: number; error?: string }> {
  return new Promise((done) => {
    const u = new URL(base);
    const headers: Record<string, string | number> = {};
    if (body !== null) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      headers["content-length"] = Buffer.byteLength(body);
    }
    let settled = false;
    const finish = (status: number, error?: string) => {
      if (settled) return;
      settled = true;
      done({ status, error });
    };
    const req = httpRequest(
      { agent, host: u.hostname, port: Number(u.port), method, path, headers },
      (res) => {
        res.on("data", () => {});
        res.on("end", () =>
          finish(
            res.statusCode ?? 0,
            res.statusCode && res.statusCode < 300 ? undefined : `HTTP ${res.statusCode}`,
          ),
        );
        res.on("error", (e) => finish(0, e.message));
      },
    );
    req.setTimeout(timeoutMs, () => {
      req.destroy(new Error(`timeout after ${timeoutMs} ms`));
    });
    req.on("error", (e) => finish(0, e.message));
    req.end(body ?? undefined);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

type Op = (member: number, seq: number) => Promise<void>;

/**
 * The one driver for every column: `inFlight` workers, each sending one request at a time; request j of worker w
 * goes to member (w + j) % members (same spreading for every system).
 */
async function drive(members: number, inFlight: number, seconds: number, op: Op): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let seq = 0;
  const end = performance.now() + seconds * 1000;
  const worker = async (w: number) => {
    for (let j = 0; performance.now() < end; j++) {
      const t = performance.now();
      try {
        await op((w + j) % members, seq++);
        latencies.push(performance.now() - t);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, (_, w) => worker(w)));
  return summarize(latencies, errors, (performance.now() - t0) / 1000, firstError);
}

function summarize(latencies: number[], errors: number, seconds: number, firstError?: string): LoadResult {
  latencies.sort((a, b) => a - b);
  return {
    ok: latencies.length,
    errors,
    seconds,
    opsPerSec: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    over2MsShare: latencies.length > 0 ? latencies.filter((l) => l > 2).length / latencies.length : 0,
    firstError,
    latencies,
  };
}

/** One row's rounds as one result: all their requests, their summed time and CPU. */
function mergeRounds(rounds: LoadResult[]): LoadResult {
  const sum = (f: (r: LoadResult) => number) => rounds.reduce((a, r) => a + f(r), 0);
  const merged = summarize(
    rounds.flatMap((r) => r.latencies ?? []),
    sum((r) => r.errors),
    sum((r) => r.seconds),
    rounds.find((r) => r.firstError)?.firstError,
  );
  merged.serverCpuS = sum((r) => r.serverCpuS ?? 0);
  merged.loadgenCpuS = sum((r) => r.loadgenCpuS ?? 0);
  return merged;
}

interface Workload {
  label: string;
  kind: "put" | "qget";
  inFlight: number;
}

const ALL_WORKLOADS: Workload[] = [
  { label: "PUT x1", kind: "put", inFlight: 1 },
  { label: "PUT x16", kind: "put", inFlight: 16 },
  { label: "PUT x64", kind: "put", inFlight: 64 },
  { label: "PUT x256", kind: "put", inFlight: 256 },
  { label: "GET quorum x64", kind: "qget", inFlight: 64 },
];
const ROWS = process.env.BENCH_ROWS?.split(",").map(Number);
const WORKLOADS = ROWS
  ? ALL_WORKLOADS.filter((w) => w.kind === "put" && ROWS.includes(w.inFlight))
  : ALL_WORKLOADS;

const PUT_BODY = `value=${VALUE}`;

/** One run of a workload; an agent passed in keeps its connections for the next turn (not destroyed here). */
export async function runHttp(
  urls: string[],
  w: Workload,
  seconds: number,
  shared?: Agent,
): Promise<LoadResult> {
  const agent = shared ?? new Agent({ keepAlive: true, maxSockets: w.inFlight });
  const op: Op = async (m, seq) => {
    const key = `bench/k${seq % KEYSPACE}`;
    const r =
      w.kind === "put"
        ? await httpOnce(agent, urls[m]!, "PUT", `/v2/keys/${key}`, PUT_BODY, 10_000)
        : await httpOnce(agent, urls[m]!, "GET", `/v2/keys/${key}?quorum=true`, null, 10_000);
    if (r.status < 200 || r.status >= 300) throw new Error(r.error ?? `HTTP ${r.status}`);
  };
  try {
    return await drive(urls.length, w.inFlight, seconds, op);
  } finally {
    if (!shared) agent.destroy();
  }
}

async function runMsgpack(clients: BerthClient[], w: Workload, seconds: number): Promise<LoadResult> {
  const op: Op = async (m, seq) => {
    const key = `/bench/k${seq % KEYSPACE}`;
    if (w.kind === "put") await clients[m]!.call("kv.write", { method: "PUT", key, value: VALUE }, 10_000);
    else await clients[m]!.call("kv.get", { key, consistency: "linearizable" }, 10_000);
  };
  return drive(clients.length, w.inFlight, seconds, op);
}

/** Writes every key of the key space once, so quorum GETs find them. */
async function prefill(urls: string[]): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  try {
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < KEYSPACE) {
          const k = next++;
          await httpOnce(agent, urls[k % urls.length]!, "PUT", `/v2/keys/bench/k${k}`, PUT_BODY, 10_000);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
}

/** Seconds of unmeasured load before the first row (BENCH_WARMUP overrides; 0 = none). */
const WARMUP_S = Number(process.env.BENCH_WARMUP ?? 4);
/**
 * The same unmeasured load for every system before its first row: Berth's JIT compiles its hot paths meanwhile
 * (without it, the first rows also measure compilation, which a long-running node pays once).
 */
async function warmUp(run: (w: Workload, seconds: number) => Promise<LoadResult>): Promise<void> {
  if (WARMUP_S <= 0) return;
  await run({ label: "warm-up", kind: "put", inFlight: 64 }, WARMUP_S / 2);
  await run({ label: "warm-up", kind: "qget", inFlight: 64 }, WARMUP_S / 2);
}

/** user+sys CPU seconds of a process from /proc (Linux; 0 elsewhere). */
function procCpuS(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/** CPU the cluster burns while idle (ticks, heartbeats, timers), as a share of one core. */
async function idleCpu(c: Cluster, ms = 2000): Promise<number> {
  const s0 = c.procs.reduce((a, p) => a + procCpuS(p.pid), 0);
  await new Promise((r) => setTimeout(r, ms));
  return (c.procs.reduce((a, p) => a + procCpuS(p.pid), 0) - s0) / (ms / 1000);
}

/** Runs one row and records the CPU its servers and the load generator burnt. */
async function measured(c: Cluster, run: () => Promise<LoadResult>): Promise<LoadResult> {
  const s0 = c.procs.reduce((a, p) => a + procCpuS(p.pid), 0);
  const l0 = process.cpuUsage();
  const r = await run();
  const l1 = process.cpuUsage(l0);
  r.serverCpuS = c.procs.reduce((a, p) => a + procCpuS(p.pid), 0) - s0;
  r.loadgenCpuS = (l1.user + l1.system) / 1e6;
  return r;
}

// ---------------------------------------------------------------------------------------------------------------

const empty: LoadResult = { ok: 0, errors: 0, seconds: 0, opsPerSec: 0, p50Ms: 0, p99Ms: 0 };

/** Rounds per row (BENCH_ROUNDS overrides): each system's row time is split into this many turns. */
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));

/**
 * Both clusters are started and warmed up, then each row runs in ROUNDS alternating turns (etcd then Berth, Berth
 * then etcd, ...), so a slow spell of the VM falls on both systems instead of on whichever ran then; a turn runs
 * while the other cluster idles (each uses a few % of one core then, printed). The msgpack rows follow (Berth only).
 * Everything started here is killed and its temp dir removed, even on error.
 */
export async function benchCompare(opts: {
  seconds: number;
  log?: (s: string) => void;
}): Promise<CompareRow[]> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const etcdBin = ONLY_BERTH ? "" : ensureEtcd();
  ensureBerth();
  // A temp dir on the same disk for both (os.tmpdir() here is the root disk; see bench/fsync.ts).
  const parent = mkdtempSync(join(DATA_PARENT, "berth-etcd-compare-"));
  const rows: CompareRow[] = WORKLOADS.map((w) => ({
    label: w.label,
    inFlight: w.inFlight,
    etcd: empty,
    berthHttp: empty,
    berthMsgpack: empty,
  }));
  const clusters: Cluster[] = [];
  const onSignal = () => {
    killStarted();
    rmSync(parent, { recursive: true, force: true });
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const ready = async (c: Cluster) => {
    await waitReady(c);
    await prefill(c.httpUrls);
    await warmUp((w, seconds) => runHttp(c.httpUrls, w, seconds));
  };
  try {
    const etcd = ONLY_BERTH ? null : await startEtcd(etcdBin, parent);
    if (etcd) clusters.push(etcd);
    const berth = await startBerth(parent);
    clusters.push(berth);
    for (const c of clusters) await ready(c);
    for (const c of clusters)
      log(`${c.name} idle: the 3 members use ${(100 * (await idleCpu(c))).toFixed(1)}% of one core together`);

    const turn = opts.seconds / ROUNDS;
    for (const [i, w] of WORKLOADS.entries()) {
      const turns = new Map<Cluster, LoadResult[]>(clusters.map((c) => [c, []]));
      // Each system keeps its connections from turn to turn, as one longer run would.
      const agents = new Map(
        clusters.map((c) => [c, new Agent({ keepAlive: true, maxSockets: w.inFlight })]),
      );
      try {
        for (let r = 0; r < ROUNDS; r++) {
          const order = r % 2 === 0 ? clusters : [...clusters].reverse();
          for (const c of order)
            turns.get(c)!.push(await measured(c, () => runHttp(c.httpUrls, w, turn, agents.get(c))));
        }
      } finally {
        for (const a of agents.values()) a.destroy();
      }
      rows[i]!.berthHttp = mergeRounds(turns.get(berth)!);
      if (etcd) {
        rows[i]!.etcd = mergeRounds(turns.get(etcd)!);
        log(`etcd        ${w.label}: ${fmt(rows[i]!.etcd)}`);
      }
      log(`berth-http  ${w.label}: ${fmt(rows[i]!.berthHttp)}`);
    }

    if (etcd) {
      // The msgpack rows compare with nothing: etcd stops so it does not share the CPU with them.
      await stopCluster(etcd);
      clusters.splice(clusters.indexOf(etcd), 1);
    }
    if (!ONLY_BERTH) {
      const clients: BerthClient[] = [];
      try {
        for (const addr of berth.clientAddrs)
          clients.push(await BerthClient.connect({ endpoints: [addr], timeoutMs: 10_000, name: "bench" }));
        // The msgpack paths (the client here, the client API in the nodes) get their own warm-up.
        await warmUp((w, seconds) => runMsgpack(clients, w, seconds));
        for (const [i, w] of WORKLOADS.entries()) {
          rows[i]!.berthMsgpack = await measured(berth, () => runMsgpack(clients, w, opts.seconds));
          log(`berth-mpack ${w.label}: ${fmt(rows[i]!.berthMsgpack)}`);
        }
      } finally {
        for (const c of clients) c.close();
      }
    }
  } finally {
    for (const c of clusters) await stopCluster(c);
    rmSync(parent, { recursive: true, force: true });
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  return rows;
}

function fmt(r: LoadResult): string {
  const cpu =
    r.serverCpuS !== undefined
      ? `, CPU: servers ${r.serverCpuS.toFixed(2)} s (${perK(r, r.serverCpuS)} ms/1k ops), load generator ${r.loadgenCpuS!.toFixed(2)} s`
      : "";
  const over = r.over2MsShare !== undefined ? ` (${(100 * r.over2MsShare).toFixed(1)}% over 2 ms)` : "";
  return `${Math.round(r.opsPerSec)}/s p50 ${r.p50Ms.toFixed(2)} p99 ${r.p99Ms.toFixed(2)} ms${over}, ${r.errors} errors${r.firstError ? ` (${r.firstError})` : ""}${cpu}`;
}

function perK(r: LoadResult, cpuS: number): string {
  return r.ok > 0 ? ((cpuS * 1e6) / r.ok).toFixed(0) : "-";
}

function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => c.padStart(widths[i]!)).join("  ")).join("\n");
}

/** The one comparison table (goal: Berth over HTTP has throughput >= etcd and p99 <= etcd on every row). */
export function formatCompare(rows: CompareRow[]): string {
  const lat = (r: LoadResult) => `${r.p50Ms.toFixed(2)}/${r.p99Ms.toFixed(2)}`;
  const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : "-");
  return table(
    [
      "row",
      "etcd ops/s",
      "etcd p50/p99 ms",
      "berth-http ops/s",
      "berth-http p50/p99 ms",
      "thr berth/etcd",
      "p99 berth/etcd",
      "berth-msgpack ops/s",
      "msgpack p50/p99 ms",
      "errors etcd/http/mpk",
      "server CPU ms/1k ok etcd/http/mpk",
      "goal (http: thr >= etcd, p99 <= etcd)",
    ],
    rows.map((r) => {
      const met =
        r.berthHttp.opsPerSec >= r.etcd.opsPerSec &&
        r.berthHttp.p99Ms <= r.etcd.p99Ms &&
        r.berthHttp.errors === 0;
      const why = [
        r.berthHttp.opsPerSec < r.etcd.opsPerSec ? "thr" : "",
        r.berthHttp.p99Ms > r.etcd.p99Ms ? "p99" : "",
        r.berthHttp.errors > 0 ? "errors" : "",
      ]
        .filter(Boolean)
        .join("+");
      return [
        r.label,
        Math.round(r.etcd.opsPerSec),
        lat(r.etcd),
        Math.round(r.berthHttp.opsPerSec),
        lat(r.berthHttp),
        ratio(r.berthHttp.opsPerSec, r.etcd.opsPerSec),
        ratio(r.berthHttp.p99Ms, r.etcd.p99Ms),
        Math.round(r.berthMsgpack.opsPerSec),
        lat(r.berthMsgpack),
        `${r.etcd.errors}/${r.berthHttp.errors}/${r.berthMsgpack.errors}`,
        [r.etcd, r.berthHttp, r.berthMsgpack].map((x) => perK(x, x.serverCpuS ?? 0)).join("/"),
        met ? "met" : `MISSED (${why})`,
      ];
    }),
  );
}

export function compareHeader(seconds: number): string {
  return (
    `etcd 3.4 (--enable-v2, default fsync) vs Berth (dist/berth, default tick): 3 members each on 127.0.0.1..3, ` +
    `${seconds} s per row;\nPUT /v2/keys/bench/<k> with 256-byte values, GET ?quorum=true; requests round-robin over ` +
    `the 3 members; same node:http keep-alive load generator for etcd and berth-http; berth-msgpack = BerthClient, ` +
    `one connection per member; each cluster gets the same ${WARMUP_S} s of unmeasured puts and gets first (the ` +
    `msgpack rows ${WARMUP_S} s more of their own); both ` +
    `clusters stay up and each row runs in ${ROUNDS} alternating turns per system (etcd, berth, berth, etcd, ...); ` +
    `data directories under ${DATA_PARENT}`
  );
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const i = args.indexOf("--seconds");
  const seconds = i >= 0 ? Number(args[i + 1]) : 3;
  const rows = await benchCompare({ seconds });
  console.log(`\n${compareHeader(seconds)}\n`);
  console.log(formatCompare(rows));
}
