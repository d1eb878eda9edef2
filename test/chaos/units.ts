// Unit placement under faults: 5 real nodes behind fault-injecting proxies run ~20 units (plain ones, a Conflicts
// spread, MachineOf pairs, one Global unit) while the nemesis kills (the leader too), pauses and partitions nodes.
// After it stops and every node is back, within a bounded wait, every launched unit must run exactly once where its
// rules allow: one active report on a live machine (the Global unit: one per machine), placement rules kept, and,
// checked in the OS with `ps`, exactly one real process per unit (per machine for the Global unit).
// `bun test/chaos/units.ts [--time 15] [--seed N]`
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BerthClient } from "../../src/client/client.ts";
import type { MachineInfo, UnitInfo, UnitStateRow } from "../../src/client/protocol.ts";
import { ChaosCluster } from "./cluster.ts";
import { prng, runNemesis, sleep } from "./harness.ts";

export interface UnitsChaosOptions {
  nemesisSec?: number;
  seed?: number;
  /** Bound on the wait for a stable, correct placement after recovery (default 30 s). */
  settleMs?: number;
  log?: (line: string) => void;
}

export interface UnitsChaosReport {
  seed: number;
  ok: boolean;
  problems: string[];
  table: string;
  faultLog: string[];
  settledAfterMs: number | null;
  summary: string;
}

const unitText = (token: string, xfleet: string, desc: string) =>
  `[Unit]
Description=${desc}

[Service]
ExecStart=/bin/sh -c "while true; do sleep 1; done" berth-chaos-${token}-%n
${xfleet ? `\n[X-Fleet]\n${xfleet}\n` : ""}`;

interface OsProc {
  pid: number;
  pgid: number;
  unit: string;
  node: string;
}

interface Snapshot {
  machines: MachineInfo[];
  units: UnitInfo[];
  states: UnitStateRow[];
  procs: OsProc[];
}

/** Processes carrying this run's marker, with the node whose agent recorded their process group. */
export function osProcesses(cluster: ChaosCluster, token: string): OsProc[] {
  const marker = `berth-chaos-${token}-`;
  const owner = new Map<number, string>();
  for (const n of cluster.nodes) {
    const f = join(n.dataDir, "agent", "process-groups.json");
    if (!existsSync(f)) continue;
    try {
      for (const pg of Object.keys(JSON.parse(readFileSync(f, "utf8")) as object))
        owner.set(Number(pg), n.name);
    } catch {}
  }
  const out = execFileSync("ps", ["-eo", "pid=,pgid=,args="], { encoding: "utf8" });
  const procs: OsProc[] = [];
  for (const line of out.split("\n")) {
    const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const at = m[3]!.indexOf(marker);
    if (at < 0) continue;
    const unit = m[3]!.slice(at + marker.length).split(/\s/)[0]!;
    const pgid = Number(m[2]);
    procs.push({ pid: Number(m[1]), pgid, unit, node: owner.get(pgid) ?? "?" });
  }
  return procs;
}

export function killMarked(cluster: ChaosCluster, token: string): void {
  for (const p of osProcesses(cluster, token)) {
    try {
      process.kill(-p.pgid, "SIGKILL");
    } catch {}
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {}
  }
}

