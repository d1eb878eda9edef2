import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type Assignment,
  applyPlan,
  type MachineView,
  type PlacementInput,
  type PlacementPlan,
  reconcile,
  type UnitView,
} from "../src/sched/placement.ts";
import { globMatch } from "../src/unit/glob.ts";
import { EMPTY_XFLEET, type XFleetOptions } from "../src/unit/xfleet.ts";

const x = (o: Partial<XFleetOptions> = {}): XFleetOptions => ({ ...EMPTY_XFLEET, ...o });
const unit = (
  name: string,
  o: Partial<XFleetOptions> = {},
  desired: UnitView["desired"] = "launched",
): UnitView => ({
  name,
  desired,
  xfleet: x(o),
});
const machine = (id: string, metadata: Record<string, string> = {}): MachineView => ({ id, metadata });
const at = (unit: string, machine: string): Assignment => ({ unit, machine });
const where = (plan: PlacementPlan, u: string) =>
  plan.schedule.filter((a) => a.unit === u).map((a) => a.machine);
const sortA = (as: Assignment[]) =>
  [...as].sort((a, b) => (a.unit === b.unit ? (a.machine < b.machine ? -1 : 1) : a.unit < b.unit ? -1 : 1));

/** Independent checker: every rule holds for `assigned`. Returns the violations. */
function violations(input: PlacementInput, assigned: Assignment[]): string[] {
  const out: string[] = [];
  const live = new Map(input.machines.map((m) => [m.id, m]));
  const units = new Map(input.units.map((u) => [u.name, u]));
  const on = new Map<string, string[]>();
  const placesOf = new Map<string, string[]>();
  for (const a of assigned) {
    on.set(a.machine, [...(on.get(a.machine) ?? []), a.unit]);
    placesOf.set(a.unit, [...(placesOf.get(a.unit) ?? []), a.machine]);
  }
  for (const a of assigned) {
    const u = units.get(a.unit);
    const m = live.get(a.machine);
    if (!u) out.push(`${a.unit} does not exist`);
    else if (u.desired === "inactive") out.push(`${a.unit} is inactive but scheduled`);
    if (!m) out.push(`${a.unit} on dead machine ${a.machine}`);
    if (!u || !m) continue;
    const xf = u.xfleet;
    if (!xf.global && (placesOf.get(u.name)?.length ?? 0) > 1) out.push(`${u.name} scheduled twice`);
    if (xf.machineId) {
      const hits = input.machines.filter((mm) => mm.id === xf.machineId || mm.id.startsWith(xf.machineId!));
      const exact = input.machines.find((mm) => mm.id === xf.machineId);
      const target = exact ?? (hits.length === 1 ? hits[0] : undefined);
      if (target?.id !== m.id) out.push(`${u.name} violates MachineID`);
    }
    for (const [k, vals] of Object.entries(xf.machineMetadata)) {
      if (vals.length > 0 && !vals.includes(m.metadata[k] ?? "\u0000"))
        out.push(`${u.name} violates metadata ${k}`);
    }
    for (const d of xf.machineOf) {
      if (!(placesOf.get(d) ?? []).includes(m.id)) out.push(`${u.name} not with MachineOf ${d}`);
    }
    for (const other of on.get(m.id) ?? []) {
      if (other === u.name) continue;
      const o = units.get(other);
      if (xf.conflicts.some((p) => globMatch(p, other)))
        out.push(`${u.name} conflicts with ${other} on ${m.id}`);
      const r = xf.replaces.some((p) => globMatch(p, other));
      const rr = o?.xfleet.replaces.some((p) => globMatch(p, u.name)) ?? false;
      if (r && !rr && !xf.global && !o?.xfleet.global)
        out.push(`${u.name} shares ${m.id} with replaced ${other}`);
    }
  }
  return out;
}

