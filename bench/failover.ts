// Failover (issue 24), Berth vs etcd 3.4 with default settings, writers sending PUTs round-robin over the 3 members
// (2 s request timeout, the failed member included, as a client with the member list does), the time from the fault
// to the first successful write that started after it. A fresh cluster per run, alternating systems (Berth, then
// etcd 3.4 when installed).
// - goal 1, leader crash: members on 127.0.0.1..3, the leader SIGKILLed (its sockets close at once);
// - goal 2, leader machine silent: members on 127.0.7.1..3 behind the chaos harness's fault proxies (peers and
//   clients), every link of the leader black-holed (no FIN: requests to it time out, its peers hear nothing).
// Goal 3 (a lost machine's units active elsewhere) has no etcd counterpart: bench/machine-loss.ts.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Cluster,
  type ClusterPlacement,
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
import { LOSS_GOAL_MAX_MS, LOSS_GOAL_P50_MS, type MachineLossResult, STALL_MS } from "./machine-loss.ts";
import { type SilenceableCluster, startSilenceable } from "./silent-member.ts";

const REQUEST_TIMEOUT_MS = 2000;
const WRITERS = 3;
/** Writes run this long before the kill, so every member serves them and forwards to the leader. */
const WARM_MS = 1000;
/** A run without a successful write this long after the kill counts as this long (and is reported). */
const GIVE_UP_MS = 15_000;
export const FAILOVER_GOAL_MS = 300;
/** Goal 2: a silent leader -> writes again, p50 and max. */
export const SILENT_GOAL_P50_MS = 1500;
export const SILENT_GOAL_MAX_MS = 2000;
/** The silent-leader runs' members (the fault proxies tell Berth's members apart by their addresses). */
const SILENT_HOSTS = ["127.0.7.1", "127.0.7.2", "127.0.7.3"];

export type FailoverFault = "crash" | "silent";

export interface FailoverRow {
  fault: FailoverFault;
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

/**
 * One run: writers going, `fault` done to the leader (its index), fault -> first successful write started after it
 * (ms).
 */
async function oneRun(
  c: Cluster,
  fault: (leader: number) => void,
): Promise<{ ms: number; failed: number; at: string }> {
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
    const at = new Date().toISOString();
    fault(leader);
    const giveUp = setTimeout(() => {
      stop = true;
    }, GIVE_UP_MS);
    await Promise.all(writers);
    clearTimeout(giveUp);
    return { ms: Math.min(firstOkAt - killedAt, GIVE_UP_MS), failed, at };
  } finally {
    agent.destroy();
  }
}

/** A started cluster ready for one run's fault. */
interface Prepared {
  c: Cluster;
  fault(leader: number): void;
  close(): Promise<void>;
  /** Said after the run (the proxies' unattributed connections). */
  note(): string;
}

async function prepare(
  fault: FailoverFault,
  start: (placement: ClusterPlacement) => Promise<Cluster>,
  byProcess: boolean,
): Promise<Prepared> {
  if (fault === "crash") {
    const c = await start({});
    return {
      c,
      fault: (leader) => c.procs[leader]!.kill("SIGKILL"), // by the PID of the member this bench spawned
      close: () => stopCluster(c),
      note: () => "",
    };
  }
  const s: SilenceableCluster = await startSilenceable(start, SILENT_HOSTS, byProcess);
  return {
    c: s.cluster,
    fault: (leader) => s.silence(leader),
    close: async () => {
      await stopCluster(s.cluster);
      await s.close();
    },
    note: () => (s.strangers() > 0 ? `, ${s.strangers()} peer connections not attributed (passed)` : ""),
  };
}

