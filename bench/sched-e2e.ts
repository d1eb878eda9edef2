// End-to-end scheduling benchmark on real node processes (dist/berth), with Berth's defaults (agent TTL 5 s,
// Raft tick 100 ms): N units submitted and started on a 3-node cluster, the time until all are launched, then the
// time from SIGKILLing a node and its unit supervisor (a follower, then the leader; its unit processes keep
// running) to its units being
// launched elsewhere. Then machine crashes, repeated (default 10, alternating follower and leader): the node AND its
// unit processes SIGKILLed, the time until every one of its units is active elsewhere (the `since` its new machine's
// agent reports, read from kv.watch streams on the survivors), then the victim restarted with its data dir and the
// time from its process start to its agent's first action on current state; meanwhile every unit process is scanned
// for a unit running twice at once.
// Goal (issue): "with the defaults, a unit runs again on another machine within 6 s of its machine dying", and no
// double run at all.
// Run directly: bun bench/sched-e2e.ts [--units N] [--crashes N] [--no-leader-kill] [--keep-logs]
//   [--launch-timeout SECONDS]
// Unit processes are `sleep 100000`; every node is stopped and every unit process killed at the end, also on failure
// and on SIGINT/SIGTERM/SIGHUP.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { BerthClient } from "../src/client/client.ts";
import type { ClientMethods, UnitInfo } from "../src/client/protocol.ts";
import { type AgentReport, STATES_DIR } from "../src/sched/registry.ts";
import { freePort, stopSupervisor, waitFor } from "../test/support/processes.ts";
import {
  allUnitProcs,
  DoubleRunWatch,
  killGroups,
  UNIT_TAG_VAR,
  type UnitProc,
  unitProcsOf,
} from "./unit-procs.ts";

export const BINARY = process.env.BERTH_BINARY ?? resolve(import.meta.dirname, "../dist/berth");
export const TEMPLATE = "bench@.service";
/** The tag names this run's unit processes (bench/unit-procs.ts). */
const templateText = (tag: string) => `[Unit]
Description=Berth benchmark unit %i

[Service]
Environment=${UNIT_TAG_VAR}=${tag}:%i
ExecStart=/bin/sh -c 'exec sleep 100000'
`;

export interface SchedPhase {
  phase: string;
  ms: number;
  detail: string;
  goal: string;
}

export interface SchedKillResult {
  victim: string;
  wasLeader: boolean;
  units: number;
  /** Kill -> new leader named in a survivor's log (leader kill only). */
  newLeaderMs: number | null;
  /** Kill -> "[engine] machine … is lost" in the (new) leader's log. */
  lostMs: number | null;
  /** Kill -> each unit launched on another machine, as seen by polling units.list every 50 ms. */
  p50Ms: number;
  maxMs: number;
  relaunched: number;
}

/** One machine crash: the node and its unit processes SIGKILLed, then the node restarted with its data dir. */
export interface SchedCrashResult {
  victim: string;
  wasLeader: boolean;
  units: number;
  /** Unit processes SIGKILLed with the node (its units: equal to `units`). */
  processesKilled: number;
  /** Kill -> each unit active on another machine, by the `since` its new machine's agent reports. */
  p50Ms: number;
  maxMs: number;
  activated: number;
  /** "[lease] fencing" lines of the survivors from the crash until its units were active elsewhere. */
  survivorFences: number;
  /** Restart (spawn) -> the node's "[agent] caught up with the cluster ..." line, by the line's timestamp. */
  returnMs: number | null;
  /** The X of "... X ms after start" in that line (counted by the node from its agent bridge's start). */
  returnStatedMs: number | null;
  returnIndex: number | null;
}

export interface SchedBenchResult {
  units: number;
  submitMs: number;
  setDesiredMs: number;
  /** From the start of setDesired (the units' "start"). */
  scheduledMs: number;
  launchedMs: number;
  /** Units launched when the launch phase ended (all of them, unless it timed out). */
  launchedCount: number;
  kills: SchedKillResult[];
  crashes: SchedCrashResult[];
  /** Scans of every unit process during the crashes, and the units seen running twice at once. */
  doubleRuns: { scans: number; units: string[]; processesPerScan: [number, number] };
  /** Unit processes left by the nodes stopped with SIGTERM, and left after the final cleanup. */
  leftovers: { afterGraceful: number; afterKill: number };
  logDir: string | null;
}