describe("globMatch", () => {
  it("supports *, ?, classes, ranges, negation and escapes like Go path.Match", () => {
    expect(globMatch("web@*.service", "web@1.service")).toBe(true);
    expect(globMatch("web@*.service", "api@1.service")).toBe(false);
    expect(globMatch("web@?.service", "web@12.service")).toBe(false);
    expect(globMatch("web@??.service", "web@12.service")).toBe(true);
    expect(globMatch("web@[0-4].service", "web@3.service")).toBe(true);
    expect(globMatch("web@[0-4].service", "web@7.service")).toBe(false);
    expect(globMatch("web@[^0-4].service", "web@7.service")).toBe(true);
    expect(globMatch("web@[!0-4].service", "web@3.service")).toBe(false);
    expect(globMatch("a\\*b", "a*b")).toBe(true);
    expect(globMatch("a\\*b", "axb")).toBe(false);
    expect(globMatch("a.service", "a.service")).toBe(true);
    expect(globMatch("a.service", "aXservice")).toBe(false);
    expect(globMatch("web@[.service", "web@[.service")).toBe(false); // malformed pattern matches nothing
  });
});

describe("reconcile: basics", () => {
  it("places on the least-loaded machine, ties by id, counting this round's decisions", () => {
    const plan = reconcile({
      machines: [machine("m2"), machine("m1"), machine("m3")],
      units: [unit("a.service"), unit("b.service"), unit("c.service"), unit("d.service")],
      current: [at("x.service", "m1")],
    });
    // x.service no longer exists, so it is dropped from m1 before anything is placed.
    expect(plan.unschedule).toEqual([at("x.service", "m1")]);
    expect(sortA(plan.schedule)).toEqual([
      at("a.service", "m1"),
      at("b.service", "m2"),
      at("c.service", "m3"),
      at("d.service", "m1"),
    ]);
    expect(plan.unplaceable).toEqual([]);
  });

  it("unschedules inactive units and does not place them", () => {
    const plan = reconcile({
      machines: [machine("m1")],
      units: [unit("a.service", {}, "inactive"), unit("b.service", {}, "inactive")],
      current: [at("a.service", "m1")],
    });
    expect(plan).toEqual({ unschedule: [at("a.service", "m1")], schedule: [], unplaceable: [] });
  });

  it("reschedules units whose machine died, and keeps everything else where it is", () => {
    const plan = reconcile({
      machines: [machine("m1"), machine("m3")],
      units: [unit("a.service"), unit("b.service"), unit("c.service")],
      current: [at("a.service", "m1"), at("b.service", "m2"), at("c.service", "m3")],
    });
    expect(plan.unschedule).toEqual([at("b.service", "m2")]);
    expect(plan.schedule).toEqual([at("b.service", "m1")]);
  });

  it("is stable: a satisfied unit is never moved even if the cluster is unbalanced", () => {
    const plan = reconcile({
      machines: [machine("m1"), machine("m2")],
      units: [unit("a.service"), unit("b.service"), unit("c.service")],
      current: [at("a.service", "m1"), at("b.service", "m1"), at("c.service", "m1")],
    });
    expect(plan).toEqual({ unschedule: [], schedule: [], unplaceable: [] });
  });

  it("repairs a unit scheduled twice by keeping one placement", () => {
    const plan = reconcile({
      machines: [machine("m1"), machine("m2")],
      units: [unit("a.service")],
      current: [at("a.service", "m2"), at("a.service", "m1")],
    });
    expect(plan).toEqual({ unschedule: [at("a.service", "m2")], schedule: [], unplaceable: [] });
  });

  it("reports 'no live machines' when the cluster is empty", () => {
    const plan = reconcile({ machines: [], units: [unit("a.service")], current: [] });
    expect(plan.unplaceable).toEqual([{ unit: "a.service", reason: "no live machines" }]);
  });
});

