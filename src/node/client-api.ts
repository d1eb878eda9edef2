// Serves the client protocol (src/client/protocol.ts) on one connection: validates what a client sends, so a
// malformed request gets a clear error and never reaches the services.
import type { KvGetParams, KvWatchParams, KvWriteRequest, NodeStatus } from "../client/protocol.ts";
import type { Connection, StreamSink } from "../wire/connection.ts";
import type { ClusterService } from "./cluster-service.ts";
import { badRequest, ServiceError } from "./errors.ts";
import type { KvService } from "./kv-service.ts";

export interface ClientApiDeps {
  kv: KvService;
  cluster: ClusterService;
  status(): NodeStatus;
  healthTimeoutMs: number;
}

export function serveClient(conn: Connection, d: ClientApiDeps): void {
  conn.serve({
    request: (method, params) => {
      const p = asObject(params);
      switch (method) {
        case "kv.get":
          return d.kv.get(kvGetParams(p));
        case "kv.write":
          return d.kv.write(p as unknown as KvWriteRequest);
        case "cluster.members":
          return d.cluster.members();
        case "cluster.health":
          return d.cluster.health(d.healthTimeoutMs);
        case "cluster.add":
          return d.cluster.add(str(p, "name"), str(p, "peerAddr"), p.learner === true);
        case "cluster.remove":
          return d.cluster.remove(str(p, "name"));
        case "cluster.promote":
          return d.cluster.promote(str(p, "name"));
        case "node.status":
          return d.status();
        default:
          throw new ServiceError("unknown_method", `unknown method "${method}"`);
      }
    },
    stream: (method, params, sink) => {
      if (method !== "kv.watch") {
        sink.end({ code: "unknown_method", message: `unknown stream "${method}"` });
        return;
      }
      try {
        watch(d.kv, kvWatchParams(asObject(params)), sink);
      } catch (err) {
        const e = err as ServiceError;
        sink.end({ code: e.code ?? "internal", message: e.message, data: e.data });
      }
    },
  });
}

function watch(kv: KvService, params: KvWatchParams, sink: StreamSink): void {
  const w = kv.watch(params, (r) => {
    if (sink.closed) return;
    sink.push(r);
    if (!params.forever) sink.end();
  });
  sink.onClose(() => w.cancel());
}

function asObject(v: unknown): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw badRequest("parameters must be a map");
  return v as Record<string, unknown>;
}

function str(p: Record<string, unknown>, name: string): string {
  const v = p[name];
  if (typeof v !== "string" || v === "") throw badRequest(`missing or invalid "${name}"`);
  return v;
}

function optBool(p: Record<string, unknown>, name: string): boolean | undefined {
  const v = p[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw badRequest(`"${name}" must be true or false`);
  return v;
}

function kvGetParams(p: Record<string, unknown>): KvGetParams {
  const consistency = p.consistency ?? "linearizable";
  if (consistency !== "linearizable" && consistency !== "local")
    throw badRequest(`consistency must be "linearizable" or "local"`);
  return {
    key: str(p, "key"),
    recursive: optBool(p, "recursive"),
    sorted: optBool(p, "sorted"),
    consistency,
  };
}

function kvWatchParams(p: Record<string, unknown>): KvWatchParams {
  const since = p.sinceIndex;
  if (since !== undefined && since !== null && !(Number.isInteger(since) && (since as number) > 0))
    throw badRequest("sinceIndex must be a positive integer");
  return {
    key: str(p, "key"),
    recursive: optBool(p, "recursive"),
    forever: optBool(p, "forever"),
    sinceIndex: (since as number | undefined) ?? undefined,
  };
}
