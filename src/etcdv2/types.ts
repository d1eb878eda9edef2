// What the HTTP API needs from a node: a narrow set of functions, so the server can be tested with fakes and
// the node decides where each answer comes from (KvService, ClusterService, Raft status).

import type { Duplex } from "node:stream";
import type { KvGetParams, KvResult, KvWatchParams, KvWriteRequest, MemberInfo } from "../client/protocol.ts";
import type { Caller, KeyAccess } from "./access.ts";
import type { AuthStore } from "./auth/store.ts";

export interface HttpWatch {
  cancel(): void;
}

export interface HttpDeps {
  kv: {
    get(params: KvGetParams): Promise<KvResult>;
    write(req: KvWriteRequest): Promise<KvResult>;
    /** May call onEvent synchronously (history replay) before returning; throws ServiceError "kv" for 401. */
    watch(params: KvWatchParams, onEvent: (r: KvResult) => void): HttpWatch;
  };
  /** Store index, raft index and term right now: a watch's headers are sent before any event exists. */
  indexes(): { etcdIndex: number; raftIndex: number; raftTerm: number };
  members(): MemberInfo[];
  addMember(name: string, peerAddr: string): Promise<MemberInfo[]>;
  removeMember(name: string): Promise<MemberInfo[]>;
  /** Hex cluster id, or null before the cluster has one (the header is then left out). */
  clusterId(): string | null;
  /** etcd's /v2/stats/self document (serialised as given, key order kept). */
  selfStats(): object;
  /** etcd's /v2/stats/leader document, or null on a non-leader (403 "not current leader"). */
  leaderStats(): object | null;
  /** etcd's /v2/stats/store counters, in etcd's key order. */
  storeStats(): Record<string, number>;
  /** What /version answers; clients parse etcdserver as semver, so keep it etcd-like (e.g. "3.4.23"). */
  versions(): { etcdserver: string; etcdcluster: string };
  /** true when a leader is known and the node is making progress. */
  health(): boolean | Promise<boolean>;
  /** etcd's v2 users and roles (/v2/auth, Basic auth); absent: no /v2/auth, every request allowed. */
  auth?: AuthStore;
}

export interface HttpContext {
  deps: HttpDeps;
  /** etcd v2's users and roles (auth disabled: keys open to everybody). */
  keys: KeyAccess;
  /** Who sent the request: guest, unless it authenticates (Basic auth, src/etcdv2/auth/: may check a password). */
  callerOf(req: HttpRequest): Caller | Promise<Caller>;
  log: (line: string) => void;
  /** URL schemes members are advertised with (etcdctl dials the client URLs it is given). */
  schemes: { client: "http" | "https"; peer: "http" | "https" };
  /** /metrics (null: not served). */
  metrics: { render(): Promise<string> } | null;
}

/** What a request body read gives: the bytes, or the fact that it passed the limit (the rest is not buffered). */
export type BodyResult = { ok: true; body: Buffer } | { ok: false; tooLarge: true };

/**
 * A request as the handlers see it, independent of the transport (node:http, or Bun's raw TCP server in the
 * compiled binary). `url` is the raw request target; header names are lower-case.
 */
export interface HttpRequest {
  readonly method: string;
  readonly url: string;
  header(name: string): string | undefined;
  /** The body, or tooLarge once it passes `limit` bytes. */
  readBody(limit: number): Promise<BodyResult>;
  /** The body is not wanted: drop it. */
  discard(): void;
  /** The CN of the TLS client certificate the listener verified (--client-cert-auth), else null. */
  clientCertName?(): string | null;
}

/**
 * Takes over connections that ask to switch to Berth's msgpack client protocol (src/wire/http-upgrade.ts): who the
 * request says the caller is (null: its credentials are wrong, 401), and the stream once 101 is sent.
 */
export interface Upgrader {
  caller(req: HttpRequest): Promise<Caller | null>;
  take(stream: Duplex, caller: Caller, remote: string): void;
}

/** A response as the handlers write it: raw header lists in wire order (the transport adds nothing but framing). */
export interface HttpResponse {
  readonly headersSent: boolean;
  /** The status given to writeHead (0 before it). */
  readonly status: number;
  readonly finished: boolean;
  /** Status and headers as [name, value, name, value, ...]; the body is sent by end() or write(). */
  writeHead(status: number, raw: string[]): void;
  /** Sends the headers now (long polls), without waiting for body bytes. */
  flushHeaders(): void;
  write(chunk: string): void;
  /** Bytes written and not yet taken by the socket (a client that does not read makes this grow). */
  readonly bufferedBytes: number;
  end(body?: Buffer | string): void;
  /** Called once when the client goes away or the response ends. */
  onClose(fn: () => void): void;
  destroy(): void;
}