describe("reconcile: MachineID", () => {
  const machines = [machine("abc123"), machine("abd456"), machine("fff000")];
  it("matches a full id or a unique prefix", () => {
    const plan = reconcile({
      machines,
      units: [unit("a.service", { machineId: "abd456" }), unit("b.service", { machineId: "fff" })],
      current: [],
    });
    expect(sortA(plan.schedule)).toEqual([at("a.service", "abd456"), at("b.service", "fff000")]);
  });
  it("explains a missing or ambiguous id", () => {
    const plan = reconcile({
      machines,
      units: [unit("a.service", { machineId: "abc999" }), unit("b.service", { machineId: "ab" })],
      current: [],
    });
    expect(plan.unplaceable).toEqual([
      { unit: "a.service", reason: "MachineID=abc999 matches no live machine" },
      { unit: "b.service", reason: "MachineID=ab is ambiguous: it is a prefix of 2 live machines" },
    ]);
  });
  it("moves a unit off a machine that no longer matches", () => {
    const plan = reconcile({
      machines,
      units: [unit("a.service", { machineId: "fff000" })],
      current: [at("a.service", "abc123")],
    });
    expect(plan.unschedule).toEqual([at("a.service", "abc123")]);
    expect(plan.schedule).toEqual([at("a.service", "fff000")]);
  });
});

describe("reconcile: MachineMetadata", () => {
  const machines = [
    machine("m1", { region: "us-east", disk: "ssd" }),
    machine("m2", { region: "us-west", disk: "hdd" }),
    machine("m3", { region: "eu", disk: "ssd" }),
  ];
  it("treats values of one key as alternatives and requires every key", () => {
    const plan = reconcile({
      machines,
      units: [
        unit("a.service", { machineMetadata: { region: ["us-west", "eu"] } }),
        unit("b.service", { machineMetadata: { region: ["us-west", "eu"] } }),
        unit("c.service", { machineMetadata: { region: ["us-west", "eu"], disk: ["ssd"] } }),
      ],
      current: [],
    });
    expect(sortA(plan.schedule)).toEqual([
      at("a.service", "m2"),
      at("b.service", "m3"),
      at("c.service", "m3"),
    ]);
  });
  it("explains when no machine matches", () => {
    const plan = reconcile({
      machines,
      units: [unit("a.service", { machineMetadata: { region: ["us-central"] } })],
      current: [],
    });
    expect(plan.unplaceable).toEqual([
      { unit: "a.service", reason: "no machine matches MachineMetadata region=us-central" },
    ]);
  });
  it("moves a unit when its machine's metadata changed", () => {
    const plan = reconcile({
      machines,
      units: [unit("a.service", { machineMetadata: { disk: ["ssd"] } })],
      current: [at("a.service", "m2")],
    });
    expect(plan.unschedule).toEqual([at("a.service", "m2")]);
    expect(plan.schedule).toEqual([at("a.service", "m1")]);
  });
});

