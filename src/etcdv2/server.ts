// The etcd v2 HTTP API of a node (node:http, no framework): routing as etcd's Go ServeMux does it, CORS for
// every answer, and a catch-all so a failing handler answers 500 instead of taking the server down.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { isBerthUpgrade, SWITCHING_PROTOCOLS, UPGRADE_UNAUTHORIZED } from "../wire/http-upgrade.ts";
import type { ConnectionGate, ConnectionSlot } from "../wire/server.ts";
import { AUTH_DISABLED, type Caller, GUEST, type KeyAccess } from "./access.ts";
import { handleAuth } from "./auth/http.ts";
import { verifiedCertName } from "./client-cert.ts";
import { InFlightBytes } from "./in-flight.ts";
import { handleKeys } from "./keys.ts";
import { handleMachines, handleMembers } from "./members.ts";
import { cleanPath, EscapeError, goUnescape } from "./params.ts";
import {
  BODY_DEADLINE_MS,
  HEAD_DEADLINE_MS,
  MAX_IN_FLIGHT_BYTES,
  startRawHttp,
  TOO_MANY_CONNECTIONS,
} from "./raw.ts";
import { corsHeaders, notFound, send, sendKeyFailure } from "./respond.ts";
import { handleHealth, handleMetrics, handleStats, handleVersion } from "./stats.ts";
import type { BodyResult, HttpContext, HttpDeps, HttpRequest, HttpResponse, Upgrader } from "./types.ts";

export type { HttpDeps, HttpWatch, Upgrader } from "./types.ts";

/** HTTPS material: certificate and key, and with `requestCert` the CA client certificates must be signed by. */
export interface HttpTls {
  cert: string | Buffer;
  key: string | Buffer;
  ca?: string | Buffer;
  requestCert?: boolean;
}

/** /metrics: the page, and where every request's method, status and duration go. */
export interface HttpMetrics {
  render(): Promise<string>;
  observe(method: string, status: number, seconds: number): void;
}

export interface HttpApi {
  /** Where it listens (port 0 when it only serves connections handed to it). */
  address: { host: string; port: number };
  /**
   * Serves a connection accepted elsewhere, the same way (the client port's HTTP requests): plaintext HTTP bytes
   * on it (a TLSSocket's: its verified certificate names the caller as on the HTTP port).
   */
  serve(socket: Socket): void;
  close(): Promise<void>;
}

export async function startHttpApi(opts: {
  /** Where to listen; left out: no listener (`--http-addr off`), only serve(). */
  host?: string;
  port?: number;
  deps: HttpDeps;
  logger?: (l: string) => void;
  /** Serve HTTPS instead of HTTP. */
  tls?: HttpTls | null;
  /** Whether peers speak TLS (for the peer URLs in member lists). */
  peerTls?: boolean;
  /** The limit on this listener's connections. */
  gate?: ConnectionGate | null;
  /** Key permissions and who a request comes from (default: auth disabled, everybody guest). */
  keys?: KeyAccess;
  callerOf?: (req: HttpRequest) => Caller | Promise<Caller>;
  /** Takes over the listener's requests to switch to the msgpack client protocol (none: they get etcd's 404). */
  upgrader?: Upgrader | null;
  metrics?: HttpMetrics;
}): Promise<HttpApi> {
  const ctx: HttpContext = {
    deps: opts.deps,
    keys: opts.keys ?? AUTH_DISABLED,
    callerOf: opts.callerOf ?? (() => GUEST),
    log: opts.logger ?? (() => {}),
    schemes: { client: opts.tls ? "https" : "http", peer: opts.peerTls ? "https" : "http" },
    metrics: opts.metrics ?? null,
  };
  const metrics = opts.metrics;
  const handle = (req: HttpRequest, res: HttpResponse) => {
    if (metrics) {
      // Measured until the answer ends or the client goes away (status 0: nothing was answered).
      const started = performance.now();
      res.onClose(() => metrics.observe(req.method, res.status, (performance.now() - started) / 1000));
    }
    route(ctx, req, res).catch((e: unknown) => failed(ctx, req, res, e));
  };
  // In the compiled binary, Bun's node:http layer costs far more per request than the handlers do: serve HTTP
  // on Bun's own TCP sockets there (same bytes on the wire), and keep node:http for Node.
  const upgrader = opts.upgrader ?? null;
  const listenAt = opts.host === undefined ? null : { host: opts.host, port: opts.port ?? 0 };
  if (typeof Bun !== "undefined" && process.env.BERTH_HTTP_NODE !== "1")
    return startRawHttp(listenAt, handle, ctx.log, opts.tls ?? null, opts.gate ?? null, upgrader);
  return startNodeHttp(listenAt, handle, ctx.log, opts.tls ?? null, opts.gate ?? null, upgrader);
}

