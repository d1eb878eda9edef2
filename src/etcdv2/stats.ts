// /version, /health and /v2/stats/*: small JSON documents without the trailing newline etcd's key API adds;
// /metrics in Prometheus's text format.
import { PROMETHEUS_CONTENT_TYPE } from "../metrics/registry.ts";
import { allowMethod, corsHeaders, send, sendHttpError } from "./respond.ts";
import type { HttpContext, HttpRequest, HttpResponse } from "./types.ts";

function sendJson(res: HttpResponse, doc: unknown): void {
  send(res, 200, [...corsHeaders(), ["Content-Type", "application/json"]], JSON.stringify(doc));
}

export function handleStats(ctx: HttpContext, req: HttpRequest, res: HttpResponse, which: string) {
  req.discard();
  if (!allowMethod(res, req.method, ["GET"])) return;
  if (which === "store") return sendJson(res, ctx.deps.storeStats());
  if (which === "self") return sendJson(res, ctx.deps.selfStats());
  const leader = ctx.deps.leaderStats();
  if (leader === null) return sendHttpError(res, 403, "not current leader");
  sendJson(res, leader);
}

export function handleVersion(ctx: HttpContext, req: HttpRequest, res: HttpResponse): void {
  req.discard();
  if (!allowMethod(res, req.method, ["GET"])) return;
  const v = ctx.deps.versions();
  sendJson(res, { etcdserver: v.etcdserver, etcdcluster: v.etcdcluster });
}

/** etcd 3.4's /health: {"health":"true"} or 503 {"health":"false"}; Go sniffs the type as text/plain. */
export async function handleHealth(ctx: HttpContext, req: HttpRequest, res: HttpResponse): Promise<void> {
  req.discard();
  if (!allowMethod(res, req.method, ["GET"])) return;
  let ok = false;
  try {
    ok = await ctx.deps.health();
  } catch (e) {
    ctx.log(`http: health check failed: ${(e as Error).message}`);
  }
  send(res, ok ? 200 : 503, corsHeaders(), JSON.stringify({ health: ok ? "true" : "false" }), {
    sniffed: "text/plain; charset=utf-8",
  });
}

/** Prometheus's text format; open to every caller like etcd's /metrics (it holds counts, never keys or values). */
export async function handleMetrics(
  metrics: { render(): Promise<string> },
  req: HttpRequest,
  res: HttpResponse,
): Promise<void> {
  req.discard();
  if (!allowMethod(res, req.method, ["GET", "HEAD"])) return;
  const page = await metrics.render();
  send(res, 200, [["Content-Type", PROMETHEUS_CONTENT_TYPE]], page);
}