describe("reconcile: MachineOf", () => {
  it("resolves chains in dependency order, whatever the input order", () => {
    const plan = reconcile({
      machines: [machine("m1"), machine("m2"), machine("m3")],
      units: [
        unit("c.service", { machineOf: ["b.service"] }),
        unit("b.service", { machineOf: ["a.service"] }),
        unit("z.service"),
        unit("a.service"),
      ],
      current: [at("y.service", "m1")],
    });
    const a = where(plan, "a.service");
    expect(a).toHaveLength(1);
    expect(where(plan, "b.service")).toEqual(a);
    expect(where(plan, "c.service")).toEqual(a);
    expect(plan.unplaceable).toEqual([]);
  });
  it("cannot place a follower of an unscheduled, inactive or missing unit", () => {
    const plan = reconcile({
      machines: [machine("m1")],
      units: [
        unit("db.service", { machineMetadata: { role: ["db"] } }),
        unit("a.service", { machineOf: ["db.service"] }),
        unit("off.service", {}, "inactive"),
        unit("b.service", { machineOf: ["off.service"] }),
        unit("c.service", { machineOf: ["gone.service"] }),
      ],
      current: [],
    });
    expect(plan.schedule).toEqual([]);
    expect(plan.unplaceable).toEqual([
      { unit: "a.service", reason: "MachineOf=db.service, which is not scheduled" },
      {
        unit: "b.service",
        reason: "MachineOf=off.service, which is not scheduled (its desired state is inactive)",
      },
      { unit: "c.service", reason: "MachineOf=gone.service, which is not scheduled (no such unit)" },
      { unit: "db.service", reason: "no machine matches MachineMetadata role=db" },
    ]);
  });
  it("unschedules followers when the followed unit is destroyed or made inactive", () => {
    const machines = [machine("m1"), machine("m2")];
    const current = [at("db.service", "m1"), at("a.service", "m1"), at("b.service", "m1")];
    const followers = [
      unit("a.service", { machineOf: ["db.service"] }),
      unit("b.service", { machineOf: ["a.service"] }),
    ];
    for (const units of [followers, [...followers, unit("db.service", {}, "inactive")]]) {
      const plan = reconcile({ machines, units, current });
      expect(plan.unschedule).toEqual([at("a.service", "m1"), at("b.service", "m1"), at("db.service", "m1")]);
      expect(plan.schedule).toEqual([]);
      expect(plan.unplaceable.map((u) => u.unit)).toEqual(["a.service", "b.service"]);
    }
  });
  it("moves followers with their unit when it has to move", () => {
    const plan = reconcile({
      machines: [machine("m1", { ok: "no" }), machine("m2", { ok: "yes" })],
      units: [
        unit("db.service", { machineMetadata: { ok: ["yes"] } }),
        unit("a.service", { machineOf: ["db.service"] }),
      ],
      current: [at("db.service", "m1"), at("a.service", "m1")],
    });
    expect(plan.unschedule).toEqual([at("a.service", "m1"), at("db.service", "m1")]);
    expect(plan.schedule).toEqual([at("a.service", "m2"), at("db.service", "m2")]);
  });
  it("reports MachineOf cycles", () => {
    const plan = reconcile({
      machines: [machine("m1")],
      units: [
        unit("a.service", { machineOf: ["b.service"] }),
        unit("b.service", { machineOf: ["a.service"] }),
        unit("c.service", { machineOf: ["a.service"] }),
      ],
      current: [at("a.service", "m1"), at("b.service", "m1")],
    });
    expect(plan.unschedule).toEqual([at("a.service", "m1"), at("b.service", "m1")]);
    expect(plan.unplaceable).toEqual([
      { unit: "a.service", reason: "MachineOf cycle among a.service, b.service" },
      { unit: "b.service", reason: "MachineOf cycle among a.service, b.service" },
      {
        unit: "c.service",
        reason: "MachineOf=a.service, which is not scheduled (MachineOf cycle among a.service, b.service)",
      },
    ]);
  });
  it("explains when the followed units are on different machines", () => {
    const plan = reconcile({
      machines: [machine("m1"), machine("m2")],
      units: [
        unit("a.service"),
        unit("b.service"),
        unit("c.service", { machineOf: ["a.service", "b.service"] }),
      ],
      current: [at("a.service", "m1"), at("b.service", "m2")],
    });
    expect(plan.unplaceable).toEqual([
      { unit: "c.service", reason: "MachineOf=a.service,b.service: those units are on different machines" },
    ]);
  });
});

describe("reconcile: Conflicts", () => {
  it("the seed scenario: template instances with Conflicts=web@*.service spread out, extras are unplaceable", () => {
    const web = (i: number) => unit(`web@${i}.service`, { conflicts: ["web@*.service"] });
    const plan = reconcile({
      machines: [machine("m1"), machine("m2"), machine("m3")],
      units: [web(1), web(2), web(3), web(4)],
      current: [],
    });
    expect(sortA(plan.schedule)).toEqual([
      at("web@1.service", "m1"),
      at("web@2.service", "m2"),
      at("web@3.service", "m3"),
    ]);
    expect(plan.unplaceable).toEqual([
      {
        unit: "web@4.service",
        reason: "conflicts with web@1.service, web@2.service, web@3.service on every candidate machine",
      },
    ]);
    // Fixed point, and the extra instance is placed once a machine joins, without moving anything.
    const after = applyPlan([], plan);
    expect(
      reconcile({
        machines: [machine("m1"), machine("m2"), machine("m3")],
        units: [web(1), web(2), web(3), web(4)],
        current: after,
      }).schedule,
    ).toEqual([]);
    const grown = reconcile({
      machines: [machine("m1"), machine("m2"), machine("m3"), machine("m4")],
      units: [web(4), web(3), web(2), web(1)],
      current: after,
    });
    expect(grown).toEqual({ unschedule: [], schedule: [at("web@4.service", "m4")], unplaceable: [] });
  });
  it("applies in both directions", () => {
    const plan = reconcile({
      machines: [machine("m1"), machine("m2")],
      units: [unit("a.service", { conflicts: ["b*"] }), unit("b.service"), unit("c.service")],
      current: [at("b.service", "m1"), at("c.service", "m2")],
    });
    // a is kept away from b (its own rule); m2 is the only choice.
    expect(plan.schedule).toEqual([at("a.service", "m2")]);
    const plan2 = reconcile({
      machines: [machine("m1"), machine("m2")],
      units: [unit("a.service", { conflicts: ["b*"] }), unit("b.service"), unit("c.service")],
      current: [at("a.service", "m1"), at("c.service", "m2")],
    });
    // b is kept away from a because of a's rule.
    expect(plan2.schedule).toEqual([at("b.service", "m2")]);
  });
  it("moves the later of two conflicting units that share a machine, keeping the other", () => {
    const plan = reconcile({
      machines: [machine("m1"), machine("m2")],
      units: [unit("a.service", { conflicts: ["b.service"] }), unit("b.service")],
      current: [at("a.service", "m1"), at("b.service", "m1")],
    });
    expect(plan.unschedule).toEqual([at("b.service", "m1")]);
    expect(plan.schedule).toEqual([at("b.service", "m2")]);
  });
});

