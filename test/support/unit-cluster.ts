// A unit cluster inside the test process, for the unit CLI's tests: the real store (src/kv/store.ts), unit service
// (src/sched/unit-service.ts) and scheduling engine (src/sched/engine.ts, with the real placement), served through
// the real client API (src/node/client-api.ts) on a wire listener, as a node serves them. What is not real:
//   - Raft: a write is applied to the one store a moment after it is made (as a one-member cluster commits it);
//   - the machines' agents: `Agents` below writes their reports where src/agent/agent-bridge.ts does
//     (/_berth/states/<unit>/<machine>). Their clock is the CLI's polling: each units.states request (the CLI
//     reading their reports) is one tick, and a unit told to start runs LAUNCH_AFTER ticks after it was placed
//     (or never, for units named slow*);
//   - liveness: both machines are alive throughout.
import type { DesiredState, KvResult, KvWriteRequest, UnitInfo } from "../../src/client/protocol.ts";
import { ADMIN, AUTH_DISABLED } from "../../src/etcdv2/access.ts";
import { commandFor } from "../../src/kv/requests.ts";
import { KvStore } from "../../src/kv/store.ts";
import { KvError, type KvEvent } from "../../src/kv/types.ts";
import { type ClientApiDeps, serveClient } from "../../src/node/client-api.ts";
import { Engine } from "../../src/sched/engine.ts";
import { machineRecord } from "../../src/sched/machine.ts";
import {
  type AgentReport,
  MACHINES_DIR,
  machineInfoKey,
  REGISTRY_DIR,
  readRegistry,
  scheduleKey,
  stateKey,
  UNITS_DIR,
} from "../../src/sched/registry.ts";
import { UnitService } from "../../src/sched/unit-service.ts";
import { kvFailure, ServiceError } from "../../src/service/errors.ts";
import type { KvWriter } from "../../src/service/kv-writer.ts";
import { type Listener, listen } from "../../src/wire/server.ts";

export const M1 = "113f16a7c5a64cd1a1c2e3f40000aaaa";
export const M2 = "2addf7390b9fd6f8128a2e32eabc97ed";

/** Agent ticks (units.states requests) from a unit's placement until it runs. */
export const LAUNCH_AFTER = 3;

/** The two machines: one with an address and metadata, one with neither. */
const MACHINES = [
  machineRecord(M1, "n1", "172.17.8.103", { region: "us", az: "b" }, 60_000),
  machineRecord(M2, "n2", "", {}, 60_000),
];

export class UnitCluster {
  readonly store = new KvStore();
  readonly units: UnitService;
  readonly agents: Agents;
  /** Every request the CLI sent, in order. */
  calls: { method: string; params: unknown }[] = [];
  /** Answers to units.setDesired held back this long (ms), one entry per call; the change is made at once. */
  slowAnswers: number[] = [];
  readonly endpoint: string;
  private readonly engine: Engine;

  private constructor(private readonly listener: Listener) {
    this.endpoint = `${listener.address.host}:${listener.address.port}`;
    const kv: KvWriter = {
      sync: async () => {},
      write: async (req) => {
        // Committed a moment later, never inside the store's own notifications (the engine writes from them).
        await new Promise((r) => setImmediate(r));
        return this.write(req);
      },
    };
    this.units = new UnitService(this.store, kv);
    this.agents = new Agents(this.store, kv);
    this.engine = new Engine({
      readView: () => readRegistry(this.store),
      catalog: this.units.catalog,
      write: (req) => kv.write(req),
      scheduleIndex: (unit) => this.store.peek(scheduleKey(unit))?.modifiedIndex ?? 0,
      alive: () => true,
    });
    // As src/sched/scheduling.ts: changes to units and machines wake the engine.
    this.store.watch(REGISTRY_DIR, { recursive: true, stream: true }, (e) => {
      const key = e.node.key;
      if (key.startsWith(`${UNITS_DIR}/`) || key.startsWith(`${MACHINES_DIR}/`)) void this.engine.trigger();
    });
  }

  static async start(): Promise<UnitCluster> {
    let cluster: UnitCluster | null = null;
    const listener = await listen({
      host: "127.0.11.1",
      port: 0,
      secret: null,
      role: "client",
      name: "n1",
      onConnection: (conn) => {
        // Each request is recorded (and may be held back) on its way to the client API. The caller is an admin,
        // as on the node's unix socket: this port stands in for it.
        const serve = conn.serve.bind(conn);
        conn.serve = (h) =>
          serve({ ...h, request: (m, p, c) => cluster!.request(m, p, () => h.request!(m, p, c)) });
        serveClient(conn, cluster!.deps(), ADMIN);
      },
    });
    cluster = new UnitCluster(listener);
    for (const m of MACHINES)
      cluster.write({ method: "PUT", key: machineInfoKey(m.id), value: JSON.stringify(m) });
    await cluster.startEngine();
    return cluster;
  }