export interface BenchNode {
  name: string;
  host: string;
  peerPort: number;
  clientPort: number;
  dataDir: string;
  logFile: string;
  proc: ChildProcess | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Three (or `size`) real nodes with default settings on HOST_PREFIX.1, .2, ... (127.0.0.x unless given). */
export class BenchCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "berth-bench-sched-"));
  readonly nodes: BenchNode[] = [];
  /** Names this run's unit processes in their environment. */
  readonly tag = randomBytes(6).toString("hex");
  private readonly secretFile = join(this.dir, "secret");
  private stopping: Promise<{ afterGraceful: number; afterKill: number }> | null = null;

  constructor(private readonly hostPrefix = "127.0.0.") {}

  async start(size: number): Promise<void> {
    writeFileSync(this.secretFile, randomBytes(24).toString("base64url"), { mode: 0o600 });
    for (let i = 1; i <= size; i++) {
      const host = `${this.hostPrefix}${i}`;
      this.nodes.push({
        name: `n${i}`,
        host,
        peerPort: await freePort(host),
        clientPort: await freePort(host),
        dataDir: join(this.dir, `n${i}`),
        logFile: join(this.dir, `n${i}.log`),
        proc: null,
      });
    }
    const initial = this.nodes.map((n) => `${n.name}=${n.host}:${n.peerPort}`).join(",");
    for (const n of this.nodes) this.spawn(n, initial);
  }

  /** Defaults only: no --tick, no --agent-ttl. A restart needs only the data dir. */
  spawn(n: BenchNode, initial?: string): void {
    const args = initial
      ? [
          "node",
          `--name=${n.name}`,
          `--data-dir=${n.dataDir}`,
          `--peer-addr=${n.host}:${n.peerPort}`,
          `--client-addr=${n.host}:${n.clientPort}`,
          "--http-addr=off",
          `--cluster-secret-file=${this.secretFile}`,
          `--initial-cluster=${initial}`,
        ]
      : ["node", `--data-dir=${n.dataDir}`];
    const log = openSync(n.logFile, "a");
    n.proc = spawn(BINARY, args, { stdio: ["ignore", log, log] });
  }

  node(name: string): BenchNode {
    return this.nodes.find((n) => n.name === name)!;
  }

  live(): BenchNode[] {
    return this.nodes.filter((n) => n.proc && n.proc.exitCode === null && n.proc.signalCode === null);
  }

  /** The node's unix socket: unit operations need admin. */
  endpoint(n: BenchNode): string {
    return `unix://${join(n.dataDir, "berth.sock")}`;
  }

  client(nodes = this.live(), timeoutMs = 300_000): Promise<BerthClient> {
    return BerthClient.connect({ endpoints: nodes.map((n) => this.endpoint(n)), timeoutMs, name: "bench" });
  }

  async kill(n: BenchNode, signal: NodeJS.Signals, timeoutMs = 60_000): Promise<void> {
    const p = n.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once("exit", r));
    p.kill(signal);
    const t = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    await exited;
    clearTimeout(t);
    n.proc = null;
  }

  /**
   * A machine crash: the node is stopped first (SIGSTOP, so from then on it does nothing, as a dead machine), its
   * unit processes (its children, and any in the groups it recorded) are SIGKILLed, then the node. Only processes
   * carrying this run's tag are touched (a recorded group id may belong to someone else by now). Returns the time
   * of the SIGSTOP and how many unit processes were killed.
   */
  async crash(n: BenchNode): Promise<{ t0: number; killed: number }> {
    const p = n.proc!;
    p.kill("SIGSTOP");
    const t0 = Date.now();
    // The machine's unit supervisor dies with it (its units are found below through the recorded groups).
    await stopSupervisor(n.dataDir, "SIGKILL");
    const recorded = recordedGroups([n]);
    const procs = new Map<number, UnitProc>();
    for (const u of unitProcsOf(p.pid!, this.tag)) procs.set(u.pid, u);
    for (const u of allUnitProcs(this.tag)) if (recorded.has(u.pgid)) procs.set(u.pid, u);
    killGroups(new Set([...procs.values()].map((u) => u.pgid)));
    await this.kill(n, "SIGKILL");
    return { t0, killed: procs.size };
  }

  /** The leader every live node agrees on. */
  async leader(timeoutMs = 30_000): Promise<string> {
    return waitFor(
      "a leader agreed on by the live nodes",
      async () => {
        const seen = new Set<string | null>();
        for (const n of this.live()) {
          const c = await this.client([n], 1000);
          try {
            seen.add((await c.call("node.status", {}, 1000)).leader);
          } finally {
            c.close();
          }
        }
        const [only] = [...seen];
        return seen.size === 1 && only && this.live().some((n) => n.name === only) ? only : null;
      },
      timeoutMs,
      100,
    );
  }

  log(n: BenchNode): string {
    return existsSync(n.logFile) ? readFileSync(n.logFile, "utf8") : "";
  }

  /**
   * Graceful stop (SIGTERM to the nodes, then to their supervisors, which stop their units), then SIGKILL of the group of every process carrying this
   * run's tag (a SIGKILLed node leaves its units running by design). Returns the unit processes the graceful stop
   * left behind in the stopped nodes' groups, and those still alive after the final SIGKILL (both should be 0).
   * Once only: a signal arriving during a run and the run's own cleanup share it.
   */
  stop(keepLogs: boolean): Promise<{ afterGraceful: number; afterKill: number }> {
    this.stopping ??= this.stopOnce(keepLogs);
    return this.stopping;
  }

  private async stopOnce(keepLogs: boolean): Promise<{ afterGraceful: number; afterKill: number }> {
    const graceful = this.live();
    await Promise.all(this.nodes.map((n) => this.kill(n, "SIGTERM", 30_000)));
    // The units outlive their node in its supervisor; stopping the supervisor stops them as `berth stop` would.
    await Promise.all(this.nodes.map((n) => stopSupervisor(n.dataDir)));
    const gracefulGroups = recordedGroups(graceful);
    const afterGraceful = allUnitProcs(this.tag).filter((p) => gracefulGroups.has(p.pgid)).length;
    killGroups(allUnitProcs(this.tag).map((p) => p.pgid));
    await sleep(200);
    const afterKill = allUnitProcs(this.tag).length;
    if (keepLogs) {
      for (const n of this.nodes) rmSync(n.dataDir, { recursive: true, force: true });
    } else rmSync(this.dir, { recursive: true, force: true });
    return { afterGraceful, afterKill };
  }
}

