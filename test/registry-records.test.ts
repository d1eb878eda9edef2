// Malformed records under /_berth (issue 17, point 6): the read model leaves them out and lists them, the engine
// goes on placing and logs each once, and a write that would store one is refused with a message naming the
// registry and the commands to use. The records are put in the store directly, as an older log could hold them.
import { describe, expect, it } from "vitest";
import type { KvWriteRequest } from "../src/client/protocol.ts";
import { commandFor } from "../src/kv/requests.ts";
import { KvStore } from "../src/kv/store.ts";
import { KvError } from "../src/kv/types.ts";
import { canonicalUnit, UnitCatalog } from "../src/sched/catalog.ts";
import { Engine } from "../src/sched/engine.ts";
import {
  CLUSTER_ID_KEY,
  MEMBERS_DIR,
  machineInfoKey,
  machineStateKey,
  readRegistry,
  readUnitFile,
  scheduleKey,
  stateKey,
  unitFileKey,
  unitKey,
} from "../src/sched/registry.ts";
import { registryWriteProblem } from "../src/sched/registry-records.ts";

const A = "a".repeat(32);
const B = "b".repeat(32);
const BAD = "c".repeat(32);
const SERVICE = canonicalUnit("web.service", "[Service]\nExecStart=/bin/true\n");

function storeWith(writes: KvWriteRequest[]): KvStore {
  const s = new KvStore();
  for (const w of writes) put(s, w);
  return s;
}

/** Applies a write as the log would, without the checks a node makes before proposing. */
function put(s: KvStore, w: KvWriteRequest): void {
  const r = s.apply(commandFor(w, Date.now()));
  if (r instanceof KvError) throw new Error(`${w.key}: ${r.message}`);
}

const machine = (id: string, name: string) => ({
  method: "PUT" as const,
  key: machineInfoKey(id),
  value: JSON.stringify({ id, name, publicIp: null, metadata: {} }),
});

/** A registry with two good machines and a unit, plus one malformed record of every kind. */
function poisoned(): KvStore {
  return storeWith([
    machine(A, "a"),
    machine(B, "b"),
    { method: "PUT", key: unitFileKey(SERVICE.hash), value: SERVICE.text },
    {
      method: "PUT",
      key: unitKey("web.service"),
      value: JSON.stringify({ hash: SERVICE.hash, desired: "launched" }),
    },
    // The case: a machine record without an id (the engine's pass threw on it, list-machines crashed).
    { method: "PUT", key: machineInfoKey(BAD), value: JSON.stringify({ name: "ghost", metadata: {} }) },
    { method: "PUT", key: machineStateKey(B), value: "sideways" },
    {
      method: "PUT",
      key: unitKey("db.service"),
      value: JSON.stringify({ hash: SERVICE.hash, desired: "running" }),
    },
    { method: "PUT", key: unitKey("dir.service"), dir: true },
    { method: "PUT", key: scheduleKey("old.service"), value: '{"machines":"all"}' },
    { method: "PUT", key: stateKey("web.service", A), value: "not json" },
  ]);
}

const PROBLEMS = [
  { key: machineStateKey(B), problem: 'must be "up" or "lost"' },
  { key: machineInfoKey(BAD), problem: `"id" must be "${BAD}", the id in its key` },
  { key: scheduleKey("old.service"), problem: '"machines" must be a list of machine ids' },
  { key: stateKey("web.service", A), problem: "not JSON" },
  { key: unitKey("db.service"), problem: '"desired" must be one of inactive, loaded, launched' },
  { key: unitKey("dir.service"), problem: "a directory where a record belongs" },
];

describe("the registry's read model", () => {
  it("leaves malformed records out and lists them, read in full", () => {
    const view = readRegistry(poisoned());
    expect([...view.machines.keys()]).toEqual([A, B]);
    expect(view.machines.get(B)?.state).toBe("up");
    expect([...view.units.keys()]).toEqual(["web.service"]);
    expect(view.schedule.size).toBe(0);
    expect(view.states.size).toBe(0);
    expect(view.problems).toEqual(PROBLEMS);
  });

  it("keeps the list key by key as records change", () => {
    const s = storeWith([machine(A, "a")]);
    expect(readRegistry(s).problems).toEqual([]);
    put(s, { method: "PUT", key: machineInfoKey(BAD), value: "[]" });
    put(s, { method: "PUT", key: unitKey("x.service"), value: "{}" });
    expect(readRegistry(s).problems).toEqual([
      { key: machineInfoKey(BAD), problem: "not a JSON object" },
      { key: unitKey("x.service"), problem: '"hash" must be 40 hex digits' },
    ]);
    put(s, machine(BAD, "fixed"));
    put(s, { method: "DELETE", key: unitKey("x.service") });
    const view = readRegistry(s);
    expect(view.problems).toEqual([]);
    expect(view.machines.get(BAD)?.name).toBe("fixed");
  });
});

