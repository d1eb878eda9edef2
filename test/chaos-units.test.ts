// Unit placement under faults on real nodes, every unit an at-most-once probe (test/chaos/probes.ts): no unit ever
// runs twice, and after the nemesis stops every unit runs exactly once where its rules allow (no duplicates left,
// none lost), checked in the registry, with `ps` and on each probe's lock. The fault kinds are those that pass
// today (PASSING_KINDS); `npm run chaos -- --units --time 300` runs them all.
import { describe, expect, it } from "vitest";
import { PASSING_KINDS } from "./chaos/unit-faults.ts";
import { runUnitsChaos } from "./chaos/units.ts";

describe("chaos: units", () => {
  it(`no unit runs twice under ${PASSING_KINDS.join(", ")}, and afterwards every unit runs exactly once`, {
    timeout: 180_000,
  }, async () => {
    // runUnitsChaos kills every node, unit process and container it started in its own finally block.
    const report = await runUnitsChaos({ nemesisSec: 45, faults: PASSING_KINDS, log: () => {} });
    console.log(report.summary);
    expect(report.doubles, report.summary).toEqual([]);
    expect(report.problems, report.summary).toEqual([]);
    expect(report.ok).toBe(true);
  });
});