/** The unit process groups the nodes' agents recorded in their data dirs. */
function recordedGroups(ns: BenchNode[]): Set<number> {
  const pgids = new Set<number>();
  for (const n of ns) {
    const file = join(n.dataDir, "agent", "process-groups.json");
    if (!existsSync(file)) continue;
    try {
      for (const g of Object.keys(JSON.parse(readFileSync(file, "utf8")) as object)) pgids.add(Number(g));
    } catch {}
  }
  return pgids;
}

/** The first log line (ISO timestamp first) matching `re` after `sinceMs`: ms from `sinceMs`, and the match. */
function logMatch(text: string, re: RegExp, sinceMs: number): { ms: number; m: RegExpExecArray } | null {
  for (const line of text.split("\n")) {
    const m = re.exec(line);
    if (!m) continue;
    const t = Date.parse(line.slice(0, 24));
    if (t >= sinceMs - 5) return { ms: t - sinceMs, m };
  }
  return null;
}

const logTime = (text: string, re: RegExp, sinceMs: number) => logMatch(text, re, sinceMs)?.ms ?? null;

/** src/agent/agent-bridge.ts's line once its first read point is confirmed (the agent acts from then on). */
const CAUGHT_UP = /\[agent\] caught up with the cluster at applied index (\d+) (\d+) ms after start/;

export const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