describe("reconcile: Replaces", () => {
  it("lets the replacing unit displace the replaced one, which moves elsewhere", () => {
    const plan = reconcile({
      machines: [machine("m1"), machine("m2")],
      units: [unit("old.service"), unit("new.service", { machineId: "m1", replaces: ["old.service"] })],
      current: [at("old.service", "m1")],
    });
    expect(plan.unschedule).toEqual([at("old.service", "m1")]);
    expect(sortA(plan.schedule)).toEqual([at("new.service", "m1"), at("old.service", "m2")]);
  });
  it("reports a displaced unit that has nowhere else to go", () => {
    const plan = reconcile({
      machines: [machine("m1")],
      units: [unit("old.service"), unit("new.service", { replaces: ["old*"] })],
      current: [at("old.service", "m1")],
    });
    expect(plan.schedule).toEqual([at("new.service", "m1")]);
    expect(plan.unplaceable).toEqual([
      { unit: "old.service", reason: "is replaced by new.service on every candidate machine" },
    ]);
  });
  it("prefers a machine where nothing needs to be displaced", () => {
    const plan = reconcile({
      machines: [machine("m1"), machine("m2")],
      units: [unit("old.service"), unit("x.service"), unit("new.service", { replaces: ["old.service"] })],
      current: [at("old.service", "m1"), at("x.service", "m2")],
    });
    expect(plan).toEqual({ unschedule: [], schedule: [at("new.service", "m2")], unplaceable: [] });
  });
  it("moves a replaced unit's followers with it", () => {
    const plan = reconcile({
      machines: [machine("m1"), machine("m2")],
      units: [
        unit("old.service"),
        unit("side.service", { machineOf: ["old.service"] }),
        unit("new.service", { machineId: "m1", replaces: ["old.service"] }),
      ],
      current: [at("old.service", "m1"), at("side.service", "m1")],
    });
    expect(plan.unschedule).toEqual([at("old.service", "m1"), at("side.service", "m1")]);
    expect(sortA(plan.schedule)).toEqual([
      at("new.service", "m1"),
      at("old.service", "m2"),
      at("side.service", "m2"),
    ]);
  });
  it("ignores mutual Replaces, as fleet does", () => {
    const plan = reconcile({
      machines: [machine("m1")],
      units: [unit("a.service", { replaces: ["b.service"] }), unit("b.service", { replaces: ["a.service"] })],
      current: [at("a.service", "m1"), at("b.service", "m1")],
    });
    expect(plan).toEqual({ unschedule: [], schedule: [], unplaceable: [] });
  });
});

