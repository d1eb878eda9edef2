// A machine cut off from the cluster kills its units before the leader may run them elsewhere (the lease's
// fence), so the unit never runs twice; once the partition heals, it runs exactly once. The unit is an
// at-most-once probe (test/chaos/probes.ts): it holds an exclusive file lock while it runs, and a copy that finds
// it taken records a double run.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChaosCluster } from "./chaos/cluster.ts";
import { ProbeKit } from "./chaos/probes.ts";
import { berth, waitFor } from "./support/cluster.ts";

interface UnitRow {
  name: string;
  machine: string;
  active: string;
}

describe("the fence of a partitioned machine", () => {
  let cluster: ChaosCluster;
  let probes: ProbeKit;
  /** Nodes asked by the CLI (a cut-off node answers reads with "no quorum"). */
  let asked: string[] = [];
  const cli = async <T>(args: string[], timeoutMs = 10_000): Promise<T> => {
    const endpoints = asked.map((n) => cluster.endpoint(n)).join(",");
    const r = await berth([...args, `--endpoint=${endpoints}`, "--output=json"], { timeoutMs });
    if (r.code !== 0) throw new Error(`berth ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return (r.stdout.trim() === "" ? null : JSON.parse(r.stdout)) as T;
  };
  const probeRow = async () => (await cli<UnitRow[]>(["list-units"])).find((r) => r.name === "probe.service");
  const doubles = () => probes.doubles().join("\n");

  beforeAll(async () => {
    probes = new ProbeKit();
    writeFileSync(
      join(probes.dir, "probe.service"),
      `[Service]\nExecStart=${probes.execStart("probe", "-")}\n`,
    );
    cluster = await ChaosCluster.start(3, { extraArgs: ["--agent-ttl=3s"] });
    asked = cluster.nodes.map((n) => n.name);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
    probes?.remove();
  });

  it("kills the cut-off copy before the unit starts elsewhere, and runs it once after healing", async () => {
    await cli(["start", join(probes.dir, "probe.service")], 30_000);
    const machines = await cli<{ id: string; name: string }[]>(["list-machines"]);
    const first = (await waitFor("probe.service active", async () => {
      const r = await probeRow();
      return r?.active === "active" ? r : null;
    }))!;
    const victim = machines.find((m) => m.id === first.machine)!.name;
    const others = cluster.nodes.map((n) => n.name).filter((n) => n !== victim);

    cluster.net.partition([[victim], others]);
    asked = others;
    const outcome = await waitFor(
      "probe.service active on the majority side (or a double run)",
      async () => {
        if (doubles() !== "") return "double run";
        const r = await probeRow();
        return r && r.machine !== first.machine && r.active === "active" ? "moved" : null;
      },
      30_000,
      200,
    );
    expect(outcome, doubles()).toBe("moved");
    expect(readFileSync(cluster.node(victim).logFile, "utf8")).toMatch(/\[lease\] fencing/);
    cluster.net.heal();
    await waitFor(
      "the cut-off node back in the cluster",
      () => /the cluster answers again/.test(readFileSync(cluster.node(victim).logFile, "utf8")),
      20_000,
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(doubles(), cluster.logs()).toBe("");
    expect(probes.starts()).toBe(2);
    expect((await probeRow())?.active).toBe("active");
  }, 90_000);
});