async function killAndMeasure(c: BenchCluster, victimName: string): Promise<SchedKillResult> {
  const machines = await (async () => {
    const cl = await c.client();
    try {
      return await cl.call("machines.list", {});
    } finally {
      cl.close();
    }
  })();
  const victimId = machines.find((m) => m.name === victimName)!.id;
  const leaderBefore = await c.leader();
  const survivors = c.live().filter((n) => n.name !== victimName);
  const before = await (async () => {
    const cl = await c.client(survivors);
    try {
      return await cl.call("units.list", {});
    } finally {
      cl.close();
    }
  })();
  const moving = new Set(before.filter((u) => u.machines.includes(victimId)).map((u) => u.name));

  const t0 = Date.now();
  // Node and supervisor both: a supervisor alone keeps the machine alive (its units would never move).
  await Promise.all([
    c.kill(c.node(victimName), "SIGKILL"),
    stopSupervisor(c.node(victimName).dataDir, "SIGKILL"),
  ]);
  const done = new Map<string, number>();
  // Poll the survivors (no leader for a while after a leader kill: errors are retried).
  await waitFor(
    `units of ${victimName} launched elsewhere`,
    async () => {
      const cl = await c.client(survivors, 2000);
      try {
        for (;;) {
          const list: UnitInfo[] = await cl.call("units.list", {}, 2000);
          const now = Date.now();
          for (const u of list)
            if (
              moving.has(u.name) &&
              !done.has(u.name) &&
              u.current === "launched" &&
              !u.machines.includes(victimId)
            )
              done.set(u.name, now - t0);
          if (done.size === moving.size) return true;
          if (now - t0 > 120_000) return false;
          await sleep(50);
        }
      } finally {
        cl.close();
      }
    },
    130_000,
    50,
  );
  const times = [...done.values()];
  // Earliest matching line in any survivor's log (leadership may change more than once under load).
  const first = (re: RegExp) => {
    const ts = survivors.map((n) => logTime(c.log(n), re, t0)).filter((t): t is number => t !== null);
    return ts.length === 0 ? null : Math.min(...ts);
  };
  return {
    victim: victimName,
    wasLeader: victimName === leaderBefore,
    units: moving.size,
    newLeaderMs: victimName === leaderBefore ? first(/became leader at term/) : null,
    lostMs: first(new RegExp(`\\[engine\\] machine ${victimId.slice(0, 8)} \\(${victimName}\\) is lost`)),
    p50Ms: pct(times, 50),
    maxMs: Math.max(...times),
    relaunched: done.size,
  };
}

/** src/agent/lease.ts's line when a machine's lease ran out and it killed every unit it runs. */
const FENCING = /\[lease\] fencing:/;

const countLines = (text: string, re: RegExp) => text.split("\n").filter((l) => re.test(l)).length;

/**
 * Every "active" report the agents write (/_berth/states/<unit>/<machine>) about a state change after this call,
 * the first one per key, as watch streams from the given nodes deliver them: applied there and read without a read
 * point, so a cluster busy re-electing does not hide reports the way a polled units.states (which waits for one)
 * would; a unit active for a moment and then killed by its machine's lease still counts from that moment.
 */
async function watchReports(
  c: BenchCluster,
  nodes: BenchNode[],
): Promise<{ active: Map<string, AgentReport>; close(): void }> {
  const active = new Map<string, AgentReport>();
  const from = Date.now();
  const clients = await Promise.all(nodes.map((n) => c.client([n], 5000)));
  const subs = clients.map((cl) =>
    cl.subscribe("kv.watch", { key: STATES_DIR, recursive: true, forever: true }),
  );
  for (const sub of subs)
    void (async () => {
      try {
        for await (const r of sub) {
          const node = r.event.node;
          if (!node?.key || typeof node.value !== "string") continue;
          try {
            const rep = JSON.parse(node.value) as AgentReport;
            const key = node.key.slice(STATES_DIR.length + 1);
            if (rep.active === "active" && rep.since >= from && !active.has(key)) active.set(key, rep);
          } catch {}
        }
      } catch {}
    })();
  return {
    active,
    close: () => {
      for (const sub of subs) sub.close();
      for (const cl of clients) cl.close();
    },
  };
}

/** One parameterless call through a connection of its own (to any of `nodes`). */
export async function call<M extends "units.list" | "machines.list">(
  c: BenchCluster,
  method: M,
  nodes = c.live(),
): Promise<ClientMethods[M][1]> {
  const cl = await c.client(nodes);
  try {
    return await cl.call(method, {});
  } finally {
    cl.close();
  }
}