describe("the engine with malformed records in the registry", () => {
  it("places units on the good machines and logs each skipped record once", async () => {
    const store = poisoned();
    const logs: string[] = [];
    const engine = new Engine({
      readView: () => readRegistry(store),
      catalog: new UnitCatalog((h) => readUnitFile(store, h)),
      write: async (req) => put(store, req),
      alive: (name) => name === "a" || name === "b",
      scheduleIndex: (unit) => store.peek(scheduleKey(unit))?.modifiedIndex ?? 0,
      logger: (l) => logs.push(l),
      reconcileEveryMs: 3_600_000,
      livenessEveryMs: 3_600_000,
    });
    engine.start();
    await engine.trigger();
    await engine.trigger();
    await engine.stop();
    expect(logs.filter((l) => l.includes("engine pass failed"))).toEqual([]);
    const placed = readRegistry(store).schedule.get("web.service")?.machines ?? [];
    expect(placed).toHaveLength(1);
    expect([A, B]).toContain(placed[0]);
    // Logged in the first pass, not again in the second.
    expect(logs.filter((l) => l.startsWith("skipping registry record"))).toEqual(
      PROBLEMS.map((p) => `skipping registry record ${p.key}: ${p.problem}`),
    );
    expect(new Set(logs).size).toBe(logs.length);
  });
});

describe("writes under /_berth", () => {
  const refused = (w: KvWriteRequest) => registryWriteProblem(w);

  it("refuses what the read model would leave out, naming the registry and the commands", () => {
    const why = refused({ method: "PUT", key: machineInfoKey(BAD), value: '{"name":"ghost"}' });
    expect(why).toBe(
      `${machineInfoKey(BAD)}: not a valid record: "id" must be "${BAD}", the id in its key. /_berth is Berth's ` +
        "scheduler registry: change it with berth submit, start, stop, unload, destroy (a write there must store " +
        "a well-formed record; deleting a stale one is allowed)",
    );
    for (const w of [
      { method: "PUT", key: unitKey("db.service"), value: '{"hash":"x","desired":"launched"}' },
      { method: "PUT", key: "/_berth//states/web.service/../web.service/m", value: "{}" },
      { method: "PUT", key: unitFileKey(SERVICE.hash), value: `${SERVICE.text}# edited\n` },
      { method: "PUT", key: "/_berth/units/not a unit", value: "{}" },
      { method: "PUT", key: "/_berth/anything", value: "x" },
      { method: "PUT", key: "/_berth", value: "x" },
      { method: "PUT", key: "/_berth/units/x.service", dir: true },
      { method: "POST", key: "/_berth/units", value: "{}" },
      { method: "PUT", key: machineStateKey(A), value: "down" },
      { method: "PUT", key: CLUSTER_ID_KEY, value: "" },
      { method: "PUT", key: `/_berth/machines/${A}/drain`, value: "{}" },
      { method: "PUT", key: `/_berth/machines/${A}/acted`, value: "-3" },
      { method: "PUT", key: scheduleKey("web.service"), value: '{"machines":[],"leaving":"a"}' },
      {
        method: "PUT",
        key: machineInfoKey(A),
        value: JSON.stringify({ id: A, name: "a", publicIp: null, metadata: {}, agentTtlMs: "5s" }),
      },
    ] as KvWriteRequest[])
      expect(refused(w), w.key).toMatch(/^\/_berth.*: .*\. \/_berth is Berth's scheduler registry/);
  });

  it("lets well-formed records, refreshes and deletes through, and anything outside /_berth", () => {
    for (const w of [
      machine(A, "a"),
      { method: "PUT", key: machineStateKey(A), value: "lost" },
      { method: "PUT", key: unitFileKey(SERVICE.hash), value: SERVICE.text, prevExist: false },
      {
        method: "PUT",
        key: unitKey("web.service"),
        value: JSON.stringify({ hash: SERVICE.hash, desired: "loaded" }),
      },
      {
        method: "PUT",
        key: scheduleKey("web.service"),
        value: JSON.stringify({ machines: [], reason: "none" }),
      },
      {
        method: "PUT",
        key: stateKey("web.service", A),
        value: JSON.stringify({
          hash: SERVICE.hash,
          load: "loaded",
          active: "active",
          sub: "running",
          mainPid: 7,
          since: 1,
        }),
      },
      {
        method: "PUT",
        key: `${MEMBERS_DIR}/n1`,
        value: JSON.stringify({ clientAddr: "127.0.0.1:1", httpAddr: null, version: "1" }),
      },
      { method: "PUT", key: CLUSTER_ID_KEY, value: "0858a80da6de7ae5", prevExist: false },
      { method: "PUT", key: `/_berth/machines/${A}/drain`, value: '{"since":1}' },
      { method: "PUT", key: `/_berth/machines/${A}/acted`, value: "42" },
      {
        method: "PUT",
        key: scheduleKey("web.service"),
        value: JSON.stringify({ machines: [], reason: "waiting", leaving: [A] }),
      },
      { method: "PUT", key: unitKey("web.service"), refresh: true, ttl: 5 },
      { method: "DELETE", key: "/_berth/anything/at/all", recursive: true },
      { method: "PUT", key: "/_berthday", value: "x" },
      { method: "PUT", key: "/berth/_berth/x", value: "x" },
    ] as KvWriteRequest[])
      expect(refused(w), w.key).toBeNull();
  });
});
