// [Install] among the units of one machine: systemctl enable turns `WantedBy=T` of unit A into a Wants=A of T
// (and RequiredBy= into Requires=); Berth does the same between the units present on the machine, so starting T
// starts A. A target also orders itself after the units it gains so (its default dependencies): it is active once
// they are started. Pure.
import type { UnitDeps } from "../unit/deps.ts";

/** Each unit's dependencies with what the other units' WantedBy=/RequiredBy= add to them. */
export function withInstallEdges(units: ReadonlyMap<string, UnitDeps>): Map<string, UnitDeps> {
  const out = new Map<string, UnitDeps>();
  const target = (t: string): UnitDeps | undefined => {
    let d = out.get(t);
    if (d === undefined) {
      const own = units.get(t);
      if (own === undefined) return undefined;
      d = { ...own, wants: [...own.wants], requires: [...own.requires], after: [...own.after] };
      out.set(t, d);
    }
    return d;
  };
  const add = (list: string[], u: string): void => {
    if (!list.includes(u)) list.push(u);
  };
  for (const [a, deps] of units) {
    for (const [by, kind] of [
      [deps.wantedBy, "wants"],
      [deps.requiredBy, "requires"],
    ] as const) {
      for (const t of by) {
        if (t === a) continue;
        const d = target(t);
        if (d === undefined) continue;
        add(d[kind], a);
        if (t.endsWith(".target") && !deps.before.includes(t)) add(d.after, a);
      }
    }
  }
  for (const [a, deps] of units) if (!out.has(a)) out.set(a, deps);
  return out;
}