export async function crashAndMeasure(c: BenchCluster, victimName: string): Promise<SchedCrashResult> {
  const victimId = (await call(c, "machines.list")).find((m) => m.name === victimName)!.id;
  const leaderBefore = await c.leader();
  const victim = c.node(victimName);
  const survivors = c.live().filter((n) => n !== victim);
  const before = await call(c, "units.list", survivors);
  const moving = new Set(before.filter((u) => u.machines.includes(victimId)).map((u) => u.name));

  const fencesBefore = survivors.map((n) => countLines(c.log(n), FENCING));
  const reports = await watchReports(c, survivors);
  let t0 = 0;
  let killed = 0;
  const done = new Map<string, number>();
  try {
    ({ t0, killed } = await c.crash(victim));
    await waitFor(
      `units of ${victimName} active elsewhere`,
      () => {
        for (const [key, r] of reports.active) {
          const [unit, machine] = key.split("/") as [string, string];
          if (moving.has(unit) && !done.has(unit) && machine !== victimId && r.since >= t0)
            done.set(unit, r.since - t0);
        }
        return done.size === moving.size;
      },
      120_000,
      50,
    );
  } finally {
    reports.close();
  }
  const times = [...done.values()];

  // The machine comes back with its data dir; its agent may act only once it has caught up.
  const spawnedAt = Date.now();
  c.spawn(victim);
  const caught = await waitFor(
    `${victimName}'s agent caught up after its restart`,
    () => logMatch(c.log(victim), CAUGHT_UP, spawnedAt),
    120_000,
    50,
  );
  return {
    victim: victimName,
    wasLeader: victimName === leaderBefore,
    units: moving.size,
    processesKilled: killed,
    p50Ms: pct(times, 50),
    maxMs: Math.max(...times),
    activated: done.size,
    survivorFences: survivors.reduce(
      (sum, n, i) => sum + countLines(c.log(n), FENCING) - fencesBefore[i]!,
      0,
    ),
    returnMs: caught.ms,
    returnStatedMs: Number(caught.m[2]),
    returnIndex: Number(caught.m[1]),
  };
}

/** Submits the template (naming this run's unit processes) and its `names` instances, 250 per call. */
export async function submitUnits(cl: BerthClient, tag: string, names: string[]): Promise<void> {
  await cl.call("units.submit", { units: [{ name: TEMPLATE, text: templateText(tag) }] });
  for (let i = 0; i < names.length; i += 250)
    await cl.call("units.submit", { units: names.slice(i, i + 250).map((name) => ({ name })) });
}

/**
 * All machines up and every unit launched: each crash starts from 3 machines and a settled cluster. Then each unit
 * should have exactly one process; a difference is reported (the double-run scan names any unit running twice).
 */
export async function settle(c: BenchCluster, units: number, progress: (l: string) => void): Promise<void> {
  await waitFor(
    "all machines up and every unit launched",
    async () => {
      const machines = await call(c, "machines.list");
      if (machines.length !== c.nodes.length || machines.some((m) => m.state !== "up")) return false;
      const list = (await call(c, "units.list")).filter((u) => u.name !== TEMPLATE);
      return list.length === units && list.every((u) => u.current === "launched");
    },
    180_000,
    200,
  );
  await sleep(1000);
  const procs = allUnitProcs(c.tag);
  const distinct = new Set(procs.map((p) => p.unit)).size;
  if (procs.length !== units || distinct !== units)
    progress(`settled with ${procs.length} unit processes for ${distinct} distinct units (${units} units)`);
}

/** The leader when asked for and it runs units, else the follower running the most units. */
export async function pickVictim(c: BenchCluster, leaderWanted: boolean): Promise<string> {
  const leader = await c.leader();
  const machines = await call(c, "machines.list");
  const perMachine = new Map<string, number>();
  for (const u of await call(c, "units.list"))
    for (const id of u.machines) perMachine.set(id, (perMachine.get(id) ?? 0) + 1);
  const unitsOf = (name: string) => perMachine.get(machines.find((m) => m.name === name)?.id ?? "") ?? 0;
  if (leaderWanted && unitsOf(leader) > 0) return leader;
  const followers = c.nodes.filter((n) => n.name !== leader).map((n) => n.name);
  return followers.sort((a, b) => unitsOf(b) - unitsOf(a))[0]!;
}

