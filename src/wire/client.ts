// Connecting side: opens a TCP connection and runs the handshake; the result is an established Connection.
import { connect as netConnect } from "node:net";
import { Connection, formatAddress } from "./connection.ts";
import { UnavailableError, type WireError, WireTimeoutError } from "./errors.ts";
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, type Hello, handshake, type Role } from "./handshake.ts";

export interface ConnectOptions {
  host: string;
  port: number;
  /** Used when the node requires the cluster secret (peer addresses); null for client addresses. */
  secret: Buffer | null;
  role: Role;
  /** This side's name, shown to the node ("n2", "cli", "console"). */
  name: string;
  /** Limit for TCP connect and handshake together (default 5 s). */
  timeoutMs?: number;
  maxFrameBytes?: number;
  streamBufferLimit?: number;
}

const REASONS: Record<string, string> = {
  ECONNREFUSED: "connection refused (is a node running there?)",
  ECONNRESET: "connection reset",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "host name not found",
  EAI_AGAIN: "host name lookup failed",
  ETIMEDOUT: "connection timed out",
};

export function connect(opts: ConnectOptions): Promise<{ conn: Connection; hello: Hello }> {
  const label = formatAddress(opts.host, opts.port);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: opts.host, port: opts.port, noDelay: true });
    let connected = false;
    const timer = setTimeout(() => {
      if (connected) return;
      socket.destroy();
      reject(new WireTimeoutError(`connecting to ${label} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("error", (err: NodeJS.ErrnoException) => {
      if (connected) return;
      clearTimeout(timer);
      socket.destroy();
      const why = (err.code && REASONS[err.code]) ?? err.message;
      reject(new UnavailableError(`cannot connect to ${label}: ${why}`));
    });
    socket.once("connect", () => {
      connected = true;
      clearTimeout(timer);
      socket.on("error", () => {}); // reported through the handshake or the Connection
      handshake(socket, {
        side: "connect",
        role: opts.role,
        name: opts.name,
        secret: opts.secret,
        timeoutMs: Math.max(1, deadline - Date.now()),
        label,
      }).then(
        ({ hello, decoder, frames }) => {
          const conn = new Connection(socket, {
            decoder,
            initialFrames: frames,
            label: `${hello.name} (${label})`,
            maxFrameBytes: opts.maxFrameBytes,
            streamBufferLimit: opts.streamBufferLimit,
          });
          socket.resume();
          resolve({ conn, hello });
        },
        (err: WireError) => reject(err),
      );
    });
  });
}