describe("reconcile: Global", () => {
  const machines = [
    machine("m1", { role: "edge" }),
    machine("m2", { role: "core" }),
    machine("m3", { role: "edge" }),
  ];
  it("runs one instance per matching machine", () => {
    const plan = reconcile({
      machines,
      units: [
        unit("mon.service", { global: true }),
        unit("lb.service", { global: true, machineMetadata: { role: ["edge"] } }),
      ],
      current: [at("mon.service", "m2"), at("lb.service", "m2")],
    });
    expect(plan.unschedule).toEqual([at("lb.service", "m2")]);
    expect(sortA(plan.schedule)).toEqual([
      at("lb.service", "m1"),
      at("lb.service", "m3"),
      at("mon.service", "m1"),
      at("mon.service", "m3"),
    ]);
  });
  it("counts toward load, satisfies MachineOf, and takes part in Conflicts (as fleet's engine does)", () => {
    const plan = reconcile({
      machines,
      units: [
        unit("lb.service", { global: true, machineMetadata: { role: ["edge"] } }),
        unit("a.service"),
        unit("cfg.service", { machineOf: ["lb.service"] }),
        unit("solo.service", { conflicts: ["lb.service"] }),
      ],
      current: [],
    });
    // lb takes m1 and m3 (load 1 each), so a goes to the empty m2; cfg must follow lb; solo must avoid lb.
    expect(where(plan, "a.service")).toEqual(["m2"]);
    expect(where(plan, "cfg.service")).toEqual(["m1"]);
    expect(where(plan, "solo.service")).toEqual(["m2"]);
  });
  it("does not start where an existing conflicting unit already runs", () => {
    const plan = reconcile({
      machines,
      units: [
        unit("mon.service", { global: true, conflicts: ["legacy-mon.service"] }),
        unit("legacy-mon.service"),
      ],
      current: [at("legacy-mon.service", "m2")],
    });
    expect(sortA(plan.schedule)).toEqual([at("mon.service", "m1"), at("mon.service", "m3")]);
  });
  it("is unscheduled everywhere when made inactive", () => {
    const plan = reconcile({
      machines,
      units: [unit("mon.service", { global: true }, "inactive")],
      current: [at("mon.service", "m1"), at("mon.service", "m2")],
    });
    expect(plan.unschedule).toEqual([at("mon.service", "m1"), at("mon.service", "m2")]);
    expect(plan.schedule).toEqual([]);
  });
});

// ---- properties -------------------------------------------------------------------------------------------------

const NAMES = ["a", "b", "c", "d", "e", "f", "web@1", "web@2", "web@3", "web@4"].map((n) => `${n}.service`);
const REGIONS = ["r1", "r2", "r3"];

const inputArb: fc.Arbitrary<PlacementInput> = fc
  .record({
    machines: fc.uniqueArray(
      fc.record({
        id: fc.constantFrom("m1", "m2", "m3", "m4", "m5", "n1"),
        region: fc.constantFrom(...REGIONS),
      }),
      { selector: (m) => m.id, maxLength: 5 },
    ),
    units: fc.uniqueArray(
      fc.record({
        name: fc.constantFrom(...NAMES),
        desired: fc.constantFrom("inactive", "loaded", "launched", "launched"),
        machineId: fc.option(fc.constantFrom("m1", "m2", "m", "n", "zz"), { freq: 6 }),
        machineOf: fc.array(fc.constantFrom(...NAMES, "ghost.service"), { maxLength: 2 }),
        region: fc.array(fc.constantFrom(...REGIONS), { maxLength: 2 }),
        conflicts: fc.array(
          fc.constantFrom("web@*.service", "a.service", "[bc].service", "?.service", "x*"),
          {
            maxLength: 2,
          },
        ),
        global: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
        replacesLower: fc.boolean(),
      }),
      { selector: (u) => u.name, maxLength: 10 },
    ),
    current: fc.array(
      fc.record({
        unit: fc.constantFrom(...NAMES, "ghost.service"),
        machine: fc.constantFrom("m1", "m2", "m3", "m4", "m5", "n1", "dead"),
      }),
      { maxLength: 12 },
    ),
  })
  .map(({ machines, units, current }) => ({
    machines: machines.map((m) => machine(m.id, { region: m.region })),
    units: units.map((u) => {
      const i = NAMES.indexOf(u.name);
      // Replaces only points at lower-numbered units, so the Replaces graph is acyclic (as in sane configs).
      const replaces = u.replacesLower && i > 0 ? [NAMES[i - 1]!] : [];
      return unit(
        u.name,
        {
          machineId: u.machineId ?? undefined,
          machineOf: u.machineOf,
          machineMetadata: u.region.length > 0 ? { region: u.region } : {},
          conflicts: u.conflicts,
          global: u.global,
          replaces,
        },
        u.desired as UnitView["desired"],
      );
    }),
    current: current.map((a) => at(a.unit, a.machine)),
  }));

