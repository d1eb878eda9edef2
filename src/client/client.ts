// The client library used by the CLI and the console: one msgpack connection to any node, typed requests, and
// server-pushed streams. Several endpoints are tried in turn until one answers.
import { connect as netConnect } from "node:net";
import type { Duplex } from "node:stream";
import { type ConnectOptions, connect, type WireTls } from "../wire/client.ts";
import type { Connection } from "../wire/connection.ts";
import { type Endpoint, EndpointError, parseEndpoint } from "./endpoint.ts";
import { httpUpgradeDialer } from "./http-dial.ts";
import type { ClientMethods, ClientStreams } from "./protocol.ts";

export interface ClientOptions {
  /** Endpoints (src/client/endpoint.ts: HOST:PORT, unix:///PATH or http(s)://HOST:PORT), tried in order. */
  endpoints: string[];
  timeoutMs: number;
  /** Shown to the node in the handshake (e.g. "cli", "console"). */
  name?: string;
  /** Connect with TLS: `ca` verifies the nodes, `cert`/`key` identify this client (--client-cert-auth nodes). */
  tls?: WireTls | null;
  /** Opens the byte stream to an endpoint instead of TCP, e.g. SshTunnel.dial (endpoints as the tunnel host sees them). */
  dial?: ConnectOptions["dial"];
  /** Opens a unix socket's stream instead of connecting locally (SshTunnel.dialUnix: the socket on the SSH host). */
  dialUnix?: (path: string) => Promise<Duplex>;
  /** Act as this etcd v2 user (`--username`): logs in right after connecting. */
  login?: { name: string; password: string };
}

/** No endpoint could be reached; `attempts` says why for each. */
export class UnreachableError extends Error {
  readonly code = "unavailable";
  constructor(readonly attempts: { endpoint: string; error: string }[]) {
    super(
      attempts.length === 1
        ? `cannot reach ${attempts[0]!.endpoint}: ${attempts[0]!.error}`
        : `no endpoint answered: ${attempts.map((a) => `${a.endpoint} (${a.error})`).join("; ")}`,
    );
  }
}

export interface Subscription<T> extends AsyncIterable<T> {
  close(): void;
}

export class BerthClient {
  private constructor(
    private readonly conn: Connection,
    readonly endpoint: string,
    private readonly timeoutMs: number,
  ) {}

  /** Endpoints tried before the one that answered, and why each failed (e.g. a unix socket this user may not open). */
  skipped: { endpoint: string; error: string }[] = [];

  static async connect(opts: ClientOptions): Promise<BerthClient> {
    const attempts: { endpoint: string; error: string }[] = [];
    for (const text of opts.endpoints) {
      let endpoint: Endpoint;
      try {
        endpoint = parseEndpoint(text);
      } catch (err) {
        throw new EndpointUsageError((err as Error).message);
      }
      let conn: Connection;
      try {
        ({ conn } = await connect({
          ...(endpoint.kind === "tcp"
            ? { host: endpoint.host, port: endpoint.port, tls: opts.tls ?? null, dial: opts.dial }
            : endpoint.kind === "http"
              ? // TLS (https://) and the user's credentials come before the switch, in the HTTP request.
                {
                  host: endpoint.host,
                  port: endpoint.port,
                  label: endpoint.text,
                  tls: null,
                  dial: httpUpgradeDialer(endpoint, {
                    tls: opts.tls ?? null,
                    dial: opts.dial,
                    login: opts.login,
                  }),
                }
              : // A unix socket is local (or reached through SSH): no TLS, the file's mode is the authentication.
                {
                  host: endpoint.path,
                  port: 0,
                  label: endpoint.text,
                  tls: null,
                  dial: unixDialer(endpoint.path, opts),
                }),
          secret: null,
          role: "client",
          name: opts.name ?? "cli",
          timeoutMs: opts.timeoutMs,
        }));
      } catch (err) {
        const e = err as { code?: string; message: string };
        // A node that refuses us for a reason other than being down (version, auth) is an answer, not a miss.
        if (e.code === "version_mismatch" || e.code === "auth_failed") throw err;
        attempts.push({ endpoint: endpoint.text, error: e.message });
        continue;
      }
      const client = new BerthClient(conn, endpoint.text, opts.timeoutMs);
      client.skipped = attempts;
      if (opts.login && endpoint.kind !== "http") {
        try {
          await client.call("auth.login", opts.login);
        } catch (err) {
          client.close();
          throw err;
        }
      }
      return client;
    }
    throw new UnreachableError(attempts);
  }

  call<M extends keyof ClientMethods>(
    method: M,
    params: ClientMethods[M][0],
    timeoutMs = this.timeoutMs,
  ): Promise<ClientMethods[M][1]> {
    return this.conn.request(method, params, { timeoutMs }) as Promise<ClientMethods[M][1]>;
  }

  subscribe<S extends keyof ClientStreams>(
    method: S,
    params: ClientStreams[S][0],
  ): Subscription<ClientStreams[S][1]> {
    return this.conn.openStream(method, params) as unknown as Subscription<ClientStreams[S][1]>;
  }

  close(): void {
    this.conn.close();
  }
}

/** An endpoint that is malformed or names something berth does not speak (http://): a usage error, not a miss. */
export class EndpointUsageError extends EndpointError {
  readonly code = "bad_endpoint";
}

const UNIX_REASONS: Record<string, string> = {
  ENOENT: "no such socket (is a node running on this machine? see its --client-socket)",
  ECONNREFUSED: "connection refused (no node is listening on it)",
  EACCES: "permission denied (the socket is for root and the berth group)",
  EPERM: "permission denied (the socket is for root and the berth group)",
};

/** Opens a unix socket, here or on the tunnel's host. */
function unixDialer(path: string, opts: ClientOptions): () => Promise<Duplex> {
  if (opts.dialUnix) return () => opts.dialUnix!(path);
  return () =>
    new Promise((resolve, reject) => {
      const s = netConnect(path);
      s.once("connect", () => resolve(s));
      s.once("error", (err: NodeJS.ErrnoException) => {
        s.destroy();
        reject(new Error(UNIX_REASONS[err.code ?? ""] ?? err.message));
      });
    });
}
