// Test cleanup for unit cgroups: whatever a test's agents left in theirs is killed and the groups removed, even
// when the test failed half-way.
import { readdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { agentKey, type CgroupPlacement, UnitCgroup } from "../../src/agent/unit-cgroup.ts";

/** The directories (one per hierarchy) an agent on `dataDir` keeps its unit groups in under `placement`. */
export function agentCgroupBases(placement: CgroupPlacement, dataDir: string): string[] {
  const parents =
    placement.kind === "v2"
      ? [placement.dir]
      : [placement.freezer, ...(placement.pids ? [placement.pids] : [])];
  return parents.map((p) => join(p, "berth-units", agentKey(dataDir)));
}

export function sweepAgentCgroups(placement: CgroupPlacement | null, dataDir: string): void {
  if (placement === null) return;
  const bases = agentCgroupBases(placement, dataDir);
  let units: string[] = [];
  try {
    units = readdirSync(bases[0]!, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {}
  for (const u of units) {
    const cg = new UnitCgroup(bases.map((b) => join(b, u)));
    cg.killAll();
    cg.removeSync();
  }
  for (const b of bases) {
    for (const d of [b, join(b, "..")]) {
      try {
        rmdirSync(d);
      } catch {}
    }
  }
}
