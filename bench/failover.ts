// Leader crash -> writes again (issue 24, goal 1): 3 members on 127.0.0.1..3 with default settings, writers
// sending PUTs round-robin over the members (2 s request timeout, the dead member included, as a client with the
// member list does), the leader SIGKILLed, and the time from the kill to the first successful write that started
// after it. A fresh cluster per run, alternating systems (Berth, then etcd 3.4 when installed).
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Cluster,
  ensureBerth,
  ensureEtcd,
  etcdInstalledOrInstallable,
  httpOnce,
  killStarted,
  startBerth,
  startEtcd,
  stopCluster,
  waitReady,
} from "./etcd-compare.ts";

const REQUEST_TIMEOUT_MS = 2000;
const WRITERS = 3;
/** Writes run this long before the kill, so every member serves them and forwards to the leader. */
const WARM_MS = 1000;
/** A run without a successful write this long after the kill counts as this long (and is reported). */
const GIVE_UP_MS = 15_000;
export const FAILOVER_GOAL_MS = 300;

export interface FailoverRow {
  system: string;
  /** Kill to first successful write, per run (ms). */
  runs: number[];
  p50Ms: number;
  maxMs: number;
  /** Writes that failed between the kill and the first success, summed over the runs. */
  failedWrites: number;
}

/** The member that reports itself leader on etcd's /v2/stats/self (Berth serves the same document). */
async function leaderIndex(c: Cluster): Promise<number> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    for (const [i, url] of c.httpUrls.entries()) {
      const r = await getJson(`${url}/v2/stats/self`);
      if ((r as { state?: string } | null)?.state === "StateLeader") return i;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${c.name}: no member reports itself leader`);
}

async function getJson(url: string): Promise<unknown> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}

/** One run: writers going, the leader SIGKILLed, kill -> first successful write started after it (ms). */
async function oneRun(c: Cluster): Promise<{ ms: number; failed: number }> {
  const agent = new Agent({ keepAlive: true });
  try {
    const leader = await leaderIndex(c);
    let killedAt = Number.POSITIVE_INFINITY;
    let firstOkAt = Number.POSITIVE_INFINITY;
    let failed = 0;
    let stop = false;
    const writer = async (w: number) => {
      for (let j = 0; !stop; j++) {
        const member = (w + j) % c.httpUrls.length;
        const started = performance.now();
        const r = await httpOnce(
          agent,
          c.httpUrls[member]!,
          "PUT",
          `/v2/keys/failover/w${w}`,
          `value=${j}`,
          REQUEST_TIMEOUT_MS,
        );
        const ok = r.status >= 200 && r.status < 300;
        if (started >= killedAt) {
          if (ok) {
            firstOkAt = Math.min(firstOkAt, performance.now());
            stop = true;
          } else failed++;
        }
        // A refused connection (the dead member) answers at once: do not spin on it.
        if (!ok) await new Promise((r) => setTimeout(r, 5));
      }
    };
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
    await new Promise((r) => setTimeout(r, WARM_MS));
    killedAt = performance.now();
    c.procs[leader]!.kill("SIGKILL"); // by the PID of the member this bench spawned
    const giveUp = setTimeout(() => {
      stop = true;
    }, GIVE_UP_MS);
    await Promise.all(writers);
    clearTimeout(giveUp);
    return { ms: Math.min(firstOkAt - killedAt, GIVE_UP_MS), failed };
  } finally {
    agent.destroy();
  }
}

export async function benchFailover(opts: {
  runs: number;
  progress?: (line: string) => void;
}): Promise<FailoverRow[]> {
  ensureBerth();
  const etcdBin = etcdInstalledOrInstallable() ? ensureEtcd() : null;
  const parent = mkdtempSync(join(tmpdir(), "berth-bench-failover-"));
  const onSignal = () => {
    killStarted();
    rmSync(parent, { recursive: true, force: true });
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const systems: [string, () => Promise<Cluster>][] = [["berth", () => startBerth(parent)]];
  if (etcdBin) systems.push(["etcd 3.4", () => startEtcd(etcdBin, parent)]);
  const results = new Map(systems.map(([s]) => [s, { runs: [] as number[], failed: 0 }]));
  try {
    for (let run = 1; run <= opts.runs; run++) {
      for (const [system, start] of systems) {
        const c = await start();
        try {
          await waitReady(c, 60_000);
          const r = await oneRun(c);
          const acc = results.get(system)!;
          acc.runs.push(r.ms);
          acc.failed += r.failed;
          opts.progress?.(
            `${system} run ${run}: ${r.ms.toFixed(0)} ms (${r.failed} writes failed meanwhile)`,
          );
          if (system === "berth" && r.ms >= FAILOVER_GOAL_MS)
            for (const line of electionLines(c)) opts.progress?.(`  ${line}`);
        } finally {
          await stopCluster(c);
        }
      }
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    rmSync(parent, { recursive: true, force: true });
  }
  return systems.map(([system]) => {
    const { runs, failed } = results.get(system)!;
    const sorted = [...runs].sort((a, b) => a - b);
    return {
      system,
      runs,
      p50Ms: sorted[Math.floor((sorted.length - 1) / 2)] ?? 0,
      maxMs: sorted[sorted.length - 1] ?? 0,
      failedWrites: failed,
    };
  });
}

/** A slow run's election as the members logged it (Berth), to tell why. */
function electionLines(c: Cluster): string[] {
  const lines: string[] = [];
  for (const log of c.logs) {
    if (!existsSync(log)) continue;
    for (const l of readFileSync(log, "utf8").split("\n"))
      if (/pre-vote|became leader|connection to \S+ lost|stepping down/.test(l)) lines.push(l);
  }
  return lines.slice(-12);
}

export function formatFailover(rows: FailoverRow[]): [string[], (string | number)[][]] {
  const etcd = rows.find((r) => r.system.startsWith("etcd"));
  return [
    ["system", "runs", "p50 ms", "max ms", "p50 vs etcd", "failed writes", "goal"],
    rows.map((r) => [
      r.system,
      r.runs.length,
      r.p50Ms.toFixed(0),
      r.maxMs.toFixed(0),
      etcd && r !== etcd ? `${(r.p50Ms / etcd.p50Ms).toFixed(2)}x` : "",
      r.failedWrites,
      r.system === "berth"
        ? `p50 and max < ${FAILOVER_GOAL_MS} ms: ${r.maxMs < FAILOVER_GOAL_MS ? "met" : "MISSED"}`
        : "",
    ]),
  ];
}

export function failoverHeader(runs: number): string {
  return (
    `Leader crash -> writes again: 3 members on 127.0.0.1..3 (default settings), ${WRITERS} writers sending PUTs ` +
    `round-robin over all members (${REQUEST_TIMEOUT_MS / 1000} s request timeout), the leader SIGKILLed after ` +
    `${WARM_MS / 1000} s; time from the kill to the first successful write started after it; ${runs} runs, a ` +
    "fresh cluster each, systems alternating"
  );
}