function shuffle<T>(xs: T[], seed: number): T[] {
  const out = [...xs];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe("reconcile: properties", () => {
  it("applying the plan satisfies every rule, never schedules a unit twice, and is a fixed point", () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const plan = reconcile(input);
        const after = applyPlan(input.current, plan);
        expect(violations(input, after)).toEqual([]);
        // Every wanted unit is either scheduled or explained; unscheduled ones are never listed as scheduled.
        const scheduled = new Set(after.map((a) => a.unit));
        const unplaceable = new Set(plan.unplaceable.map((u) => u.unit));
        for (const u of input.units) {
          if (u.desired === "inactive") expect(unplaceable.has(u.name)).toBe(false);
          else expect(scheduled.has(u.name) !== unplaceable.has(u.name)).toBe(true);
        }
        // Minimal: nothing is both unscheduled and scheduled on the same machine.
        const un = new Set(plan.unschedule.map((a) => `${a.unit} ${a.machine}`));
        for (const a of plan.schedule) expect(un.has(`${a.unit} ${a.machine}`)).toBe(false);
        const again = reconcile({ ...input, current: after });
        expect(again.unschedule).toEqual([]);
        expect(again.schedule).toEqual([]);
        expect(again.unplaceable).toEqual(plan.unplaceable);
      }),
      { numRuns: Number(process.env.PLACEMENT_RUNS ?? 1500) },
    );
  });

  it("is deterministic under shuffled input", () => {
    fc.assert(
      fc.property(inputArb, fc.integer(), (input, seed) => {
        const shuffled: PlacementInput = {
          machines: shuffle(input.machines, seed),
          units: shuffle(input.units, seed + 1),
          current: shuffle(input.current, seed + 2),
        };
        expect(reconcile(shuffled)).toEqual(reconcile(input));
      }),
      { numRuns: 500 },
    );
  });

  it("keeps every satisfied unit where it is (stability)", () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        // Start from a valid schedule, then add new units: nothing already scheduled may move.
        const base = applyPlan(input.current, reconcile(input));
        const extra = [unit("new1.service"), unit("new2.service", { conflicts: ["*"] })];
        const plan = reconcile({ ...input, units: [...input.units, ...extra], current: base });
        const moved = plan.unschedule.filter((a) => !a.unit.startsWith("new"));
        expect(moved).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it("gives the same result with and without the Conflicts glob index", () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        expect(reconcile(input, { conflictIndexLimit: 0 })).toEqual(reconcile(input));
      }),
      { numRuns: 500 },
    );
  });

  it("names the same blocker with and without the index (found by the property above)", () => {
    const x = (over: Partial<XFleetOptions>): XFleetOptions => ({ ...EMPTY_XFLEET, ...over });
    const input = {
      machines: [{ id: "m1", metadata: { region: "r1" } }],
      units: [
        {
          name: "web@2.service",
          desired: "launched" as const,
          xfleet: x({ conflicts: ["?.service"], global: true }),
        },
        { name: "f.service", desired: "launched" as const, xfleet: x({ global: true }) },
        { name: "a.service", desired: "launched" as const, xfleet: x({}) },
      ],
      current: [],
    };
    expect(reconcile(input).unplaceable).toEqual([
      { unit: "web@2.service", reason: "conflicts with a.service on every candidate machine" },
    ]);
    expect(reconcile(input, { conflictIndexLimit: 0 })).toEqual(reconcile(input));
  });

  it("does not mutate its input", () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const copy = structuredClone(input);
        reconcile(input);
        expect(input).toEqual(copy);
      }),
      { numRuns: 100 },
    );
  });
});