  async close(): Promise<void> {
    await this.engine.stop();
    await this.listener.close();
  }

  /** Sets a unit straight into a state, placed on `machine` (null: where the engine puts it), as if started earlier. */
  async put(name: string, text: string, desired: DesiredState, machine: string | null): Promise<void> {
    await this.engine.stop(); // so that no pass sees the unit half put
    await this.units.submit([{ name, text }], true);
    await this.units.setDesired([name], desired);
    if (machine !== null)
      this.write({ method: "PUT", key: scheduleKey(name), value: JSON.stringify({ machines: [machine] }) });
    await this.startEngine();
    // The agents act on the engine's schedule.
    for (let i = 0; i <= LAUNCH_AFTER; i++) await this.agents.tick();
  }

  /** Starts the engine on the registry as it is now and waits for its first pass. */
  private async startEngine(): Promise<void> {
    // The store delivers its notifications in microtasks: let those of the writes so far reach the stopped engine
    // first, or each would ask the running pass for one more.
    await new Promise((r) => setImmediate(r));
    this.engine.start();
    await this.engine.settled();
  }

  /** A unit as `berth list-unit-files -o json` shows it. */
  async unit(name: string): Promise<UnitInfo | undefined> {
    return (await this.units.list()).find((u) => u.name === name);
  }

  /** Applies a write to the store at once, answering as a one-member cluster would. */
  private write(req: KvWriteRequest): KvResult {
    const r = this.store.apply(commandFor(req, Date.now()));
    if (r instanceof KvError) throw kvFailure(r);
    const event = r as KvEvent; // a client's write is one event (batches are the node's own)
    return { event, etcdIndex: this.store.index, raftIndex: this.store.index, raftTerm: 1 };
  }

  private async request(method: string, params: unknown, answer: () => unknown): Promise<unknown> {
    this.calls.push({ method, params });
    if (method === "units.states") await this.agents.tick();
    const delay = method === "units.setDesired" ? this.slowAnswers.shift() : undefined;
    const result = await answer();
    if (delay !== undefined) await new Promise((r) => setTimeout(r, delay));
    return result;
  }

  private deps(): ClientApiDeps {
    // The unit commands need the unit service only; the node's other services are not here.
    const absent = (): never => {
      throw new ServiceError("unknown_method", "not served by the test's unit cluster");
    };
    const none = new Proxy({} as never, { get: () => absent });
    return {
      units: this.units,
      kv: none,
      cluster: none,
      status: absent,
      keys: AUTH_DISABLED,
      healthTimeoutMs: 1000,
    };
  }
}

/** The machines' agents: each reports the units scheduled on it, starting them LAUNCH_AFTER ticks after placement. */
export class Agents {
  /** Units whose start fails (exit code) once it is issued. */
  readonly failing = new Set<string>();
  /** unit + "\n" + machine → ticks since it was placed there with desired state launched. */
  private readonly ticks = new Map<string, number>();

  constructor(
    private readonly store: KvStore,
    private readonly kv: KvWriter,
  ) {}

  async tick(): Promise<void> {
    const view = readRegistry(this.store);
    const writes: KvWriteRequest[] = [];
    const held = new Set<string>();
    for (const [name, sched] of view.schedule) {
      const rec = view.units.get(name);
      if (!rec) continue;
      for (const machine of sched.machines) {
        const key = stateKey(name, machine);
        held.add(key);
        const ticks = rec.desired === "launched" ? (this.ticks.get(key) ?? -1) + 1 : -1;
        this.ticks.set(key, ticks);
        const next = JSON.stringify(
          this.report(name, rec.hash, ticks >= LAUNCH_AFTER && !name.startsWith("slow")),
        );
        if (this.store.peek(key)?.value !== next) writes.push({ method: "PUT", key, value: next });
      }
    }
    // Units no longer scheduled on a machine leave no report behind there (its agent forgot them).
    for (const [name, perMachine] of view.states)
      for (const machine of perMachine.keys()) {
        const key = stateKey(name, machine);
        if (!held.has(key)) {
          this.ticks.delete(key);
          writes.push({ method: "DELETE", key });
        }
      }
    for (const w of writes) await this.kv.write(w);
  }

  private report(name: string, hash: string, started: boolean): AgentReport {
    const base = { hash, load: "loaded", since: 0 };
    if (!started) return { ...base, active: "inactive", sub: "dead", mainPid: null, launched: false };
    if (this.failing.has(name))
      return {
        ...base,
        active: "failed",
        sub: "failed",
        mainPid: null,
        since: 1,
        launched: true,
        result: "exit-code",
      };
    return { ...base, active: "active", sub: "running", mainPid: 42, launched: true };
  }
}
