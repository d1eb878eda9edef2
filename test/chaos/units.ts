// Unit placement under faults: 5 real nodes behind fault-injecting proxies run ~20 units (plain ones, a Conflicts
// spread, MachineOf pairs, one Global unit, a docker-run unit and a [Container] unit) while the nemesis injects the
// faults of unit-faults.ts one at a time. Every unit is an at-most-once probe (probes.ts): a copy that starts while
// another runs records a double run, and none may be recorded. After the nemesis stops and every node is back,
// within a bounded wait, every launched unit must run exactly once where its rules allow: one active report on a
// live machine (the Global unit: one per machine), placement rules kept, its lock held, and, checked in the OS with
// `ps`, exactly one real process per unit (per machine for the Global unit).
// `bun test/chaos/units.ts [--time 15] [--seed N] [--faults kill,crash,...] [--no-docker]`
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BerthClient } from "../../src/client/client.ts";
import type { MachineInfo, UnitInfo, UnitStateRow } from "../../src/client/protocol.ts";
import { type PrivateDocker, requireDocker, startPrivateDocker } from "../support/docker.ts";
import { ChaosCluster } from "./cluster.ts";
import { prng, sleep } from "./harness.ts";
import { buildProbeImage, ProbeKit, runningContainers } from "./probes.ts";
import { FAULT_KINDS, type FaultKind, parseKinds, runUnitNemesis } from "./unit-faults.ts";

export interface UnitsChaosOptions {
  nemesisSec?: number;
  seed?: number;
  /** Bound on the wait for a stable, correct placement after recovery (default 30 s). */
  settleMs?: number;
  log?: (line: string) => void;
  /** Fault kinds the nemesis uses (default: all). */
  faults?: readonly FaultKind[];
  /** Run the docker-run and [Container] probes against a private engine (default true). */
  docker?: boolean;
  /** The nodes' --agent-ttl in seconds (default 3). */
  ttlSec?: number;
}

export interface UnitsChaosReport {
  seed: number;
  ok: boolean;
  problems: string[];
  table: string;
  faultLog: string[];
  settledAfterMs: number | null;
  /** Double runs the probes recorded, with the time since the nemesis started. */
  doubles: string[];
  summary: string;
}

const marker = (token: string) => `berth-chaos-${token}-%n`;

