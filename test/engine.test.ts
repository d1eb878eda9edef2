// The scheduling engine against a real in-process store: what it writes when units arrive, when a machine is lost
// and comes back, when a unit cannot be placed, and that a pass over a settled registry writes nothing.
import { afterEach, describe, expect, it } from "vitest";
import type { KvWriteRequest } from "../src/client/protocol.ts";
import { decodeCommand, encodeCommand } from "../src/kv/commands.ts";
import { commandFor } from "../src/kv/requests.ts";
import { KvStore } from "../src/kv/store.ts";
import { KvError } from "../src/kv/types.ts";
import { canonicalUnit, UnitCatalog } from "../src/sched/catalog.ts";
import { Engine } from "../src/sched/engine.ts";
import {
  machineActedKey,
  machineDrainKey,
  machineInfoKey,
  readRegistry,
  readUnitFile,
  scheduleKey,
  stateKey,
  unitFileKey,
  unitKey,
} from "../src/sched/registry.ts";

const MACHINES = ["a1", "b2", "c3"].map((n, i) => ({ id: `${String(i + 1).repeat(32)}`, name: n }));

function setup() {
  const store = new KvStore();
  const writes: KvWriteRequest[] = [];
  const write = async (req: KvWriteRequest) => {
    const r = store.apply(decodeCommand(encodeCommand(commandFor(req, Date.now()))));
    if (r instanceof KvError) throw Object.assign(new Error(r.message), { code: "kv", data: r.toJSON() });
    return r;
  };
  const alive = new Set(MACHINES.map((m) => m.name));
  const engine = new Engine({
    readView: () => readRegistry(store),
    catalog: new UnitCatalog((h) => readUnitFile(store, h)),
    write: (req) => {
      writes.push(req);
      return write(req);
    },
    alive: (name) => alive.has(name),
    scheduleIndex: (unit) => store.peek(scheduleKey(unit))?.modifiedIndex ?? 0,
    reconcileEveryMs: 3_600_000,
    livenessEveryMs: 3_600_000,
  });
  const addMachine = async (m: { id: string; name: string }, metadata: Record<string, string> = {}) =>
    write({
      method: "PUT",
      key: machineInfoKey(m.id),
      value: JSON.stringify({ id: m.id, name: m.name, publicIp: null, metadata }),
    });
  const addUnit = async (name: string, text: string, desired = "launched") => {
    const u = canonicalUnit(name, text);
    await write({ method: "PUT", key: unitFileKey(u.hash), value: u.text });
    await write({ method: "PUT", key: unitKey(name), value: JSON.stringify({ hash: u.hash, desired }) });
  };
  const schedule = () => {
    const out: Record<string, string[] | string> = {};
    for (const [name, s] of readRegistry(store).schedule) out[name] = s.reason ?? s.machines;
    return out;
  };
  /** What a machine's agent bridge writes once it has acted on the registry as it is now. */
  const act = (id: string) => write({ method: "PUT", key: machineActedKey(id), value: String(store.index) });
  return { store, engine, writes, write, alive, addMachine, addUnit, schedule, act };
}

let current: ReturnType<typeof setup> | null = null;
function fresh() {
  current = setup();
  return current;
}
afterEach(async () => {
  await current?.engine.stop();
  current = null;
});

const SERVICE = "[Service]\nExecStart=/bin/true\n";

