// The faults of the units chaos run, one at a time, each kind switchable. Holds are in units of the agent TTL: a
// fault meant to move units lasts past it, one meant to leave them in place ends well before it.
//   kill       node SIGKILLed and back within 0.15-0.3 TTL; its unit processes keep running meanwhile
//   orphan     node-only crash: node SIGKILLed for 1.5-2 TTL, its unit processes (and unit supervisor, in builds
//              that have one) left running while the units move elsewhere
//   crash      machine crash: node, supervisor (killUnitProcesses), unit processes and containers SIGKILLed; back
//              after 1.5-2 TTL
//   supervisor the unit supervisor alone SIGKILLed: its node starts a new one, which adopts the units still
//              scheduled there (same processes) and kills the rest
//   partition  one machine cut off from the others for 1.5-2 TTL
//   freeze     every node, supervisor, unit process and container of the cluster SIGSTOPped for TTL + 2 s
//   flood      a unit printing as fast as it can (`yes`), launched for 2 TTL, then destroyed
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { PrivateDocker } from "../support/docker.ts";
import { killUnitProcesses, recordedGroups } from "../support/processes.ts";
import type { ChaosCluster } from "./cluster.ts";
import { leaderName, sleep } from "./harness.ts";
import { runningContainers } from "./probes.ts";

export const FAULT_KINDS = ["kill", "orphan", "crash", "supervisor", "partition", "freeze", "flood"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * The kinds the CI run takes: all of them, since the per-node supervisor (orphan: the units stay with it and are
 * fenced if their node stays away) and the leader's stall clock (freeze).
 */
export const PASSING_KINDS: FaultKind[] = [...FAULT_KINDS];

export function parseKinds(text: string): FaultKind[] {
  const kinds = text.split(",").filter(Boolean);
  for (const k of kinds)
    if (!(FAULT_KINDS as readonly string[]).includes(k))
      throw new Error(`unknown fault kind ${k} (known: ${FAULT_KINDS.join(", ")})`);
  return kinds as FaultKind[];
}

export interface UnitNemesisOptions {
  cluster: ChaosCluster;
  kinds: FaultKind[];
  ttlMs: number;
  rand: () => number;
  endAt: number;
  /** Machine id of a node (containers are labelled with it). */
  machineOf: (node: string) => string;
  docker: PrivateDocker | null;
  /** Nodes worth hitting more often than chance would (those running the rarer probes). */
  favourites?: () => Promise<string[]>;
  flood: { start(): Promise<void>; stop(): Promise<void> };
  fault: (kind: FaultKind, detail: string) => void;
  note: (line: string) => void;
}

/** Host PIDs of the inits of the containers a machine runs: [Container] units and docker-run probes. */
function machineContainers(d: PrivateDocker, machine: string): number[] {
  return [
    ...runningContainers(d, `label=berth.machine=${machine}`),
    ...runningContainers(d, `label=berth-probe=${machine}`),
  ].map((c) => c.pid);
}

/**
 * The unit supervisor of a node (`berth supervise --agent-dir=DATA_DIR/agent`), where the build has one: found by
 * its command line, so this harness runs the same with and without it.
 */
function supervisors(dataDir: string): number[] {
  const flag = `--agent-dir=${join(dataDir, "agent")}`;
  const pids: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0").includes(flag)) pids.push(Number(e));
    } catch {}
  }
  return pids;
}

function signalPids(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids)
    try {
      process.kill(pid, signal);
    } catch {}
}

function signalGroups(pgids: number[], signal: NodeJS.Signals): void {
  for (const pg of pgids)
    try {
      process.kill(-pg, signal);
    } catch {}
}

