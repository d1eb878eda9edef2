// Unit placement under faults on real nodes: after the nemesis stops, every unit runs exactly once where its rules
// allow (no duplicates left, none lost), checked in the registry and with `ps`.
import { describe, expect, it } from "vitest";
import { runUnitsChaos } from "./chaos/units.ts";

describe("chaos: units", () => {
  it("after kills, pauses and partitions every unit runs exactly once where its rules allow", {
    timeout: 150_000,
  }, async () => {
    // runUnitsChaos kills every node and unit process it started in its own finally block.
    const report = await runUnitsChaos({ nemesisSec: 15, log: () => {} });
    console.log(report.summary);
    expect(report.problems, report.summary).toEqual([]);
    expect(report.ok).toBe(true);
  });
});
