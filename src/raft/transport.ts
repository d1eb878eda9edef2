// The Raft peer network: authenticated msgpack connections between members (src/wire), one outbound connection
// per peer, dialled lazily. Raft tolerates loss, so send() never blocks or throws: messages to a peer that cannot
// take them are dropped and the driver is told (reportUnreachable), which makes the leader probe instead of
// pipelining. Snapshots travel in chunks as requests (snapshot-transfer.ts), one transfer per peer at a time, so
// the driver learns whether they arrived (reportSnapshot).
//
// On the wire: notify "raft" with Message[] (either direction's connection), requests "raft.snap.begin|chunk|end"
// for a snapshot ("raft.snap" with one whole snapshot Message is still accepted from older members), and any
// other request is a forwarded client operation handed to onRequest(method, params, from).
import { splitHostPort } from "../host-port.ts";
import { connect } from "../wire/client.ts";
import type { Connection } from "../wire/connection.ts";
import { WireError } from "../wire/errors.ts";
import type { Hello } from "../wire/handshake.ts";
import { type Listener, listen } from "../wire/server.ts";
import type { RaftTransport } from "./driver.ts";
import { messageProblem } from "./message-check.ts";
import {
  SNAP_BEGIN,
  SNAP_CHUNK,
  SNAP_END,
  SnapshotReceiver,
  sendSnapshotInChunks,
} from "./snapshot-transfer.ts";
import type { Message, NodeId } from "./types.ts";

export interface PeerTransportOptions {
  selfId: string;
  secret: Buffer;
  listenHost: string;
  listenPort: number;
  /** Local address outbound dials leave from (an IP of this machine), so peers see the expected source. */
  dialFrom?: string;
  /**
   * Peer TLS: this member's certificate and key (presented both when accepting and when dialing) and the CA
   * every peer's certificate must chain to. The cluster-secret challenge still runs inside the TLS session.
   */
  tls?: { cert: string | Buffer; key: string | Buffer; ca: string | Buffer } | null;
  onMessage(m: Message): void;
  /** Serves a request a peer forwarded (e.g. "leader.put"); a thrown error's code/message/data reach the caller. */
  onRequest?(method: string, params: unknown, from: string): Promise<unknown> | unknown;
  reportUnreachable(id: NodeId): void;
  reportSnapshot(id: NodeId, ok: boolean): void;
  /**
   * An open connection to or from a member closed (its socket ended or reset; never called for silence, nor when
   * this side closed it). A process that dies closes its connections at once: the fast sign of a crashed leader.
   */
  peerConnectionClosed?(id: NodeId): void;
  logger?(line: string): void;
  /** Where snapshots being received are written (removed once complete, or abandoned). */
  snapshotDir: string;
  /** The largest frame a peer may send (log entries, snapshot chunks); snapshots go in chunks of half of it. */
  maxFrameBytes?: number;
  /** Overrides for tests. */
  dialTimeoutMs?: number;
  maxBufferedBytes?: number;
}

/** A request could not be sent at all: no connection to the peer. Safe to retry (the peer never saw it). */
export class PeerUnreachableError extends WireError {
  constructor(message: string) {
    super("unreachable", message);
  }
}

const RAFT_NOTIFY = "raft";
const SNAP_REQUEST = "raft.snap";
const BACKOFF_MIN_MS = 50;
const BACKOFF_MAX_MS = 1000;
const DEFAULT_DIAL_TIMEOUT_MS = 3000;
/** A connection with more than this queued is treated as stuck: messages are dropped rather than buffered. */
const DEFAULT_MAX_BUFFERED = 64 * 1024 * 1024;
/** Peer frames carry log entries and snapshot chunks; only authenticated peers get past the handshake limit. */
const PEER_MAX_FRAME = 128 * 1024 * 1024;
/** Snapshot chunks are at most this large (smaller when the frame limit is lowered). */
const SNAP_CHUNK_MAX = 4 * 1024 * 1024;
/** Messages held while the first dial of a connection is in flight (beyond that they are dropped). */
const MAX_HELD = 1024;
/**
 * How long the connection to a peer that left the cluster (or moved) stays open for the answers to requests already
 * sent on it. Removing the leader through a follower needs this: the leader answers the forwarded removal just as
 * the follower applies it and lets go of the leader.
 */
