// Serves the client protocol (src/client/protocol.ts) on one connection: validates what a client sends, so a
// malformed request gets a clear error and never reaches the services.

import type { MachineContainersService } from "../agent/machine-containers.ts";
import { count, STATUS_JOURNAL_LINES, type UnitStatusService } from "../agent/unit-status.ts";
import type {
  DesiredState,
  KvGetParams,
  KvWatchParams,
  KvWriteRequest,
  NodeStatus,
  SavedSnapshot,
  UnitSubmission,
} from "../client/protocol.ts";
import { authorize, type Caller, type KeyAccess, type Operation } from "../etcdv2/access.ts";
import type { RequestMetrics } from "../metrics/node-metrics.ts";
import type { UnitService } from "../sched/unit-service.ts";
import { badRequest, ServiceError } from "../service/errors.ts";
import { asObject, optBool, optStr, str } from "../service/params.ts";
import type { Connection, StreamSink } from "../wire/connection.ts";
import type { ClusterService } from "./cluster-service.ts";
import type { KvService } from "./kv-service.ts";

export interface ClientApiDeps {
  kv: KvService;
  cluster: ClusterService;
  units: UnitService;
  /** `berth status` / `berth journal` (absent: those methods answer unknown_method). */
  unitStatus?: UnitStatusService;
  /** `berth list-machines --containers` (absent: machines.containers answers unknown_method). */
  machineContainers?: MachineContainersService;
  status(): NodeStatus;
  healthTimeoutMs: number;
  /** etcd v2's users and roles: key permissions, `root`, and `auth.login`. */
  keys: KeyAccess;
  /** `berth snapshot save` (absent: snapshot.save answers unknown_method). */
  saveSnapshot?(): Promise<SavedSnapshot>;
  /** Where each request's latency and outcome go (/metrics); absent: not measured. */
  metrics?: RequestMetrics;
}

/** The request methods served here (the metrics label every other name "other"). */
export const CLIENT_METHODS = [
  "auth.login",
  "kv.get",
  "kv.write",
  "cluster.members",
  "cluster.health",
  "cluster.add",
  "cluster.remove",
  "cluster.promote",
  "cluster.move-leader",
  "node.status",
  "units.submit",
  "units.setDesired",
  "units.destroy",
  "units.list",
  "units.cat",
  "units.states",
  "machines.list",
  "registry.problems",
  "machines.drain",
  "machines.drainStatus",
  "machines.setMetadata",
  "machines.containers",
  "units.status",
  "units.journal",
  "snapshot.save",
] as const;

/**
 * Serves one connection for `caller` (admin on the unix socket; a certificate's user or guest on TCP); `auth.login`
 * turns it into an etcd user's connection. Every method is authorized before it runs.
 */
