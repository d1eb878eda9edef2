// Placement benchmark: one reconcile() from an empty schedule (everything to place), then one more reconcile() on
// the result (steady state: everything is re-validated and kept). Synthetic cluster, deterministic.
// Run directly: bun bench/placement.ts
import { type Assignment, type MachineView, reconcile, type UnitView } from "../src/sched/placement.ts";
import { EMPTY_XFLEET, type XFleetOptions } from "../src/unit/xfleet.ts";

export interface PlacementBenchRow {
  machines: number;
  units: number;
  /** First reconcile: place every unit from scratch. */
  ms: number;
  /** Second reconcile on the result (must be an empty plan). */
  steadyMs: number;
  scheduled: number;
  unplaceable: number;
}

const REGIONS = ["us-east", "us-west", "eu-central"];

function hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}

export function syntheticCluster(
  machines: number,
  units: number,
): { machines: MachineView[]; units: UnitView[] } {
  const ms: MachineView[] = [];
  for (let i = 0; i < machines; i++) {
    ms.push({
      id: `${hex(Math.imul(i + 1, 2654435761) >>> 0)}${hex(i)}`,
      metadata: { region: REGIONS[i % 3]! },
    });
  }
  const us: UnitView[] = [];
  const x = (o: Partial<XFleetOptions>): XFleetOptions => ({ ...EMPTY_XFLEET, ...o });
  // Mix: ~60% plain, ~20% MachineMetadata, ~10% template instances with Conflicts=web@*, ~10% MachineOf sidecars,
  // plus two Global units.
  us.push({ name: "agent.service", desired: "launched", xfleet: x({ global: true }) });
  us.push({
    name: "logship.service",
    desired: "launched",
    xfleet: x({ global: true, machineMetadata: { region: ["us-east", "us-west"] } }),
  });
  let i = 0;
  while (us.length < units) {
    const k = i % 10;
    if (k < 6) us.push({ name: `app-${i}.service`, desired: "launched", xfleet: x({}) });
    else if (k < 8)
      us.push({
        name: `svc-${i}.service`,
        desired: "launched",
        xfleet: x({ machineMetadata: { region: [REGIONS[i % 3]!] } }),
      });
    else if (k === 8)
      us.push({ name: `web@${i}.service`, desired: "launched", xfleet: x({ conflicts: ["web@*.service"] }) });
    else
      us.push({
        name: `side-${i}.service`,
        desired: "loaded",
        xfleet: x({ machineOf: [`app-${i - 9}.service`] }),
      });
    i++;
  }
  return { machines: ms, units: us };
}

export function benchPlacement(
  sizes: [number, number][] = [
    [10, 100],
    [10, 1000],
    [10, 10000],
    [100, 100],
    [100, 1000],
    [100, 10000],
    [1000, 100],
    [1000, 1000],
    [1000, 10000],
  ],
): PlacementBenchRow[] {
  const rows: PlacementBenchRow[] = [];
  for (const [m, u] of sizes) {
    const cluster = syntheticCluster(m, u);
    reconcile({ ...cluster, current: [] }); // warm-up (JIT)
    let t = performance.now();
    const plan = reconcile({ ...cluster, current: [] });
    const ms = performance.now() - t;
    const current: Assignment[] = plan.schedule;
    t = performance.now();
    const again = reconcile({ ...cluster, current });
    const steadyMs = performance.now() - t;
    if (again.schedule.length > 0 || again.unschedule.length > 0)
      throw new Error("placement is not a fixed point");
    rows.push({
      machines: m,
      units: u,
      ms,
      steadyMs,
      scheduled: plan.schedule.length,
      unplaceable: plan.unplaceable.length,
    });
  }
  return rows;
}

if (import.meta.main) {
  const rows = benchPlacement();
  const head = ["machines", "units", "place ms", "steady ms", "assignments", "unplaceable"];
  const cells = rows.map((r) =>
    [r.machines, r.units, r.ms.toFixed(1), r.steadyMs.toFixed(1), r.scheduled, r.unplaceable].map(String),
  );
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  console.log([head, ...cells].map((r) => r.map((c, i) => c.padStart(widths[i]!)).join("  ")).join("\n"));
}
