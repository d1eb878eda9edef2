// A unit flooding its journal (issue: "Liveness that survives stalls and floods"): a unit running `yes` (journald's
// default rate limit, 10000 lines per 30 s) on one node of a 3-node loopback cluster (dist/berth, the test
// cluster's settings: tick 50 ms, agent TTL 5 s), a follower (MachineID=), as in the issue where the leader marked
// the flooded machine lost. Measured: linearizable kv gets through that node, one every 20 ms with a 1 s timeout,
// first for a baseline without the unit, then for `seconds` with it; the machine-lost events the engine logged
// (" is lost"); the node's and the unit's CPU use and the node's largest RSS; the "Suppressed N messages" lines
// its journal got.
// Goal: 0 machine-lost events and kv get p99 <= 50 ms through the flooded node.
// Run directly: bun bench/flood.ts [--seconds N] [--baseline N]
import { readFileSync } from "node:fs";
import type { BerthClient } from "../src/client/client.ts";
import { clientFor, TestCluster, waitFor } from "../test/support/cluster.ts";

const floodUnit = (machineId: string) =>
  `[Unit]\nDescription=writes y lines as fast as it can\n\n[Service]\nExecStart=/usr/bin/yes\n\n[X-Fleet]\nMachineID=${machineId}\n`;
const GOAL_P99_MS = 50;
const GET_EVERY_MS = 20;

export interface FloodPhase {
  phase: string;
  seconds: number;
  gets: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** CPU time of the flooded node's process over the phase, as a share of one core. */
  nodeCpu: number;
  /** The same for the unit's main process (null without the unit). */
  unitCpu: number | null;
  nodeMaxRssMiB: number;
  machineLost: number;
}

export interface FloodResult {
  node: string;
  phases: FloodPhase[];
  suppressedLines: number;
  suppressedMessages: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted: number[], p: number) =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** utime + stime of a process, in seconds (/proc/<pid>/stat, clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
}

function lostEvents(c: TestCluster): number {
  return c.nodes.reduce(
    (n, node) =>
      n +
      readFileSync(node.logFile, "utf8")
        .split("\n")
        .filter((l) => / is lost$/.test(l)).length,
    0,
  );
}

async function measure(
  phase: string,
  c: TestCluster,
  cl: BerthClient,
  pid: number,
  seconds: number,
  unitPid: number | null = null,
): Promise<FloodPhase> {
  const lostBefore = lostEvents(c);
  const cpu0 = cpuSeconds(pid);
  const unitCpu0 = unitPid === null ? 0 : cpuSeconds(unitPid);
  const t0 = performance.now();
  const latencies: number[] = [];
  let errors = 0;
  let maxRss = rssMiB(pid);
  let nextRss = t0 + 1000;
  while (performance.now() - t0 < seconds * 1000) {
    const s = performance.now();
    try {
      await cl.call("kv.get", { key: "/bench/flood/probe", consistency: "linearizable" }, 1000);
      latencies.push(performance.now() - s);
    } catch {
      errors++;
    }
    if (performance.now() > nextRss) {
      maxRss = Math.max(maxRss, rssMiB(pid));
      nextRss += 1000;
    }
    await sleep(Math.max(0, GET_EVERY_MS - (performance.now() - s)));
  }
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    phase,
    seconds: elapsed,
    gets: latencies.length,
    errors,
    p50Ms: pct(latencies, 50),
    p99Ms: pct(latencies, 99),
    maxMs: latencies[latencies.length - 1] ?? Number.NaN,
    nodeCpu: (cpuSeconds(pid) - cpu0) / elapsed,
    unitCpu: unitPid === null ? null : (cpuSeconds(unitPid) - unitCpu0) / elapsed,
    nodeMaxRssMiB: maxRss,
    machineLost: lostEvents(c) - lostBefore,
  };
}

