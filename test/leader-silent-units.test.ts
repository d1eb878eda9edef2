// The default timing budget (README, "The timing budget") holds when the leader goes silent without closing its
// connections (SIGSTOP: a hung machine, a partition with no FIN): the others elect a new leader within the election
// timeout (0.5-1 s), which answers their read points before their 1.8 s fence, and the stopped node's own
// supervisor keeps its machine alive through the new leader. No unit is killed, restarted or moved, none runs twice.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProbeKit } from "./chaos/probes.ts";
import { currentLeader, TestCluster, waitFor } from "./support/cluster.ts";

const UNITS = Array.from({ length: 6 }, (_, i) => `probe@${i + 1}.service`);

describe("a silent leader, with the default agent TTL", () => {
  let cluster: TestCluster;
  let probes: ProbeKit;
  const activeCount = async () => {
    const r = await cluster.cli(["list-units", "--output=json"], cluster.endpoints(), 20_000);
    if (r.code !== 0) return 0;
    return (JSON.parse(r.stdout) as { active: string }[]).filter((u) => u.active === "active").length;
  };

  beforeAll(async () => {
    probes = new ProbeKit();
    writeFileSync(
      join(probes.dir, "probe@.service"),
      `[Service]\nExecStart=${probes.execStart("%i", "-")}\n`,
    );
    cluster = await TestCluster.start(3); // the default --agent-ttl (2.5 s): the harness sets only --tick 50ms
    const r = await cluster.cli(
      ["start", ...UNITS.map((u) => join(probes.dir, u)), "--no-block"],
      cluster.endpoints(),
      60_000,
    );
    expect(r.code, r.stderr).toBe(0);
    await waitFor("every probe active", async () => (await activeCount()) === UNITS.length, 60_000, 250);
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
    probes?.remove();
  });

  it("moves, restarts and fences nothing while it is stopped for longer than the TTL", async () => {
    const leader = await currentLeader(cluster);
    const startsBefore = probes.starts();
    cluster.pause(leader);
    try {
      await new Promise((r) => setTimeout(r, 6000));
    } finally {
      cluster.resume(leader);
    }
    await cluster.waitHealthy(30_000);
    await new Promise((r) => setTimeout(r, 1000));
    const logs = cluster.nodes.map((n) => readFileSync(n.logFile, "utf8")).join("\n");
    expect(logs.match(/\[lease\] fencing.*/g) ?? [], "no machine fenced its units").toEqual([]);
    expect(logs.match(/\[engine\] machine .* is lost/g) ?? [], "no machine declared lost").toEqual([]);
    expect(probes.doubles()).toEqual([]);
    expect(probes.starts(), "no unit started again").toBe(startsBefore);
    expect(await activeCount()).toBe(UNITS.length);
  }, 90_000);
});
