// The supervisor: one process per node (`berth supervise`, started by the node) that owns the machine's units,
// so a node restart (SIGTERM, an upgrade, a crash) leaves them running and the returning node adopts them. It
// runs the Agent and holds the machine's lease (lease.ts): the node renews it with read points; when no renewal
// came for the fence time — the node is gone, or cut off from a quorum — the supervisor kills every unit before
// any leader may give them to another machine. While the node is away (or its renewals are late) the supervisor
// speaks for the machine itself (machine-keepalive.ts): the leader keeps hearing from the machine and confirms the
// lease, so a node restart of any length moves nothing; "machine lost" means node and supervisor both silent.
// A supervisor that crashed leaves its units running as well: the next one takes over its lease (saved on every
// renewal) and adopts the services still wanted here (the agent's keepLeftovers; output through FIFOs).
//
// The node talks to it over a unix socket in the agent's directory (owner-only: mode 0600), one framed msgpack
// connection (src/wire) at a time; a newer connection replaces an older one (the old node is gone).
//   node → supervisor: request hello → {pid, states}; notify reconcile {specs}; notify lease {issuedAt};
//                      notify cluster {ClusterAccess}; request status {name}; request journal {name, lines};
//                      stream journal.follow {name}
//   supervisor → node: notify state; notify forget {name}; notify log {line};
//                      notify unfenced (units may run again: reconcile anew, after a fence or after a
//                      reconcile dropped for want of a lease);
//                      request readPoint (after a stall of this process: is the lease still good?)
import {
  appendFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { VERSION } from "../version.ts";
import { Connection } from "../wire/connection.ts";
import { socketAnswers, withOwnerOnlyUmask } from "../wire/unix-socket.ts";
import { runtimeActivation } from "./activation.ts";
import { Agent, type UnitSpec, type UnitState } from "./agent.ts";
import { monotonicMs, renewEveryMs, UnitLease } from "./lease.ts";
import { type ClusterAccess, MachineKeepalive } from "./machine-keepalive.ts";
import { runtimeNotifySocket } from "./notify-socket.ts";
import { runtimeOutputFifos } from "./output-fifo.ts";
import { bootId } from "./proc.ts";

export interface SupervisorOptions {
  /** The node's agent directory (DATA_DIR/agent): socket, pid file, journal, records. */
  agentDir: string;
  machineId: string;
  hostname: string;
  dockerSocket?: string;
  fenceMs: number;
}

export const SUPERVISOR_SOCKET = "supervisor.sock";
/**
 * The node ↔ supervisor protocol. A node upgraded in place talks to the supervisor of the previous binary (the
 * units live there), so messages only ever get added: unknown notifications are ignored on both sides. Bump this
 * when a message changes meaning; the node then says which side is older.
 */
export const SUPERVISOR_PROTOCOL = 1;
const SUPERVISOR_PID_FILE = "supervisor.pid";
/** Until when the supervisor's lease runs (monotonicMs, shared by the processes of the host), for its successor. */
const LEASE_FILE = "lease-until";
/** With no node connected and no unit held for this long, the supervisor exits (a node starts a new one). */
const IDLE_EXIT_MS = 10_000;
/** Frames on the node's connection may carry every unit file of the machine at once. */
export const SUPERVISOR_MAX_FRAME = 256 * 1024 * 1024;

/** A state as sent to the node: without the memory figure, which costs a read (status() has it). */
export function wireState(s: UnitState): UnitState {
  const { memoryBytes: _memory, ...rest } = s;
  return { ...rest, memoryBytes: null };
}

/** Runs until idle (no node, no unit) or SIGTERM (every unit stopped as by `berth stop`). */
export async function runSupervisor(o: SupervisorOptions): Promise<void> {
  mkdirSync(o.agentDir, { recursive: true, mode: 0o700 });
  const socketPath = join(o.agentDir, SUPERVISOR_SOCKET);
  if (existsSync(socketPath) && (await socketAnswers(socketPath)))
    throw new Error(`a supervisor already answers on ${socketPath}`);
  let node: Connection | null = null;
  // Never throws: a full disk or a removed directory must not stop a fence or the exit that follows it.
  const log = (line: string): void => {
    try {
      if (node !== null && !node.closed) node.notify("log", { line });
      else appendFileSync(join(o.agentDir, "supervisor.log"), `${new Date().toISOString()} ${line}\n`);
    } catch {}
  };
  const agent = new Agent({
    machineId: o.machineId,
    hostname: o.hostname,
    dataDir: o.agentDir,
    dockerSocket: o.dockerSocket,
    logger: log,
    notifySocket: await runtimeNotifySocket(log),
    activation: await runtimeActivation(log),
    outputFifos: await runtimeOutputFifos(log),
    keepLeftovers: true,
  });
  const keepalive = new MachineKeepalive(Math.max(200, Math.round(o.fenceMs / 3)));
  const nodeReadPoint = (): Promise<void> =>
    node === null || node.closed
      ? Promise.reject(new Error("no node connected"))
      : node.request("readPoint", {}, { timeoutMs: o.fenceMs }).then(() => {});
  const lease = new UnitLease({
    fenceMs: o.fenceMs,
    readPoint: () => nodeReadPoint().catch(() => keepalive.once(o.fenceMs)),
    onFence: () => void agent.fence(),
    onRenewedAfterFence: () => {
      agent.unfence();
      node?.notify("unfenced", {});
    },
    logger: log,
  });
  // A reconcile that came while no lease was held (the node's read point came too late) was dropped: once a
  // renewal makes the lease valid again, the node is asked for a fresh one rather than left believing it was done.
  let reconcileDropped = false;
  // Units left by a supervisor that crashed run on under its lease, which this one takes over (saved on every
  // renewal): the fence falls when the old one's would have, unless a renewal came first.
  const leaseFile = join(o.agentDir, LEASE_FILE);
  if (agent.holdsLeftovers()) {
    const until = readLeaseEnd(leaseFile);
    const left = until - monotonicMs();
    if (left > 0) {
      lease.inherit(until);
      log(`took over the previous supervisor's lease (${Math.round(left)} ms left) and its running units`);
    } else {
      log("the previous supervisor's lease ran out: killing the units it left");
      agent.killLeftovers();
    }
  }
  const renewed = (issuedAt: number): void => {
    const before = lease.expiresAt();
    lease.renewed(issuedAt);
    if (lease.expiresAt() !== before) saveLeaseEnd(leaseFile, lease.expiresAt());
    if (reconcileDropped && lease.valid()) {
      reconcileDropped = false;
      node?.notify("unfenced", {});
    }
  };
  agent.onStateChange((s) => node?.notify("state", wireState(s)));
  agent.onForget((name) => node?.notify("forget", { name }));

  const serve = (socket: Socket): void => {
    const conn = new Connection(socket, { label: "node", maxFrameBytes: SUPERVISOR_MAX_FRAME });
    if (node !== null) node.close();
    node = conn;
    conn.onClose(() => {
      if (node === conn) node = null;
    });
    conn.serve({
      request: async (method, params) => {
        const p = (params ?? {}) as { name?: string; lines?: number };
        if (method === "hello")
          return {
            pid: process.pid,
            states: agent.states().map(wireState),
            protocol: SUPERVISOR_PROTOCOL,
            version: VERSION,
          };
        if (method === "status") return agent.status(String(p.name));
        if (method === "journal") return agent.journal(String(p.name), { lines: Number(p.lines ?? 10) });
        throw new Error(`unknown supervisor method "${method}"`);
      },
      notify: (method, params) => {
        if (method === "lease") {
          nodeRenewedAt = monotonicMs();
          renewed(Number((params as { issuedAt: number }).issuedAt));
        } else if (method === "cluster") keepalive.setAccess(params as ClusterAccess);
        else if (method === "reconcile") {
          // Units run only under a lease: a node never reconciles without one, but a stale message must not
          // start what no lease covers.
          if (lease.valid()) {
            reconcileDropped = false;
            agent.reconcile((params as { specs: UnitSpec[] }).specs);
          } else {
            reconcileDropped = true;
            log("a reconcile arrived without a valid lease; ignored (the node is asked again once renewed)");
          }
        }
      },
      stream: (method, params, sink) => {
        if (method !== "journal.follow") return sink.end({ code: "unknown_method", message: method });
        const stop = agent.followJournal(String((params as { name?: string }).name), (l) => sink.push(l));
        sink.onClose(stop);
      },
    });
  };

  const server = await listenOwnerOnly(socketPath, serve);
  writeFileSync(join(o.agentDir, SUPERVISOR_PID_FILE), `${process.pid}\n`);
  log(`supervisor ${process.pid} serving ${socketPath} (fence ${o.fenceMs} ms)`);

  // Speaking for the machine: when no node renewed the lease for half the fence (gone, restarting, stalled).
  let nodeRenewedAt = Number.NEGATIVE_INFINITY;
  let speaking = false;
  let asking = false;
  let failing = false;
  const speakForMachine = setInterval(() => {
    const nodeRenews = node !== null && !node.closed && monotonicMs() - nodeRenewedAt < o.fenceMs / 2;
    if (nodeRenews || asking || !keepalive.hasAccess()) {
      if (nodeRenews && speaking) log("the node renews the lease again");
      speaking = speaking && !nodeRenews;
      return;
    }
    if (!speaking) log("the node does not renew the lease: keeping the machine alive with the cluster");
    speaking = true;
    asking = true;
    const issuedAt = monotonicMs();
    keepalive
      .once(o.fenceMs)
      .then(
        () => {
          if (failing) log("[lease] the cluster confirms this machine again");
          failing = false;
          renewed(issuedAt);
        },
        (err) => {
          if (!failing) log(`[lease] ${(err as Error).message}`);
          failing = true;
        },
      )
      .finally(() => {
        asking = false;
      });
  }, renewEveryMs(o.fenceMs));

  let idleSince = Date.now();
  await new Promise<void>((resolveExit) => {
    const idleCheck = setInterval(() => {
      const busy = (node !== null && !node.closed) || agent.states().length > 0 || agent.holdsLeftovers();
      if (busy) idleSince = Date.now();
      else if (Date.now() - idleSince >= IDLE_EXIT_MS) {
        log("no node and no unit: supervisor exits");
        done();
      }
    }, 1000);
    const onSignal = (sig: string) => {
      log(`${sig} received: stopping every unit`);
      void agent.stop().finally(done);
    };
    const done = () => {
      clearInterval(idleCheck);
      clearInterval(speakForMachine);
      keepalive.close();
      lease.stop();
      agent.journalStore.flush();
      resolveExit();
    };
    process.once("SIGTERM", () => onSignal("SIGTERM"));
    process.once("SIGINT", () => onSignal("SIGINT"));
  });
  server.close();
  try {
    unlinkSync(socketPath);
  } catch {}
  try {
    unlinkSync(join(o.agentDir, SUPERVISOR_PID_FILE));
  } catch {}
}

/**
 * "BOOT_ID UNTIL". A missing, unreadable or torn file, or one of an earlier boot (its clock started anew), reads as
 * a lease long over: the units it covered are killed.
 */
function readLeaseEnd(file: string): number {
  try {
    const [boot, until] = readFileSync(file, "utf8").split(" ");
    const v = Number(until);
    return boot === bootId() && Number.isFinite(v) ? v : Number.NEGATIVE_INFINITY;
  } catch {
    return Number.NEGATIVE_INFINITY;
  }
}

/** Best effort: a lease end not saved (disk full) only shortens what a successor believes is left. */
function saveLeaseEnd(file: string, until: number): void {
  try {
    writeFileSync(file, `${bootId()} ${until}`);
  } catch {}
}

/** The pid of the supervisor running for `agentDir`, or null (none, or the pid now belongs to another process). */
export function supervisorPid(agentDir: string): number | null {
  try {
    const pid = Number(readFileSync(join(agentDir, SUPERVISOR_PID_FILE), "utf8").trim());
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return cmdline.includes("supervise") && cmdline.includes(`--agent-dir=${agentDir}`) ? pid : null;
  } catch {
    return null;
  }
}

/** Listens on a unix socket only its owner can connect to (a stale socket file of a dead supervisor is replaced). */
async function listenOwnerOnly(path: string, onSocket: (s: Socket) => void): Promise<Server> {
  try {
    unlinkSync(path);
  } catch {}
  const server = createServer(onSocket);
  await withOwnerOnlyUmask(
    () =>
      new Promise<void>((resolveListen, reject) => {
        server.once("error", reject);
        server.listen(path, () => resolveListen());
      }),
  );
  chmodSync(path, 0o600);
  return server;
}