export async function benchSchedE2E(
  opts: {
    units?: number;
    leaderKill?: boolean;
    /** Machine crashes to measure (node and unit processes SIGKILLed, then the node restarted); 0: none. */
    crashes?: number;
    keepLogs?: boolean;
    launchTimeoutMs?: number;
    progress?: (l: string) => void;
  } = {},
): Promise<SchedBenchResult> {
  const n = opts.units ?? 1000;
  opts.launchTimeoutMs ??= 600_000;
  const progress = opts.progress ?? (() => {});
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run \`npm run build\` first`);
  const c = new BenchCluster();
  // Interrupted: the same cleanup (once, however many signals come), then the conventional exit status.
  const signals = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
  const onSignal = (sig: keyof typeof signals) => {
    progress(`${sig}: stopping the nodes and their units`);
    void c.stop(opts.keepLogs ?? false).finally(() => process.exit(signals[sig]));
  };
  for (const sig of Object.keys(signals) as (keyof typeof signals)[]) process.on(sig, onSignal);
  const crashes = opts.crashes ?? 10;
  const watch = new DoubleRunWatch(c.tag);
  let result: Omit<SchedBenchResult, "leftovers"> | null = null;
  let leftovers = { afterGraceful: -1, afterKill: -1 };
  try {
    await c.start(3);
    await c.leader();
    const cl = await c.client();
    try {
      await waitFor(
        "3 machines up",
        async () => (await cl.call("machines.list", {})).filter((m) => m.state === "up").length === 3,
        30_000,
      );
      progress(`cluster up in ${c.dir}; submitting ${n} units`);
      const names = Array.from({ length: n }, (_, i) => `bench@${i + 1}.service`);
      const t0 = performance.now();
      await submitUnits(cl, c.tag, names);
      const submitMs = performance.now() - t0;
      progress(`submitted in ${submitMs.toFixed(0)} ms; setting desired=launched`);
      const t1 = performance.now();
      let scheduledAt: number | null = null;
      let launchedAt: number | null = null;
      let launchedCount = 0;
      let setDesiredMs = 0;
      // Retried until it answers: an overloaded leader may lose its leadership meanwhile (idempotent call).
      const setDone = (async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            const sc = await c.client();
            try {
              await sc.call("units.setDesired", { names, desired: "launched" });
            } finally {
              sc.close();
            }
            break;
          } catch (err) {
            progress(`setDesired attempt ${attempt} failed: ${(err as Error).message}`);
            if (performance.now() - t1 > opts.launchTimeoutMs!) throw err;
            await sleep(500);
          }
        }
        setDesiredMs = performance.now() - t1;
        progress(`setDesired answered in ${setDesiredMs.toFixed(0)} ms`);
      })();
      setDone.catch(() => {});
      // Poll on a second connection while setDesired runs.
      let poll = await c.client();
      let lastLog = 0;
      try {
        while (launchedAt === null) {
          let list: UnitInfo[];
          try {
            list = await poll.call("units.list", {}, 10_000);
          } catch (err) {
            progress(`units.list failed: ${(err as Error).message}`);
            poll.close();
            await sleep(200);
            poll = await c.client();
            continue;
          }
          const now = performance.now();
          if (now - lastLog > 10_000) {
            lastLog = now;
            const launched = list.filter((u) => u.current === "launched").length;
            const sched = list.filter((u) => u.machines.length > 0).length;
            progress(`t+${((now - t1) / 1000).toFixed(0)} s: ${sched} scheduled, ${launched} launched`);
          }
          const inst = list.filter((u) => u.name !== TEMPLATE);
          if (scheduledAt === null && inst.length === n && inst.every((u) => u.machines.length > 0)) {
            scheduledAt = now;
            progress(`all scheduled at ${(now - t1).toFixed(0)} ms`);
          }
          if (inst.length === n && inst.every((u) => u.current === "launched")) launchedAt = now;
          launchedCount = inst.filter((u) => u.current === "launched").length;
          if (now - t1 > opts.launchTimeoutMs!) {
            progress(`gave up: ${launchedCount} of ${n} launched after ${opts.launchTimeoutMs} ms`);
            break;
          }
          if (launchedAt === null) await sleep(100);
        }
      } finally {
        poll.close();
      }
      if (launchedAt !== null) {
        await setDone;
        progress(`all launched at ${(launchedAt - t1).toFixed(0)} ms`);
      }
      result = {
        units: n,
        submitMs,
        setDesiredMs,
        scheduledMs: scheduledAt === null ? Number.NaN : scheduledAt - t1,
        launchedMs: launchedAt === null ? Number.NaN : launchedAt - t1,
        launchedCount,
        kills: [],
        crashes: [],
        doubleRuns: { scans: 0, units: [], processesPerScan: [0, 0] },
        logDir: opts.keepLogs ? c.dir : null,
      };
    } finally {
      cl.close();
    }

    if (!Number.isNaN(result.launchedMs)) {
      const leader = await c.leader();
      const follower = c.nodes.find((x) => x.name !== leader)!.name;
      progress(`SIGKILL follower ${follower} (leader ${leader})`);
      result.kills.push(await killAndMeasure(c, follower));
      progress(`follower kill: ${JSON.stringify(result.kills[0])}`);

      if (opts.leaderKill !== false) {
        // Bring the follower back first (2 of 3 must survive the leader's death), then kill the leader.
        c.spawn(c.node(follower));
        const back = await c.client();
        try {
          await waitFor(
            "restarted machine up",
            async () => (await back.call("machines.list", {})).every((m) => m.state === "up"),
            60_000,
            200,
          );
        } finally {
          back.close();
        }
        await sleep(1000);
        const lead = await c.leader();
        progress(`SIGKILL leader ${lead}`);
        result.kills.push(await killAndMeasure(c, lead));
        progress(`leader kill: ${JSON.stringify(result.kills[1])}`);
      }
    }

    if (!Number.isNaN(result.launchedMs) && crashes > 0) {
      // Every node back (a node SIGKILLed above kills the unit processes it left behind when it starts again).
      for (const node of c.nodes) if (!c.live().includes(node)) c.spawn(node);
      await settle(c, n, progress);
      watch.start();
      for (let i = 0; i < crashes; i++) {
        // Alternately a follower and the leader, so each kind is measured crashes/2 times.
        const victim = await pickVictim(c, i % 2 === 1);
        progress(`crash ${i + 1}/${crashes}: SIGKILL ${victim} and its unit processes`);
        const r = await crashAndMeasure(c, victim);
        result.crashes.push(r);
        progress(`crash ${i + 1}: ${JSON.stringify(r)}`);
        await settle(c, n, progress);
      }
      watch.stop();
      watch.scan();
    }
  } finally {
    watch.stop();
    leftovers = await c.stop(opts.keepLogs ?? false);
    for (const sig of Object.keys(signals) as (keyof typeof signals)[]) process.off(sig, onSignal);
  }
  const doubleRuns = {
    scans: watch.scans,
    units: [...watch.doubled.keys()],
    processesPerScan: [watch.fewest, watch.most] as [number, number],
  };
  return { ...result!, doubleRuns, leftovers };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const ui = args.indexOf("--units");
  const ci = args.indexOf("--crashes");
  const r = await benchSchedE2E({
    units: ui >= 0 ? Number(args[ui + 1]) : 1000,
    crashes: ci >= 0 ? Number(args[ci + 1]) : undefined,
    leaderKill: !args.includes("--no-leader-kill"),
    keepLogs: args.includes("--keep-logs"),
    launchTimeoutMs: args.includes("--launch-timeout")
      ? Number(args[args.indexOf("--launch-timeout") + 1]) * 1000
      : undefined,
    progress: (l) => console.error(`[sched-e2e] ${l}`),
  });
  console.log(JSON.stringify(r, null, 2));
}

