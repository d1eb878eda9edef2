// Accepting side: a TCP (or TLS) listener that runs the handshake on each socket and hands established connections
// over. With TLS the Berth handshake (and the cluster secret, if any) runs inside the TLS session.
import { createServer, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { createServer as createTlsServer } from "node:tls";
import { describeTlsError, type WireTls } from "./client.ts";
import { Connection, formatAddress } from "./connection.ts";
import { WireError } from "./errors.ts";
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, type Hello, handshake, type Role } from "./handshake.ts";
import { looksLikeHttp } from "./http-upgrade.ts";

export interface ListenOptions {
  host: string;
  /** 0 picks a free port (see Listener.address). */
  port: number;
  /** Listen on this unix socket path instead of host:port (the caller prepares the path and sets its mode). */
  path?: string;
  /** When set, connectors must prove they know it (mutual challenge-response). */
  secret: Buffer | null;
  /** The kind of connection this address serves; connectors of the other role are refused. */
  role: Role;
  /** This node's name, sent in the hello. */
  name: string;
  /** `socket`: the accepted stream (a TLSSocket with TLS: its peer certificate names the client). */
  onConnection(conn: Connection, peerHello: Hello, socket: Socket): void;
  /** A connection refused during the handshake (wrong secret, version, role, timeout...). */
  onRefused?(reason: string, remoteAddress: string, code: string): void;
  handshakeTimeoutMs?: number;
  /** Sockets still in the handshake at once; more are dropped so idle sockets cannot exhaust the node. */
  maxHandshakes?: number;
  maxFrameBytes?: number;
  streamBufferLimit?: number;
  /** Serve TLS with `cert`/`key`; with `requestCert`, connectors must present a certificate signed by `ca`. */
  tls?: WireTls | null;
  /** Caps open connections (counted from accept to close): a connection without a slot is closed at once. */
  gate?: ConnectionGate;
  /** Per connection: requests served at once and streams open at once (see ConnectionOptions). */
  maxServedRequests?: number;
  maxServedStreams?: number;
  /**
   * Connections whose first bytes are an HTTP request line are handed here (still unread: the bytes are put back)
   * instead of running the handshake; the listener then waits for the connector's first bytes before it sends its
   * hello (a Berth connector sends its own hello at once, so nothing waits longer).
   */
  onHttp?(socket: Socket): void;
}

/** A listener's place for one connection (see connection-budget.ts). */
export interface ConnectionSlot {
  /** Whether nothing is being served on the connection now: at the limit, idle connections make room, oldest first. */
  idle(yes: boolean): void;
  /** The connection closed (again or after an eviction: no effect). */
  release(): void;
}

/** A limit on a listener's open connections, counted from accept to close. */
export interface ConnectionGate {
  /** A slot for a new connection, or null: close it. `evict` closes the connection if it is made room for later. */
  acquire(remote: string, evict: () => void): ConnectionSlot | null;
}

export interface Listener {
  readonly address: { host: string; port: number };
  /** Established connections currently open. */
  readonly connectionCount: number;
  /**
   * Runs the handshake on a stream accepted elsewhere (an HTTP connection upgraded to the client protocol) and
   * serves it as this listener's connections, closed with them; `onConnection` replaces the listener's.
   */
  adopt(stream: Duplex, remote: string, onConnection: ListenOptions["onConnection"]): void;
  /** Stops accepting and closes every connection (established and handshaking). */
  close(): Promise<void>;
}