export async function runUnitsChaos(opts: UnitsChaosOptions = {}): Promise<UnitsChaosReport> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const rand = prng(seed);
  const token = randomBytes(4).toString("hex");
  const nemesisSec = opts.nemesisSec ?? 15;
  const settleMs = opts.settleMs ?? 30_000;

  // ---- the units ---------------------------------------------------------------------------------------------
  const plain = Array.from({ length: 8 }, (_, i) => `plain-${i + 1}.service`);
  const spread = Array.from({ length: 4 }, (_, i) => `spread@${i + 1}.service`);
  const apps = Array.from({ length: 3 }, (_, i) => `app@${i + 1}.service`);
  const sides = Array.from({ length: 3 }, (_, i) => `side@${i + 1}.service`);
  const globalUnit = "global.service";
  const submissions: { name: string; text?: string }[] = [
    ...plain.map((name) => ({ name, text: unitText(token, "", `plain ${name}`) })),
    { name: "spread@.service", text: unitText(token, "Conflicts=spread@*.service", "spread %i") },
    ...spread.map((name) => ({ name })),
    { name: "app@.service", text: unitText(token, "", "app %i") },
    { name: "side@.service", text: unitText(token, "MachineOf=app@%i.service", "sidekick of app@%i") },
    ...apps.map((name) => ({ name })),
    ...sides.map((name) => ({ name })),
    { name: globalUnit, text: unitText(token, "Global=true", "global") },
  ];
  const launched = [...plain, ...spread, ...apps, ...sides, globalUnit];

  log(`units-chaos: seed=${seed} token=${token} units=${launched.length} nemesis=${nemesisSec}s`);
  const cluster = await ChaosCluster.start(5, { extraArgs: ["--agent-ttl=2s"] });
  const t0 = performance.now();
  const now = () => `+${((performance.now() - t0) / 1000).toFixed(1)}s`;
  const faultLog: string[] = [];
  let keepDir = false;
  let client: BerthClient | null = null;
  const call = async <T>(method: string, params: object, timeoutMs = 3000): Promise<T> => {
    let last: unknown = null;
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        if (!client)
          client = await BerthClient.connect({
            endpoints: cluster.nodes.map((n) => cluster.endpoint(n.name)),
            timeoutMs: 2000,
            name: "chaos-units",
          });
        // biome-ignore lint/suspicious/noExplicitAny: generic pass-through to the typed client
        return (await (client as any).call(method, params, timeoutMs)) as T;
      } catch (err) {
        last = err;
        client?.close();
        client = null;
        await sleep(300);
      }
    }
    throw last;
  };
  const snapshot = async (): Promise<Snapshot> => ({
    machines: await call<MachineInfo[]>("machines.list", {}),
    units: await call<UnitInfo[]>("units.list", {}),
    states: await call<UnitStateRow[]>("units.states", {}),
    procs: osProcesses(cluster, token),
  });

  const evaluate = (s: Snapshot): { problems: string[]; table: string } => {
    const problems: string[] = [];
    const nameOf = new Map(s.machines.map((m) => [m.id, m.name]));
    const liveIds = new Set(
      s.machines
        .filter((m) => m.state === "up" && cluster.isUp(cluster.node(m.name)) && !cluster.node(m.name).paused)
        .map((m) => m.id),
    );
    const mname = (id: string) => nameOf.get(id) ?? id.slice(0, 8);
    const where = new Map<string, string>();
    const rows: string[][] = [["UNIT", "SCHEDULED", "REPORTS (machine:active/sub)", "OS PROCESSES", "OK"]];
    for (const unit of launched) {
      const uproblems: string[] = [];
      const info = s.units.find((u) => u.name === unit);
      const reports = s.states.filter((r) => r.name === unit);
      const procs = s.procs.filter((p) => p.unit === unit);
      const active = reports.filter((r) => r.active === "active" && !r.note);
      if (!info) uproblems.push("missing from units.list");
      if (unit === globalUnit) {
        for (const id of liveIds) {
          const here = active.filter((r) => r.machine === id);
          if (here.length !== 1) uproblems.push(`${here.length} active reports on ${mname(id)}`);
          const nodeProcs = procs.filter((p) => p.node === mname(id));
          if (nodeProcs.length !== 1) uproblems.push(`${nodeProcs.length} processes on ${mname(id)}`);
        }
        if (procs.length !== liveIds.size)
          uproblems.push(`${procs.length} processes in all for ${liveIds.size} live machines`);
        for (const r of reports)
          if (!liveIds.has(r.machine)) uproblems.push(`report from non-live machine ${mname(r.machine)}`);
      } else {
        if (reports.length !== 1 || active.length !== 1)
          uproblems.push(
            `${reports.length} reports, ${active.length} active${reports.some((r) => r.note) ? ` (note: ${reports.find((r) => r.note)!.note})` : ""}`,
          );
        const r = active[0];
        if (r) {
          if (!liveIds.has(r.machine)) uproblems.push(`active on non-live machine ${mname(r.machine)}`);
          where.set(unit, r.machine);
          if (info && (info.machines.length !== 1 || info.machines[0] !== r.machine))
            uproblems.push(
              `scheduled on [${info.machines.map(mname).join(",")}] but runs on ${mname(r.machine)}`,
            );
          if (procs.length === 1 && procs[0]!.node !== mname(r.machine))
            uproblems.push(`its process belongs to ${procs[0]!.node}, not ${mname(r.machine)}`);
        }
        if (procs.length !== 1)
          uproblems.push(
            `${procs.length} OS processes (${procs.map((p) => `pid ${p.pid} on ${p.node}`).join(", ") || "none"})`,
          );
      }
      for (const p of uproblems) problems.push(`${unit}: ${p}`);
      rows.push([
        unit,
        info?.machines.map(mname).join(",") || "-",
        reports.map((r) => `${mname(r.machine)}:${r.active}/${r.sub}${r.note ? "*" : ""}`).join(" ") || "-",
        procs
          .map((p) => `${p.node}:${p.pid}`)
          .sort()
          .join(" ") || "-",
        uproblems.length === 0 ? "ok" : "NO",
      ]);
    }
    // Placement rules.
    for (let i = 0; i < spread.length; i++)
      for (let j = i + 1; j < spread.length; j++) {
        const a = where.get(spread[i]!);
        if (a && a === where.get(spread[j]!))
          problems.push(`Conflicts broken: ${spread[i]} and ${spread[j]} both on ${mname(a)}`);
      }
    for (let i = 0; i < apps.length; i++) {
      const a = where.get(apps[i]!);
      const b = where.get(sides[i]!);
      if (a && b && a !== b)
        problems.push(`MachineOf broken: ${sides[i]} on ${mname(b)}, its target ${apps[i]} on ${mname(a)}`);
    }
    // Processes of units nobody launched (should be none).
    for (const p of s.procs)
      if (!launched.includes(p.unit)) problems.push(`stray process pid ${p.pid} (${p.unit}) on ${p.node}`);
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    const table = rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ")).join("\n");
    return { problems, table };
  };

  /** What the settle loop saw change, for the report. */
  const trail: string[] = [];
  /** Polls until evaluate() finds nothing wrong twice in a row (1 s apart) or the bound passes. */
  const settle = async (
    what: string,
    boundMs: number,
  ): Promise<{ problems: string[]; table: string; afterMs: number | null }> => {
    const start = performance.now();
    let last = { problems: ["no snapshot taken"], table: "" };
    let cleanSince: number | null = null;
    let lastKey = "";
    trail.length = 0;
    while (performance.now() - start < boundMs) {
      try {
        last = evaluate(await snapshot());
      } catch (err) {
        last = { problems: [`snapshot failed: ${(err as Error).message}`], table: last.table };
      }
      const key = last.problems.join("\n");
      if (key !== lastKey) {
        lastKey = key;
        trail.push(
          `+${((performance.now() - start) / 1000).toFixed(1)}s ${last.problems.length} problems${
            last.problems.length
              ? `: ${last.problems.slice(0, 4).join("; ")}${last.problems.length > 4 ? "; ..." : ""}`
              : ""
          }`,
        );
      }
      if (last.problems.length === 0) {
        if (cleanSince !== null && performance.now() - cleanSince >= 1000)
          return { ...last, afterMs: Math.round(cleanSince - start) };
        cleanSince ??= performance.now();
      } else cleanSince = null;
      await sleep(500);
    }
    log(`units-chaos: ${what} not reached within ${boundMs} ms`);
    return { ...last, afterMs: null };
  };

  try {
    // A template must be in the registry before an instance without text names it.
    await call("units.submit", { units: submissions.filter((u) => u.text !== undefined) }, 10_000);
    await call("units.submit", { units: submissions.filter((u) => u.text === undefined) }, 10_000);
    await call("units.setDesired", { names: launched, desired: "launched" }, 10_000);
    const initial = await settle("initial placement", 30_000);
    if (initial.afterMs === null)
      throw new Error(
        `units never all ran before the nemesis:\n${initial.problems.join("\n")}\n${initial.table}`,
      );
    log(`units-chaos: all ${launched.length} units running after ${initial.afterMs} ms; nemesis starts`);
    log(initial.table);

    const faults: Record<string, number> = {};
    await runNemesis({
      cluster,
      rand,
      victims: cluster.nodes.map((n) => n.name),
      fault: (kind, detail) => {
        faults[kind] = (faults[kind] ?? 0) + 1;
        faultLog.push(`${now()} ${kind} ${detail}`);
      },
      note: (line) => faultLog.push(`${now()} ${line}`),
      endAt: performance.now() + nemesisSec * 1000,
      // Faults last 1.6-6 s, mostly past the 2 s agent TTL, so units really move (and must come back once).
      holdScale: 2,
    });
    cluster.net.heal();
    for (const n of cluster.nodes) {
      cluster.resume(n.name);
      cluster.restart(n.name);
    }
    faultLog.push(`${now()} nemesis over: healed, resumed, restarted`);
    await cluster.waitHealthy(30_000);
    faultLog.push(`${now()} cluster healthy`);
    const final = await settle("stable placement after recovery", settleMs);
    faultLog.push(
      `${now()} ${final.afterMs === null ? "NOT settled" : `settled ${final.afterMs} ms after health`}`,
    );
    const ok = final.problems.length === 0;
    if (!ok) keepDir = true;
    const summary = [
      `seed ${seed}`,
      `faults: ${Object.entries(faults)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`,
      ...faultLog.map((l) => `  ${l}`),
      "while settling after recovery (time since health: what was still wrong):",
      ...trail.map((l) => `  ${l}`),
      final.table,
      ok ? "units: ok (every unit runs exactly once where its rules allow)" : "units: FAILED",
      ...final.problems.map((p) => `  ${p}`),
    ].join("\n");
    return {
      seed,
      ok,
      problems: final.problems,
      table: final.table,
      faultLog,
      settledAfterMs: final.afterMs,
      summary,
    };
  } finally {
    (client as BerthClient | null)?.close();
    await cluster.stop(keepDir);
    killMarked(cluster, token);
    if (keepDir) log(`units-chaos: node data and logs kept in ${cluster.dir}`);
  }
}

if (import.meta.main) {
  const flag = (name: string): string | undefined => {
    const args = process.argv.slice(2);
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  };
  const seedRaw = flag("seed");
  const report = await runUnitsChaos({
    nemesisSec: Number(flag("time") ?? 15),
    seed: seedRaw === undefined ? undefined : Number(seedRaw),
  });
  console.log(report.summary);
  process.exit(report.ok ? 0 : 1);
}
