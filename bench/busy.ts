// A cluster on a busy machine: every core kept busy by loops (as a machine's own units can), a 3-member cluster
// started on top of them, and PUTs one at a time from the first request on, with no warm-up (a member restarting on
// a busy machine compiles its code under that load too). The worst request tells whether a member keeps serving,
// and so heartbeating, there: it must stay under the election timeout. etcd runs the same when it is installed.
//
// Berth's leader also judges machine liveness all along: a machine declared lost on a busy machine (its units
// would move) counts against the goal too.
//
// Why it exists: running the runtime's JIT and allocator helper threads at idle priority helped Berth's x1 tail on
// an idle machine, and made the event loop stall for seconds here (README, "The runtime's helper threads").
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Cluster,
  ensureBerth,
  ensureEtcd,
  etcdInstalledOrInstallable,
  killStarted,
  type LoadResult,
  runHttp,
  startBerth,
  startEtcd,
  stopCluster,
  waitReady,
} from "./etcd-compare.ts";

/** Berth's default election timeout (10 ticks of 50 ms): a longer stall on the leader lets an election start. */
const ELECTION_TIMEOUT_MS = 500;
const HOGS_PER_CORE = 2;

export interface BusyRow {
  system: string;
  readyAfterS: number;
  result: LoadResult;
  maxMs: number;
  over100Ms: number;
  /** Times a leader declared a machine lost (Berth only: every machine was up all along). */
  machinesLost: number | null;
  /** Leaders elected after the first (every member was up all along: each one is spurious). */
  elections: number;
}

/** The engine's "machine … is lost" lines in the members' logs. */
function machinesLost(c: Cluster): number {
  let n = 0;
  for (const log of c.logs)
    if (existsSync(log))
      n += readFileSync(log, "utf8").match(/\[engine\] machine \S+ \(\S+\) is lost/g)?.length ?? 0;
  return n;
}

/** Leaders elected after the first, from the members' logs (Berth's "became leader", etcd's "elected leader"). */
function laterElections(c: Cluster): number {
  let n = 0;
  for (const log of c.logs)
    if (existsSync(log))
      n += readFileSync(log, "utf8").match(/became leader at term|elected leader/g)?.length ?? 0;
  return Math.max(0, n - 1);
}

/** Busy loops that end by themselves after `limitS` even if this process dies without stopping them. */
function startHogs(limitS: number): ChildProcess[] {
  return Array.from({ length: HOGS_PER_CORE * availableParallelism() }, () =>
    spawn("timeout", [String(Math.ceil(limitS)), "sh", "-c", "while :; do :; done"], { stdio: "ignore" }),
  );
}

function stopHogs(hogs: ChildProcess[]): void {
  // SIGTERM, which timeout(1) passes on to its loop; by the PIDs of the processes started here.
  for (const h of hogs) if (h.exitCode === null && h.signalCode === null) h.kill("SIGTERM");
}

export async function benchBusy(opts: { seconds: number }): Promise<BusyRow[]> {
  ensureBerth();
  // BENCH_ONLY=berth leaves etcd out (a long run of Berth alone).
  const etcdBin = process.env.BENCH_ONLY !== "berth" && etcdInstalledOrInstallable() ? ensureEtcd() : null;
  const parent = mkdtempSync(join(tmpdir(), "berth-bench-busy-"));
  const hogs = startHogs(2 * opts.seconds + 300); // two clusters' start-up and runs, with room to spare
  const killHogs = () => stopHogs(hogs);
  const onSignal = () => {
    killStarted(); // the members, before their data goes; the exit hook stops the busy loops
    rmSync(parent, { recursive: true, force: true });
    process.exit(130);
  };
  process.on("exit", killHogs);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const rows: BusyRow[] = [];
  try {
    const systems: [string, () => Promise<Cluster>][] = [["berth", () => startBerth(parent)]];
    if (etcdBin) systems.unshift(["etcd", () => startEtcd(etcdBin, parent)]);
    for (const [system, start] of systems) {
      const t0 = performance.now();
      const c = await start();
      try {
        await waitReady(c, 120_000);
        const readyAfterS = (performance.now() - t0) / 1000;
        const result = await runHttp(
          c.httpUrls,
          { label: "busy x1", kind: "put", inFlight: 1 },
          opts.seconds,
        );
        const lat = result.latencies ?? [];
        rows.push({
          system,
          readyAfterS,
          result,
          maxMs: lat[lat.length - 1] ?? 0,
          over100Ms: lat.filter((l) => l > 100).length,
          machinesLost: system === "berth" ? machinesLost(c) : null,
          elections: laterElections(c),
        });
      } finally {
        await stopCluster(c);
      }
    }
  } finally {
    killHogs();
    process.off("exit", killHogs);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    rmSync(parent, { recursive: true, force: true });
  }
  return rows;
}

export function formatBusy(rows: BusyRow[]): [string[], (string | number)[][]] {
  return [
    [
      "system",
      "ready after s",
      "requests",
      "ops/s",
      "p50 ms",
      "p99 ms",
      "max ms",
      "over 100 ms",
      "errors",
      "machines lost",
      "later elections",
      "goal",
    ],
    rows.map((r) => [
      r.system,
      r.readyAfterS.toFixed(1),
      r.result.ok,
      Math.round(r.result.opsPerSec),
      r.result.p50Ms.toFixed(2),
      r.result.p99Ms.toFixed(2),
      r.maxMs.toFixed(1),
      r.over100Ms,
      r.result.errors,
      r.machinesLost ?? "",
      r.elections,
      r.system === "berth"
        ? `max < ${ELECTION_TIMEOUT_MS} ms, no errors, no machine lost, no election: ${r.maxMs < ELECTION_TIMEOUT_MS && r.result.errors === 0 && r.machinesLost === 0 && r.elections === 0 ? "met" : "MISSED"}`
        : "",
    ]),
  ];
}

export function busyHeader(seconds: number): string {
  return (
    `A cluster on a busy machine: ${HOGS_PER_CORE * availableParallelism()} busy loops on ` +
    `${availableParallelism()} cores, 3 members started on top of them (127.0.0.1..3), then PUTs of 256-byte ` +
    `values one at a time round-robin over the members for ${seconds} s, measured from the first request (no ` +
    `warm-up); one system at a time`
  );
}
