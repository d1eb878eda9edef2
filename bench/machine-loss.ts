// Machine lost -> its units active elsewhere (issue 24, goal 3; etcd has no units, so Berth only): 3 real nodes with
// default settings on 127.0.7.1..3 running `units` template instances (`sleep`); each run is a machine's death as
// bench/sched-e2e.ts's crash rows do it (node SIGSTOPped, its unit supervisor and unit processes SIGKILLed, then the
// node), alternately a follower and the leader, timed from the stop to the last of its units active elsewhere (the
// `since` its new machine's agent reports); the victim is restarted with its data dir and the cluster settles before
// the next run. Meanwhile every unit process is scanned for a unit running twice at once. Then the whole host
// stalls: every node, supervisor and unit process SIGSTOPped for 7 s and continued, and nothing may move.
import { join } from "node:path";
import { supervisorPid } from "../src/agent/supervisor.ts";
import {
  BenchCluster,
  call,
  crashAndMeasure,
  pct,
  pickVictim,
  type SchedCrashResult,
  settle,
  submitUnits,
} from "./sched-e2e.ts";
import { allUnitProcs, DoubleRunWatch } from "./unit-procs.ts";

export const LOSS_GOAL_P50_MS = 3000;
export const LOSS_GOAL_MAX_MS = 4000;
/** The default agent TTL (src/node/config.ts): a stall this long would have every machine's lease run out. */
const AGENT_TTL_MS = 2500;
export const STALL_MS = 7000;

export interface HostStallResult {
  /** Units on another machine after the stall than before it. */
  moved: number;
  /** Unit processes that are not the ones running before the stall (restarted or gone). */
  restarted: number;
  /** "machine ... is lost" lines the nodes logged from the stall on. */
  lostLines: number;
}

export interface MachineLossResult {
  units: number;
  crashes: SchedCrashResult[];
  /** Per crash the time until its last unit was active elsewhere: p50 and max over the crashes. */
  p50Ms: number;
  maxMs: number;
  doubleRuns: { scans: number; units: string[]; processesPerScan: [number, number] };
  stall: HostStallResult | null;
  leftovers: { afterGraceful: number; afterKill: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LOST = /machine \S+ \(\S+\) is lost/;
const lostLines = (c: BenchCluster) =>
  c.nodes.reduce(
    (sum, n) =>
      sum +
      c
        .log(n)
        .split("\n")
        .filter((l) => LOST.test(l)).length,
    0,
  );

/**
 * The whole host frozen for STALL_MS (test/host-stall.test.ts's order: supervisors and nodes first, so no agent sees
 * its units stop, then the units' groups; thawed the other way round), then 3 TTLs for a wrong verdict to act.
 */
async function hostStall(
  c: BenchCluster,
  units: number,
  progress: (l: string) => void,
): Promise<HostStallResult> {
  const where = async () =>
    new Map((await call(c, "units.list")).map((u) => [u.name, [...u.machines].sort().join(",")]));
  const before = await where();
  const procsBefore = allUnitProcs(c.tag);
  const lostBefore = lostLines(c);
  const supervisors = c.nodes.flatMap((n) => supervisorPid(join(n.dataDir, "agent")) ?? []);
  const nodes = c.live().map((n) => n.proc!.pid!);
  const groups = new Set(procsBefore.map((p) => p.pgid));
  const signal = (pids: Iterable<number>, sig: NodeJS.Signals, group = false) => {
    for (const pid of pids)
      try {
        process.kill(group ? -pid : pid, sig);
      } catch {}
  };
  progress(
    `host stall: SIGSTOP ${supervisors.length} supervisors, ${nodes.length} nodes, ${groups.size} unit groups for ${STALL_MS / 1000} s`,
  );
  try {
    signal(supervisors, "SIGSTOP");
    signal(nodes, "SIGSTOP");
    signal(groups, "SIGSTOP", true);
    await sleep(STALL_MS);
  } finally {
    signal(groups, "SIGCONT", true);
    signal(nodes, "SIGCONT");
    signal(supervisors, "SIGCONT");
  }
  await sleep(3 * AGENT_TTL_MS);
  await settle(c, units, progress);
  const after = await where();
  const pidsAfter = new Set(allUnitProcs(c.tag).map((p) => p.pid));
  return {
    moved: [...before].filter(([name, m]) => after.get(name) !== m).length,
    restarted: procsBefore.filter((p) => !pidsAfter.has(p.pid)).length,
    lostLines: lostLines(c) - lostBefore,
  };
}

export async function benchMachineLoss(opts: {
  runs: number;
  units?: number;
  stall?: boolean;
  progress?: (l: string) => void;
}): Promise<MachineLossResult> {
  const units = opts.units ?? 30;
  const progress = opts.progress ?? (() => {});
  const c = new BenchCluster("127.0.7.");
  // Interrupted: the same cleanup as the sched bench's (once), then the conventional exit status.
  const signals = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
  const onSignal = (sig: keyof typeof signals) => {
    void c.stop(false).finally(() => process.exit(signals[sig]));
  };
  for (const sig of Object.keys(signals) as (keyof typeof signals)[]) process.on(sig, onSignal);
  const watch = new DoubleRunWatch(c.tag);
  const crashes: SchedCrashResult[] = [];
  let stall: HostStallResult | null = null;
  let leftovers = { afterGraceful: -1, afterKill: -1 };
  try {
    await c.start(3);
    await c.leader();
    const cl = await c.client();
    try {
      await submitUnits(
        cl,
        c.tag,
        Array.from({ length: units }, (_, i) => `bench@${i + 1}.service`),
      );
      await cl.call("units.setDesired", {
        names: Array.from({ length: units }, (_, i) => `bench@${i + 1}.service`),
        desired: "launched",
      });
    } finally {
      cl.close();
    }
    await settle(c, units, progress);
    watch.start();
    for (let i = 0; i < opts.runs; i++) {
      const victim = await pickVictim(c, i % 2 === 1);
      const r = await crashAndMeasure(c, victim);
      crashes.push(r);
      progress(
        `machine lost ${i + 1}/${opts.runs}: ${victim} (${r.wasLeader ? "leader" : "follower"}), ${r.activated}/${r.units} units active elsewhere, last after ${r.maxMs} ms (p50 ${r.p50Ms} ms), ${r.survivorFences} survivor fences`,
      );
      await settle(c, units, progress);
    }
    if (opts.stall !== false) {
      stall = await hostStall(c, units, progress);
      progress(`host stall: ${JSON.stringify(stall)}`);
    }
    watch.stop();
    watch.scan();
  } finally {
    watch.stop();
    leftovers = await c.stop(false);
    for (const sig of Object.keys(signals) as (keyof typeof signals)[]) process.off(sig, onSignal);
  }
  const lasts = crashes.map((k) => k.maxMs);
  return {
    units,
    crashes,
    p50Ms: pct(lasts, 50),
    maxMs: Math.max(...lasts),
    doubleRuns: {
      scans: watch.scans,
      units: [...watch.doubled.keys()],
      processesPerScan: [watch.fewest, watch.most],
    },
    stall,
    leftovers,
  };
}