export async function benchFailover(opts: {
  runs: number;
  faults?: FailoverFault[];
  progress?: (line: string) => void;
}): Promise<FailoverRow[]> {
  const faults = opts.faults ?? ["crash", "silent"];
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
  // The system, its start with a placement, and whether the proxies find its peer callers by process (etcd).
  const systems: [string, (p: ClusterPlacement) => Promise<Cluster>, boolean][] = [
    ["berth", (p) => startBerth(parent, p), false],
  ];
  if (etcdBin) systems.push(["etcd 3.4", (p) => startEtcd(etcdBin, parent, p), true]);
  const key = (fault: FailoverFault, system: string) => `${fault} ${system}`;
  const results = new Map<string, { runs: number[]; failed: number }>();
  for (const fault of faults)
    for (const [system] of systems) results.set(key(fault, system), { runs: [], failed: 0 });
  try {
    for (const fault of faults) {
      for (let run = 1; run <= opts.runs; run++) {
        for (const [system, start, byProcess] of systems) {
          const p = await prepare(fault, start, byProcess);
          try {
            await waitReady(p.c, 60_000);
            const r = await oneRun(p.c, p.fault);
            const acc = results.get(key(fault, system))!;
            acc.runs.push(r.ms);
            acc.failed += r.failed;
            opts.progress?.(
              `${fault} ${system} run ${run}: ${r.ms.toFixed(0)} ms (${r.failed} writes failed meanwhile${p.note()})`,
            );
            const goal = fault === "crash" ? FAILOVER_GOAL_MS : SILENT_GOAL_MAX_MS;
            if (system === "berth" && r.ms >= goal) {
              opts.progress?.(`  ${r.at} the fault`);
              for (const line of electionLines(p.c)) opts.progress?.(`  ${line}`);
            }
          } finally {
            await p.close();
          }
        }
      }
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    rmSync(parent, { recursive: true, force: true });
  }
  return faults.flatMap((fault) =>
    systems.map(([system]) => {
      const { runs, failed } = results.get(key(fault, system))!;
      const sorted = [...runs].sort((a, b) => a - b);
      return {
        fault,
        system,
        runs,
        p50Ms: sorted[Math.floor((sorted.length - 1) / 2)] ?? 0,
        maxMs: sorted[sorted.length - 1] ?? 0,
        failedWrites: failed,
      };
    }),
  );
}

/** A slow run's election as the members logged it (Berth), to tell why. */
function electionLines(c: Cluster): string[] {
  const lines: string[] = [];
  for (const log of c.logs) {
    if (!existsSync(log)) continue;
    for (const l of readFileSync(log, "utf8").split("\n"))
      if (/pre-vote|became leader|connection to \S+ lost|stepping down|check-quorum|election/.test(l))
        lines.push(l);
  }
  return lines.slice(-12);
}

const FAULT_LABEL: Record<FailoverFault, string> = {
  crash: "1. leader process SIGKILLed -> writes again",
  silent: "2. leader machine silent (black-holed) -> writes again",
};

function goalText(r: FailoverRow): string {
  if (r.system !== "berth") return "";
  if (r.fault === "crash")
    return `p50 and max < ${FAILOVER_GOAL_MS} ms: ${r.maxMs < FAILOVER_GOAL_MS ? "met" : "MISSED"}`;
  const met = r.p50Ms < SILENT_GOAL_P50_MS && r.maxMs < SILENT_GOAL_MAX_MS;
  return `p50 < ${SILENT_GOAL_P50_MS / 1000} s, max < ${SILENT_GOAL_MAX_MS / 1000} s: ${met ? "met" : "MISSED"}`;
}

export const FAILOVER_HEADERS = [
  "goal: fault -> back",
  "system",
  "runs",
  "p50 ms",
  "max ms",
  "p50 vs etcd",
  "max vs etcd",
  "detail",
  "goal",
];

/** Rows for bench/run.ts's table(): each fault's Berth row, then etcd's with the ratios on Berth's. */
export function formatFailover(rows: FailoverRow[]): [string[], (string | number)[][]] {
  const ratio = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}x` : "");
  return [
    FAILOVER_HEADERS,
    rows.map((r) => {
      const etcd = rows.find((e) => e.fault === r.fault && e.system.startsWith("etcd"));
      const other = etcd && r !== etcd;
      return [
        FAULT_LABEL[r.fault],
        r.system,
        r.runs.length,
        r.p50Ms.toFixed(0),
        r.maxMs.toFixed(0),
        other ? ratio(r.p50Ms, etcd.p50Ms) : "",
        other ? ratio(r.maxMs, etcd.maxMs) : "",
        `${r.failedWrites} failed writes`,
        goalText(r),
      ];
    }),
  ];
}

export function failoverHeader(runs: number): string {
  return (
    `Failover, default settings for both systems (Berth: tick 50 ms, agent TTL 2.5 s; etcd 3.4: 100 ms heartbeat, ` +
    `1000 ms election timeout), 3 members, ${WRITERS} writers sending PUTs round-robin over all members ` +
    `(${REQUEST_TIMEOUT_MS / 1000} s request timeout); the fault comes after ${WARM_MS / 1000} s of writes; time from ` +
    `the fault to the first successful write started after it; ${runs} runs, a fresh cluster each, systems alternating.\n` +
    "1: members on 127.0.0.1..3, the leader SIGKILLed. 2: members on 127.0.7.1..3 known to each other and to the " +
    "writers through the chaos harness's fault proxies; every link of the leader (peers both ways, clients) " +
    "black-holed, no FIN (requests to it time out after 2 s)."
  );
}

/** Goal 3's rows for the same table (Berth only: etcd runs no units). */
export function formatMachineLoss(r: MachineLossResult): (string | number)[][] {
  const met = r.p50Ms < LOSS_GOAL_P50_MS && r.maxMs < LOSS_GOAL_MAX_MS;
  const moved = r.crashes.map((k) => k.units);
  const fences = r.crashes.reduce((sum, k) => sum + k.survivorFences, 0);
  const d = r.doubleRuns;
  const rows: (string | number)[][] = [
    [
      "3. machine lost (node, supervisor, units SIGKILLed) -> its units active elsewhere",
      "berth",
      r.crashes.length,
      r.p50Ms.toFixed(0),
      r.maxMs.toFixed(0),
      "etcd: no units",
      "",
      `${Math.min(...moved)}-${Math.max(...moved)} of ${r.units} units moved per run, ${fences} survivor lease fences`,
      `p50 < ${LOSS_GOAL_P50_MS / 1000} s, max < ${LOSS_GOAL_MAX_MS / 1000} s: ${met ? "met" : "MISSED"}`,
    ],
    [
      "3. units running twice at once during those runs",
      "berth",
      r.crashes.length,
      "",
      "",
      "",
      "",
      `${d.units.length} units (${d.scans} scans, ${d.processesPerScan.join("-")} unit processes each)`,
      `none: ${d.units.length === 0 ? "met" : "MISSED"}`,
    ],
  ];
  if (r.stall)
    rows.push([
      `3. whole host SIGSTOPped ${STALL_MS / 1000} s (nodes, supervisors, units) -> units moved`,
      "berth",
      1,
      "",
      "",
      "",
      "",
      `${r.stall.moved} moved, ${r.stall.restarted} unit processes replaced, ${r.stall.lostLines} machines declared lost`,
      `0 moved: ${r.stall.moved === 0 && r.stall.restarted === 0 ? "met" : "MISSED"}`,
    ]);
  return rows;
}

export function machineLossHeader(r: MachineLossResult): string {
  return (
    `3: ${r.units} units (sleep) on 3 nodes on 127.0.7.1..3 (Berth defaults); each run a machine's death as in the ` +
    "sched bench's crash rows (node SIGSTOPped, its supervisor and unit processes SIGKILLed, then the node), " +
    "alternately a follower and the leader, timed to the last of its units active elsewhere (the `since` its new " +
    "agent reports); the victim restarted with its data dir between runs; every unit process scanned every 250 ms " +
    "for a unit running twice."
  );
}
