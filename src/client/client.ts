// The client library used by the CLI and the console: one msgpack connection to any node, typed requests, and
// server-pushed streams. Several endpoints are tried in turn until one answers.
import { type ConnectOptions, connect, type WireTls } from "../wire/client.ts";
import type { Connection } from "../wire/connection.ts";
import type { ClientMethods, ClientStreams } from "./protocol.ts";

export interface ClientOptions {
  /** HOST:PORT of nodes' client addresses, tried in order. */
  endpoints: string[];
  timeoutMs: number;
  /** Shown to the node in the handshake (e.g. "cli", "console"). */
  name?: string;
  /** Connect with TLS: `ca` verifies the nodes, `cert`/`key` identify this client (--client-cert-auth nodes). */
  tls?: WireTls | null;
  /** Opens the byte stream to an endpoint instead of TCP, e.g. SshTunnel.dial (endpoints as the tunnel host sees them). */
  dial?: ConnectOptions["dial"];
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

  static async connect(opts: ClientOptions): Promise<BerthClient> {
    const attempts: { endpoint: string; error: string }[] = [];
    for (const endpoint of opts.endpoints) {
      try {
        const { host, port } = splitHostPort(endpoint);
        const { conn } = await connect({
          host,
          port,
          secret: null,
          role: "client",
          name: opts.name ?? "cli",
          timeoutMs: opts.timeoutMs,
          tls: opts.tls ?? null,
          dial: opts.dial,
        });
        return new BerthClient(conn, endpoint, opts.timeoutMs);
      } catch (err) {
        const e = err as { code?: string; message: string };
        // A node that refuses us for a reason other than being down (version, auth) is an answer, not a miss.
        if (e.code === "version_mismatch" || e.code === "auth_failed") throw err;
        attempts.push({ endpoint, error: e.message });
      }
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

export function splitHostPort(endpoint: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(endpoint.trim());
  if (!m) throw new Error(`endpoint "${endpoint}" must be HOST:PORT`);
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}