async function startNodeHttp(
  listenAt: { host: string; port: number } | null,
  handle: (req: HttpRequest, res: HttpResponse) => void,
  log: (l: string) => void,
  tls: HttpTls | null,
  gate: ConnectionGate | null,
  upgrader: Upgrader | null,
): Promise<HttpApi> {
  const inFlight = new InFlightBytes(MAX_IN_FLIGHT_BYTES);
  const slots = new WeakMap<Socket, ConnectionSlot>();
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const slot = slots.get(req.socket);
    if (slot) {
      slot.idle(false);
      res.once("close", () => slot.idle(!req.socket.destroyed));
    }
    handle(new NodeRequest(req, inFlight), new NodeResponse(res));
  };
  // Connections handed over (serve(), and upgrades to anything but Berth's) are plaintext HTTP by then.
  const inner = createServer(onRequest);
  inner.headersTimeout = HEAD_DEADLINE_MS;
  inner.requestTimeout = HEAD_DEADLINE_MS + BODY_DEADLINE_MS;
  const serve = (socket: Socket) => {
    inner.emit("connection", socket);
    socket.resume();
  };
  const closeInner = () => inner.closeAllConnections();
  if (listenAt === null) return { address: { host: "", port: 0 }, serve, close: async () => closeInner() };
  const server = tls
    ? createHttpsServer(
        {
          cert: tls.cert,
          key: tls.key,
          ca: tls.ca,
          requestCert: tls.requestCert === true,
          rejectUnauthorized: tls.requestCert === true,
        },
        onRequest,
      )
    : createServer(onRequest);
  // The raw server's deadlines (Node answers 408 past them).
  server.headersTimeout = HEAD_DEADLINE_MS;
  server.requestTimeout = HEAD_DEADLINE_MS + BODY_DEADLINE_MS;
  if (gate)
    server.on("connection", (socket: Socket) => {
      const slot = gate.acquire(`${socket.remoteAddress}`, () => socket.destroy());
      if (!slot) {
        socket.end(TOO_MANY_CONNECTIONS);
        return;
      }
      slot.idle(true);
      slots.set(socket, slot);
      socket.once("close", () => slot.release());
    });
  if (tls)
    server.on("tlsClientError", (e: Error, s: { remoteAddress?: string }) =>
      log(`http: TLS handshake with ${s.remoteAddress ?? "?"} failed: ${e.message}`),
    );
  if (upgrader)
    server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
      const r = new NodeRequest(req, inFlight);
      if (!isBerthUpgrade(req.method ?? "", req.url ?? "", (n) => r.header(n))) {
        // Not ours: the request goes to etcd's API as it came (Node parsed its head already).
        socket.unshift(Buffer.concat([Buffer.from(requestHead(req), "latin1"), head]));
        return serve(socket);
      }
      slots.get(socket)?.idle(false);
      upgrader.caller(r).then(
        (caller) => {
          if (caller === null) {
            socket.end(UPGRADE_UNAUTHORIZED);
            return;
          }
          socket.write(SWITCHING_PROTOCOLS);
          if (head.length > 0) socket.unshift(head);
          upgrader.take(socket, caller, socket.remoteAddress ?? "");
        },
        (e: Error) => {
          log(`http: upgrade from ${socket.remoteAddress} failed: ${e.message}`);
          socket.destroy();
        },
      );
    });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listenAt.port, listenAt.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (e) => log(`http: server error: ${e.message}`));
  const addr = server.address() as AddressInfo;
  return {
    address: { host: addr.address, port: addr.port },
    serve,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Long polls never end by themselves; dropping their connections also frees their watchers.
        server.closeAllConnections();
        closeInner();
      }),
  };
}

/** A parsed request head as it was sent (names as the client spelled them). */
function requestHead(req: IncomingMessage): string {
  let head = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
    head += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
  return `${head}\r\n`;
}

class NodeRequest implements HttpRequest {
  constructor(
    private readonly req: IncomingMessage,
    private readonly inFlight: InFlightBytes,
  ) {}
  get method(): string {
    return this.req.method ?? "GET";
  }
  get url(): string {
    return this.req.url ?? "/";
  }
  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v.join(", ") : v;
  }
  discard(): void {
    this.req.resume();
  }
  clientCertName(): string | null {
    return verifiedCertName(this.req.socket);
  }
  /** Reads the body, giving up (without buffering the rest) once it passes `limit` bytes. */
  readBody(limit: number): Promise<BodyResult> {
    const req = this.req;
    const declared = Number(req.headers["content-length"] ?? "0");
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      return Promise.resolve({ ok: false, tooLarge: true });
    }
    const inFlight = this.inFlight;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      // The body counts against the server's in-flight budget while it is read.
      const finish = () => {
        done = true;
        inFlight.give(size);
      };
      req.on("data", (chunk: Buffer) => {
        if (done) return;
        if (size + chunk.length > limit) {
          finish();
          resolve({ ok: false, tooLarge: true });
          return;
        }
        if (!inFlight.take(chunk.length)) {
          finish();
          reject(new Error("too much request data in flight"));
          req.socket.destroy();
          return;
        }
        size += chunk.length;
        chunks.push(chunk);
      });
      req.on("end", () => {
        if (done) return;
        finish();
        resolve({ ok: true, body: Buffer.concat(chunks) });
      });
      req.on("error", (e) => {
        if (done) return;
        finish();
        reject(e);
      });
    });
  }
}