const RETIRE_GRACE_MS = 10_000;
/** reportUnreachable at most this often per peer (every dropped heartbeat would otherwise call it). */
const UNREACHABLE_REPORT_MS = 250;
/** Repeated log lines (refused handshakes, unreachable peers) at most once per key per minute. */
const LOG_EVERY_MS = 60_000;

interface Peer {
  id: NodeId;
  addr: string;
  conn: Connection | null;
  dialing: Promise<Connection> | null;
  /** Messages waiting for the dial in flight. */
  held: Message[];
  backoffMs: number;
  /** No dial before this time (after a failed one). */
  nextDialAt: number;
  lastError: string;
  removed: boolean;
}

export class PeerTransport implements RaftTransport {
  private listener: Listener | null = null;
  private readonly peers = new Map<NodeId, Peer>();
  /** Authenticated connections peers opened to us, by their name (used to answer when no outbound one is up). */
  private readonly inbound = new Map<string, Set<Connection>>();
  private readonly logged = new Map<string, number>();
  /** When reportUnreachable was last called, per peer. */
  private readonly lastReport = new Map<NodeId, number>();
  /** Connections of peers that left or moved, open only until the requests sent on them are answered: why they close. */
  private readonly retiring = new Map<Connection, string>();
  /** Peers a snapshot is being sent to: one transfer each at a time (a snap message meanwhile is dropped). */
  private readonly sendingSnapshot = new Set<NodeId>();
  private readonly receiver: SnapshotReceiver;
  private stopped = false;
  private readonly dialTimeoutMs: number;
  private readonly maxBuffered: number;
  private readonly maxFrame: number;

  constructor(private readonly opts: PeerTransportOptions) {
    this.dialTimeoutMs = opts.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    this.maxBuffered = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED;
    this.maxFrame = opts.maxFrameBytes ?? PEER_MAX_FRAME;
    this.receiver = new SnapshotReceiver(opts.snapshotDir, opts.selfId, opts.logger);
  }

  get address(): { host: string; port: number } {
    if (!this.listener) throw new Error("the peer transport is not started");
    return this.listener.address;
  }

  async start(): Promise<void> {
    if (this.listener) return;
    this.stopped = false;
    await this.receiver.start();
    this.listener = await listen({
      host: this.opts.listenHost,
      port: this.opts.listenPort,
      secret: this.opts.secret,
      role: "peer",
      name: this.opts.selfId,
      maxFrameBytes: this.maxFrame,
      tls: this.opts.tls ? { ...this.opts.tls, requestCert: true } : null,
      onConnection: (conn, hello) => this.onInbound(conn, hello),
      onRefused: (reason, remote, code) => {
        // Key by host, not host:port: a misconfigured node retries from a new ephemeral port every time.
        this.logLimited(
          `refused:${hostOf(remote)}:${code}`,
          `refused a peer connection from ${remote}: ${reason}`,
        );
      },
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const p of this.peers.values()) this.dropPeer(p, "the transport is stopping");
    this.peers.clear();
    for (const conn of [...this.retiring.keys()]) this.finishRetiring(conn);
    for (const set of this.inbound.values()) for (const c of set) c.close("the node is shutting down");
    this.inbound.clear();
    const l = this.listener;
    this.listener = null;
    await l?.close();
    await this.receiver.stop();
  }

  setPeers(peers: Map<NodeId, string>): void {
    for (const [id, p] of this.peers) {
      if (!peers.has(id) || id === this.opts.selfId) {
        this.dropPeer(p, `${id} left the cluster`, { drain: true });
        this.peers.delete(id);
      }
    }
    for (const [id, addr] of peers) {
      if (id === this.opts.selfId) continue;
      const p = this.peers.get(id);
      if (p && p.addr === addr) continue;
      if (p) this.dropPeer(p, `${id} moved to ${addr}`, { drain: true });
      this.peers.set(id, newPeer(id, addr));
    }
  }

  send(messages: Message[]): void {
    if (this.stopped) return;
    const byPeer = new Map<NodeId, Message[]>();
    for (const m of messages) {
      if (m.to === this.opts.selfId) {
        // Not expected from the driver, but harmless to honour (asynchronously, like the network would).
        queueMicrotask(() => this.deliverLocal(m));
        continue;
      }
      if (m.type === "snap") {
        void this.sendSnapshot(m);
        continue;
      }
      const batch = byPeer.get(m.to);
      if (batch) batch.push(m);
      else byPeer.set(m.to, [m]);
    }
    for (const [id, batch] of byPeer) this.sendBatch(id, batch);
  }

  /**
   * Sends a request to a peer (leader forwarding). Rejects with the peer's error (same code, message, data), with
   * code "unreachable" when no connection could be made (the request was not sent), "timeout" when no answer came.
   */
  async request(peer: NodeId, method: string, params: unknown, timeoutMs: number): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    const conn = await this.connection(peer, deadline);
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new PeerUnreachableError(`no connection to ${peer} within ${timeoutMs} ms`);
    // Closed in the meantime: the request would not leave this node, which is what "unreachable" promises.
    if (conn.closed)
      throw new PeerUnreachableError(`the connection to ${peer} closed: ${conn.closeError?.message}`);
    try {
      return await conn.request(method, params, { timeoutMs: remaining });
    } finally {
      if (this.retiring.has(conn) && conn.pendingRequests === 0) this.finishRetiring(conn);
    }
  }

