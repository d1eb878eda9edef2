// The node's end of the supervisor (supervisor.ts): connects to the one running for this data directory, or
// starts it (`berth supervise`, detached, so it outlives the node), and presents it as a UnitHost. Unit states
// are mirrored from the supervisor's pushes, so state()/states() answer at once. When the supervisor goes away the
// link starts a new one (which takes over the old one's lease and units: on the first reconcile it adopts the
// services still wanted here and kills the rest, see leftovers.ts); every connection is announced (onReset), so
// the node reconciles afresh.
import { spawn } from "node:child_process";
import { connect as netConnect, type Socket } from "node:net";
import { join } from "node:path";
import { retry } from "../retry.ts";
import { Connection } from "../wire/connection.ts";
import type { JournalLine, UnitSpec, UnitState } from "./agent.ts";
import type { ClusterAccess } from "./machine-keepalive.ts";
import { SUPERVISOR_MAX_FRAME, SUPERVISOR_PROTOCOL, SUPERVISOR_SOCKET } from "./supervisor.ts";
import type { UnitHost } from "./unit-host.ts";

export interface LinkOptions {
  agentDir: string;
  machineId: string;
  dockerSocket?: string;
  fenceMs: number;
  /** A linearizable read point through the cluster (the supervisor asks after a stall of its own). */
  readPoint(): Promise<void>;
  /** What the supervisor needs to keep the machine alive while the node is away (null: not known yet). */
  clusterAccess(): ClusterAccess | null;
  logger: (line: string) => void;
  /** The command that starts a supervisor (default: this binary's `supervise`). */
  command?: string[];
}

/** How long a supervisor just started may take to answer. */
const START_TIMEOUT_MS = 10_000;
/** Dialling the socket of a supervisor just started: about every 50 ms. */
const DIAL_RETRY = { firstMs: 25, maxMs: 100 } as const;
/** Reconnecting after the connection was lost: soon, then backing off to about every 2 s. */
const REOPEN_RETRY = { firstMs: 200, maxMs: 4000 } as const;

export class SupervisorLink implements UnitHost {
  private conn: Connection | null = null;
  private readonly mirror = new Map<string, UnitState>();
  private readonly stateCbs: ((s: UnitState) => void)[] = [];
  private readonly forgetCbs: ((name: string) => void)[] = [];
  private readonly unfencedCbs: (() => void)[] = [];
  private readonly resetCbs: (() => void)[] = [];
  private closed = false;

  constructor(private readonly o: LinkOptions) {}

  /**
   * Connects (starting a supervisor when none answers), and again whenever the connection is lost; each time the
   * unit states are mirrored, onReset listeners hear of it.
   */
  start(): void {
    void this.reopen();
  }

  /** Leaves the units running: the supervisor keeps them for the next node (or fences them). */
  close(): void {
    this.closed = true;
    this.conn?.close();
  }

  connected(): boolean {
    return this.conn !== null && !this.conn.closed;
  }

  reconcile(specs: UnitSpec[]): void {
    this.conn?.notify("reconcile", { specs });
  }

  renewLease(issuedAt: number): void {
    this.conn?.notify("lease", { issuedAt });
  }

  /** Hands the supervisor the cluster's current members (after a membership change; also on every connect). */
  refreshClusterAccess(): void {
    const access = this.o.clusterAccess();
    if (access !== null) this.conn?.notify("cluster", access);
  }

  state(name: string): UnitState | null {
    return this.mirror.get(name) ?? null;
  }