export function listen(opts: ListenOptions): Promise<Listener> {
  const conns = new Set<Connection>();
  const sockets = new Set<Socket>();
  const established = new WeakSet<Socket>();
  /** Sockets in the handshake, the oldest first: at maxHandshakes the oldest makes room for a newcomer. */
  const handshaking = new Set<Socket>();
  let closing = false;
  const maxHandshakes = opts.maxHandshakes ?? 256;
  const tls = opts.tls ?? null;
  /** Raw TCP sockets still in the TLS handshake (destroyed when the listener closes). */
  const raw = new Set<Socket>();
  /** Remotes the gate turned away or closed: their aborted TLS handshakes are not reported once more each. */
  const turnedAway = new Set<string>();
  /**
   * Gate slots by the accepted socket: by object, as every unix socket connection has the same (empty) remote
   * address. With TLS the slot is the raw TCP socket's, taken before the TLS socket exists.
   */
  const slots = new WeakMap<Duplex, ConnectionSlot>();
  /** With TLS, the raw socket under each TLS socket, by the remote address both report (Bun links them no other way). */
  const rawByRemote = new Map<string, Socket>();
  /** A connection's name in logs and refusals: the remote address, or a unix listener's path. */
  const remoteOf = (s: Socket) => opts.path ?? formatAddress(s.remoteAddress, s.remotePort);
  const forget = (remote: string) => {
    if (!tls) return;
    if (turnedAway.size >= 1024) turnedAway.clear();
    turnedAway.add(remote);
  };
  /** Takes a gate slot for a freshly accepted socket (TCP or unix), released when it closes; false: destroyed. */
  const admit = (s: Socket): boolean => {
    const gate = opts.gate;
    if (!gate) return true;
    const remote = remoteOf(s);
    s.on("error", () => {});
    const slot = gate.acquire(remote, () => {
      forget(remote);
      s.destroy();
    });
    if (!slot) {
      forget(remote);
      s.destroy();
      return false;
    }
    // Idle until the handshake is done: a connection that never completes it may be closed to make room.
    slot.idle(true);
    slots.set(s, slot);
    if (tls) rawByRemote.set(remote, s);
    s.once("close", () => {
      slot.release();
      if (rawByRemote.get(remote) === s) rawByRemote.delete(remote);
    });
    return true;
  };
  const onSocket = (socket: Socket) => {
    // With TLS the slot was taken when the TCP connection arrived (see the "connection" handler below).
    if (!tls && !admit(socket)) return;
    const remote = remoteOf(socket);
    const rawSocket = tls ? rawByRemote.get(remote) : socket;
    const slot = rawSocket && slots.get(rawSocket);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {}); // reported through the handshake or the Connection
    if (closing) {
      opts.onRefused?.("the listener is closing", remote, "busy");
      socket.destroy();
      return;
    }
    if (handshaking.size >= maxHandshakes) {
      // Idle sockets must not lock clients out: the one that has waited longest goes (its handshake fails).
      const oldest = handshaking.values().next().value as Socket;
      handshaking.delete(oldest);
      oldest.destroy();
    }
    handshaking.add(socket);
    if (opts.onHttp) sniff(socket, remote, slot);
    else runHandshake(socket, remote, opts.onConnection, slot);
  };
  /** Waits for the connector's first bytes: an HTTP request goes to onHttp, anything else to the handshake. */
  const sniff = (socket: Socket, remote: string, slot: ConnectionSlot | undefined) => {
    const timer = setTimeout(() => socket.destroy(), opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS);
    const stop = () => clearTimeout(timer);
    socket.once("close", stop);
    socket.once("data", (first: Buffer) => {
      stop();
      socket.pause();
      socket.unshift(first);
      if (!looksLikeHttp(first)) {
        runHandshake(socket, remote, opts.onConnection, slot);
        socket.resume(); // paused above: its data listener alone would not restart it
        return;
      }
      handshaking.delete(socket);
      if (closing) socket.destroy();
      else opts.onHttp?.(socket);
    });
  };
  /** `slot`: the connection's gate slot, no longer idle once the handshake is done. */
  const runHandshake = (
    socket: Duplex,
    remote: string,
    onConnection: ListenOptions["onConnection"],
    slot?: ConnectionSlot,
  ) => {
    handshake(socket, {
      side: "accept",
      role: opts.role,
      name: opts.name,
      secret: opts.secret,
      timeoutMs: opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      label: remote,
    }).then(
      ({ hello, decoder, frames }) => {
        handshaking.delete(socket as Socket);
        if (closing) {
          socket.destroy();
          return;
        }
        slot?.idle(false);
        const conn = new Connection(socket, {
          decoder,
          initialFrames: frames,
          label: `${hello.name} (${remote})`,
          maxFrameBytes: opts.maxFrameBytes,
          streamBufferLimit: opts.streamBufferLimit,
          maxServedRequests: opts.maxServedRequests,
          maxServedStreams: opts.maxServedStreams,
        });
        conns.add(conn);
        established.add(socket as Socket);
        conn.onClose(() => conns.delete(conn));
        try {
          onConnection(conn, hello, socket as Socket);
        } finally {
          socket.resume();
        }
      },
      (err: WireError) => {
        handshaking.delete(socket as Socket);
        opts.onRefused?.(err.message, remote, err.code);
      },
    );
  };
  let server: Server;
  if (tls) {
    if (!tls.cert || !tls.key)
      return Promise.reject(new WireError("listen_failed", "a TLS listener needs a certificate and a key"));
    const tlsServer = createTlsServer(
      {
        cert: tls.cert,
        key: tls.key,
        ca: tls.ca,
        requestCert: tls.requestCert === true,
        rejectUnauthorized: tls.requestCert === true,
        handshakeTimeout: opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
        noDelay: true,
      },
      onSocket,
    );
    tlsServer.on("connection", (s: Socket) => {
      if (!admit(s)) return;
      raw.add(s);
      s.once("close", () => raw.delete(s));
    });
    tlsServer.on("tlsClientError", (err: NodeJS.ErrnoException, s: Socket) => {
      if (turnedAway.delete(formatAddress(s.remoteAddress, s.remotePort))) return;
      const why = /certificate|CERT/i.test(`${err.code} ${err.message}`)
        ? `TLS: the client certificate was refused (${err.message})`
        : describeTlsError(err).replace(/; pass .*$/, "");
      opts.onRefused?.(why, formatAddress(s.remoteAddress, s.remotePort), "tls_failed");
      s.destroy();
    });
    server = tlsServer;
  } else {
    server = createServer({ noDelay: true }, onSocket);
  }
  return new Promise((resolve, reject) => {
    const onListenError = (err: NodeJS.ErrnoException) => {
      reject(
        new WireError(
          err.code === "EADDRINUSE" ? "address_in_use" : "listen_failed",
          `cannot listen on ${opts.path ?? formatAddress(opts.host, opts.port)}: ${err.message}`,
          { cause: err },
        ),
      );
    };
    server.once("error", onListenError);
    const listening = () => {
      server.off("error", onListenError);
      server.on("error", () => {});
      const a = server.address();
      const address =
        a && typeof a === "object"
          ? { host: a.address, port: a.port }
          : { host: opts.path ?? opts.host, port: opts.path ? 0 : opts.port };
      resolve({
        address,
        adopt(stream, remote, onConnection) {
          if (closing) {
            stream.destroy();
            return;
          }
          sockets.add(stream as Socket);
          stream.on("close", () => sockets.delete(stream as Socket));
          stream.on("error", () => {});
          runHandshake(stream, remote, onConnection);
          stream.resume();
        },
        get connectionCount() {
          return conns.size;
        },
        close: () =>
          new Promise<void>((done) => {
            if (closing) return done();
            closing = true;
            for (const c of [...conns]) c.close("the node is shutting down");
            const killer = setTimeout(() => {
              for (const s of sockets) s.destroy();
              for (const s of raw) s.destroy();
            }, 500);
            server.close(() => {
              clearTimeout(killer);
              done();
            });
            for (const s of sockets) if (!established.has(s)) s.destroy();
          }),
      });
    };
    if (opts.path !== undefined) server.listen(opts.path, listening);
    else server.listen(opts.port, opts.host, listening);
  });
}