  // ---- Sending --------------------------------------------------------------------------------------------

  private sendBatch(id: NodeId, batch: Message[]): void {
    const conn = this.usableConnection(id);
    if (conn) {
      this.deliver(id, conn, batch);
      return;
    }
    const p = this.peers.get(id);
    if (p?.dialing || (p && this.startDial(p))) {
      // The dial is under way: hold a bounded number of messages so a fresh connection does not lose the first
      // round (votes, the first appends) to the dial.
      const room = MAX_HELD - p.held.length;
      if (room > 0) p.held.push(...batch.slice(0, room));
      if (batch.length > room)
        this.unreachable(id, `more than ${MAX_HELD} messages waited for the connection`);
      return;
    }
    this.unreachable(id, p ? p.lastError : `no address is known for ${id}`);
  }

  /** Writes messages on an open connection; splits a batch too large for one frame; never throws. */
  private deliver(id: NodeId, conn: Connection, batch: Message[]): void {
    if (batch.length === 0) return;
    if (conn.bufferedBytes > this.maxBuffered) {
      this.unreachable(id, `more than ${this.maxBuffered} bytes are queued for ${id} (stuck connection?)`);
      return;
    }
    try {
      conn.notify(RAFT_NOTIFY, batch);
      return;
    } catch (err) {
      if (batch.length === 1) {
        this.logLimited(
          `encode:${id}`,
          `dropped a ${batch[0]!.type} message to ${id}: ${(err as Error).message}`,
        );
        this.unreachable(id, (err as Error).message);
        return;
      }
    }
    // Too large as one frame: one frame per message.
    for (const m of batch) this.deliver(id, conn, [m]);
  }

  private async sendSnapshot(m: Message): Promise<void> {
    const id = m.to;
    // Raft asks again when a transfer outlasts its patience; the one under way carries on (and reports) instead.
    if (this.sendingSnapshot.has(id)) return;
    this.sendingSnapshot.add(id);
    let ok = false;
    try {
      const conn = await this.connection(id, Date.now() + this.dialTimeoutMs);
      await sendSnapshotInChunks(conn, m, Math.min(SNAP_CHUNK_MAX, Math.floor(this.maxFrame / 2)));
      ok = true;
    } catch (err) {
      this.logLimited(`snap:${id}`, `sending a snapshot to ${id} failed: ${(err as Error).message}`);
      this.unreachable(id, (err as Error).message);
    } finally {
      this.sendingSnapshot.delete(id);
    }
    if (!this.stopped) this.opts.reportSnapshot(id, ok);
  }

  /** An open connection to `id`: the outbound one, else the newest inbound one from it. */
  private usableConnection(id: NodeId): Connection | null {
    const p = this.peers.get(id);
    if (p?.conn && !p.conn.closed) return p.conn;
    const set = this.inbound.get(id);
    if (set) {
      let newest: Connection | null = null;
      for (const c of set) if (!c.closed) newest = c;
      if (newest) return newest;
    }
    return null;
  }

