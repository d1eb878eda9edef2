// Agent benchmark on real node processes (dist/berth, defaults: tick 100 ms, agent TTL 5 s) on a 3-node cluster
// whose nodes use a private Docker engine (test/support/docker.ts: own socket, data root and exec root, no bridge,
// no iptables; containers use network none; the image is built locally from busybox, nothing is pulled).
//
// Measured (issue): time from `berth start` (units.setDesired launched) to ACTIVE=active for 1 and for 100
// process units and for 20 container units, and time from a SIGKILLed main process to the restarted one being
// active (RestartSec=100ms, the default, and RestartSec=1s). Goals: a process unit active within 200 ms of being
// scheduled; a restart within RestartSec + 100 ms.
//
// What the numbers are (every process runs on this host, so all clocks are the same clock):
// - start: t0 = just before units.setDesired is sent.
// - scheduled: when a kv.watch on /_berth/schedule (a stream from one node) delivers the unit's schedule record,
//   i.e. the engine's placement committed and applied on that node (an upper bound of the commit time).
// - active: the `since` the agent reports with ACTIVE=active (its own timestamp of the state change, read back
//   from units.states, polled every 15 ms only to know when to stop waiting): no polling delay in the figure.
// - restart: t0 = just before kill -9 of the mainPid units.states reports; done = `since` of the report with
//   ACTIVE=active and a different mainPid.
// Run directly: bun bench/agent.ts [--keep-logs]
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { BerthClient } from "../src/client/client.ts";
import type { UnitStateRow } from "../src/client/protocol.ts";
import {
  buildBusyboxImage,
  dockerAvailable,
  type PrivateDocker,
  startPrivateDocker,
} from "../test/support/docker.ts";
import { stopSupervisor } from "../test/support/processes.ts";

const BINARY = process.env.BERTH_BINARY ?? resolve(import.meta.dirname, "../dist/berth");
const SCHEDULE_DIR = "/_berth/schedule";
const POLL_MS = 15;

const PROC_TEMPLATE = `[Unit]
Description=agent benchmark process %i

[Service]
ExecStart=/bin/sleep 100000
`;
const CONTAINER_TEMPLATE = `[Unit]
Description=agent benchmark container %i

[Container]
Image=local/busybox
Network=none
Exec=sh -c "trap 'exit 0' TERM; while true; do sleep 1; done"
`;
const restartUnit = (restartSec: string) => `[Unit]
Description=agent benchmark restart (RestartSec=${restartSec})
# Ten kills in a row must not hit systemd's default start limit (5 starts in 10 s).
StartLimitIntervalSec=0

[Service]
ExecStart=/bin/sleep 100000
Restart=always
${restartSec === "default" ? "" : `RestartSec=${restartSec}\n`}`;

export interface AgentStartRow {
  what: string;
  units: number;
  /** Per unit, ms. */
  schedP50: number;
  schedMax: number;
  activeP50: number;
  activeMax: number;
  /** scheduled -> active, per unit. */
  agentP50: number;
  agentMax: number;
  /** Goal on agentMax (ms), or null when the issue sets none. */
  goalMs: number | null;
}

export interface AgentRestartRow {
  restartSec: string;
  restartMs: number;
  kills: number;
  p50: number;
  max: number;
  goalMs: number;
}