/** A process probe; its lock is the unit's name, per machine for a Global unit. */
const unitText = (probes: ProbeKit, token: string, xfleet: string, desc: string) =>
  `[Unit]
Description=${desc}

[Service]
ExecStart=${probes.execStart(/Global=true/.test(xfleet) ? "%n-%m" : "%n", marker(token))}
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

/** Processes carrying this run's marker, with the node whose agent recorded their process group (or, for a
 * container's processes, whose machine the container is labelled with: `containerOwners`). */
export function osProcesses(
  cluster: ChaosCluster,
  token: string,
  containerOwners: Map<number, string> = new Map(),
): OsProc[] {
  const marker = `berth-chaos-${token}-`;
  const owner = new Map(containerOwners);
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
  const kinds = opts.faults ?? FAULT_KINDS;
  const ttlMs = (opts.ttlSec ?? 3) * 1000;
  const withDocker = opts.docker ?? true;
  const probes = new ProbeKit();

  // ---- the units ---------------------------------------------------------------------------------------------
  const plain = Array.from({ length: 8 }, (_, i) => `plain-${i + 1}.service`);
  const spread = Array.from({ length: 4 }, (_, i) => `spread@${i + 1}.service`);
  const apps = Array.from({ length: 3 }, (_, i) => `app@${i + 1}.service`);
  const sides = Array.from({ length: 3 }, (_, i) => `side@${i + 1}.service`);
  const globalUnit = "global.service";
  const submissions: { name: string; text?: string }[] = [
    ...plain.map((name) => ({ name, text: unitText(probes, token, "", `plain ${name}`) })),
    { name: "spread@.service", text: unitText(probes, token, "Conflicts=spread@*.service", "spread %i") },
    ...spread.map((name) => ({ name })),
    { name: "app@.service", text: unitText(probes, token, "", "app %i") },
    {
      name: "side@.service",
      text: unitText(probes, token, "MachineOf=app@%i.service", "sidekick of app@%i"),
    },
    ...apps.map((name) => ({ name })),
    ...sides.map((name) => ({ name })),
    { name: globalUnit, text: unitText(probes, token, "Global=true", "global") },
  ];
  const launched = [...plain, ...spread, ...apps, ...sides, globalUnit];
  const dockerRunUnit = "docker-run.service";
  const containerUnit = "container.service";

  log(
    `units-chaos: seed=${seed} token=${token} nemesis=${nemesisSec}s faults=${kinds.join(",")} ttl=${ttlMs}ms docker=${withDocker}`,
  );
  let keepDir = false;
  let docker: PrivateDocker | null = null;
  let cluster: ChaosCluster | null = null;
  try {
    if (withDocker) {
      requireDocker();
      docker = await startPrivateDocker();
      buildProbeImage(docker);
      submissions.push(
        { name: dockerRunUnit, text: probes.dockerRunService(docker.socket, dockerRunUnit, marker(token)) },
        { name: containerUnit, text: probes.containerService(containerUnit, marker(token)) },
      );
      launched.push(dockerRunUnit, containerUnit);
    }
    cluster = await ChaosCluster.start(5, {
      extraArgs: [`--agent-ttl=${ttlMs}ms`, ...(docker ? [`--docker-socket=${docker.socket}`] : [])],
    });
    return await exercise(cluster, docker);
  } finally {
    await cluster?.stop(keepDir);
    if (cluster) killMarked(cluster, token);
    await docker?.stop();
    if (keepDir) log(`units-chaos: node data and logs kept in ${cluster?.dir}, probes in ${probes.dir}`);
    else probes.remove();
  }

  async function exercise(cluster: ChaosCluster, docker: PrivateDocker | null): Promise<UnitsChaosReport> {
    const t0 = performance.now();
    const wallT0 = Date.now();
    const now = () => `+${((performance.now() - t0) / 1000).toFixed(1)}s`;
    const faultLog: string[] = [];
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
    /** Host PID of each running container's init → the node of the machine it is labelled with. */
    const containerOwners = (machines: MachineInfo[]): Map<number, string> => {
      const owners = new Map<number, string>();
      if (!docker) return owners;
      for (const c of runningContainers(docker)) {
        const name = machines.find((m) => m.id === c.machine)?.name;
        if (name) owners.set(c.pid, name);
      }
      return owners;
    };
    const snapshot = async (): Promise<Snapshot> => {
      const machines = await call<MachineInfo[]>("machines.list", {});
      return {
        machines,
        units: await call<UnitInfo[]>("units.list", {}),
        states: await call<UnitStateRow[]>("units.states", {}),
        procs: osProcesses(cluster, token, containerOwners(machines)),
      };
    };

    const evaluate = (s: Snapshot): { problems: string[]; table: string } => {
      const problems: string[] = [];
      const nameOf = new Map(s.machines.map((m) => [m.id, m.name]));
      const liveIds = new Set(
        s.machines
          .filter(
            (m) => m.state === "up" && cluster.isUp(cluster.node(m.name)) && !cluster.node(m.name).paused,
          )
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
            if (!probes.held(`${unit}-${id}`)) uproblems.push(`its lock on ${mname(id)} is not held`);
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
          if (!probes.held(unit)) uproblems.push("its lock is not held");
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

      const machineIds = new Map(
        (await call<MachineInfo[]>("machines.list", {})).map((m) => [m.name, m.id] as [string, string]),
      );
      const faults: Record<string, number> = {};
      const flood = "flood.service";
      await runUnitNemesis({
        cluster,
        kinds: [...kinds],
        ttlMs,
        rand,
        endAt: performance.now() + nemesisSec * 1000,
        machineOf: (node) => machineIds.get(node) ?? "?",
        docker,
        favourites: async () => {
          const nameOf = new Map([...machineIds].map(([name, id]) => [id, name]));
          const rows = await call<UnitStateRow[]>("units.states", {});
          return rows
            .filter((r) => r.name === dockerRunUnit || r.name === containerUnit)
            .map((r) => nameOf.get(r.machine))
            .filter((n): n is string => n !== undefined);
        },
        flood: {
          start: async () => {
            const text = `[Service]\nExecStart=/usr/bin/yes ${marker(token)}\n`;
            await call("units.submit", { units: [{ name: flood, text }] }, 10_000);
            await call("units.setDesired", { names: [flood], desired: "launched" }, 10_000);
          },
          stop: async () => void (await call("units.destroy", { names: [flood] }, 10_000)),
        },
        fault: (kind, detail) => {
          faults[kind] = (faults[kind] ?? 0) + 1;
          faultLog.push(`${now()} ${kind} ${detail}`);
        },
        note: (line) => faultLog.push(`${now()} ${line}`),
      });
      cluster.net.heal();
      for (const n of cluster.nodes) {
        cluster.resume(n.name);
        cluster.revive(n.name);
      }
      faultLog.push(`${now()} nemesis over: healed, resumed, restarted`);
      await cluster.waitHealthy(30_000);
      faultLog.push(`${now()} cluster healthy`);
      const final = await settle("stable placement after recovery", settleMs);
      faultLog.push(
        `${now()} ${final.afterMs === null ? "NOT settled" : `settled ${final.afterMs} ms after health`}`,
      );
      // "<epoch seconds> <lock> double run (pid N)" → the time since the cluster started, to set beside the faults.
      const doubles = probes.doubles().map((l) => {
        const [at, ...rest] = l.split(" ");
        // busybox's date (in the containers) has whole seconds only: "~", up to 1 s early.
        const approx = at!.includes(".") ? "" : "~";
        return `${approx}+${((Number(at) * 1000 - wallT0) / 1000).toFixed(1)}s ${rest.join(" ")}`;
      });
      const ok = final.problems.length === 0 && doubles.length === 0;
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
        doubles.length === 0 ? "double runs: none" : `double runs: ${doubles.length}`,
        ...doubles.map((d) => `  ${d}`),
        ok
          ? "units: ok (no unit ever ran twice; every unit runs exactly once where its rules allow)"
          : "units: FAILED",
        ...final.problems.map((p) => `  ${p}`),
      ].join("\n");
      return {
        seed,
        ok,
        problems: final.problems,
        table: final.table,
        faultLog,
        settledAfterMs: final.afterMs,
        doubles,
        summary,
      };
    } finally {
      (client as BerthClient | null)?.close();
    }
  }
}

if (import.meta.main) {
  const flag = (name: string): string | undefined => {
    const args = process.argv.slice(2);
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  };
  const seedRaw = flag("seed");
  const faults = flag("faults");
  const report = await runUnitsChaos({
    nemesisSec: Number(flag("time") ?? 15),
    seed: seedRaw === undefined ? undefined : Number(seedRaw),
    faults: faults === undefined ? undefined : parseKinds(faults),
    docker: !process.argv.includes("--no-docker"),
  });
  console.log(report.summary);
  process.exit(report.ok ? 0 : 1);
}