/** The machine-crash rows: per crash the time until its last unit is active elsewhere, p50 and max over crashes. */
function crashRows(r: SchedBenchResult, s: (ms: number) => string): (string | number)[][] {
  if (r.crashes.length === 0) return [];
  const rows: (string | number)[][] = [];
  const span = (xs: number[]) =>
    Math.min(...xs) === Math.max(...xs) ? `${xs[0]}` : `${Math.min(...xs)}-${Math.max(...xs)}`;
  const row = (label: string, cs: SchedCrashResult[]) => {
    if (cs.length === 0) return;
    const lasts = cs.map((k) => k.maxMs);
    const met = Math.max(...lasts) <= 6000 ? "met" : "MISSED";
    rows.push([
      label,
      span(cs.map((k) => k.units)),
      s(pct(lasts, 50)),
      s(Math.max(...lasts)),
      `max <= 6 s: ${met}`,
    ]);
  };
  const followers = r.crashes.filter((k) => !k.wasLeader);
  const leaders = r.crashes.filter((k) => k.wasLeader);
  row(
    `machine lost (node + its units SIGKILLed) -> all its units active elsewhere, ${r.crashes.length} crashes`,
    r.crashes,
  );
  row(`  of which the follower's (${followers.length})`, followers);
  row(`  of which the leader's (${leaders.length})`, leaders);
  const back = r.crashes.flatMap((k) => (k.returnMs === null ? [] : [k]));
  if (back.length > 0) {
    const ms = back.map((k) => k.returnMs!);
    const stated = back.map((k) => k.returnStatedMs!);
    rows.push([
      `returning node: process start -> its agent acts (log line), ${back.length} restarts`,
      "",
      s(pct(ms, 50)),
      s(Math.max(...ms)),
      "",
    ]);
    rows.push([
      "  the same, as the node states it (from its agent's start)",
      "",
      s(pct(stated, 50)),
      s(Math.max(...stated)),
      "",
    ]);
  }
  const fences = r.crashes.reduce((sum, k) => sum + k.survivorFences, 0);
  const fenced = r.crashes.filter((k) => k.survivorFences > 0).length;
  rows.push([
    `survivors' leases run out, killing all their units (in ${fenced} of the crashes)`,
    fences,
    "",
    "",
    fences === 0 ? "" : "CASCADE",
  ]);
  const d = r.doubleRuns;
  rows.push([
    `units running twice at once during the crashes (${d.scans} scans, ${d.processesPerScan.join("-")} unit processes each)`,
    d.units.length,
    "",
    "",
    `none: ${d.units.length === 0 ? "met" : "MISSED"}`,
  ]);
  return rows;
}

