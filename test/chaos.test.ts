// A short chaos run in CI: real nodes, peer partitions through proxies, kills and pauses; the recorded history
// must be linearizable, the watch must see every acknowledged write once and in order, TTL keys must expire.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { BerthClient } from "../src/client/client.ts";
import { ChaosCluster } from "./chaos/cluster.ts";
import { type ChaosReport, runChaos } from "./chaos/harness.ts";
import { waitFor } from "./support/processes.ts";

describe("chaos", () => {
  it("a short nemesis run stays linearizable, watch-complete and TTL-bounded", {
    timeout: 120_000,
  }, async () => {
    // runChaos kills every node it started in its own finally block, whatever happens.
    const report: ChaosReport = await runChaos({ timeSec: 12, log: () => {} });
    console.log(report.summary);
    expect(report.check.ok, report.summary).toBe(true);
    expect(report.watch.problems, report.summary).toEqual([]);
    expect(report.ttl.problems, report.summary).toEqual([]);
    expect(report.ops.filter((o) => o.result.status === "ok").length).toBeGreaterThan(50);
  });

  it("keeps peer traffic behind the fault proxies after a member installs a snapshot", {
    timeout: 120_000,
  }, async () => {
    // Peer addresses travel in Raft configuration entries and snapshots: a node that installs the leader's
    // snapshot dials the members at the addresses in it. They must still be the proxies', or a partition no
    // longer isolates it.
    const c = await ChaosCluster.start(3, { extraArgs: ["--snapshot-count=500"] });
    const clients: BerthClient[] = [];
    const client = async (name: string) => {
      const cl = await BerthClient.connect({ endpoints: [c.endpoint(name)], timeoutMs: 5000, name: "chaos" });
      clients.push(cl);
      return cl;
    };
    const put = (cl: BerthClient, key: string) =>
      cl.call("kv.write", { method: "PUT", key, value: "v" }, 5000).then(
        () => "ok",
        (e: Error) => e.message,
      );
    try {
      await c.kill("n3");
      const n1 = await client("n1");
      // Far more entries than a leader keeps behind its snapshot for catching up (5,000): n3 needs the snapshot.
      let next = 0;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < 6000)
            await n1.call("kv.write", { method: "PUT", key: `/k${next++ % 100}`, value: "v" });
        }),
      );
      c.revive("n3");
      const n3log = c.node("n3").logFile;
      await waitFor(
        "n3 to install the leader's snapshot",
        () => readFileSync(n3log, "utf8").includes("restoring snapshot at index"),
        30_000,
      );
      await c.waitHealthy(30_000);
      const n3 = await client("n3");
      expect(await put(n3, "/before")).toBe("ok");

      c.net.partition([["n3"], ["n1", "n2"]]);
      expect(await put(n1, "/majority")).toBe("ok");
      expect(await put(n3, "/isolated")).not.toBe("ok");

      c.net.heal();
      await c.waitHealthy(30_000);
      expect(await put(n3, "/after")).toBe("ok");
    } finally {
      for (const cl of clients) cl.close();
      await c.stop();
    }
  });
});