  states(): UnitState[] {
    return [...this.mirror.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async status(name: string): Promise<UnitState | null> {
    return (await this.live().request("status", { name }, { timeoutMs: 10_000 })) as UnitState | null;
  }

  async journal(name: string, opts: { lines: number }): Promise<JournalLine[]> {
    return (await this.live().request(
      "journal",
      { name, lines: opts.lines },
      { timeoutMs: 30_000 },
    )) as JournalLine[];
  }

  followJournal(name: string, onLine: (l: JournalLine) => void): () => void {
    const stream = this.live().openStream<JournalLine>("journal.follow", { name });
    void (async () => {
      try {
        for await (const l of stream) onLine(l);
      } catch {}
    })();
    return () => stream.close();
  }

  onStateChange(cb: (s: UnitState) => void): void {
    this.stateCbs.push(cb);
  }

  onForget(cb: (name: string) => void): void {
    this.forgetCbs.push(cb);
  }

  /** The lease is held again after a fence: the units should be reconciled afresh. */
  onUnfenced(cb: () => void): void {
    this.unfencedCbs.push(cb);
  }

  /** Connected, the first time or again (perhaps to a new supervisor, holding nothing): reconcile afresh. */
  onReset(cb: () => void): void {
    this.resetCbs.push(cb);
  }

  // -------------------------------------------------------------------------------------------------------------

  private live(): Connection {
    if (this.conn === null || this.conn.closed) throw new Error("the unit supervisor is not connected");
    return this.conn;
  }

  private async connect(): Promise<void> {
    const path = join(this.o.agentDir, SUPERVISOR_SOCKET);
    let socket = await dial(path).catch(() => null);
    if (socket === null) {
      this.spawnSupervisor();
      socket = await retry(() => dial(path), {
        ...DIAL_RETRY,
        deadline: Date.now() + START_TIMEOUT_MS,
      }).catch(() => {
        throw new Error(`the unit supervisor did not answer on ${path} within ${START_TIMEOUT_MS} ms`);
      });
    }
    const conn = new Connection(socket, { label: "supervisor", maxFrameBytes: SUPERVISOR_MAX_FRAME });
    conn.serve({
      request: async (method) => {
        if (method === "readPoint") return this.o.readPoint().then(() => true);
        throw new Error(`unknown node method "${method}"`);
      },
      notify: (method, params) => {
        if (method === "state") this.setState(params as UnitState);
        else if (method === "forget") this.forget((params as { name: string }).name);
        else if (method === "unfenced") for (const cb of this.unfencedCbs) cb();
        else if (method === "log") this.o.logger(`[agent] ${(params as { line: string }).line}`);
      },
    });
    const hello = (await conn.request("hello", {}, { timeoutMs: START_TIMEOUT_MS })) as {
      pid: number;
      states: UnitState[];
      /** Absent before the protocol was versioned (protocol 0). */
      protocol?: number;
      version?: string;
    };
    this.conn = conn;
    this.refreshClusterAccess();
    const held = new Set(hello.states.map((s) => s.name));
    for (const name of [...this.mirror.keys()]) if (!held.has(name)) this.forget(name);
    for (const s of hello.states) this.setState(s);
    const protocol = hello.protocol ?? 0;
    this.o.logger(
      `[agent] unit supervisor ${hello.pid} (berth ${hello.version ?? "before 0.1"}, protocol ${protocol}) connected, holding ${hello.states.length} unit${hello.states.length === 1 ? "" : "s"}`,
    );
    if (protocol !== SUPERVISOR_PROTOCOL)
      this.o.logger(
        `[agent] warning: the unit supervisor speaks protocol ${protocol}, this node ${SUPERVISOR_PROTOCOL}: ` +
          `what the ${protocol < SUPERVISOR_PROTOCOL ? "supervisor" : "node"} does not know is ignored (an older ` +
          "supervisor does not keep the machine alive while the node is away); it is replaced by this node's once " +
          "it exits, e.g. after `berth stop` of every unit or a SIGTERM to it",
      );
    conn.onClose((err) => {
      if (this.closed) return;
      this.o.logger(`[agent] unit supervisor connection lost (${err.message}); reconnecting`);
      void this.reopen();
    });
    for (const cb of this.resetCbs) cb();
  }

  private async reopen(): Promise<void> {
    if (this.closed) return;
    await retry(() => this.connect(), {
      ...REOPEN_RETRY,
      stopped: () => this.closed,
      onRetry: (err) => this.o.logger(`[agent] unit supervisor not reachable: ${(err as Error).message}`),
    }).catch((err) => {
      if (!this.closed) throw err;
    });
  }

  /** Starts `berth supervise` in its own session, so neither the node's exit nor its terminal's signals reach it. */
  private spawnSupervisor(): void {
    const o = this.o;
    const [cmd, ...pre] = o.command ?? [process.execPath];
    const args = [
      ...pre,
      "supervise",
      `--agent-dir=${o.agentDir}`,
      `--machine-id=${o.machineId}`,
      `--fence=${o.fenceMs}ms`,
      ...(o.dockerSocket ? [`--docker-socket=${o.dockerSocket}`] : []),
    ];
    const child = spawn(cmd!, args, { detached: true, stdio: "ignore" });
    child.on("error", (err) => o.logger(`[agent] cannot start the unit supervisor: ${err.message}`));
    child.unref();
    o.logger(`[agent] started unit supervisor ${child.pid}`);
  }

  private setState(s: UnitState): void {
    this.mirror.set(s.name, s);
    for (const cb of this.stateCbs) cb(s);
  }

  private forget(name: string): void {
    if (!this.mirror.delete(name)) return;
    for (const cb of this.forgetCbs) cb(name);
  }
}

function dial(path: string): Promise<Socket> {
  return new Promise((resolveDial, reject) => {
    const s = netConnect(path);
    s.once("connect", () => {
      s.removeListener("error", reject);
      resolveDial(s);
    });
    s.once("error", reject);
  });
}
