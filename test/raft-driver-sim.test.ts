import { afterAll, describe, expect, it } from "vitest";
import type { RetryClock } from "../src/retry.ts";
import { DriverCluster, type DriverSimOptions } from "./support/driver-sim.ts";
import { waitFor } from "./support/processes.ts";

// RaftDriver (not just the Raft core) under crashes, partitions, message loss and slow leader disks, on virtual
// time: a seed fixes the exact execution; replay a failure with
// DRIVER_SIM_SEED=<seed> DRIVER_SIM_NODES=<n> (and DRIVER_SIM_SEEDS=<count> for longer runs).
const SEEDS = Number(process.env.DRIVER_SIM_SEEDS ?? 32);
const ONLY = process.env.DRIVER_SIM_SEED ? Number(process.env.DRIVER_SIM_SEED) : null;
const ONLY_NODES = process.env.DRIVER_SIM_NODES ? Number(process.env.DRIVER_SIM_NODES) : null;

function seeds(base: number, count: number): number[] {
  return ONLY !== null ? [ONLY] : Array.from({ length: count }, (_, i) => base + i);
}

async function runScenario(opts: DriverSimOptions): Promise<DriverCluster> {
  const sim = new DriverCluster(opts);
  try {
    await sim.runFaults();
    sim.heal();
    await sim.checkProgress(opts.seed, 5000);
    await sim.checkConverged(5000);
    if (sim.checker.violations.length > 0) throw new Error(sim.checker.violations.slice(0, 5).join("\n"));
  } catch (e) {
    const err = e as Error;
    err.message +=
      `\n  replay: DRIVER_SIM_SEED=${opts.seed} DRIVER_SIM_NODES=${opts.nodes} npx vitest run test/raft-driver-sim.test.ts` +
      `\n  last events:\n${sim.tail()}`;
    throw err;
  } finally {
    await sim.dispose();
  }
  return sim;
}

const totals: Record<string, number> = {};

describe("RaftDriver under a simulated faulty network and disks", () => {
  const groups: { nodes: number; count: number; faultMs: number }[] = [
    // A single voter: no leader can tell it the commit index it had before a crash.
    { nodes: 1, count: Math.ceil(SEEDS / 4), faultMs: 1000 },
    { nodes: 3, count: SEEDS, faultMs: 1200 },
    { nodes: 5, count: Math.ceil(SEEDS / 3), faultMs: 1500 },
  ];
  afterAll(() => {
    if (process.env.DRIVER_SIM_STATS) console.log(totals);
    if (ONLY !== null) return;
    // Taken together, the runs must have reached the paths under test: crashes, snapshot installs, and entries
    // applied before the local write was durable, on leaders (acks stepped mid-write) and on followers.
    for (const k of ["crashes", "reads", "snapshotsInstalled", "leaderEarlyApplies", "followerEarlyApplies"])
      expect(totals[k], k).toBeGreaterThan(0);
  });
  for (const { nodes, count, faultMs } of groups) {
    if (ONLY_NODES !== null && ONLY_NODES !== nodes) continue;
    // Several clusters at once share the event loop: that only adds timing noise, which is welcome here.
    it.concurrent.each(seeds(nodes * 1000, count))(
      `${nodes} nodes, seed %i`,
      async (seed) => {
        const sim = await runScenario({ seed, nodes, faultMs });
        // The run must have exercised the protocol, not idled (the final liveness write alone makes 1).
        expect(sim.stats.acked).toBeGreaterThan(3);
        for (const [k, v] of Object.entries(sim.stats)) totals[k] = (totals[k] ?? 0) + v;
      },
      30_000,
    );
  }
});

describe("RaftDriver simulation on virtual time", () => {
  it("replays a run exactly from its seed: the same events, deliveries and applies in the same order", async () => {
    const run = async () => {
      const sim = await runScenario({ seed: 3003, nodes: 3, faultMs: 1000 });
      return { ...sim.trace, stats: sim.stats, tail: sim.tail() };
    };
    const first = await run();
    const second = await run();
    expect(first.lines).toBeGreaterThan(500);
    expect(first.stats.crashes).toBeGreaterThan(0);
    expect(second).toEqual(first);
  }, 30_000);
});

describe("RaftDriver: a deposed leader's pending proposals", () => {
  it("are settled when a snapshot from the new leader replaces them (not left waiting forever)", async () => {
    const sim = new DriverCluster({ seed: 7, nodes: 3, faultMs: 0, snapshotEvery: 20 });
    try {
      for (const id of ["n1", "n2", "n3"]) sim.start(id);
      const old = await waitFor("a first leader", () => sim.leader(), 5000, 10, virtualTime(sim));
      // Cut the leader off: its next proposal is appended to its own log only and can never commit.
      sim.partition([old.id]);
      const orphan = old.driver!.propose(new TextEncoder().encode("orphan"));
      const settled = orphan.then(
        () => "resolved",
        (e: Error) => e.constructor.name,
      );
      const others = [...sim.nodes.keys()].filter((id) => id !== old.id);
      const next = await waitFor(
        "a leader among the majority",
        () => {
          const l = sim.leader();
          return l && others.includes(l.id) ? l : undefined;
        },
        5000,
        10,
        virtualTime(sim),
      );
      // Enough writes that the majority snapshots and compacts past the orphan's index.
      for (let i = 0; i < 60; i++) await next.driver!.propose(new TextEncoder().encode(`w${i}`));
      sim.heal();
      expect(await withDeadline(sim, settled, 5000)).toBe("ProposalOutcomeUnknownError");
      expect(sim.stats.snapshotsInstalled).toBeGreaterThan(0);
      expect(sim.checker.violations).toEqual([]);
    } finally {
      await sim.dispose();
    }
  }, 20_000);
});

