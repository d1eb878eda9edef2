// Raft commit throughput and latency: 3 members over real TCP on loopback, real WAL files, real fdatasync.
// Proposals of 256 bytes are kept N in flight at the leader; each is timed from propose to applied.
//
// Two layouts: all three members in this process (`processes: 1`; their JavaScript shares one event loop, so a
// follower's work delays the leader's), or one bun process per member (`processes: 3`, as in a real cluster),
// with the proposer running inside the leader's process. Usage: bun bench/raft.ts [--processes 1|3] [--seconds N]
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { NodeMetrics } from "../src/metrics/node-metrics.ts";
import { RaftDriver, type StateMachine } from "../src/raft/driver.ts";
import { FileRaftStorage } from "../src/raft/storage/file.ts";
import { PeerTransport } from "../src/raft/transport.ts";
import type { Entry } from "../src/raft/types.ts";

export interface RaftBenchRow {
  inFlight: number;
  commits: number;
  seconds: number;
  commitsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

export interface RaftBenchOptions {
  inFlight?: number[];
  seconds?: number;
  /** 1: the three members share this process; 3: one child process per member. */
  processes?: 1 | 3;
}

const NAMES = ["b1", "b2", "b3"];
const SECRET = Buffer.from("bench-secret-bench-secret");

class CountingMachine implements StateMachine {
  applied = 0;
  apply(_e: Entry): unknown {
    return ++this.applied;
  }
  snapshot(): Uint8Array {
    return new Uint8Array(8);
  }
  restore(): void {}
}

async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

interface Member {
  name: string;
  storage: FileRaftStorage;
  transport: PeerTransport;
  driver: RaftDriver;
}

async function startMember(name: string, dir: string, initial: Map<string, string>): Promise<Member> {
  // Observed as a node observes them (/metrics): the WAL fsync and snapshot histograms.
  const metrics = new NodeMetrics([]);
  const storage = await FileRaftStorage.open(join(dir, name), {
    onFsync: (seconds) => metrics.walFsync.observe(seconds),
  });
  let driver!: RaftDriver;
  const transport = new PeerTransport({
    selfId: name,
    secret: SECRET,
    listenHost: "127.0.0.1",
    listenPort: Number(initial.get(name)!.split(":")[1]),
    onMessage: (m) => driver.step(m),
    reportUnreachable: (id) => driver.reportUnreachable(id),
    reportSnapshot: (id, ok) => driver.reportSnapshot(id, ok),
    snapshotDir: join(dir, name, "snap-recv"),
  });
  driver = new RaftDriver({
    id: name,
    storage,
    transport,
    stateMachine: new CountingMachine(),
    initialCluster: initial,
    tickMs: 50,
    electionTicks: 10,
    snapshotEvery: 1_000_000,
    onSnapshotSaved: (seconds) => metrics.snapshotSave.observe(seconds),
  });
  await transport.start();
  await driver.start();
  return { name, storage, transport, driver };
}

async function stopMember(m: Member): Promise<void> {
  await m.driver.stop();
  await m.transport.stop();
  await m.storage.close();
}

async function initialCluster(): Promise<Map<string, string>> {
  const ports = await Promise.all(NAMES.map(() => freePort()));
  return new Map(NAMES.map((n, i) => [n, `127.0.0.1:${ports[i]}`]));
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** Keeps `inFlight` proposals outstanding at `driver` for `seconds`. */
async function measureRow(driver: RaftDriver, inFlight: number, seconds: number): Promise<RaftBenchRow> {
  const payload = new Uint8Array(256).fill(7);
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      await driver.propose(payload);
      latencies.push(performance.now() - t);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    inFlight,
    commits: latencies.length,
    seconds: elapsed,
    commitsPerSec: latencies.length / elapsed,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

export async function benchRaft(opts: RaftBenchOptions = {}): Promise<RaftBenchRow[]> {
  const inFlights = opts.inFlight ?? [1, 16, 64, 256];
  const seconds = opts.seconds ?? 3;
  const dir = mkdtempSync(join(tmpdir(), "berth-bench-raft-"));
  try {
    return opts.processes === 3
      ? await benchThreeProcesses(dir, inFlights, seconds)
      : await benchOneProcess(dir, inFlights, seconds);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function benchOneProcess(dir: string, inFlights: number[], seconds: number): Promise<RaftBenchRow[]> {
  const initial = await initialCluster();
  const members: Member[] = [];
  try {
    for (const name of NAMES) members.push(await startMember(name, dir, initial));
    let leader = members.find((m) => m.driver.isLeader());
    while (!leader) {
      await new Promise((r) => setTimeout(r, 20));
      leader = members.find((m) => m.driver.isLeader());
    }
    const rows: RaftBenchRow[] = [];
    for (const inFlight of inFlights) rows.push(await measureRow(leader.driver, inFlight, seconds));
    return rows;
  } finally {
    for (const m of members) await stopMember(m);
  }
}

// ---- One process per member -------------------------------------------------------------------------------
// The parent speaks to each child over its stdin/stdout, one JSON object per line:
//   child -> parent: {"leader": name} whenever it becomes leader, {"row": RaftBenchRow}, {"stopped": true}
//   parent -> child: {"run": inFlight, "seconds": N} (only to the leader), {"stop": true}

interface ChildMsg {
  leader?: string;
  row?: RaftBenchRow;
  error?: string;
  stopped?: boolean;
}

async function benchThreeProcesses(
  dir: string,
  inFlights: number[],
  seconds: number,
): Promise<RaftBenchRow[]> {
  const initial = await initialCluster();
  const self = fileURLToPath(import.meta.url);
  const cluster = JSON.stringify([...initial]);
  const listeners = new Set<(name: string, m: ChildMsg) => void>();
  const children = NAMES.map((name) => {
    const child = spawn(process.execPath, [self, "--member", name, "--dir", dir, "--cluster", cluster], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (!line.startsWith("{")) return;
      const m = JSON.parse(line) as ChildMsg;
      for (const l of listeners) l(name, m);
    });
    return { name, child };
  });
  const next = (pred: (name: string, m: ChildMsg) => boolean, what: string) =>
    new Promise<[string, ChildMsg]>((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(l);
        reject(new Error(`raft bench: no ${what} from the member processes within 60 s`));
      }, 60_000);
      const l = (name: string, m: ChildMsg) => {
        if (m.error) {
          clearTimeout(timer);
          listeners.delete(l);
          reject(new Error(`raft bench: member ${name}: ${m.error}`));
        } else if (pred(name, m)) {
          clearTimeout(timer);
          listeners.delete(l);
          resolve([name, m]);
        }
      };
      listeners.add(l);
    });
  const tell = (name: string, m: object) =>
    children.find((c) => c.name === name)!.child.stdin!.write(`${JSON.stringify(m)}\n`);
  try {
    const [leader] = await next((_, m) => m.leader !== undefined, "leader");
    const rows: RaftBenchRow[] = [];
    for (const inFlight of inFlights) {
      const reply = next((name, m) => name === leader && m.row !== undefined, "result");
      tell(leader, { run: inFlight, seconds });
      rows.push((await reply)[1].row!);
    }
    return rows;
  } finally {
    const exited = children.map(
      ({ child }) =>
        new Promise<void>((r) => (child.exitCode !== null ? r() : child.once("exit", () => r()))),
    );
    for (const { name } of children) tell(name, { stop: true });
    const timer = setTimeout(() => {
      for (const { child } of children) child.kill("SIGKILL");
    }, 10_000);
    await Promise.all(exited);
    clearTimeout(timer);
  }
}

async function memberMain(args: string[]): Promise<void> {
  const arg = (k: string) => args[args.indexOf(k) + 1]!;
  const name = arg("--member");
  const initial = new Map(JSON.parse(arg("--cluster")) as [string, string][]);
  const say = (m: ChildMsg) => process.stdout.write(`${JSON.stringify(m)}\n`);
  const member = await startMember(name, arg("--dir"), initial);
  member.driver.onLeaderChange((lead) => {
    if (lead === name) say({ leader: name });
  });
  if (member.driver.isLeader()) say({ leader: name });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const cmd = JSON.parse(line) as { run?: number; seconds?: number; stop?: boolean };
    if (cmd.stop) break;
    if (cmd.run !== undefined) {
      try {
        say({ row: await measureRow(member.driver, cmd.run, cmd.seconds ?? 3) });
      } catch (err) {
        say({ error: (err as Error).message });
      }
    }
  }
  lines.close();
  await stopMember(member);
  say({ stopped: true });
  process.exit(0);
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  if (args.includes("--member")) {
    await memberMain(args);
  } else {
    const at = (k: string) => (args.includes(k) ? Number(args[args.indexOf(k) + 1]) : undefined);
    const processes = at("--processes") === 3 ? 3 : 1;
    const rows = await benchRaft({ seconds: at("--seconds") ?? 3, processes });
    console.log(`3 members, ${processes === 3 ? "one process each" : "one process"}`);
    for (const r of rows)
      console.log(
        `${String(r.inFlight).padStart(4)} in flight: ${Math.round(r.commitsPerSec)} commits/s, ` +
          `p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms`,
      );
  }
}