describe("scheduling engine", () => {
  it("spreads units, keeps MachineOf pairs together, and writes nothing on a settled pass", async () => {
    const t = fresh();
    for (const m of MACHINES) await t.addMachine(m);
    for (const i of [1, 2, 3]) {
      await t.addUnit(`web@${i}.service`, `${SERVICE}[X-Fleet]\nConflicts=web@*.service\n`);
      await t.addUnit(`log@${i}.service`, `${SERVICE}[X-Fleet]\nMachineOf=web@%i.service\n`);
    }
    t.engine.start();
    await t.engine.trigger();
    const s = t.schedule();
    const webMachines = [1, 2, 3].map((i) => (s[`web@${i}.service`] as string[])[0]);
    expect(new Set(webMachines).size).toBe(3);
    for (const i of [1, 2, 3]) expect(s[`log@${i}.service`]).toEqual(s[`web@${i}.service`]);

    t.writes.length = 0;
    await t.engine.trigger();
    expect(t.writes).toEqual([]);
  });

  it("moves the units of a lost machine, records the loss, drops its stale reports, and notes the return", async () => {
    const t = fresh();
    for (const m of MACHINES) await t.addMachine(m);
    for (const i of [1, 2, 3, 4, 5, 6]) await t.addUnit(`app@${i}.service`, SERVICE);
    t.engine.start();
    await t.engine.trigger();
    const victim = MACHINES[0]!;
    const onVictim = Object.entries(t.schedule())
      .filter(([, m]) => (m as string[]).includes(victim.id))
      .map(([n]) => n);
    expect(onVictim.length).toBe(2);
    await t.write({ method: "PUT", key: stateKey(onVictim[0]!, victim.id), value: "{}" });

    t.alive.delete(victim.name);
    await t.engine.trigger();
    const after = t.schedule();
    for (const n of onVictim) expect(after[n]).not.toContain(victim.id);
    expect(Object.values(after).flat()).not.toContain(victim.id);
    const view = readRegistry(t.store);
    expect(view.machines.get(victim.id)?.state).toBe("lost");
    expect(view.states.get(onVictim[0]!)?.has(victim.id) ?? false).toBe(false);

    t.alive.add(victim.name);
    await t.engine.trigger();
    expect(readRegistry(t.store).machines.get(victim.id)?.state).toBe("up");
    // Units that run happily elsewhere are not moved back.
    expect(t.schedule()).toEqual(after);
  });

  it("records why a unit cannot be placed, and places it once a machine qualifies", async () => {
    const t = fresh();
    await t.addMachine(MACHINES[0]!, { disk: "hdd" });
    await t.addUnit("db.service", `${SERVICE}[X-Fleet]\nMachineMetadata=disk=ssd\n`);
    t.engine.start();
    await t.engine.trigger();
    expect(t.schedule()["db.service"]).toMatch(/disk/);

    await t.addMachine(MACHINES[1]!, { disk: "ssd" });
    await t.engine.trigger();
    expect(t.schedule()["db.service"]).toEqual([MACHINES[1]!.id]);
  });

  it("unschedules a unit when it is made inactive or destroyed, and never schedules templates", async () => {
    const t = fresh();
    for (const m of MACHINES) await t.addMachine(m);
    await t.addUnit("web@.service", SERVICE, "inactive");
    await t.addUnit("one.service", SERVICE);
    await t.addUnit("two.service", SERVICE);
    t.engine.start();
    await t.engine.trigger();
    expect(Object.keys(t.schedule()).sort()).toEqual(["one.service", "two.service"]);

    const two = readRegistry(t.store).units.get("two.service")!;
    await t.write({
      method: "PUT",
      key: unitKey("two.service"),
      value: JSON.stringify({ ...two, desired: "inactive" }),
    });
    await t.write({ method: "DELETE", key: unitKey("one.service") });
    await t.engine.trigger();
    // Unscheduled at once; the records remember the machines that may still be stopping them (see the handoff
    // tests) until those machines have acted on it.
    expect(t.schedule()).toEqual({ "one.service": [], "two.service": [] });
    for (const m of MACHINES) await t.act(m.id);
    await t.engine.trigger();
    expect(t.schedule()).toEqual({});
  });

  it("places a Global unit on every live machine, including one that joins later", async () => {
    const t = fresh();
    await t.addMachine(MACHINES[0]!);
    await t.addUnit("agent.service", `${SERVICE}[X-Fleet]\nGlobal=true\n`);
    t.engine.start();
    await t.engine.trigger();
    expect(t.schedule()["agent.service"]).toEqual([MACHINES[0]!.id]);
    await t.addMachine(MACHINES[1]!);
    await t.engine.trigger();
    expect(t.schedule()["agent.service"]).toEqual([MACHINES[0]!.id, MACHINES[1]!.id].sort());
  });
});

/** An agent's report of a running copy (with every field the registry's schema asks for). */
const RUNNING_REPORT = JSON.stringify({
  hash: "0".repeat(40),
  load: "loaded",
  active: "active",
  sub: "running",
  mainPid: 7,
  since: 1,
});

