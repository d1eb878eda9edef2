import { describe, expect, it } from "vitest";
import { SimCluster, type SimOptions } from "./support/raft-sim.ts";

// Seeds per size: override with RAFT_SIM_SEEDS=200 for a longer run, or RAFT_SIM_SEED=1234 to replay one.
const SEEDS = Number(process.env.RAFT_SIM_SEEDS ?? 24);
const ONLY = process.env.RAFT_SIM_SEED ? [Number(process.env.RAFT_SIM_SEED)] : null;

function seeds(base: number): number[] {
  return ONLY ?? Array.from({ length: SEEDS }, (_, i) => base + i);
}

function runScenario(opts: SimOptions, faultUnits: number): SimCluster {
  const sim = new SimCluster(opts);
  try {
    for (let chunk = 0; chunk < faultUnits / 500; chunk++) {
      sim.run(500, true, { proposeRate: 0.08, readRate: 0.01 });
      sim.checkLogMatching();
    }
    sim.healAndRestartAll();
    sim.checkProgress(20_000);
    sim.checkLogMatching();
  } catch (e) {
    (e as Error).message += `\n  replay: RAFT_SIM_SEED=${opts.seed} npx vitest run test/raft-sim.test.ts`;
    throw e;
  }
  return sim;
}

describe("raft under a simulated faulty network", () => {
  for (const nodes of [3, 5, 7]) {
    it(`${nodes} nodes: drops, delays, duplicates, partitions, crashes`, () => {
      const totals = { acked: 0, elections: 0, crashes: 0, reads: 0 };
      for (const seed of seeds(nodes * 1000)) {
        const sim = runScenario(
          { seed, nodes, dropRate: 0.05, duplicateRate: 0.02, faultRate: 0.006, snapshotEvery: 40 },
          6000,
        );
        totals.acked += sim.acked.size;
        totals.elections += sim.stats.elections;
        totals.crashes += sim.stats.crashes;
        totals.reads += sim.stats.reads;
      }
      // The runs must actually have exercised the protocol, not idled.
      expect(totals.acked).toBeGreaterThan(10 * seeds(0).length);
      expect(totals.elections).toBeGreaterThan(seeds(0).length);
      expect(totals.reads).toBeGreaterThan(seeds(0).length);
    });
  }

  it("a single voter: crashes lose its unsynced commit index, and reads arrive while it writes", () => {
    const totals = { acked: 0, crashes: 0, reads: 0 };
    for (const seed of seeds(50_000)) {
      // A read stepped while the new leader's no-op is being written must not be answered at the commit index
      // the restart recovered: writes acknowledged before the crash may lie beyond it.
      const sim = runScenario(
        { seed, nodes: 1, faultRate: 0.01, readDuringWriteRate: 0.5, snapshotEvery: 40 },
        6000,
      );
      totals.acked += sim.acked.size;
      totals.crashes += sim.stats.crashes;
      totals.reads += sim.stats.reads;
    }
    expect(totals.crashes).toBeGreaterThan(seeds(0).length);
    expect(totals.reads).toBeGreaterThan(10 * seeds(0).length);
    expect(totals.acked).toBeGreaterThan(10 * seeds(0).length);
  });

  it("membership changes (learners, promotion, removal of any member including the leader) under faults", () => {
    let changes = 0;
    for (const seed of seeds(90_000)) {
      const sim = runScenario(
        {
          seed,
          nodes: 3,
          spares: 2,
          dropRate: 0.03,
          faultRate: 0.002,
          membershipChanges: true,
          snapshotEvery: 60,
        },
        8000,
      );
      changes += sim.stats.confChanges;
    }
    expect(changes).toBeGreaterThan(seeds(0).length);
  });
});

describe("a follower seeing its connection to the leader close", () => {
  /** The shortest election timeout in sim units (electionTick 10 x a tick every 10 units). */
  const ELECTION_TIMEOUT_UNITS = 100;

  function withLeader(seed: number, nodes: number): SimCluster {
    const sim = new SimCluster({ seed, nodes, crashMidWriteRate: 0 });
    for (let i = 0; i < 5000 && !sim.leader(); i++) sim.step(false);
    sim.run(300, false, { proposeRate: 0.05 });
    if (!sim.leader()) throw new Error(`seed ${seed}: no leader`);
    return sim;
  }

  const terms = (sim: SimCluster) => sim.live().map((n) => n.raft!.term);

  it("when the leader died: a new leader of the next term before any election timeout fires", () => {
    for (const seed of ONLY ?? Array.from({ length: 4 * SEEDS }, (_, i) => 120_000 + i)) {
      const sim = withLeader(seed, 3);
      const old = sim.leader()!;
      const term = old.raft!.term;
      // Appends in flight when it dies: the survivors' logs may differ (then only the more up-to-date can win).
      for (let i = 0; i < 1 + (seed % 4); i++) {
        old.raft!.propose([new TextEncoder().encode(`last-${i}`)]);
        sim.process(old);
        sim.step(false);
      }
      const crashedAt = sim.now;
      sim.crash(old.id);
      let next = sim.leader();
      while (!next && sim.now - crashedAt < 10 * ELECTION_TIMEOUT_UNITS) {
        sim.step(false);
        next = sim.leader();
      }
      const replay = `seed ${seed} (RAFT_SIM_SEED=${seed})`;
      expect(next, replay).toBeDefined();
      // Pre-vote, then one vote: the two survivors do not split it (the lower id goes first on a tie).
      expect(next!.raft!.term, replay).toBe(term + 1);
      expect(sim.now - crashedAt, replay).toBeLessThan(ELECTION_TIMEOUT_UNITS);
    }
  });

  for (const nodes of [3, 5]) {
    it(`${nodes} nodes, the leader alive: no election, no term change, writes go on`, () => {
      for (const seed of seeds(130_000 + nodes * 1000)) {
        const sim = withLeader(seed, nodes);
        const leader = sim.leader()!;
        const before = terms(sim);
        const follower = sim.live().find((n) => n !== leader)!;
        const acked = sim.acked.size;
        for (let round = 0; round < 5; round++) {
          sim.closeConnection(leader.id, follower.id);
          sim.run(60, false, { proposeRate: 0.05 });
        }
        sim.run(300, false, { proposeRate: 0.05 });
        const replay = `seed ${seed} (RAFT_SIM_SEED=${seed})`;
        expect(sim.leader(), replay).toBe(leader);
        expect(terms(sim), replay).toEqual(before);
        expect(sim.acked.size, replay).toBeGreaterThan(acked);
      }
    });
  }
});
