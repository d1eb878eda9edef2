// Connecting side: opens a TCP (or TLS) connection and runs the handshake; the result is an established Connection.
import { connect as netConnect } from "node:net";
import type { Duplex } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import { type ByteStream, Connection, formatAddress } from "./connection.ts";
import { UnavailableError, WireError, WireTimeoutError } from "./errors.ts";
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, type Hello, handshake, type Role } from "./handshake.ts";

export interface ConnectOptions {
  host: string;
  port: number;
  /** Proved to the node, which must prove it back or is refused (peer addresses); null for client addresses. */
  secret: Buffer | null;
  role: Role;
  /** This side's name, shown to the node ("n2", "cli", "console"). */
  name: string;
  /** Limit for TCP connect and handshake together (default 5 s). */
  timeoutMs?: number;
  maxFrameBytes?: number;
  streamBufferLimit?: number;
  /** Speak TLS: verify the node against `ca` (else the system CAs) and present `cert`/`key` when given. */
  tls?: WireTls | null;
  /** The local IP the connection leaves from (default: the system's choice). */
  localAddress?: string;
  /** How errors name the endpoint (default host:port), e.g. unix:///run/berth/berth.sock. */
  label?: string;
  /** Opens the byte stream to host:port instead of a TCP connection (e.g. a channel through an SSH tunnel). */
  dial?: (host: string, port: number) => Promise<Duplex>;
}

/** TLS material (PEM) for either side. The Berth handshake (and the cluster secret) still runs on top. */
export interface WireTls {
  /** This side's certificate chain; required to listen, optional to connect (a client certificate). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** CAs to verify the other side against (connect: the server; listen: client certificates). */
  ca?: string | Buffer;
  /** Listen: require a client certificate signed by `ca`. */
  requestCert?: boolean;
  /** Connect: the name to verify the server certificate against (default: host). */
  servername?: string;
}

/** Turns OpenSSL's terse reasons into a line that says what to fix. */
export function describeTlsError(err: NodeJS.ErrnoException): string {
  const code = err.code ?? "";
  const msg = err.message;
  if (/certificate required|ALERT_CERTIFICATE_REQUIRED|did not return a certificate/i.test(`${code} ${msg}`))
    return `TLS: the node requires a client certificate (${msg}); pass --cert-file and --key-file`;
  if (/bad certificate|unknown ca|ALERT_BAD_CERTIFICATE|ALERT_UNKNOWN_CA/i.test(`${code} ${msg}`))
    return `TLS: the node refused this client certificate (${msg}); is it signed by the cluster CA?`;
  if (
    /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|DEPTH_ZERO/.test(code) ||
    /certificate verify failed|self[- ]signed|unable to (get|verify)/i.test(msg)
  )
    return `TLS: the server certificate is not trusted (${msg}); pass the cluster CA with --ca-file`;
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID")
    return `TLS: the server certificate does not match the address (${msg})`;
  if (/wrong version number|packet length too long|unknown protocol|WRONG_VERSION/i.test(code + msg))
    return `TLS: the other end does not speak TLS (${msg})`;
  return `TLS handshake failed: ${msg}`;
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

/** Why a TCP connection failed, in words. */
export function describeConnectError(err: NodeJS.ErrnoException): string {
  return (err.code && REASONS[err.code]) ?? err.message;
}

export async function connect(opts: ConnectOptions): Promise<{ conn: Connection; hello: Hello }> {
  const label = opts.label ?? formatAddress(opts.host, opts.port);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const tunnelled = opts.dial ? await dialWithin(opts.dial, opts.host, opts.port, timeoutMs, label) : null;
  return new Promise((resolve, reject) => {
    const tls = opts.tls ?? null;
    const socket: ByteStream = tls
      ? tlsConnect({
          socket: tunnelled ?? undefined,
          host: opts.host,
          port: opts.port,
          noDelay: true,
          ca: tls.ca,
          cert: tls.cert,
          key: tls.key,
          servername: tls.servername ?? (isIp(opts.host) ? undefined : opts.host),
          rejectUnauthorized: true,
          localAddress: opts.localAddress,
        })
      : (tunnelled ??
        netConnect({ host: opts.host, port: opts.port, noDelay: true, localAddress: opts.localAddress }));
    let connected = false;
    /** A TLS alert that arrives after the TLS handshake (a refused client certificate, in TLS 1.3). */
    let tlsError: string | null = null;
    const timer = setTimeout(
      () => {
        if (connected) return;
        socket.destroy();
        reject(new WireTimeoutError(`connecting to ${label} timed out after ${timeoutMs} ms`));
      },
      Math.max(1, deadline - Date.now()),
    );
    socket.once("error", (err: NodeJS.ErrnoException) => {
      if (connected) return;
      clearTimeout(timer);
      socket.destroy();
      const why = (err.code && REASONS[err.code]) ?? (tls ? describeTlsError(err) : err.message);
      reject(new UnavailableError(`cannot connect to ${label}: ${why}`));
    });
    const onConnected = () => {
      connected = true;
      clearTimeout(timer);
      socket.on("error", (err: NodeJS.ErrnoException) => {
        // Otherwise reported through the handshake or the Connection; a TLS alert deserves its own words.
        if (tls && !tlsError && /SSL|TLS|ALERT|certificate/i.test(`${err.code} ${err.message}`))
          tlsError = describeTlsError(err);
      });
      // A dialled stream may come paused (an HTTP upgrade put its first bytes back): the handshake reads it.
      queueMicrotask(() => socket.resume());
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
        (err: WireError) =>
          reject(
            tlsError && err.code === "unavailable"
              ? new UnavailableError(`cannot connect to ${label}: ${tlsError}`)
              : tls?.cert && err.code === "unavailable" && /closed the connection/.test(err.message)
                ? new UnavailableError(
                    `${err.message} (TLS: the node may have refused this client certificate; ` +
                      "is it signed by the cluster CA?)",
                  )
                : !tls && err.code === "unavailable" && /closed the connection/.test(err.message)
                  ? new UnavailableError(
                      `${err.message} (if it serves TLS, connect with TLS: --ca-file, and --cert-file/--key-file ` +
                        "for client certificates)",
                    )
                  : err,
          ),
      );
    };
    // A tunnelled stream is open already (unless TLS still has to run over it).
    if (tunnelled && !tls) queueMicrotask(onConnected);
    else socket.once(tls ? "secureConnect" : "connect", onConnected);
  });
}

/** The dialled stream, or an UnavailableError that names the endpoint; bounded by the connect timeout. */
async function dialWithin(
  dial: NonNullable<ConnectOptions["dial"]>,
  host: string,
  port: number,
  timeoutMs: number,
  label: string,
): Promise<Duplex> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      dial(host, port),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new WireTimeoutError(`connecting to ${label} timed out after ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } catch (err) {
    // A refusal (wrong credentials) is an answer, and says so itself.
    if (err instanceof WireTimeoutError || (err instanceof WireError && err.code === "auth_failed"))
      throw err;
    throw new UnavailableError(`cannot connect to ${label}: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}