  /** A connection for a request: an open one, the dial in flight, or a new dial (unless backing off). */
  private async connection(id: NodeId, deadline: number): Promise<Connection> {
    if (this.stopped) throw new PeerUnreachableError("the peer transport is stopped");
    const open = this.usableConnection(id);
    if (open) return open;
    const p = this.peers.get(id);
    if (!p) throw new PeerUnreachableError(`no address is known for peer ${id}`);
    if (!p.dialing && !this.startDial(p))
      throw new PeerUnreachableError(`${id} is unreachable: ${p.lastError}`);
    const dialing = p.dialing!;
    const ms = Math.max(0, deadline - Date.now());
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        dialing,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new PeerUnreachableError(`no connection to ${id} (${p.addr}) within ${ms} ms`)),
            ms,
          );
        }),
      ]);
    } catch (err) {
      if (err instanceof PeerUnreachableError) throw err;
      throw new PeerUnreachableError(`${id} is unreachable: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- Dialling -------------------------------------------------------------------------------------------

  /** Starts a dial unless one is running or the peer is backing off; returns whether a dial is now in flight. */
  private startDial(p: Peer): boolean {
    if (p.dialing) return true;
    if (this.stopped || p.removed || Date.now() < p.nextDialAt) return false;
    const dialing = this.dial(p);
    p.dialing = dialing;
    dialing.then(
      (conn) => {
        if (p.dialing === dialing) p.dialing = null;
        const held = p.held;
        p.held = [];
        this.deliver(p.id, conn, held);
      },
      (err: Error) => {
        if (p.dialing === dialing) p.dialing = null;
        p.lastError = err.message;
        p.nextDialAt = Date.now() + p.backoffMs;
        p.backoffMs = Math.min(BACKOFF_MAX_MS, p.backoffMs * 2);
        const held = p.held;
        p.held = [];
        if (!p.removed && !this.stopped) {
          this.logLimited(
            `dial:${p.id}:${(err as { code?: string }).code}`,
            `cannot reach ${p.id}: ${err.message}`,
          );
          if (held.length > 0) this.unreachable(p.id, err.message);
        }
      },
    );
    return true;
  }

  private async dial(p: Peer): Promise<Connection> {
    const { host, port } = splitHostPort(p.addr);
    const { conn, hello } = await connect({
      host,
      port,
      secret: this.opts.secret,
      role: "peer",
      name: this.opts.selfId,
      timeoutMs: this.dialTimeoutMs,
      maxFrameBytes: this.maxFrame,
      tls: this.opts.tls ?? null,
      localAddress: this.opts.dialFrom,
    });
    if (this.stopped || p.removed) {
      conn.close("the peer was removed");
      throw new PeerUnreachableError(`${p.id} was removed`);
    }
    if (hello.name !== p.id) {
      // Messages for one member must never reach another: a wrong address is a dial failure.
      conn.close("unexpected node");
      throw new PeerUnreachableError(`${p.addr} is node "${hello.name}", not "${p.id}" (wrong address?)`);
    }
    p.conn = conn;
    p.backoffMs = BACKOFF_MIN_MS;
    p.nextDialAt = 0;
    this.serve(conn, p.id);
    conn.onClose((e) => {
      if (p.conn !== conn) return;
      p.conn = null;
      if (p.removed || this.stopped) return;
      this.opts.logger?.(`connection to ${p.id} lost: ${e.message}`);
      this.connectionClosed(p.id);
    });
    return conn;
  }

  /** Stops sending to a peer; with `drain`, its connection closes once the requests sent on it are answered. */
  private dropPeer(p: Peer, reason: string, { drain = false } = {}): void {
    p.removed = true;
    p.held = [];
    const conn = p.conn;
    p.conn = null;
    if (!conn) return;
    if (!drain || conn.pendingRequests === 0) {
      conn.close(reason);
      return;
    }
    this.retiring.set(conn, reason);
    setTimeout(() => this.finishRetiring(conn), RETIRE_GRACE_MS).unref?.();
  }

  private finishRetiring(conn: Connection): void {
    const reason = this.retiring.get(conn);
    if (reason === undefined) return;
    this.retiring.delete(conn);
    conn.close(reason);
  }

  // ---- Receiving ------------------------------------------------------------------------------------------

  private onInbound(conn: Connection, hello: Hello): void {
    if (this.stopped) {
      conn.close("the node is shutting down");
      return;
    }
    const set = this.inbound.get(hello.name) ?? new Set<Connection>();
    this.inbound.set(hello.name, set);
    set.add(conn);
    conn.onClose(() => {
      const s = this.inbound.get(hello.name);
      if (!s) return;
      s.delete(conn);
      if (s.size === 0) this.inbound.delete(hello.name);
      if (!this.stopped) this.connectionClosed(hello.name);
    });
    this.serve(conn, hello.name);
  }

  /** Both directions' connections carry Raft messages and requests; `from` is the authenticated peer name. */
  private serve(conn: Connection, from: string): void {
    conn.onClose(() => this.receiver.connectionClosed(conn));
    conn.serve({
      notify: (method, params) => {
        if (method !== RAFT_NOTIFY || !Array.isArray(params)) return;
        for (const m of params) this.deliverRemote(m, from);
      },
      request: async (method, params) => {
        if (method === SNAP_BEGIN || method === SNAP_CHUNK || method === SNAP_END) {
          const r = await this.receiver.handle(conn, from, method, params);
          if ("done" in r && !this.deliverRemote(r.done, from))
            throw Object.assign(new Error("malformed snapshot message"), { code: "bad_request" });
          return true;
        }
        if (method === SNAP_REQUEST) {
          if (!this.deliverRemote(params, from))
            throw Object.assign(new Error("malformed snapshot message"), { code: "bad_request" });
          return true;
        }
        if (!this.opts.onRequest)
          throw Object.assign(new Error(`unknown peer method "${method}"`), { code: "unknown_method" });
        return this.opts.onRequest(method, params, from);
      },
    });
  }

  private deliverRemote(raw: unknown, from: string): boolean {
    if (this.stopped) return false;
    const problem = messageProblem(raw);
    if (problem) {
      this.logLimited(`malformed:${from}`, `dropped a malformed message from ${from}: ${problem}`);
      return false;
    }
    const m = raw as Message;
    if (m.from !== from) {
      this.logLimited(
        `impersonated:${from}`,
        `dropped a ${m.type} message claiming to be from ${m.from}, sent by ${from}`,
      );
      return false;
    }
    if (m.to !== this.opts.selfId) {
      this.logLimited(`misaddressed:${from}`, `dropped a ${m.type} message for ${m.to} from ${from}`);
      return false;
    }
    this.deliverLocal(m);
    return true;
  }

  private deliverLocal(m: Message): void {
    if (this.stopped) return;
    try {
      this.opts.onMessage(m);
    } catch (err) {
      this.logLimited("onMessage", `handling a ${m.type} message failed: ${(err as Error).message}`);
    }
  }

  // ---- Reporting ------------------------------------------------------------------------------------------

  private connectionClosed(id: NodeId): void {
    try {
      this.opts.peerConnectionClosed?.(id);
    } catch {
      // the driver's problem, not the network's
    }
  }

  private unreachable(id: NodeId, why: string): void {
    if (this.stopped) return;
    this.logLimited(`unreachable:${id}`, `${id} is unreachable, dropping messages: ${why}`);
    const now = Date.now();
    if (now - (this.lastReport.get(id) ?? 0) < UNREACHABLE_REPORT_MS) return;
    if (this.lastReport.size > 10_000) this.lastReport.clear(); // ids come from messages: keep it bounded
    this.lastReport.set(id, now);
    try {
      this.opts.reportUnreachable(id);
    } catch {
      // the driver's problem, not the network's
    }
  }

  private logLimited(key: string, line: string): void {
    const log = this.opts.logger;
    if (!log) return;
    const now = Date.now();
    const last = this.logged.get(key);
    if (last !== undefined && now - last < LOG_EVERY_MS) return;
    if (this.logged.size > 10_000) this.logged.clear(); // keys include remote hosts: keep the map bounded
    this.logged.set(key, now);
    log(line);
  }
}

function newPeer(id: NodeId, addr: string): Peer {
  return {
    id,
    addr,
    conn: null,
    dialing: null,
    held: [],
    backoffMs: BACKOFF_MIN_MS,
    nextDialAt: 0,
    lastError: "not connected",
    removed: false,
  };
}

/** The host of a remote address for log keys; what is no HOST:PORT ("(unknown)") is its own key. */
function hostOf(remote: string): string {
  try {
    return splitHostPort(remote).host;
  } catch {
    return remote;
  }
}
