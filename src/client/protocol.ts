// The client protocol spoken on a node's client address (msgpack frames, see src/wire/): method names, their
// parameters and results. The CLI, the console and the SSH tunnel all use this one connection: requests and
// responses, plus server-pushed streams for watches (and later unit states and logs).
import type { KvEvent } from "../kv/types.ts";

/** An etcd-v2 style write, before the node turns it into a store command (see src/node/kv-requests.ts). */
export interface KvWriteRequest {
  method: "PUT" | "POST" | "DELETE";
  key: string;
  value?: string;
  dir?: boolean;
  /** Seconds; null removes a TTL, undefined leaves the key permanent (as etcd's empty ttl). */
  ttl?: number | null;
  refresh?: boolean;
  prevExist?: boolean;
  prevValue?: string;
  prevIndex?: number;
  recursive?: boolean;
}

export type Consistency = "linearizable" | "local";

export interface KvGetParams {
  key: string;
  recursive?: boolean;
  sorted?: boolean;
  consistency?: Consistency;
}

export interface KvWatchParams {
  key: string;
  recursive?: boolean;
  /** Start from this store index (served from the last 1000 events); else from the next change. */
  sinceIndex?: number;
  /** Keep watching after the first event. */
  forever?: boolean;
}

/** Every KV answer carries the indexes etcd puts in its X-Etcd-Index / X-Raft-Index / X-Raft-Term headers. */
export interface KvResult {
  event: KvEvent;
  etcdIndex: number;
  raftIndex: number;
  raftTerm: number;
}

export interface MemberInfo {
  name: string;
  /** Stable id derived from the name, shown like etcd's member ids. */
  id: string;
  peerAddr: string;
  clientAddr: string | null;
  httpAddr: string | null;
  role: "voter" | "learner";
  isLeader: boolean;
}

export interface MemberHealth {
  name: string;
  clientAddr: string | null;
  healthy: boolean;
  detail: string;
  raftIndex?: number;
  raftTerm?: number;
}

export interface NodeStatus {
  name: string;
  version: string;
  leader: string | null;
  role: string;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  etcdIndex: number;
  clusterId: string;
  startedAt: string;
}

// ---- Units and machines (fleet's model: desired state set by clients, placement by the leader's engine,
// current state reported by the agent of the machine a unit is scheduled on).

export type DesiredState = "inactive" | "loaded" | "launched";

/** A unit file as the CLI sends it: the text, or none for an instance of a template the cluster already has. */
export interface UnitSubmission {
  name: string;
  text?: string;
}

/** One row of `list-unit-files`. */
export interface UnitInfo {
  name: string;
  /** SHA-1 of the canonical unit file (fleet's hash), 40 hex. */
  hash: string;
  desired: DesiredState;
  /** fleet's derived state: inactive (not scheduled), loaded (scheduled), launched (running where scheduled);
   * null for global units, which have no single target. */
  current: DesiredState | null;
  global: boolean;
  /** Machine ids the unit is scheduled on (one, except for global units). */
  machines: string[];
  description: string | null;
  /** Why the engine could not place the unit (fleet was silent here), or null. */
  unplaceable: string | null;
}

/** A machine: every Berth node is one. */
export interface MachineInfo {
  /** 32 hex digits, stable, kept in the node's data directory. */
  id: string;
  /** The node's member name. */
  name: string;
  publicIp: string | null;
  metadata: Record<string, string>;
  state: "up" | "lost";
}

/** One row of `list-units`: what the agent of one machine reports for one unit. */
export interface UnitStateRow {
  name: string;
  machine: string;
  hash: string;
  load: string;
  active: string;
  sub: string;
  mainPid: number | null;
  since: number;
  /** Set when the state could not be reported by a live agent (machine lost) or the unit is waiting to be placed. */
  note?: string;
}

/** Methods: name -> [params, result]. */
export interface ClientMethods {
  "kv.get": [KvGetParams, KvResult];
  "kv.write": [KvWriteRequest, KvResult];
  "cluster.members": [Record<string, never>, MemberInfo[]];
  "cluster.health": [Record<string, never>, MemberHealth[]];
  "cluster.add": [{ name: string; peerAddr: string; learner?: boolean }, MemberInfo[]];
  "cluster.remove": [{ name: string }, MemberInfo[]];
  "cluster.promote": [{ name: string }, MemberInfo[]];
  "node.status": [Record<string, never>, NodeStatus];
  /** Stores unit files (desired state inactive). Same content again is a no-op; other content needs `replace`. */
  "units.submit": [{ units: UnitSubmission[]; replace?: boolean }, UnitInfo[]];
  /** Sets the desired state of known units (error not_found naming the unknown ones, nothing changed then). */
  "units.setDesired": [{ names: string[]; desired: DesiredState }, UnitInfo[]];
  "units.destroy": [{ names: string[] }, { destroyed: string[] }];
  "units.list": [Record<string, never>, UnitInfo[]];
  "units.cat": [{ name: string }, { name: string; text: string }];
  "units.states": [Record<string, never>, UnitStateRow[]];
  "machines.list": [Record<string, never>, MachineInfo[]];
}

/** Streams: name -> [params, item]. */
export interface ClientStreams {
  "kv.watch": [KvWatchParams, KvResult];
}

/**
 * Error codes a node answers with (in RemoteError.code). KV errors carry etcd's error document in `data`.
 * "unavailable": no leader / no quorum / node shutting down; "timeout": the request did not complete in time.
 */
export type ErrorCode =
  | "kv"
  | "unavailable"
  | "timeout"
  | "bad_request"
  | "not_found"
  | "conflict"
  | "unknown_method"
  | "internal";
