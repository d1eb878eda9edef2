// The etcd v2 HTTP API of a node (node:http, no framework): routing as etcd's Go ServeMux does it, CORS for
// every answer, and a catch-all so a failing handler answers 500 instead of taking the server down.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { handleKeys } from "./keys.ts";
import { handleMachines, handleMembers } from "./members.ts";
import { cleanPath, EscapeError, goUnescape } from "./params.ts";
import { corsHeaders, notFound, send, sendKeyFailure } from "./respond.ts";
import { handleHealth, handleStats, handleVersion } from "./stats.ts";
import type { HttpContext, HttpDeps } from "./types.ts";

export type { HttpDeps, HttpWatch } from "./types.ts";

export interface HttpApi {
  address: { host: string; port: number };
  close(): Promise<void>;
}

export async function startHttpApi(opts: {
  host: string;
  port: number;
  deps: HttpDeps;
  logger?: (l: string) => void;
}): Promise<HttpApi> {
  const ctx: HttpContext = { deps: opts.deps, log: opts.logger ?? (() => {}) };
  const server = createServer((req, res) => {
    route(ctx, req, res).catch((e: unknown) => failed(ctx, req, res, e));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (e) => ctx.log(`http: server error: ${e.message}`));
  const addr = server.address() as AddressInfo;
  return {
    address: { host: addr.address, port: addr.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Long polls never end by themselves; dropping their connections also frees their watchers.
        server.closeAllConnections();
      }),
  };
}

/** Last resort: log, and answer etcd's 300 Raft Internal Error if nothing was sent yet. */
function failed(ctx: HttpContext, req: IncomingMessage, res: ServerResponse, e: unknown): void {
  ctx.log(
    `http: ${req.method} ${req.url} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
  );
  try {
    if (!res.headersSent) sendKeyFailure(ctx, res, e);
    else if (!res.writableEnded) res.end();
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

async function route(ctx: HttpContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let target = req.url ?? "/";
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
    req.resume();
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
    req.resume();
    return send(res, 200, corsHeaders(), "");
  }

  const clean = muxClean(path);
  if (clean !== path) {
    req.resume();
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
  if (path === "/v2/machines") return handleMachines(ctx, req, res);
  if (path === "/v2/stats/store") return handleStats(ctx, req, res, "store");
  if (path === "/v2/stats/self") return handleStats(ctx, req, res, "self");
  if (path === "/v2/stats/leader") return handleStats(ctx, req, res, "leader");
  if (path === "/version") return handleVersion(ctx, req, res);
  if (path === "/health") return handleHealth(ctx, req, res);
  req.resume();
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
