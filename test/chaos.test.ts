// A short chaos run in CI: real nodes, peer partitions through proxies, kills and pauses; the recorded history
// must be linearizable, the watch must see every acknowledged write once and in order, TTL keys must expire.
import { describe, expect, it } from "vitest";
import { type ChaosReport, runChaos } from "./chaos/harness.ts";

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
});