/** Headers and rows for bench/run.ts's table(): one row per phase, with the goal next to the number. */
export function formatSchedE2E(r: SchedBenchResult): [string[], (string | number)[][]] {
  const s = (ms: number) => (Number.isNaN(ms) ? "-" : (ms / 1000).toFixed(2));
  const rows: (string | number)[][] = [
    ["submit (template + instances, 250 per call)", r.units, s(r.submitMs), "", ""],
    ["start: setDesired launched answered", r.units, s(r.setDesiredMs), "", ""],
    ["start -> all scheduled", r.units, s(r.scheduledMs), "", ""],
    [
      "start -> all launched",
      `${r.launchedCount}/${r.units}`,
      s(r.launchedMs),
      "",
      r.launchedCount === r.units ? "" : "TIMED OUT",
    ],
  ];
  for (const k of r.kills) {
    const who = `${k.victim} (${k.wasLeader ? "leader" : "follower"}) node+supervisor SIGKILLed`;
    if (k.newLeaderMs !== null) rows.push([`${who} -> new leader`, "", s(k.newLeaderMs), "", ""]);
    rows.push([`${who} -> declared lost`, "", k.lostMs === null ? "-" : s(k.lostMs), "", ""]);
    const met = k.maxMs <= 6000 ? "met" : "MISSED";
    rows.push([
      `${who} -> its units launched elsewhere`,
      k.units,
      s(k.p50Ms),
      s(k.maxMs),
      `max <= 6 s: ${met}`,
    ]);
  }
  rows.push(...crashRows(r, s));
  rows.push([
    "unit processes left after SIGTERM stop / after cleanup",
    `${r.leftovers.afterGraceful} / ${r.leftovers.afterKill}`,
    "",
    "",
    r.leftovers.afterGraceful === 0 && r.leftovers.afterKill === 0 ? "" : "LEAK",
  ]);
  return [["phase", "units", "s (p50)", "max s", "goal"], rows];
}