export async function benchFlood(
  opts: { seconds?: number; baselineSeconds?: number; progress?: (l: string) => void } = {},
): Promise<FloodResult> {
  const progress = opts.progress ?? (() => {});
  const c = await TestCluster.start(3);
  try {
    // Connected to every node before the flood starts.
    const clients = new Map(
      await Promise.all(c.nodes.map(async (n) => [n.name, await clientFor(c, n.name, 5000)] as const)),
    );
    try {
      const any = clients.get("n1")!;
      await any.call("kv.write", { method: "PUT", key: "/bench/flood/probe", value: "x" });
      await waitFor(
        "3 machines up",
        async () => (await any.call("machines.list", {})).filter((m) => m.state === "up").length === 3,
        30_000,
      );
      const leader = (await any.call("node.status", {})).leader;
      const node = c.nodes.find((n) => n.name !== leader)!.name;
      const machineId = (await any.call("machines.list", {})).find((m) => m.name === node)!.id;
      const cl = clients.get(node)!;
      const pid = c.node(node).proc!.pid!;
      progress(`baseline through ${node} (a follower), ${opts.baselineSeconds ?? 10} s`);
      const baseline = await measure("no unit", c, cl, pid, opts.baselineSeconds ?? 10);
      await any.call("units.submit", { units: [{ name: "flood.service", text: floodUnit(machineId) }] });
      await any.call("units.setDesired", { names: ["flood.service"], desired: "launched" });
      const unitPid = await waitFor(
        "flood.service active",
        async () => {
          const r = (await any.call("units.states", {})).find((x) => x.name === "flood.service");
          return r?.active === "active" && r.machine === machineId ? r.mainPid : null;
        },
        30_000,
        100,
      );
      progress(`flood.service runs on ${node}; ${opts.seconds ?? 60} s of kv gets through it`);
      const flood = await measure("yes unit", c, cl, pid, opts.seconds ?? 60, unitPid);
      const journal = await clients
        .get(node)!
        .call("units.journal", { name: "flood.service", lines: 100_000 });
      const suppressed = journal.filter((l) => l.stream === "berth" && l.text.startsWith("Suppressed "));
      await any.call("units.destroy", { names: ["flood.service"] });
      return {
        node,
        phases: [baseline, flood],
        suppressedLines: suppressed.length,
        suppressedMessages: suppressed.reduce(
          (n, l) => n + Number(/^Suppressed (\d+)/.exec(l.text)?.[1] ?? 0),
          0,
        ),
      };
    } finally {
      for (const cl of clients.values()) cl.close();
    }
  } finally {
    await c.stop();
  }
}

/** Headers and rows for bench/run.ts's table(). */
export function formatFlood(r: FloodResult): [string[], (string | number)[][]] {
  const f = (n: number, d = 1) => (Number.isNaN(n) ? "-" : n.toFixed(d));
  return [
    [
      "phase",
      "s",
      "gets",
      "errors",
      "p50 ms",
      "p99 ms",
      "max ms",
      "node CPU",
      "unit CPU",
      "node max RSS MiB",
      "machine lost",
      "goal",
    ],
    r.phases.map((p) => [
      `${p.phase} (kv get via ${r.node})`,
      f(p.seconds, 0),
      p.gets,
      p.errors,
      f(p.p50Ms, 2),
      f(p.p99Ms, 2),
      f(p.maxMs),
      `${Math.round(p.nodeCpu * 100)}%`,
      p.unitCpu === null ? "-" : `${Math.round(p.unitCpu * 100)}%`,
      f(p.nodeMaxRssMiB, 0),
      p.machineLost,
      p.phase === "yes unit"
        ? `0 lost, no errors, p99 <= ${GOAL_P99_MS} ms: ${
            p.machineLost === 0 && p.errors === 0 && p.p99Ms <= GOAL_P99_MS ? "met" : "MISSED"
          }`
        : "",
    ]),
  ];
}

export function floodFooter(r: FloodResult): string {
  return `journal of flood.service: ${r.suppressedLines} "Suppressed N messages" lines, ${r.suppressedMessages} messages suppressed in all`;
}

if (import.meta.main) {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const r = await benchFlood({
    seconds: arg("--seconds", 60),
    baselineSeconds: arg("--baseline", 10),
    progress: (l) => console.error(`[flood] ${l}`),
  });
  const [h, rows] = formatFlood(r);
  const cells = [h, ...rows.map((x) => x.map(String))];
  const widths = h.map((_, i) => Math.max(...cells.map((x) => x[i]!.length)));
  console.log(cells.map((x) => x.map((c, i) => c.padEnd(widths[i]!)).join("  ")).join("\n"));
  console.log(floodFooter(r));
}
