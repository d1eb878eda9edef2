// Pure placement: given the live machines, the units with their desired states and [X-Fleet] options, and where
// units are scheduled now, compute the minimal plan (unschedule / schedule) that makes the schedule satisfy every
// rule, plus the units that cannot be placed and why. No I/O, no clock, no randomness: the same input (in any
// order) always yields the same plan, and applying a plan then reconciling again yields an empty plan.
//
// Model (fleet's engine/reconciler.go + engine/scheduler.go + agent/state.go AbleToRun, with fleet's gaps filled):
//  1. Keep: every unit that is currently scheduled is re-validated in place, dependencies first (MachineOf order).
//     A placement that still satisfies MachineID, MachineMetadata, MachineOf, Conflicts and Replaces is kept;
//     satisfied units are never moved. Units that are inactive, destroyed, or whose machine is gone are dropped.
//  2. Place: every unplaced unit is put on the least-loaded eligible machine (load = units assigned there, globals
//     included, counting this round's decisions; ties by machine id). Global units are added to every eligible
//     machine. A unit with Replaces= may displace the units it replaces (they, and the units that follow them with
//     MachineOf, are moved elsewhere if possible), but a machine that needs no displacement is preferred.
//  3. The plan is the difference between the current and the resulting schedule, so it is minimal for that result.
//
// The scheduling pipeline, outermost first: Scheduling (scheduling.ts: a node's part, on every node) runs the
// Engine (engine.ts: passes on the Raft leader, reading and writing the registry), whose passes ask the Planner
// (placement.ts: reconcile(), pure) for a plan.
import { stronglyConnected } from "../graph.ts";
import { globMatch, isGlob } from "../unit/glob.ts";
import type { XFleetOptions } from "../unit/xfleet.ts";

export interface MachineView {
  id: string;
  metadata: Record<string, string>;
}
export interface UnitView {
  name: string;
  desired: "inactive" | "loaded" | "launched";
  xfleet: XFleetOptions;
}
export interface Assignment {
  unit: string;
  machine: string;
}
export interface PlacementInput {
  machines: MachineView[];
  units: UnitView[];
  /** Where units are scheduled now (Global units: one entry per machine they run on). */
  current: Assignment[];
}
export interface PlacementPlan {
  unschedule: Assignment[];
  schedule: Assignment[];
  unplaceable: { unit: string; reason: string }[];
}

interface Unit {
  name: string;
  /** Dense index in processing-numbering order (globals first, then by name). */
  idx: number;
  global: boolean;
  x: XFleetOptions;
  deps: string[];
  conflictLiterals: string[];
  conflictGlobs: string[];
  conflictGlobIds: number[];
  hasConflicts: boolean;
  staticKey: string;
}

interface StaticCandidates {
  /** null = every live machine. */
  mask: Uint8Array | null;
  /** Machine indexes (ascending) when restricted. */
  list: number[] | null;
  reason?: string;
}

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const KEY_SEP = "\u0000";

function canonicalMetadata(md: Record<string, string[]>): [string, string[]][] {
  const out: [string, string[]][] = [];
  for (const k of Object.keys(md).sort(byString)) {
    const vals = md[k];
    if (!vals || vals.length === 0) continue; // a key with no accepted values is treated as unconstrained
    out.push([k, [...new Set(vals)].sort(byString)]);
  }
  return out;
}

function formatMetadata(md: [string, string[]][]): string {
  return md.map(([k, v]) => `${k}=${v.join("|")}`).join(" ");
}

function listNames(names: Iterable<string>, max = 3): string {
  const all = [...new Set(names)].sort(byString);
  const shown = all.slice(0, max).join(", ");
  return all.length > max ? `${shown} and ${all.length - max} more` : shown;
}