export function serveClient(conn: Connection, d: ClientApiDeps, caller: Caller): void {
  const answer = async (method: string, params: unknown): Promise<unknown> => {
    const p = asObject(params);
    if (method === "auth.login") {
      caller = await login(d.keys, p, caller);
      return { user: caller.kind === "user" ? caller.name : null };
    }
    authorize(caller, operationOf(method, p), d.keys);
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
      case "cluster.move-leader":
        return d.cluster.moveLeader(str(p, "name"));
      case "node.status":
        return d.status();
      case "units.submit":
        return d.units.submit(submissions(p), optBool(p, "replace") ?? false);
      case "units.setDesired":
        return d.units.setDesired(names(p), desiredState(p));
      case "units.destroy":
        return d.units.destroy(names(p));
      case "units.list":
        return d.units.list();
      case "units.cat":
        return d.units.cat(str(p, "name"));
      case "units.states":
        return d.units.states();
      case "machines.list":
        return d.units.machines();
      case "registry.problems":
        return d.units.problems();
      case "machines.drain":
        return d.units.drain(str(p, "machine"), drainFlag(p));
      case "machines.drainStatus":
        return d.units.drainStatus(str(p, "machine"));
      case "machines.setMetadata":
        return d.units.setMetadata(p);
      case "machines.containers":
        return need(d.machineContainers, method).containers(optStr(p, "machine"));
      case "units.status":
        return need(d.unitStatus, method).status(names(p));
      case "units.journal":
        return need(d.unitStatus, method).journal(str(p, "name"), count(p.lines, STATUS_JOURNAL_LINES));
      case "snapshot.save":
        return need(d.saveSnapshot, method).call(d);
      default:
        throw new ServiceError("unknown_method", `unknown method "${method}"`);
    }
  };
  const metrics = d.metrics;
  conn.serve({
    request: metrics ? (method, params) => timed(metrics, answer, method, params) : answer,
    stream: (method, params, sink) => {
      try {
        authorize(caller, operationOf(method, asObject(params)), d.keys);
      } catch (err) {
        const e = err as ServiceError;
        sink.end({ code: e.code, message: e.message, data: e.data });
        return;
      }
      if (method === "units.journal.follow" && d.unitStatus) {
        followJournal(d.unitStatus, params, sink);
        return;
      }
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

/** Runs a request, recording its latency by method and outcome ("ok" or the error's code). */
async function timed(
  metrics: RequestMetrics,
  answer: (method: string, params: unknown) => Promise<unknown>,
  method: string,
  params: unknown,
): Promise<unknown> {
  const started = performance.now();
  try {
    const result = await answer(method, params);
    metrics.observe(method, "ok", (performance.now() - started) / 1000);
    return result;
  } catch (err) {
    metrics.observe(method, errorCode(err), (performance.now() - started) / 1000);
    throw err;
  }
}

/** A ServiceError's code (a short fixed word), or "internal" for anything else. */
function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof ServiceError && typeof code === "string" ? code : "internal";
}

/** What a method does, for authorize(): the key it reads or writes, or the kind of Berth operation. */
export function operationOf(method: string, p: Record<string, unknown>): Operation {
  const key = typeof p.key === "string" ? p.key : "/";
  // etcd: a recursive get, watch or delete needs a "*" permission pattern.
  const recursive = p.recursive === true;
  switch (method) {
    case "kv.get":
    case "kv.watch":
      return { kind: "read", key, recursive };
    case "kv.write":
      return { kind: "write", key, recursive };
    case "units.submit":
      return { kind: "units", what: "submitting units" };
    case "units.setDesired":
      return { kind: "units", what: "loading, starting, stopping or unloading units" };
    case "units.destroy":
      return { kind: "units", what: "destroying units" };
    case "machines.drain":
      return { kind: "units", what: "draining or undraining a machine" };
    case "cluster.add":
    case "cluster.remove":
    case "cluster.promote":
    case "cluster.move-leader":
      return { kind: "membership", what: `changing the membership (${method.slice("cluster.".length)})` };
    case "snapshot.save":
      // Every key: /_berth, every etcd user's keys and the v2 auth records (password hashes) too.
      return { kind: "everything", what: "saving a snapshot of the whole store" };
    default:
      return { kind: "view" };
  }
}

/** `berth --username NAME[:PASSWORD]`: the connection acts as that etcd user from now on. */
async function login(keys: KeyAccess, p: Record<string, unknown>, current: Caller): Promise<Caller> {
  const name = str(p, "name");
  const password = typeof p.password === "string" ? p.password : "";
  if (!(await keys.authenticate(name, password)))
    throw new ServiceError(
      "auth_failed",
      `authentication as etcd user ${name} failed (unknown user or wrong password)`,
    );
  // An admin stays admin: logging in can only add rights (etcd's root has the same ones).
  return current.kind === "admin" ? current : { kind: "user", name };
}

function watch(kv: KvService, params: KvWatchParams, sink: StreamSink): void {
  const w = kv.watch(params, (r) => {
    if (sink.closed) return;
    sink.push(r);
    if (!params.forever) sink.end();
  });
  sink.onClose(() => w.cancel());
}

function followJournal(svc: UnitStatusService, params: unknown, sink: StreamSink): void {
  const fail = (err: unknown): void => {
    const e = err as ServiceError;
    if (!sink.closed) sink.end({ code: e.code ?? "internal", message: e.message, data: e.data });
  };
  try {
    const p = asObject(params);
    svc.follow(str(p, "name"), count(p.lines, STATUS_JOURNAL_LINES), sink).catch(fail);
  } catch (err) {
    fail(err);
  }
}

function need<T>(svc: T | undefined, method: string): T {
  if (svc === undefined) throw new ServiceError("unknown_method", `unknown method "${method}"`);
  return svc;
}

/** Requests carry at most this many units (a fleet-size cluster submits far fewer at once). */
const MAX_UNITS_PER_REQUEST = 10_000;

function names(p: Record<string, unknown>): string[] {
  const v = p.names;
  if (
    !Array.isArray(v) ||
    v.length === 0 ||
    v.length > MAX_UNITS_PER_REQUEST ||
    v.some((n) => typeof n !== "string" || n === "")
  )
    throw badRequest(`"names" must be a list of 1 to ${MAX_UNITS_PER_REQUEST} unit names`);
  return v as string[];
}

function submissions(p: Record<string, unknown>): UnitSubmission[] {
  const v = p.units;
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_UNITS_PER_REQUEST)
    throw badRequest(`"units" must be a list of 1 to ${MAX_UNITS_PER_REQUEST} units`);
  return v.map((u, i) => {
    if (!u || typeof u !== "object") throw badRequest(`units[${i}] must be a map`);
    const { name, text } = u as Record<string, unknown>;
    if (typeof name !== "string" || name === "") throw badRequest(`units[${i}].name must be a unit name`);
    if (text !== undefined && text !== null && typeof text !== "string")
      throw badRequest(`units[${i}].text must be a string`);
    return typeof text === "string" ? { name, text } : { name };
  });
}

function drainFlag(p: Record<string, unknown>): boolean {
  if (typeof p.drain !== "boolean") throw badRequest(`"drain" must be true or false`);
  return p.drain;
}

function desiredState(p: Record<string, unknown>): DesiredState {
  const v = p.desired;
  if (v !== "inactive" && v !== "loaded" && v !== "launched")
    throw badRequest(`"desired" must be inactive, loaded or launched`);
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