describe("handoff between live machines", () => {
  const record = (t: ReturnType<typeof setup>, unit: string) => readRegistry(t.store).schedule.get(unit);

  it("places the service a timer starts on the timer's machine (an implicit MachineOf), and moves them together", async () => {
    const t = fresh();
    for (const m of MACHINES) await t.addMachine(m);
    // Spread over the machines unless something keeps them together: three timers, their services loaded only.
    for (const i of [1, 2, 3]) {
      await t.addUnit(`job@${i}.timer`, "[Timer]\nOnCalendar=daily\n[X-Fleet]\nConflicts=job@*.timer\n");
      await t.addUnit(`job@${i}.service`, SERVICE, "loaded");
    }
    await t.addUnit("rotate.timer", "[Timer]\nOnCalendar=hourly\nUnit=logrotate.service\n");
    await t.addUnit("logrotate.service", SERVICE, "loaded");
    t.engine.start();
    await t.engine.trigger();
    let s = t.schedule();
    for (const i of [1, 2, 3]) expect(s[`job@${i}.service`]).toEqual(s[`job@${i}.timer`]);
    expect(s["logrotate.service"]).toEqual(s["rotate.timer"]);
    expect(new Set([1, 2, 3].map((i) => (s[`job@${i}.timer`] as string[])[0])).size).toBe(3);

    // Draining the timer's machine moves both, each through the handoff (neither starts elsewhere first).
    const from = (s["rotate.timer"] as string[])[0]!;
    for (const u of ["rotate.timer", "logrotate.service"])
      await t.write({ method: "PUT", key: stateKey(u, from), value: RUNNING_REPORT });
    await t.write({ method: "PUT", key: machineDrainKey(from), value: JSON.stringify({ since: 1 }) });
    await t.engine.trigger();
    for (const u of ["rotate.timer", "logrotate.service"]) {
      expect(record(t, u)!.machines).toEqual([]);
      expect(record(t, u)!.leaving).toEqual([from]);
    }
    await t.act(from);
    for (const u of ["rotate.timer", "logrotate.service"])
      await t.write({ method: "DELETE", key: stateKey(u, from) });
    await t.engine.trigger();
    s = t.schedule();
    expect(s["rotate.timer"]).not.toContain(from);
    expect(s["logrotate.service"]).toEqual(s["rotate.timer"]);
  });

  it("places the service a socket or path unit starts on its machine (an implicit MachineOf)", async () => {
    const t = fresh();
    for (const m of MACHINES) await t.addMachine(m);
    // Kept apart by Conflicts=; each service, loaded only, would be spread over the machines on its own.
    for (const i of [1, 2, 3]) {
      await t.addUnit(
        `web@${i}.socket`,
        `[Socket]\nListenStream=127.0.1.${i}:80\n[X-Fleet]\nConflicts=web@*.socket\n`,
      );
      await t.addUnit(`web@${i}.service`, SERVICE, "loaded");
    }
    await t.addUnit("spool.path", "[Path]\nPathChanged=/var/spool/x\nUnit=printer.service\n");
    await t.addUnit("printer.service", SERVICE, "loaded");
    await t.addUnit("dns.socket", "[Socket]\nListenDatagram=127.0.1.9:53\nService=resolver.service\n");
    await t.addUnit("resolver.service", SERVICE, "loaded");
    t.engine.start();
    await t.engine.trigger();
    const s = t.schedule();
    for (const i of [1, 2, 3]) expect(s[`web@${i}.service`]).toEqual(s[`web@${i}.socket`]);
    expect(new Set([1, 2, 3].map((i) => (s[`web@${i}.socket`] as string[])[0])).size).toBe(3);
    expect(s["printer.service"]).toEqual(s["spool.path"]);
    expect(s["resolver.service"]).toEqual(s["dns.socket"]);
  });

  it("drains a machine: its units are unscheduled there first and placed elsewhere only once it has acted and reports no copy", async () => {
    const t = fresh();
    for (const m of MACHINES) await t.addMachine(m);
    for (const i of [1, 2, 3]) await t.addUnit(`app@${i}.service`, SERVICE);
    await t.addUnit("agent.service", `${SERVICE}[X-Fleet]\nGlobal=true\n`);
    t.engine.start();
    await t.engine.trigger();
    const a = MACHINES[0]!;
    const onA = Object.entries(t.schedule())
      .filter(([n, m]) => n.startsWith("app@") && (m as string[]).includes(a.id))
      .map(([n]) => n);
    expect(onA.length).toBe(1);
    const unit = onA[0]!;
    // A's agent runs the unit (and may be starting it again right now, its report not yet written).
    await t.write({ method: "PUT", key: stateKey(unit, a.id), value: RUNNING_REPORT });

    await t.write({ method: "PUT", key: machineDrainKey(a.id), value: JSON.stringify({ since: 1 }) });
    await t.engine.trigger();
    const waiting = record(t, unit)!;
    expect(waiting.machines).toEqual([]);
    expect(waiting.leaving).toEqual([a.id]);
    expect(waiting.reason).toBe(`waiting for ${a.name} to stop it`);
    // The global unit just stops there: every other machine runs its own copy anyway.
    expect(t.schedule()["agent.service"]).toEqual([MACHINES[1]!.id, MACHINES[2]!.id]);
    expect(record(t, "agent.service")!.leaving).toBeUndefined();

    // A acted on a view older than the unscheduling: still waiting.
    const unscheduledAt = t.store.peek(scheduleKey(unit))!.modifiedIndex;
    await t.write({ method: "PUT", key: machineActedKey(a.id), value: String(unscheduledAt - 1) });
    await t.engine.trigger();
    expect(record(t, unit)!.machines).toEqual([]);
    // Acted on it, but its report still shows a copy: still waiting.
    await t.act(a.id);
    await t.engine.trigger();
    expect(record(t, unit)!.machines).toEqual([]);
    // The copy is gone: placed on another machine, and nothing waits any more.
    await t.write({ method: "DELETE", key: stateKey(unit, a.id) });
    await t.engine.trigger();
    const moved = record(t, unit)!;
    expect(moved.machines.length).toBe(1);
    expect(moved.machines[0]).not.toBe(a.id);
    expect(moved.leaving).toBeUndefined();
    expect(Object.values(t.schedule()).flat()).not.toContain(a.id);

    // A draining machine gets no new unit; undrained it may, and nothing moves back by itself.
    await t.addUnit("late.service", SERVICE);
    await t.engine.trigger();
    expect(t.schedule()["late.service"]).not.toContain(a.id);
    const before = t.schedule();
    await t.write({ method: "DELETE", key: machineDrainKey(a.id) });
    await t.engine.trigger();
    const after = t.schedule();
    expect(after["agent.service"]).toEqual(MACHINES.map((m) => m.id).sort());
    delete after["agent.service"];
    delete before["agent.service"];
    expect(after).toEqual(before);
    await t.addUnit("later.service", SERVICE);
    await t.engine.trigger();
    expect(t.schedule()["later.service"]).toEqual([a.id]);
  });

  it("holds back every move between live machines the same way, and none for a machine that is lost", async () => {
    const t = fresh();
    const [a, b] = [MACHINES[0]!, MACHINES[1]!];
    await t.addMachine(a, { disk: "ssd" });
    await t.addMachine(b, { disk: "hdd" });
    await t.addUnit("db.service", `${SERVICE}[X-Fleet]\nMachineMetadata=disk=ssd\n`);
    t.engine.start();
    await t.engine.trigger();
    expect(t.schedule()["db.service"]).toEqual([a.id]);

    // The machines' metadata change places: the unit must move from a to b, both alive.
    await t.addMachine(a, { disk: "hdd" });
    await t.addMachine(b, { disk: "ssd" });
    await t.engine.trigger();
    expect(record(t, "db.service")).toMatchObject({ machines: [], leaving: [a.id] });
    await t.act(a.id);
    await t.engine.trigger();
    expect(record(t, "db.service")).toEqual({ machines: [b.id] });

    // b is lost before it acts on the next move: its lease fence covers it, the unit moves at once.
    await t.addMachine(a, { disk: "ssd" });
    await t.addMachine(b, { disk: "hdd" });
    await t.engine.trigger();
    expect(record(t, "db.service")).toMatchObject({ machines: [], leaving: [b.id] });
    t.alive.delete(b.name);
    await t.engine.trigger();
    expect(record(t, "db.service")).toEqual({ machines: [a.id] });
  });
});

describe("liveness", () => {
  it("gives every machine a fresh TTL under a new leader, except the leader it was following", async () => {
    const { Liveness } = await import("../src/sched/liveness.ts");
    let now = 10_000;
    const l = new Liveness(5000, () => now);
    l.heardFrom("old-leader"); // followers hear only from their leader
    now += 1500; // the old leader died at 10 000; an election took 1.5 s
    l.grantGrace("old-leader");
    expect(l.alive("old-leader")).toBe(true);
    expect(l.alive("never-heard")).toBe(true);
    now = 15_000; // 5 s after the old leader's last message
    expect(l.alive("old-leader")).toBe(false);
    expect(l.alive("never-heard")).toBe(true);
    l.heardFrom("never-heard");
    now = 16_600; // 5.1 s after the grace began, 1.6 s after "never-heard" spoke
    expect(l.alive("never-heard")).toBe(true);
    now = 20_001;
    expect(l.alive("never-heard")).toBe(false);
    expect(l.silentFor("never-heard")).toBe(5001);
  });
});