/** The Planner: one reconcile() call, the model's steps (above) over one input. */
class Planner {
  // Machines, sorted by id; index = rank.
  private readonly mIds: string[] = [];
  private readonly mIdx = new Map<string, number>();
  private readonly mMeta: Record<string, string>[] = [];
  // Units that want to be scheduled (desired != inactive), by name.
  private readonly units = new Map<string, Unit>();
  private readonly inactive = new Set<string>();
  /** Processing order: MachineOf dependencies first; MachineOf cycles excluded. */
  private readonly order: Unit[] = [];
  private readonly cycleReason = new Map<string, string>();
  private readonly followers = new Map<string, string[]>();
  // Replaces edges (non-global units only, cycles removed): X displaces Y.
  private readonly displaces = new Map<string, string[]>();
  private readonly displacedBy = new Map<string, string[]>();
  // Input schedule: unit -> live machine indexes (ascending), and all (unit, machine) keys as given.
  private readonly currentOn = new Map<string, number[]>();
  private readonly currentKeys: Assignment[] = [];
  // Working schedule.
  private readonly onMachine: Set<string>[] = [];
  private readonly conflictorsOn: Set<string>[] = [];
  private readonly placeOf = new Map<string, number>();
  private readonly globalOn = new Map<string, Set<number>>();
  // Machines kept sorted by (load, id): byLoad[pos] = machine, posOf[machine] = pos.
  private load = new Int32Array(0);
  private byLoad = new Int32Array(0);
  private posOf = new Int32Array(0);
  private readonly staticCache = new Map<string, StaticCandidates>();
  private readonly reasonOf = new Map<string, string>();
  private evictedThisPass = false;
  // Conflicts index. Literal patterns: name -> units naming it. Glob patterns (when the pattern x unit product is
  // small enough to precompute): per pattern and machine, the units there matching it and the units holding it.
  private readonly literalRefs = new Map<string, string[]>();
  private indexed = false;
  private readonly matchesOf = new Map<string, number[]>();
  private matchOn: Map<number, Set<string>>[] = [];
  private holdOn: Map<number, Set<string>>[] = [];

  constructor(
    input: PlacementInput,
    private readonly options: ReconcileOptions = {},
  ) {
    this.indexMachines(input.machines);
    this.indexUnits(input.units);
    this.indexCurrent(input.current);
    this.buildOrder();
    this.buildReplaces();
    this.buildConflictIndex();
  }

  private buildConflictIndex(): void {
    const patterns = new Map<string, number>();
    for (const u of this.units.values()) {
      for (const l of u.conflictLiterals) pushTo(this.literalRefs, l, u.name);
      for (const g of u.conflictGlobs) {
        let id = patterns.get(g);
        if (id === undefined) {
          id = patterns.size;
          patterns.set(g, id);
        }
        u.conflictGlobIds.push(id);
      }
    }
    const limit = this.options.conflictIndexLimit ?? 4_000_000;
    if (patterns.size === 0 || patterns.size * this.units.size > limit) return;
    this.indexed = true;
    const list = [...patterns.keys()];
    for (const u of this.units.values()) {
      const ids: number[] = [];
      list.forEach((g, id) => {
        if (globMatch(g, u.name)) ids.push(id);
      });
      if (ids.length > 0) this.matchesOf.set(u.name, ids);
    }
    this.matchOn = list.map(() => new Map());
    this.holdOn = list.map(() => new Map());
  }

  private indexUpdate(u: Unit, m: number, adding: boolean): void {
    const touch = (maps: Map<number, Set<string>>[], id: number) => {
      const byMachine = maps[id]!;
      let set = byMachine.get(m);
      if (adding) {
        if (!set) {
          set = new Set();
          byMachine.set(m, set);
        }
        set.add(u.name);
      } else set?.delete(u.name);
    };
    for (const id of this.matchesOf.get(u.name) ?? []) touch(this.matchOn, id);
    for (const id of u.conflictGlobIds) touch(this.holdOn, id);
  }

  // ---- input normalisation -----------------------------------------------------------------------------------

