// A machine fences its units by its own agent TTL (its node's --agent-ttl, saved in its data directory), so the
// leader must not declare it lost before that TTL has passed, even when the leader's own TTL is shorter: members
// started before the defaults changed keep 5 s while new ones get 2.5 s, and a machine moved at the leader's 2.5 s
// while it still ran its units until its own fence would run them twice.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { currentLeader, TestCluster, waitFor } from "./support/cluster.ts";

const SLOW_TTL_MS = 8000;

describe("machines with different agent TTLs", () => {
  let cluster: TestCluster;
  const stateOf = async (name: string): Promise<string | undefined> => {
    const r = await cluster.cli(["list-machines", "--all", "--output=json"], cluster.endpoints(), 10_000);
    if (r.code !== 0) throw new Error(r.stderr);
    return (JSON.parse(r.stdout) as { name: string; state: string }[]).find((m) => m.name === name)?.state;
  };

  beforeAll(async () => {
    // n1 and n2 with the default TTL; n3 with a longer one of its own.
    cluster = await TestCluster.start(3, {
      perNode: [{}, {}, { extraArgs: [`--agent-ttl=${SLOW_TTL_MS}ms`] }],
    });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it("are declared lost only after their own TTL", async () => {
    if ((await currentLeader(cluster)) === "n3") {
      const r = await cluster.cli(["cluster", "move-leader", "n1"]);
      expect(r.code, r.stderr).toBe(0);
    }
    await waitFor("n3 up", async () => (await stateOf("n3")) === "up", 10_000);
    await cluster.crash("n3");
    const crashedAt = Date.now();
    // Twice the leader's own TTL: a leader judging n3 by its own 2.5 s has declared it lost by now.
    await new Promise((r) => setTimeout(r, 5000));
    expect(await stateOf("n3"), cluster.logs()).toBe("up");
    expect(Date.now() - crashedAt).toBeLessThan(SLOW_TTL_MS);
    await waitFor("n3 lost after its own TTL", async () => (await stateOf("n3")) === "lost", 20_000);
  }, 60_000);
});