describe("RaftDriver: a single member that crashes", () => {
  const encode = (s: string) => new TextEncoder().encode(s);
  const cmds = (sim: DriverCluster) => sim.nodes.get("n1")!.sm!.applied.map((a) => a[2]);

  it("answers a read after the restart with every write it acknowledged, even one whose commit index was lost", async () => {
    const sim = new DriverCluster({ seed: 11, nodes: 1, faultMs: 0 });
    try {
      sim.start("n1");
      const n1 = await waitFor("a leader", () => sim.leader(), 5000, 10, virtualTime(sim));
      await n1.driver!.propose(encode("w0"));
      // Crash the moment the write is acknowledged: its commit index (written without a sync) is not on disk yet.
      await n1.driver!.propose(encode("w1")).then(() => sim.crash("n1"));
      sim.start("n1");
      const restarted = sim.nodes.get("n1")!;
      // A client retrying its read on every tick of the restarted member (the sim's tick is 5 ms): the first read
      // to get through is stepped in the same pass as the tick that elects it, while the new term's first entry
      // is still being written.
      let seen: string[] | null = null;
      const stopReading = sim.clock.every(5, () => {
        restarted.driver!.readBarrier().then(
          () => {
            seen ??= cmds(sim);
          },
          () => {},
        );
      });
      await waitFor("a read", () => seen, 5000, 10, virtualTime(sim));
      stopReading();
      expect(seen).toContain("w1");
      expect(sim.checker.violations).toEqual([]);
    } finally {
      await sim.dispose();
    }
  }, 20_000);

  it("replays every write it acknowledged when it restarts (the lone commit index reached its disk)", async () => {
    const sim = new DriverCluster({ seed: 12, nodes: 1, faultMs: 0 });
    try {
      sim.start("n1");
      const n1 = await waitFor("a leader", () => sim.leader(), 5000, 10, virtualTime(sim));
      await n1.driver!.propose(encode("w0"));
      await n1.driver!.propose(encode("w1"));
      // Idle long enough for every write the driver started to complete (a simulated write takes at most 15 ms).
      await sim.clock.sleep(100);
      sim.crash("n1");
      sim.start("n1");
      // What the restarted member applied from its own disk before it is elected again (and commits anything).
      let atElection: string[] | null = null;
      sim.nodes.get("n1")!.driver!.onLeaderChange((lead) => {
        if (lead === "n1") atElection ??= cmds(sim);
      });
      await waitFor("an election", () => atElection, 5000, 10, virtualTime(sim));
      expect(atElection).toEqual(["w0", "w1"]);
    } finally {
      await sim.dispose();
    }
  }, 20_000);
});

describe("RaftDriver: a closed connection to the leader", () => {
  const encode = (s: string) => new TextEncoder().encode(s);
  /** The shortest election timeout of the simulated drivers (10 ticks of 5 ms). */
  const ELECTION_TIMEOUT_MS = 50;
  const terms = (sim: DriverCluster) => sim.live().map((n) => n.driver!.commitAndTerm().term);

  it.concurrent.each([1, 2, 3, 4, 5, 6, 7, 8])(
    "the leader crashed: writes commit again under a new leader before any election timeout (seed %i)",
    async (seed) => {
      const sim = new DriverCluster({ seed, nodes: 3, faultMs: 0 });
      try {
        for (const id of ["n1", "n2", "n3"]) sim.start(id);
        const old = await waitFor("a first leader", () => sim.leader(), 5000, 10, virtualTime(sim));
        await old.driver!.propose(encode("before"));
        const term = old.driver!.commitAndTerm().term;
        const crashedAt = sim.clock.now;
        sim.crash(old.id);
        const next = await waitFor("a new leader", () => sim.leader(), 1000, 10, virtualTime(sim));
        await next.driver!.propose(encode("after"));
        const replay = `seed ${seed}\n${sim.tail()}`;
        expect(next.driver!.commitAndTerm().term, replay).toBe(term + 1);
        expect(sim.clock.now - crashedAt, replay).toBeLessThan(ELECTION_TIMEOUT_MS);
        expect(sim.checker.violations).toEqual([]);
      } finally {
        await sim.dispose();
      }
    },
    20_000,
  );

  it.concurrent.each([1, 2, 3, 4])(
    "the leader alive: a follower's reset connection causes no election (seed %i)",
    async (seed) => {
      const sim = new DriverCluster({ seed, nodes: 3, faultMs: 0 });
      try {
        for (const id of ["n1", "n2", "n3"]) sim.start(id);
        const leader = await waitFor("a first leader", () => sim.leader(), 5000, 10, virtualTime(sim));
        await leader.driver!.propose(encode("before"));
        const before = terms(sim);
        const follower = sim.live().find((n) => n !== leader)!;
        for (let i = 0; i < 5; i++) {
          sim.closeConnection(leader.id, follower.id);
          await sim.clock.sleep(30);
          await leader.driver!.propose(encode(`w${i}`));
        }
        await sim.clock.sleep(200);
        expect(sim.tail(), "the follower saw the closes").toContain("leader connection closed: pre-vote");
        expect(sim.leader()).toBe(leader);
        expect(terms(sim), sim.tail()).toEqual(before);
      } finally {
        await sim.dispose();
      }
    },
    20_000,
  );
});

/** The simulation's virtual time, for waitFor. */
function virtualTime(sim: DriverCluster): RetryClock {
  return { now: () => sim.clock.now, sleep: (ms) => sim.clock.sleep(ms) };
}

function withDeadline<T>(sim: DriverCluster, p: Promise<T>, ms: number): Promise<T | "still pending"> {
  return Promise.race([p, sim.clock.sleep(ms).then(() => "still pending" as const)]);
}