/** Kinds in a seeded order, repeated: every enabled kind comes round equally often. */
export async function runUnitNemesis(o: UnitNemesisOptions): Promise<void> {
  const { cluster, rand, ttlMs } = o;
  if (o.kinds.length === 0) return;
  const order = [...o.kinds].sort(() => rand() - 0.5);
  const names = cluster.nodes.map((n) => n.name);
  const between = (lo: number, hi: number) => Math.round(ttlMs * (lo + rand() * (hi - lo)));
  const pick = (xs: string[]) => xs[Math.floor(rand() * xs.length)]!;
  /** The leader a third of the time, a favourite a third of the time, else any node. */
  const victim = async (): Promise<string> => {
    const r = rand();
    const leader = r < 1 / 3 ? await leaderName(cluster) : null;
    const favourites = r >= 1 / 3 && r < 2 / 3 ? ((await o.favourites?.()) ?? []) : [];
    return leader ?? (favourites.length > 0 ? pick(favourites) : pick(names));
  };
  const label = async (v: string) =>
    `${v}${v === (await leaderName(cluster)) ? " (leader)" : ""}${
      ((await o.favourites?.()) ?? []).includes(v) ? " (runs a docker probe)" : ""
    }`;
  for (let i = 0; performance.now() < o.endAt; i++) {
    await sleep(500 + rand() * 1000);
    if (performance.now() >= o.endAt) break;
    const kind = order[i % order.length]!;
    switch (kind) {
      case "kill":
      case "orphan":
      case "crash": {
        const v = await victim();
        const hold = kind === "kill" ? between(0.15, 0.3) : between(1.5, 2);
        o.fault(kind, `${await label(v)} for ${hold} ms`);
        await cluster.kill(v);
        if (kind === "crash") {
          killUnitProcesses(cluster.node(v).dataDir);
          // A crashed machine's engine runs nothing; this shared one may still be starting a container the node
          // asked for just before it died, so its containers are killed again until the machine is back.
          const end = performance.now() + hold;
          do {
            if (o.docker) signalGroups(machineContainers(o.docker, o.machineOf(v)), "SIGKILL");
            await sleep(Math.min(200, Math.max(0, end - performance.now())));
          } while (performance.now() < end);
        } else await sleep(hold);
        cluster.revive(v);
        o.note(`restart ${v}`);
        break;
      }
      case "supervisor": {
        const v = await victim();
        o.fault(kind, `the unit supervisor of ${await label(v)}`);
        signalPids(supervisors(cluster.node(v).dataDir), "SIGKILL");
        await sleep(ttlMs);
        break;
      }
      case "partition": {
        const v = await victim();
        const hold = between(1.5, 2);
        o.fault(kind, `${await label(v)} cut off for ${hold} ms`);
        cluster.net.partition([[v], names.filter((n) => n !== v)]);
        await sleep(hold);
        cluster.net.heal();
        o.note("heal");
        break;
      }
      case "freeze": {
        const hold = ttlMs + 2000;
        const sups = cluster.nodes.flatMap((n) => supervisors(n.dataDir));
        const groups = [
          ...cluster.nodes.flatMap((n) => recordedGroups(n.dataDir)),
          ...(o.docker ? runningContainers(o.docker).map((c) => c.pid) : []),
        ];
        o.fault(
          kind,
          `${names.length} nodes, ${sups.length} supervisors and ${groups.length} unit process groups for ${hold} ms`,
        );
        // Supervisors and nodes first, so none sees its units stop; thawed in the reverse order.
        signalPids(sups, "SIGSTOP");
        for (const n of names) cluster.pause(n);
        signalGroups(groups, "SIGSTOP");
        await sleep(hold);
        signalGroups(groups, "SIGCONT");
        for (const n of names) cluster.resume(n);
        signalPids(sups, "SIGCONT");
        o.note("thaw");
        break;
      }
      case "flood": {
        const hold = between(2, 2);
        o.fault(kind, `flood.service for ${hold} ms`);
        await o.flood.start();
        await sleep(hold);
        await o.flood.stop();
        o.note("flood.service destroyed");
        break;
      }
    }
  }
}