export interface AgentBenchResult {
  starts: AgentStartRow[];
  restarts: AgentRestartRow[];
  /** Unit processes / containers left after the cleanup (both should be 0). */
  leftovers: { processes: number; containers: number };
  containersSkipped: string | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

async function freePort(host: string): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once("error", rej);
    srv.listen(0, host, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

interface Node {
  name: string;
  host: string;
  clientPort: number;
  dataDir: string;
  proc: ChildProcess | null;
}

class Cluster {
  readonly dir = mkdtempSync(join(tmpdir(), "berth-bench-agent-"));
  readonly nodes: Node[] = [];

  async start(size: number, dockerSocket: string | null): Promise<void> {
    const secret = join(this.dir, "secret");
    writeFileSync(secret, randomBytes(24).toString("base64url"), { mode: 0o600 });
    const peers: string[] = [];
    for (let i = 1; i <= size; i++) {
      const host = `127.0.0.${i}`;
      const peerPort = await freePort(host);
      peers.push(`n${i}=${host}:${peerPort}`);
      this.nodes.push({
        name: `n${i}`,
        host,
        clientPort: await freePort(host),
        dataDir: join(this.dir, `n${i}`),
        proc: null,
      });
    }
    for (const [i, n] of this.nodes.entries()) {
      const log = openSync(join(this.dir, `${n.name}.log`), "a");
      n.proc = spawn(
        BINARY,
        [
          "node",
          `--name=${n.name}`,
          `--data-dir=${n.dataDir}`,
          `--peer-addr=${peers[i]!.split("=")[1]}`,
          `--client-addr=${n.host}:${n.clientPort}`,
          "--http-addr=off",
          `--cluster-secret-file=${secret}`,
          `--initial-cluster=${peers.join(",")}`,
          ...(dockerSocket ? [`--docker-socket=${dockerSocket}`] : []),
        ],
        { stdio: ["ignore", log, log] },
      );
    }
  }

  client(timeoutMs = 30_000): Promise<BerthClient> {
    return BerthClient.connect({
      // The unix sockets: unit operations need admin.
      endpoints: this.nodes.map((n) => `unix://${join(n.dataDir, "berth.sock")}`),
      timeoutMs,
      name: "bench-agent",
    });
  }

  /**
   * SIGTERM to the nodes, then to their supervisors (which stop their units and containers), SIGKILL after 30 s,
   * then every recorded group.
   */
  async stop(keepLogs: boolean): Promise<number> {
    await Promise.all(
      this.nodes.map(async (n) => {
        const p = n.proc;
        if (!p || p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise((r) => p.once("exit", r));
        p.kill("SIGTERM");
        const t = setTimeout(() => p.kill("SIGKILL"), 30_000);
        await exited;
        clearTimeout(t);
      }),
    );
    await Promise.all(this.nodes.map((n) => stopSupervisor(n.dataDir)));
    const groups = new Set<number>();
    for (const n of this.nodes) {
      const file = join(n.dataDir, "agent", "process-groups.json");
      if (!existsSync(file)) continue;
      try {
        for (const g of Object.keys(JSON.parse(readFileSync(file, "utf8")) as object)) groups.add(Number(g));
      } catch {}
    }
    let left = 0;
    for (const g of groups) {
      try {
        process.kill(-g, 0);
        left++;
        process.kill(-g, "SIGKILL");
      } catch {}
    }
    if (keepLogs) for (const n of this.nodes) rmSync(n.dataDir, { recursive: true, force: true });
    else rmSync(this.dir, { recursive: true, force: true });
    return left;
  }
}

async function until<T>(
  what: string,
  fn: () => Promise<T | null | false>,
  ms: number,
  every = 100,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end)
      throw new Error(`${what}: not done after ${ms} ms${last ? ` (${(last as Error).message})` : ""}`);
    await sleep(every);
  }
}

/** Records when each unit's schedule record (with a machine) is first seen on a watch stream. */
function watchSchedule(cl: BerthClient): { seen: Map<string, number>; close(): void } {
  const seen = new Map<string, number>();
  const sub = cl.subscribe("kv.watch", { key: SCHEDULE_DIR, recursive: true, forever: true });
  void (async () => {
    try {
      for await (const r of sub) {
        const now = Date.now();
        const node = r.event.node;
        if (!node?.key || node.value === undefined || node.value === null) continue;
        try {
          if ((JSON.parse(node.value) as { machines?: string[] }).machines?.length) {
            const unit = node.key.slice(SCHEDULE_DIR.length + 1);
            if (!seen.has(unit)) seen.set(unit, now);
          }
        } catch {}
      }
    } catch {}
  })();
  return { seen, close: () => sub.close() };
}

async function activeRows(cl: BerthClient, names: Set<string>): Promise<Map<string, UnitStateRow>> {
  const out = new Map<string, UnitStateRow>();
  for (const r of await cl.call("units.states", {})) if (names.has(r.name) && !r.note) out.set(r.name, r);
  return out;
}

async function startBatch(
  cl: BerthClient,
  what: string,
  template: { name: string; text: string },
  prefix: string,
  n: number,
  goalMs: number | null,
  timeoutMs: number,
): Promise<AgentStartRow> {
  const names = Array.from({ length: n }, (_, i) => `${prefix}@${i + 1}.service`);
  await cl.call("units.submit", { units: [template] });
  await cl.call("units.submit", { units: names.map((name) => ({ name })) });
  const w = watchSchedule(cl);
  await sleep(100); // the watch is registered before the units are started
  const want = new Set(names);
  const t0 = Date.now();
  await cl.call("units.setDesired", { names, desired: "launched" });
  const active = new Map<string, number>();
  const end = t0 + timeoutMs;
  while (active.size < n) {
    if (Date.now() > end) throw new Error(`${what}: ${active.size} of ${n} active after ${timeoutMs} ms`);
    for (const [name, r] of await activeRows(cl, want))
      if (r.active === "active" && !active.has(name)) active.set(name, r.since);
    if (active.size < n) await sleep(POLL_MS);
  }
  // The schedule record is written before the agent can start anything; give its event a moment if it trails.
  await until("schedule events", async () => names.every((u) => w.seen.has(u)), 5_000, 20).catch(() => {});
  w.close();
  const sched = names.map((u) => (w.seen.get(u) ?? Number.NaN) - t0);
  const act = names.map((u) => active.get(u)! - t0);
  const agent = names.map((u) => active.get(u)! - (w.seen.get(u) ?? Number.NaN));
  await cl.call("units.destroy", { names: [template.name, ...names] });
  return {
    what,
    units: n,
    schedP50: pct(sched, 50),
    schedMax: Math.max(...sched),
    activeP50: pct(act, 50),
    activeMax: Math.max(...act),
    agentP50: pct(agent, 50),
    agentMax: Math.max(...agent),
    goalMs,
  };
}

async function restartBench(cl: BerthClient, restartSec: string, restartMs: number, kills: number) {
  const name = `agentbench-restart-${restartSec.replace(/\W/g, "")}.service`;
  await cl.call("units.submit", { units: [{ name, text: restartUnit(restartSec) }] });
  await cl.call("units.setDesired", { names: [name], desired: "launched" });
  const one = new Set([name]);
  const times: number[] = [];
  for (let k = 0; k < kills; k++) {
    const before = await until(
      `${name} active`,
      async () => {
        const r = (await activeRows(cl, one)).get(name);
        return r?.active === "active" && r.mainPid ? r : null;
      },
      30_000,
      POLL_MS,
    );
    await sleep(300); // steady state, the report of the last restart written
    const t0 = Date.now();
    process.kill(before.mainPid!, "SIGKILL");
    const after = await until(
      `${name} restarted`,
      async () => {
        const r = (await activeRows(cl, one)).get(name);
        return r?.active === "active" && r.mainPid && r.mainPid !== before.mainPid ? r : null;
      },
      30_000,
      POLL_MS,
    );
    times.push(after.since - t0);
  }
  await cl.call("units.destroy", { names: [name] });
  return {
    restartSec,
    restartMs,
    kills,
    p50: pct(times, 50),
    max: Math.max(...times),
    goalMs: restartMs + 100,
  };
}

export async function benchAgent(
  opts: { keepLogs?: boolean; progress?: (l: string) => void } = {},
): Promise<AgentBenchResult> {
  const progress = opts.progress ?? (() => {});
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run \`npm run build\` first`);
  const withDocker = dockerAvailable();
  let docker: PrivateDocker | null = null;
  const c = new Cluster();
  const starts: AgentStartRow[] = [];
  const restarts: AgentRestartRow[] = [];
  let leftovers = { processes: -1, containers: -1 };
  const onSignal = () => {
    void c
      .stop(false)
      .then(() => docker?.stop())
      .finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  try {
    if (withDocker) {
      docker = await startPrivateDocker();
      buildBusyboxImage(docker);
      progress(`private dockerd pid ${docker.pid} at ${docker.socket}`);
    }
    await c.start(3, docker?.socket ?? null);
    const cl = await until("a node listening", () => c.client(), 30_000);
    try {
      await until(
        "3 machines up",
        async () => (await cl.call("machines.list", {})).filter((m) => m.state === "up").length === 3,
        30_000,
      );
      await sleep(1000);
      const proc = (prefix: string) => ({ name: `${prefix}@.service`, text: PROC_TEMPLATE });
      progress("1 process unit");
      starts.push(await startBatch(cl, "process", proc("agentbench-one"), "agentbench-one", 1, 200, 30_000));
      progress("100 process units");
      starts.push(await startBatch(cl, "process", proc("agentbench-p"), "agentbench-p", 100, 200, 60_000));
      if (docker) {
        progress("20 container units");
        starts.push(
          await startBatch(
            cl,
            "container",
            { name: "agentbench-c@.service", text: CONTAINER_TEMPLATE },
            "agentbench-c",
            20,
            null,
            120_000,
          ),
        );
      }
      progress("restarts");
      restarts.push(await restartBench(cl, "default", 100, 10));
      restarts.push(await restartBench(cl, "1s", 1000, 5));
    } finally {
      cl.close();
    }
  } finally {
    process.off("SIGINT", onSignal);
    const processes = await c.stop(opts.keepLogs ?? false);
    let containers = 0;
    if (docker) {
      try {
        containers = docker.cli("ps", "-aq").split("\n").filter(Boolean).length;
      } catch {}
      await docker.stop();
    }
    leftovers = { processes, containers };
  }
  return {
    starts,
    restarts,
    leftovers,
    containersSkipped: withDocker ? null : "dockerd, docker and busybox as root are needed",
  };
}

/** Headers and rows for bench/run.ts's table(). */
export function formatAgent(r: AgentBenchResult): [string[], (string | number)[][]] {
  const f = (ms: number) => (Number.isNaN(ms) ? "-" : ms.toFixed(0));
  const rows: (string | number)[][] = [];
  for (const s of r.starts) {
    const goal =
      s.goalMs === null ? "(none)" : `max <= ${s.goalMs} ms: ${s.agentMax <= s.goalMs ? "met" : "MISSED"}`;
    rows.push([`start -> scheduled (${s.what})`, s.units, f(s.schedP50), f(s.schedMax), ""]);
    rows.push([`start -> active (${s.what})`, s.units, f(s.activeP50), f(s.activeMax), ""]);
    rows.push([`scheduled -> active (${s.what})`, s.units, f(s.agentP50), f(s.agentMax), goal]);
  }
  if (r.containersSkipped) rows.push(["container units skipped", "", "", "", r.containersSkipped]);
  for (const x of r.restarts)
    rows.push([
      `kill -9 main pid -> new one active (RestartSec=${x.restartSec === "default" ? "100ms, default" : x.restartSec})`,
      `${x.kills} kills`,
      f(x.p50),
      f(x.max),
      `max <= ${x.goalMs} ms: ${x.max <= x.goalMs ? "met" : "MISSED"}`,
    ]);
  rows.push([
    "unit processes / containers left after cleanup",
    `${r.leftovers.processes} / ${r.leftovers.containers}`,
    "",
    "",
    r.leftovers.processes === 0 && r.leftovers.containers === 0 ? "" : "LEAK",
  ]);
  return [["phase", "units", "p50 ms", "max ms", "goal"], rows];
}

if (import.meta.main) {
  const r = await benchAgent({
    keepLogs: process.argv.includes("--keep-logs"),
    progress: (l) => console.error(`[agent] ${l}`),
  });
  const [h, rows] = formatAgent(r);
  const cells = [h, ...rows.map((x) => x.map(String))];
  const widths = h.map((_, i) => Math.max(...cells.map((x) => x[i]!.length)));
  console.log(cells.map((x) => x.map((c, i) => c.padEnd(widths[i]!)).join("  ")).join("\n"));
}
