// The etcd-v2 data model: nodes, events and errors, shaped exactly as etcd serialises them so the HTTP API and the
// msgpack API hand out the same documents. Property order matters: JSON.stringify keeps insertion order, and
// etcd's clients and tests compare bodies byte for byte.

/** Largest value accepted (etcd's default request limit is 1.5 MiB; ours is documented as 1 MiB). */
export const MAX_VALUE_BYTES = 1024 * 1024;

/**
 * Largest key, in UTF-8 bytes as the client sent it (before cleaning). etcd v2 names none (its requests are bounded
 * at 1.5 MiB); 8 KiB is twice Linux's PATH_MAX, far above any fleet, confd or Kubernetes-era key.
 */
export const MAX_KEY_BYTES = 8 * 1024;

/**
 * Most levels a key may name (segments after cleaning; an in-order POST adds one). Real trees are a few to a few
 * dozen deep; each level is a directory node, so the cap bounds what one write can add to the tree.
 */
export const MAX_KEY_DEPTH = 256;

/** Events kept for watches that start from an older index (etcd keeps 1000). */
export const EVENT_HISTORY_SIZE = 1000;

/** A node as clients see it: etcd's NodeExtern (key, value, dir, expiration, ttl, nodes, modifiedIndex, createdIndex). */
export interface KvNode {
  /** Absent only on the root directory, which etcd shows as {"dir":true,"nodes":[...]} (also without indexes). */
  key: string;
  value?: string;
  dir?: true;
  /** RFC 3339 with nanoseconds, as Go prints time.Time. */
  expiration?: string;
  /** Whole seconds left, rounded up as etcd does. */
  ttl?: number;
  nodes?: KvNode[];
  modifiedIndex: number;
  createdIndex: number;
}

export type KvAction =
  | "get"
  | "set"
  | "create"
  | "update"
  | "delete"
  | "compareAndSwap"
  | "compareAndDelete"
  | "expire";

export interface KvEvent {
  action: KvAction;
  node: KvNode;
  prevNode?: KvNode;
}

/** etcd's error codes (etcd/server/etcdserver/api/v2error). */
export const KV_ERRORS = {
  100: "Key not found",
  101: "Compare failed",
  102: "Not a file",
  104: "Not a directory",
  105: "Key already exists",
  106: "The prefix of given key is a keyword in etcd",
  107: "Root is read only",
  108: "Directory not empty",
  110: "The request requires user authentication",
  200: "Value is Required in POST form",
  201: "PrevValue is Required in POST form",
  202: "The given TTL in POST form is not a number",
  203: "The given index in POST form is not a number",
  204: "Value or TTL is required in POST form",
  205: "The given timeout in POST form is not a number",
  206: "Name is required in POST form",
  207: "Index or value is required",
  208: "Index and value cannot both be specified",
  209: "Invalid field",
  210: "Invalid POST form",
  211: "Value provided on refresh",
  212: "A TTL must be provided on refresh",
  300: "Raft Internal Error",
  301: "During Leader Election",
  400: "watcher is cleared due to etcd recovery",
  401: "The event in requested index is outdated and cleared",
} as const;

export type KvErrorCode = keyof typeof KV_ERRORS;

/** HTTP status etcd answers each error code with (its v2error errorStatus map; everything else is 400). */
export function httpStatusOf(code: number): number {
  switch (code) {
    case 100:
      return 404;
    case 101:
    case 105:
      return 412;
    case 102:
    case 108:
      return 403;
    case 110:
      return 401;
    case 300:
    case 301:
      return 500;
    default:
      return 400;
  }
}

/** An etcd error document; the store returns these (it never throws for a client's mistake). */
export class KvError extends Error {
  constructor(
    readonly errorCode: KvErrorCode,
    override readonly cause: string,
    readonly index: number,
  ) {
    super(KV_ERRORS[errorCode]);
  }

  /** The body etcd sends: {errorCode, message, cause, index}, in that order. */
  toJSON(): { errorCode: number; message: string; cause: string; index: number } {
    return { errorCode: this.errorCode, message: this.message, cause: this.cause, index: this.index };
  }

  static from(doc: { errorCode: number; cause?: string; index?: number }): KvError {
    return new KvError(doc.errorCode as KvErrorCode, doc.cause ?? "", doc.index ?? 0);
  }
}

/** An etcd-v2 style write, before it becomes a store command (commandFor in requests.ts). */
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