class NodeResponse implements HttpResponse {
  constructor(private readonly res: ServerResponse) {}
  get headersSent(): boolean {
    return this.res.headersSent;
  }
  get status(): number {
    return this.res.headersSent ? this.res.statusCode : 0;
  }
  get finished(): boolean {
    return this.res.writableEnded;
  }
  writeHead(status: number, raw: string[]): void {
    this.res.writeHead(status, raw);
  }
  flushHeaders(): void {
    this.res.flushHeaders();
  }
  write(chunk: string): void {
    this.res.write(chunk);
  }
  get bufferedBytes(): number {
    return this.res.writableLength + (this.res.socket?.writableLength ?? 0);
  }
  end(body?: Buffer | string): void {
    if (body === undefined) this.res.end();
    else this.res.end(body);
  }
  onClose(fn: () => void): void {
    this.res.on("close", fn);
  }
  destroy(): void {
    this.res.destroy();
  }
}

/** Last resort: log, and answer etcd's 300 Raft Internal Error if nothing was sent yet. */
function failed(ctx: HttpContext, req: HttpRequest, res: HttpResponse, e: unknown): void {
  ctx.log(
    `http: ${req.method} ${req.url} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
  );
  try {
    if (!res.headersSent) sendKeyFailure(ctx, res, e);
    else if (!res.finished) res.end();
  } catch {
    res.destroy();
  }
}

/** Go's ServeMux keeps a trailing slash when it cleans a path. */
function muxClean(p: string): string {
  if (p === "") return "/";
  const c = cleanPath(p);
  return p.endsWith("/") && c !== "/" ? `${c}/` : c;
}

async function route(ctx: HttpContext, req: HttpRequest, res: HttpResponse): Promise<void> {
  let target = req.url;
  if (!target.startsWith("/")) {
    // Absolute-form request targets (proxies): keep path and query only.
    const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?]*(.*)$/i.exec(target);
    target = m?.[1] || "/";
  }
  const q = target.indexOf("?");
  const rawPath = q < 0 ? target : target.slice(0, q);
  const rawQuery = q < 0 ? "" : target.slice(q + 1);
  let path: string;
  try {
    path = goUnescape(rawPath, false);
  } catch (e) {
    if (!(e instanceof EscapeError)) throw e;
    // Go's server rejects an undecodable request path before any handler runs.
    req.discard();
    res.writeHead(400, [
      "Content-Type",
      "text/plain; charset=utf-8",
      "Connection",
      "close",
      "Content-Length",
      "15",
    ]);
    res.end("400 Bad Request");
    return;
  }

  // etcd's CORS handler answers preflight requests itself.
  if (req.method === "OPTIONS") {
    req.discard();
    return send(res, 200, corsHeaders(), "");
  }

  const clean = muxClean(path);
  if (clean !== path) {
    req.discard();
    const location = rawQuery === "" ? clean : `${clean}?${rawQuery}`;
    const getLike = req.method === "GET" || req.method === "HEAD";
    return send(
      res,
      301,
      [
        ...corsHeaders(),
        ["Location", location],
        ...(getLike ? ([["Content-Type", "text/html; charset=utf-8"]] as [string, string][]) : []),
      ],
      getLike ? `<a href="${escapeHtml(location)}">Moved Permanently</a>.\n\n` : "",
    );
  }

  if (path === "/v2/keys" || path.startsWith("/v2/keys/"))
    return handleKeys(ctx, req, res, path.slice("/v2/keys".length), rawQuery);
  if (path === "/v2/members" || path.startsWith("/v2/members/")) return handleMembers(ctx, req, res, path);
  if (ctx.deps.auth && path.startsWith("/v2/auth/") && (await handleAuth(ctx, ctx.deps.auth, req, res, path)))
    return;
  if (path === "/v2/machines") return handleMachines(ctx, req, res);
  if (path === "/v2/stats/store") return handleStats(ctx, req, res, "store");
  if (path === "/v2/stats/self") return handleStats(ctx, req, res, "self");
  if (path === "/v2/stats/leader") return handleStats(ctx, req, res, "leader");
  if (path === "/version") return handleVersion(ctx, req, res);
  if (path === "/health") return handleHealth(ctx, req, res);
  if (path === "/metrics" && ctx.metrics) return handleMetrics(ctx.metrics, req, res);
  req.discard();
  notFound(res);
}

function escapeHtml(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&#34;")
    .replace(/'/g, "&#39;");
}