  private indexMachines(machines: MachineView[]): void {
    const sorted = [...machines].sort(
      (a, b) =>
        byString(a.id, b.id) ||
        byString(JSON.stringify(sortedRecord(a.metadata)), JSON.stringify(sortedRecord(b.metadata))),
    );
    for (const m of sorted) {
      if (this.mIdx.has(m.id)) continue;
      this.mIdx.set(m.id, this.mIds.length);
      this.mIds.push(m.id);
      this.mMeta.push(m.metadata ?? {});
    }
    const n = this.mIds.length;
    this.load = new Int32Array(n);
    this.byLoad = new Int32Array(n);
    this.posOf = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      this.byLoad[i] = i;
      this.posOf[i] = i;
      this.onMachine.push(new Set());
      this.conflictorsOn.push(new Set());
    }
  }

  private indexUnits(views: UnitView[]): void {
    // Duplicate names: keep one deterministically (lowest canonical form), whatever the input order.
    const canon = (u: UnitView) => `${u.desired}${KEY_SEP}${JSON.stringify(canonicalXFleet(u.xfleet))}`;
    const chosen = new Map<string, { view: UnitView; key: string }>();
    for (const u of views) {
      const key = canon(u);
      const prev = chosen.get(u.name);
      if (!prev || key < prev.key) chosen.set(u.name, { view: u, key });
    }
    const active: UnitView[] = [];
    for (const { view } of chosen.values()) {
      if (view.desired === "inactive") this.inactive.add(view.name);
      else active.push(view);
    }
    active.sort((a, b) =>
      a.xfleet.global === b.xfleet.global ? byString(a.name, b.name) : a.xfleet.global ? -1 : 1,
    );
    active.forEach((v, idx) => {
      const x = v.xfleet;
      const conflicts = [...new Set(x.conflicts ?? [])].sort(byString);
      const md = canonicalMetadata(x.machineMetadata ?? {});
      const machineId = x.machineId ? x.machineId : "";
      this.units.set(v.name, {
        name: v.name,
        idx,
        global: !!x.global,
        x,
        deps: [...new Set(x.machineOf ?? [])].sort(byString),
        conflictLiterals: conflicts.filter((p) => !isGlob(p)),
        conflictGlobs: conflicts.filter((p) => isGlob(p)),
        conflictGlobIds: [],
        hasConflicts: conflicts.length > 0,
        staticKey: `${machineId}${KEY_SEP}${JSON.stringify(md)}`,
      });
    });
  }

  private indexCurrent(current: Assignment[]): void {
    const seen = new Set<string>();
    for (const a of current) {
      const key = a.unit + KEY_SEP + a.machine;
      if (seen.has(key)) continue;
      seen.add(key);
      this.currentKeys.push({ unit: a.unit, machine: a.machine });
      const m = this.mIdx.get(a.machine);
      if (m === undefined) continue;
      const list = this.currentOn.get(a.unit);
      if (list) list.push(m);
      else this.currentOn.set(a.unit, [m]);
    }
    for (const list of this.currentOn.values()) list.sort((a, b) => a - b);
  }

  private buildOrder(): void {
    const list = [...this.units.values()].sort((a, b) => a.idx - b.idx);
    const adj: number[][] = list.map((u) => {
      const out: number[] = [];
      for (const d of u.deps) {
        const du = this.units.get(d);
        if (du) out.push(du.idx);
        const f = this.followers.get(d);
        if (f) f.push(u.name);
        else this.followers.set(d, [u.name]);
      }
      return out;
    });
    const comp = stronglyConnected(list.length, adj).of;
    const members = new Map<number, string[]>();
    list.forEach((u) => {
      const c = comp[u.idx]!;
      const m = members.get(c);
      if (m) m.push(u.name);
      else members.set(c, [u.name]);
    });
    for (const u of list) {
      const group = members.get(comp[u.idx]!)!;
      if (group.length > 1 || u.deps.includes(u.name)) {
        const names = [...group].sort(byString);
        this.cycleReason.set(
          u.name,
          group.length > 1
            ? `MachineOf cycle among ${names.join(", ")}`
            : `MachineOf=${u.name} names the unit itself (a MachineOf cycle)`,
        );
      }
    }
    // Component ids are a deps-first topological order; within it, ties keep the numbering (globals, then name).
    this.order.push(
      ...list
        .filter((u) => !this.cycleReason.has(u.name))
        .sort((a, b) => comp[a.idx]! - comp[b.idx]! || a.idx - b.idx),
    );
  }

  private buildReplaces(): void {
    const candidates = [...this.units.values()].filter((u) => !u.global).sort((a, b) => a.idx - b.idx);
    const local = new Map<string, number>();
    candidates.forEach((u, i) => {
      local.set(u.name, i);
    });
    const adj: number[][] = candidates.map(() => []);
    let any = false;
    candidates.forEach((u, i) => {
      const pats = u.x.replaces ?? [];
      if (pats.length === 0) return;
      const targets = new Set<number>();
      for (const p of pats) {
        if (!isGlob(p)) {
          const j = local.get(p);
          if (j !== undefined && j !== i) targets.add(j);
        } else {
          candidates.forEach((v, j) => {
            if (j !== i && globMatch(p, v.name)) targets.add(j);
          });
        }
      }
      adj[i] = [...targets].sort((a, b) => a - b);
      if (targets.size > 0) any = true;
    });
    if (!any) return;
    // Circular Replaces (A replaces B replaces A, or longer loops) are ignored, as fleet ignores mutual ones.
    const comp = stronglyConnected(candidates.length, adj).of;
    adj.forEach((edges, i) => {
      for (const j of edges) {
        if (comp[i] === comp[j]) continue;
        const x = candidates[i]!.name;
        const y = candidates[j]!.name;
        pushTo(this.displaces, x, y);
        pushTo(this.displacedBy, y, x);
      }
    });
  }

  // ---- working schedule ------------------------------------------------------------------------------------

  private isOn(name: string, m: number): boolean {
    const u = this.units.get(name);
    if (!u) return false;
    if (u.global) return this.globalOn.get(name)?.has(m) ?? false;
    return this.placeOf.get(name) === m;
  }

  private add(u: Unit, m: number): void {
    if (u.global) {
      let s = this.globalOn.get(u.name);
      if (!s) {
        s = new Set();
        this.globalOn.set(u.name, s);
      }
      s.add(m);
    } else {
      this.placeOf.set(u.name, m);
    }
    this.onMachine[m]!.add(u.name);
    if (u.hasConflicts) this.conflictorsOn[m]!.add(u.name);
    if (this.indexed) this.indexUpdate(u, m, true);
    this.reasonOf.delete(u.name);
    this.bump(m, 1);
  }

  private remove(u: Unit, m: number): void {
    if (u.global) this.globalOn.get(u.name)?.delete(m);
    else this.placeOf.delete(u.name);
    this.onMachine[m]!.delete(u.name);
    this.conflictorsOn[m]!.delete(u.name);
    if (this.indexed) this.indexUpdate(u, m, false);
    this.bump(m, -1);
  }

  /** Change a machine's load and restore the (load, id) order of byLoad. */
  private bump(m: number, delta: 1 | -1): void {
    const load = this.load;
    const order = this.byLoad;
    const pos = this.posOf;
    const l = load[m]! + delta;
    load[m] = l;
    let p = pos[m]!;
    if (delta > 0) {
      while (p + 1 < order.length) {
        const o = order[p + 1]!;
        const lo = load[o]!;
        if (lo < l || (lo === l && o < m)) {
          order[p] = o;
          pos[o] = p;
          p++;
        } else break;
      }
    } else {
      while (p > 0) {
        const o = order[p - 1]!;
        const lo = load[o]!;
        if (lo > l || (lo === l && o > m)) {
          order[p] = o;
          pos[o] = p;
          p--;
        } else break;
      }
    }
    order[p] = m;
    pos[m] = p;
  }

  /** Remove `name` from machine m, with every unit on m that (transitively) follows it via MachineOf. */
  private evict(name: string, m: number): void {
    const u = this.units.get(name);
    if (!u || !this.isOn(name, m)) return;
    this.remove(u, m);
    this.evictedThisPass = true;
    for (const f of this.followers.get(name) ?? []) this.evict(f, m);
  }

  /** Names that evicting `roots` from m would remove (roots plus their MachineOf followers on m). */
  private cascade(roots: string[], m: number): Set<string> {
    const out = new Set<string>();
    const stack = [...roots];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (out.has(n) || !this.isOn(n, m)) continue;
      out.add(n);
      for (const f of this.followers.get(n) ?? []) stack.push(f);
    }
    return out;
  }

  // ---- rules -------------------------------------------------------------------------------------------------

  /** A unit on m that conflicts with u (either direction), ignoring `ignore`; undefined if none. */
  private conflictOn(u: Unit, m: number, ignore?: Set<string>): string | undefined {
    const here = this.onMachine[m]!;
    let found: string | undefined;
    const consider = (n: string) => {
      if (n !== u.name && !ignore?.has(n) && (found === undefined || n < found)) found = n;
    };
    for (const p of u.conflictLiterals) if (here.has(p)) consider(p);
    if (this.indexed) {
      // Every candidate is considered (not the first one found): the smallest name is reported, as without the
      // index, so reasons do not depend on which path ran.
      const all = (set: Set<string> | undefined) => {
        if (set) for (const n of set) consider(n);
      };
      for (const id of u.conflictGlobIds) all(this.matchOn[id]!.get(m));
      for (const c of this.literalRefs.get(u.name) ?? []) if (this.isOn(c, m)) consider(c);
      for (const id of this.matchesOf.get(u.name) ?? []) all(this.holdOn[id]!.get(m));
      return found;
    }
    if (u.conflictGlobs.length > 0) {
      for (const n of here) {
        if (n === u.name) continue;
        for (const p of u.conflictGlobs) {
          if (globMatch(p, n)) {
            consider(n);
            break;
          }
        }
      }
    }
    for (const c of this.conflictorsOn[m]!) {
      if (c === u.name) continue;
      const cu = this.units.get(c)!;
      if (cu.conflictLiterals.includes(u.name) || cu.conflictGlobs.some((p) => globMatch(p, u.name)))
        consider(c);
    }
    return found;
  }

  /** A unit placed on m that replaces u (so u may not be there). */
  private replacerOn(u: Unit, m: number): string | undefined {
    for (const z of this.displacedBy.get(u.name) ?? []) if (this.placeOf.get(z) === m) return z;
    return undefined;
  }

  private staticCandidates(u: Unit): StaticCandidates {
    const cached = this.staticCache.get(u.staticKey);
    if (cached) return cached;
    const n = this.mIds.length;
    let list: number[] | null = null;
    let reason: string | undefined;
    const id = u.x.machineId;
    if (id) {
      const exact = this.mIdx.get(id);
      if (exact !== undefined) list = [exact];
      else {
        const hits: number[] = [];
        this.mIds.forEach((mid, i) => {
          if (mid.startsWith(id)) hits.push(i);
        });
        if (hits.length === 1) list = hits;
        else if (hits.length === 0) reason = `MachineID=${id} matches no live machine`;
        else reason = `MachineID=${id} is ambiguous: it is a prefix of ${hits.length} live machines`;
        if (reason) list = [];
      }
    }
    const md = canonicalMetadata(u.x.machineMetadata ?? {});
    if (!reason && md.length > 0) {
      const base = list ?? [...Array(n).keys()];
      const ok = base.filter((m) => {
        const meta = this.mMeta[m]!;
        return md.every(([k, vals]) => Object.hasOwn(meta, k) && vals.includes(meta[k]!));
      });
      if (ok.length === 0) {
        reason =
          n === 0
            ? "no live machines"
            : `no machine matches MachineMetadata ${formatMetadata(md)}` +
              (list ? ` (MachineID=${id} selects ${this.mIds[list[0]!]})` : "");
      }
      list = ok;
    }
    if (!reason && n === 0) reason = "no live machines";
    let mask: Uint8Array | null = null;
    if (list) {
      mask = new Uint8Array(n);
      for (const m of list) mask[m] = 1;
    }
    const out: StaticCandidates = { mask, list, ...(reason ? { reason } : {}) };
    this.staticCache.set(u.staticKey, out);
    return out;
  }

  private staticOk(u: Unit, m: number): boolean {
    const s = this.staticCandidates(u);
    return s.mask === null ? this.mIds.length > 0 : s.mask[m] === 1;
  }

  private describeStatic(u: Unit): string {
    const parts: string[] = [];
    if (u.x.machineId) parts.push(`MachineID=${u.x.machineId}`);
    const md = canonicalMetadata(u.x.machineMetadata ?? {});
    if (md.length > 0) parts.push(`MachineMetadata ${formatMetadata(md)}`);
    return parts.join(" and ");
  }

  /** Machines allowed by MachineOf (null = unrestricted), or a reason. */
  private depMachines(u: Unit): { machines: number[] | null; reason?: string } {
    let restrict: Set<number> | null = null;
    for (const d of u.deps) {
      const du = this.units.get(d);
      let why: string | undefined;
      if (!du) why = this.inactive.has(d) ? "its desired state is inactive" : "no such unit";
      else if (this.cycleReason.has(d)) why = this.cycleReason.get(d);
      let places: number[] = [];
      if (du && !why) {
        if (du.global) places = [...(this.globalOn.get(d) ?? [])];
        else {
          const m = this.placeOf.get(d);
          if (m !== undefined) places = [m];
        }
      }
      if (places.length === 0) {
        return { machines: [], reason: `MachineOf=${d}, which is not scheduled${why ? ` (${why})` : ""}` };
      }
      if (restrict === null) restrict = new Set(places);
      else {
        const next = new Set<number>();
        for (const m of places) if (restrict.has(m)) next.add(m);
        restrict = next;
      }
      if (restrict.size === 0) {
        return {
          machines: [],
          reason: `MachineOf=${u.deps.join(",")}: those units are on different machines`,
        };
      }
    }
    return { machines: restrict ? [...restrict].sort((a, b) => a - b) : null };
  }

  /** Candidate machines from MachineOf + static rules, or a reason. `null` list = all machines via the mask. */
  private candidates(u: Unit): { list: number[] | null; mask: Uint8Array | null; reason?: string } {
    const dep = this.depMachines(u);
    if (dep.reason) return { list: [], mask: null, reason: dep.reason };
    const s = this.staticCandidates(u);
    if (s.reason) return { list: [], mask: null, reason: s.reason };
    if (dep.machines) {
      const list = dep.machines.filter((m) => s.mask === null || s.mask[m] === 1);
      if (list.length === 0) {
        const where = dep.machines.map((m) => this.mIds[m]).join(", ");
        return {
          list,
          mask: null,
          reason: `MachineOf=${u.deps.join(",")} requires ${where}, which does not satisfy ${this.describeStatic(u)}`,
        };
      }
      return { list, mask: null };
    }
    return { list: s.list, mask: s.mask };
  }

  // ---- phases ------------------------------------------------------------------------------------------------

  private keepValid(u: Unit, m: number): boolean {
    if (!this.staticOk(u, m)) return false;
    for (const d of u.deps) if (!this.isOn(d, m)) return false;
    if (this.conflictOn(u, m) !== undefined) return false;
    if (!u.global) {
      // A replacer that is (or will stay) on m pushes u away, whichever of the two is validated first.
      for (const z of this.displacedBy.get(u.name) ?? []) {
        if (this.placeOf.get(z) === m) return false;
        const zu = this.units.get(z)!;
        if (!this.placeOf.has(z) && this.currentOn.get(z)?.includes(m) && this.staticOk(zu, m)) return false;
      }
    }
    return true;
  }

  private keep(): void {
    for (const u of this.order) {
      const cur = this.currentOn.get(u.name);
      if (!cur) continue;
      for (const m of cur) {
        if (!this.keepValid(u, m)) continue;
        this.add(u, m);
        if (!u.global) break; // never twice: keep the first valid machine (by id), drop the rest
      }
    }
  }

  private placeGlobal(u: Unit, dryRun = false): void {
    const c = this.candidates(u);
    if (c.reason) {
      if ((this.globalOn.get(u.name)?.size ?? 0) === 0) this.reasonOf.set(u.name, c.reason);
      return;
    }
    const blockers = new Set<string>();
    const have = this.globalOn.get(u.name);
    const tryOn = (m: number) => {
      if (have?.has(m)) return;
      const b = this.conflictOn(u, m);
      if (b !== undefined) blockers.add(b);
      else if (!dryRun) this.add(u, m);
    };
    if (c.list) for (const m of c.list) tryOn(m);
    else for (let m = 0; m < this.mIds.length; m++) if (c.mask === null || c.mask[m] === 1) tryOn(m);
    if ((this.globalOn.get(u.name)?.size ?? 0) === 0) {
      this.reasonOf.set(u.name, `conflicts with ${listNames(blockers)} on every candidate machine`);
    }
  }

  private placeOne(u: Unit, dryRun = false): void {
    const c = this.candidates(u);
    if (c.reason) {
      this.reasonOf.set(u.name, c.reason);
      return;
    }
    const conflicts = new Set<string>();
    const replacedBy = new Set<string>();
    const myDisplaces = this.displaces.get(u.name);
    let withDisplacement = -1;
    let victims: string[] = [];
    let chosen = -1;
    const consider = (m: number): boolean => {
      const r = this.replacerOn(u, m);
      if (r !== undefined) {
        replacedBy.add(r);
        return false;
      }
      let ignore: Set<string> | undefined;
      let here: string[] = [];
      if (myDisplaces) {
        here = myDisplaces.filter((y) => this.placeOf.get(y) === m);
        if (here.length > 0) ignore = this.cascade(here, m);
      }
      const b = this.conflictOn(u, m, ignore);
      if (b !== undefined) {
        conflicts.add(b);
        return false;
      }
      if (!ignore) {
        chosen = m;
        return true;
      }
      // Displacing must not remove anything this unit itself needs via MachineOf.
      if (withDisplacement < 0 && !u.deps.some((d) => ignore.has(d))) {
        withDisplacement = m;
        victims = here;
      }
      return false;
    };
    if (c.list) {
      const sorted = [...c.list].sort((a, b) => this.load[a]! - this.load[b]! || a - b);
      for (const m of sorted) if (consider(m)) break;
    } else {
      const order = this.byLoad;
      const mask = c.mask;
      for (let p = 0; p < order.length; p++) {
        const m = order[p]!;
        if (mask !== null && mask[m] !== 1) continue;
        if (consider(m)) break;
      }
    }
    if (dryRun && (chosen >= 0 || withDisplacement >= 0)) return;
    if (chosen < 0 && withDisplacement >= 0) {
      chosen = withDisplacement;
      for (const y of [...victims].sort(byString)) this.evict(y, chosen);
    }
    if (chosen >= 0) {
      this.add(u, chosen);
      return;
    }
    const parts: string[] = [];
    if (conflicts.size > 0) parts.push(`conflicts with ${listNames(conflicts)}`);
    if (replacedBy.size > 0) parts.push(`is replaced by ${listNames(replacedBy)}`);
    this.reasonOf.set(u.name, `${parts.join(" and ") || "no eligible machine"} on every candidate machine`);
  }

  private place(): void {
    // One pass suffices unless a Replaces displacement removed units (then earlier failures may now succeed).
    // Replaces edges are acyclic, so displacement chains are finite; the cap is only a safety net.
    const cap = 2 * this.order.length + 4;
    for (let pass = 0; pass < cap; pass++) {
      this.evictedThisPass = false;
      for (const u of this.order) {
        if (u.global) this.placeGlobal(u);
        else if (!this.placeOf.has(u.name)) this.placeOne(u);
      }
      if (!this.evictedThisPass) break;
    }
    // Explain against the final schedule, so reasons depend only on the result (and are stable across rounds).
    for (const u of this.order) {
      if (u.global ? (this.globalOn.get(u.name)?.size ?? 0) > 0 : this.placeOf.has(u.name)) continue;
      if (u.global) this.placeGlobal(u, true);
      else this.placeOne(u, true);
    }
  }

  run(): PlacementPlan {
    this.keep();
    this.place();
    const finalKeys = new Set<string>();
    const finalList: Assignment[] = [];
    for (const u of this.order) {
      const ms = u.global ? [...(this.globalOn.get(u.name) ?? [])] : [this.placeOf.get(u.name)];
      for (const m of ms) {
        if (m === undefined) continue;
        const a = { unit: u.name, machine: this.mIds[m]! };
        finalKeys.add(a.unit + KEY_SEP + a.machine);
        finalList.push(a);
      }
    }
    const currentKeys = new Set(this.currentKeys.map((a) => a.unit + KEY_SEP + a.machine));
    const cmp = (a: Assignment, b: Assignment) => byString(a.unit, b.unit) || byString(a.machine, b.machine);
    const unschedule = this.currentKeys.filter((a) => !finalKeys.has(a.unit + KEY_SEP + a.machine)).sort(cmp);
    const schedule = finalList.filter((a) => !currentKeys.has(a.unit + KEY_SEP + a.machine)).sort(cmp);
    const unplaceable: { unit: string; reason: string }[] = [];
    for (const u of this.units.values()) {
      const placed = u.global ? (this.globalOn.get(u.name)?.size ?? 0) > 0 : this.placeOf.has(u.name);
      if (placed) continue;
      const reason = this.cycleReason.get(u.name) ?? this.reasonOf.get(u.name) ?? "no eligible machine";
      unplaceable.push({ unit: u.name, reason });
    }
    unplaceable.sort((a, b) => byString(a.unit, b.unit));
    return { unschedule, schedule, unplaceable };
  }
}

