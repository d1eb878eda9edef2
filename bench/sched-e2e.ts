// End-to-end scheduling benchmark on real node processes (dist/berth), with Berth's defaults (agent TTL 5 s,
// Raft tick 100 ms): N units submitted and started on a 3-node cluster, the time until all are launched, then the
// time from SIGKILLing a machine (a follower, then the leader) to its units being launched elsewhere.
// Goal (issue): "with the defaults, a unit runs again on another machine within 6 s of its machine dying".
// Run directly: bun bench/sched-e2e.ts [--units N] [--no-leader-kill] [--keep-logs] [--launch-timeout SECONDS]
// Unit processes are `sleep 100000`; every node is stopped and every unit process killed at the end, also on failure.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { BerthClient } from "../src/client/client.ts";
import type { UnitInfo } from "../src/client/protocol.ts";
import { freePort, waitFor } from "../test/support/processes.ts";

const BINARY = process.env.BERTH_BINARY ?? resolve(import.meta.dirname, "../dist/berth");
const TEMPLATE = "bench@.service";
const TEMPLATE_TEXT = `[Unit]
Description=Berth benchmark unit %i

[Service]
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
  /** `sleep 100000` processes left by the nodes stopped with SIGTERM, and left after the final cleanup. */
  leftovers: { afterGraceful: number; afterKill: number };
  logDir: string | null;
}

interface BenchNode {
  name: string;
  host: string;
  peerPort: number;
  clientPort: number;
  dataDir: string;
  logFile: string;
  proc: ChildProcess | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class BenchCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "berth-bench-sched-"));
  readonly nodes: BenchNode[] = [];
  private readonly secretFile = join(this.dir, "secret");

  async start(size: number): Promise<void> {
    writeFileSync(this.secretFile, randomBytes(24).toString("base64url"), { mode: 0o600 });
    for (let i = 1; i <= size; i++) {
      const host = `127.0.0.${i}`;
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

  endpoint(n: BenchNode): string {
    return `${n.host}:${n.clientPort}`;
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
   * Graceful stop (SIGTERM: the agents stop their units), then SIGKILL of every recorded unit process group
   * (a SIGKILLed node leaves its units running by design). Returns the unit processes the graceful stop left
   * behind, and those still alive after the final SIGKILL (both should be 0).
   */
  async stop(keepLogs: boolean): Promise<{ afterGraceful: number; afterKill: number }> {
    const graceful = this.live();
    await Promise.all(this.nodes.map((n) => this.kill(n, "SIGTERM", 30_000)));
    const groupsOf = (ns: BenchNode[]) => {
      const pgids = new Set<number>();
      for (const n of ns) {
        const file = join(n.dataDir, "agent", "process-groups.json");
        if (!existsSync(file)) continue;
        try {
          for (const g of Object.keys(JSON.parse(readFileSync(file, "utf8")) as object)) pgids.add(Number(g));
        } catch {}
      }
      return pgids;
    };
    const afterGraceful = ourSleeps(groupsOf(graceful));
    const all = groupsOf(this.nodes);
    for (const g of all) {
      try {
        process.kill(-g, "SIGKILL");
      } catch {}
    }
    await sleep(200);
    const afterKill = ourSleeps(all);
    if (keepLogs) {
      for (const n of this.nodes) rmSync(n.dataDir, { recursive: true, force: true });
    } else rmSync(this.dir, { recursive: true, force: true });
    return { afterGraceful, afterKill };
  }
}

/** `sleep 100000` processes in the given process groups (ps). */
function ourSleeps(pgids: Set<number>): number {
  const r = Bun.spawnSync(["ps", "-eo", "pgid=,args="]);
  let count = 0;
  for (const line of r.stdout.toString().split("\n")) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (m && m[2]!.trim() === "sleep 100000" && pgids.has(Number(m[1]))) count++;
  }
  return count;
}

/** Milliseconds from `sinceMs` to the first log line (ISO timestamp first) matching `re`, after `sinceMs`. */
function logTime(text: string, re: RegExp, sinceMs: number): number | null {
  for (const line of text.split("\n")) {
    if (!re.test(line)) continue;
    const t = Date.parse(line.slice(0, 24));
    if (t >= sinceMs - 5) return t - sinceMs;
  }
  return null;
}

const pct = (xs: number[], p: number) => {
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
  await c.kill(c.node(victimName), "SIGKILL");
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

export async function benchSchedE2E(
  opts: {
    units?: number;
    leaderKill?: boolean;
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
  const onSignal = () => {
    void c.stop(false).finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
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
      await cl.call("units.submit", { units: [{ name: TEMPLATE, text: TEMPLATE_TEXT }] });
      for (let i = 0; i < n; i += 250)
        await cl.call("units.submit", { units: names.slice(i, i + 250).map((name) => ({ name })) });
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
  } finally {
    process.off("SIGINT", onSignal);
    leftovers = await c.stop(opts.keepLogs ?? false);
  }
  return { ...result!, leftovers };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const ui = args.indexOf("--units");
  const r = await benchSchedE2E({
    units: ui >= 0 ? Number(args[ui + 1]) : 1000,
    leaderKill: !args.includes("--no-leader-kill"),
    keepLogs: args.includes("--keep-logs"),
    launchTimeoutMs: args.includes("--launch-timeout")
      ? Number(args[args.indexOf("--launch-timeout") + 1]) * 1000
      : undefined,
    progress: (l) => console.error(`[sched-e2e] ${l}`),
  });
  console.log(JSON.stringify(r, null, 2));
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
    const who = `${k.victim} (${k.wasLeader ? "leader" : "follower"}) SIGKILLed`;
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
  rows.push([
    "unit processes left after SIGTERM stop / after cleanup",
    `${r.leftovers.afterGraceful} / ${r.leftovers.afterKill}`,
    "",
    "",
    r.leftovers.afterGraceful === 0 && r.leftovers.afterKill === 0 ? "" : "LEAK",
  ]);
  return [["phase", "units", "s (p50)", "max s", "goal"], rows];
}
