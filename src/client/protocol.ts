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