function pushTo(map: Map<string, string[]>, k: string, v: string): void {
  const l = map.get(k);
  if (l) l.push(v);
  else map.set(k, [v]);
}

function sortedRecord(r: Record<string, string> | undefined): [string, string][] {
  return Object.entries(r ?? {}).sort((a, b) => byString(a[0], b[0]));
}

function canonicalXFleet(x: XFleetOptions): unknown {
  return [
    x.machineId ?? "",
    [...(x.machineOf ?? [])].sort(byString),
    canonicalMetadata(x.machineMetadata ?? {}),
    [...(x.conflicts ?? [])].sort(byString),
    !!x.global,
    [...(x.replaces ?? [])].sort(byString),
  ];
}

/**
 * Compute the minimal plan that makes the schedule satisfy every unit's [X-Fleet] rules.
 * Pure and deterministic: independent of the order of machines, units and current assignments.
 */
export function reconcile(input: PlacementInput, options?: ReconcileOptions): PlacementPlan {
  return new Planner(input, options).run();
}

export interface ReconcileOptions {
  /** Precompute the Conflicts glob index when (distinct glob patterns x units) is at most this (default 4e6);
   * above it, globs are matched against the units of each candidate machine. Results are identical. */
  conflictIndexLimit?: number;
}

/** Apply a plan to a schedule (unschedule first, then schedule). */
export function applyPlan(current: Assignment[], plan: PlacementPlan): Assignment[] {
  const drop = new Set(plan.unschedule.map((a) => a.unit + KEY_SEP + a.machine));
  const out = new Map<string, Assignment>();
  for (const a of current) {
    const k = a.unit + KEY_SEP + a.machine;
    if (!drop.has(k)) out.set(k, { unit: a.unit, machine: a.machine });
  }
  for (const a of plan.schedule) out.set(a.unit + KEY_SEP + a.machine, { unit: a.unit, machine: a.machine });
  return [...out.values()];
}
