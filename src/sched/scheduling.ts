// The node's part in scheduling: it registers its machine, feeds the leader's liveness view from peer traffic,
// and runs the engine while it leads. Kept apart from src/node/node.ts so the node wiring stays readable.
//
// The scheduling pipeline, outermost first: Scheduling (scheduling.ts: a node's part, on every node) runs the
// Engine (engine.ts: passes on the Raft leader, reading and writing the registry), whose passes ask the Planner
// (placement.ts: reconcile(), pure) for a plan.
import type { KvWriteRequest, MachineInfo } from "../client/protocol.ts";
import type { KvStore } from "../kv/store.ts";
import { retry, UNTIL_A_LEADER_ANSWERS } from "../retry.ts";
import { badRequest, ServiceError } from "../service/errors.ts";
import type { KvWriter } from "../service/kv-writer.ts";
import { Engine } from "./engine.ts";
import { Liveness } from "./liveness.ts";
import { machineRecord } from "./machine.ts";
import {
  MACHINES_DIR,
  machineInfoKey,
  REGISTRY_DIR,
  readRegistry,
  scheduleKey,
  UNITS_DIR,
} from "./registry.ts";
import { StallClock } from "./stall-clock.ts";
import { UnitService } from "./unit-service.ts";

export interface SchedulingDeps {
  name: string;
  machineId: string;
  publicIp: string;
  metadata: Record<string, string>;
  agentTtlMs: number;
  store: KvStore;
  kv: KvWriter;
  /** Writes as the leader (the engine runs only there, so no forwarding is involved). */
  writeAsLeader(req: KvWriteRequest): Promise<unknown>;
  /** Who leads, as this replica knows, and in which term. */
  leadership(): { leader: string | null; term: number };
  logger: (line: string) => void;
}

/** Stalls this long are logged (shorter lags, routine on a loaded machine, are excused quietly). */
const STALL_LOG_MS = 1000;

export class Scheduling {
  readonly units: UnitService;
  private readonly liveness: Liveness;
  private readonly engine: Engine;
  private readonly stallTimer: ReturnType<typeof setInterval>;
  private stopped = false;
  /** The leader this node last followed: the one member whose silence it has been timing all along. */
  private lastOtherLeader: string | null = null;
  /** Machine name → the TTL it published, rebuilt when the registry's machines change. */
  private ttls: { of: ReadonlyMap<string, MachineInfo>; byName: Map<string, number> } | null = null;

  constructor(private readonly d: SchedulingDeps) {
    this.units = new UnitService(d.store, d.kv);
    const livenessEveryMs = Math.max(50, Math.min(250, d.agentTtlMs / 25));
    // After a stall of at least one liveness period, silences stand still for one more period: the check after
    // that runs only once the sockets were read.
    const clock = new StallClock({
      periodMs: livenessEveryMs,
      settleMs: livenessEveryMs,
      real: () => performance.now(),
    });
    this.stallTimer = setInterval(() => {
      const lag = clock.tick();
      if (lag >= STALL_LOG_MS)
        d.logger(
          `[liveness] this process could not run for ${Math.round(lag)} ms: not counted as anybody's silence`,
        );
    }, livenessEveryMs);
    this.stallTimer.unref();
    this.liveness = new Liveness(d.agentTtlMs, () => clock.now());
    this.engine = new Engine({
      readView: () => readRegistry(d.store),
      catalog: this.units.catalog,
      write: (req) => d.writeAsLeader(req),
      scheduleIndex: (unit) => d.store.peek(scheduleKey(unit))?.modifiedIndex ?? 0,
      alive: (name) => name === d.name || this.liveness.alive(name, this.ttlOf(name)),
      logger: (l) => d.logger(`[engine] ${l}`),
      livenessEveryMs,
    });
    // Registry changes wake the engine at once (its own schedule writes do not: they change nothing to plan).
    d.store.watch(REGISTRY_DIR, { recursive: true, stream: true }, (e) => {
      const key = e.node.key;
      if (key.startsWith(`${UNITS_DIR}/`) || key.startsWith(`${MACHINES_DIR}/`)) void this.engine.trigger();
    });
  }

  /** Any message from a member over the peer network counts as its machine's heartbeat. */
  heardFrom(member: string): void {
    this.liveness.heardFrom(member);
  }

  /**
   * A unit supervisor speaks for its machine while the node is away (src/agent/machine-keepalive.ts): the machine
   * is alive. The answer comes only from the leader, and only after a read point confirmed that it still led
   * after hearing the machine, so the supervisor may renew its lease from the moment it asked.
   */
  async keepalive(params: unknown): Promise<{ leader: string }> {
    const member = (params as { member?: unknown } | null)?.member;
    if (typeof member !== "string" || member === "") throw badRequest("keepalive needs a member name");
    const { leader, term } = this.d.leadership();
    const notLeader = (now: string | null) =>
      new ServiceError("not_leader", `${this.d.name} is not the leader`, { leader: now });
    if (leader !== this.d.name) throw notLeader(leader);
    this.liveness.heardFrom(member);
    await this.d.kv.sync();
    const after = this.d.leadership();
    if (after.leader !== this.d.name || after.term !== term) throw notLeader(after.leader);
    return { leader: this.d.name };
  }

  onLeaderChange(leader: string | null): void {
    if (leader === this.d.name && !this.stopped) {
      this.liveness.grantGrace(this.lastOtherLeader);
      this.engine.start();
    } else {
      void this.engine.stop();
    }
    if (leader !== null && leader !== this.d.name) this.lastOtherLeader = leader;
  }

  /** The agent TTL machine `name` published (its lease's), or this node's when it published none. */
  private ttlOf(name: string): number {
    const machines = readRegistry(this.d.store).machines;
    if (this.ttls?.of !== machines) {
      const byName = new Map<string, number>();
      for (const m of machines.values()) if (m.agentTtlMs !== undefined) byName.set(m.name, m.agentTtlMs);
      this.ttls = { of: machines, byName };
    }
    return this.ttls.byName.get(name) ?? this.d.agentTtlMs;
  }

  /** Publishes this machine's record (retrying until a leader takes it); a no-op when nothing changed. */
  async register(): Promise<void> {
    const d = this.d;
    const record = JSON.stringify(machineRecord(d.machineId, d.name, d.publicIp, d.metadata, d.agentTtlMs));
    const publish = async () => {
      await d.kv.sync();
      // The record as stored: the registry's view applies run-time metadata changes (machine-metadata.ts) on top.
      const stored = d.store.peek(machineInfoKey(d.machineId));
      if (stored && stored.children === null && stored.value === record) return;
      await d.kv.write({ method: "PUT", key: machineInfoKey(d.machineId), value: record });
      d.logger(`[machine] registered machine ${d.machineId} (${d.name})`);
    };
    await retry(publish, {
      ...UNTIL_A_LEADER_ANSWERS,
      stopped: () => this.stopped,
      onRetry: (err) => d.logger(`[machine] registering failed, retrying: ${(err as Error).message}`),
    }).catch((err) => {
      if (!this.stopped) throw err;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.stallTimer);
    await this.engine.stop();
  }
}
