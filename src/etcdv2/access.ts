// Who may do what (the README's table, "Security"): the callers a node knows, the operations it serves, and the one
// decision between them. Berth's own operations (units, registry writes, membership) need admin or etcd's `root`
// user; keys follow etcd v2's rules through KeyAccess (with auth disabled, etcd's default, everybody may use them).
import { cleanKey } from "../kv/path.ts";
import { KvError } from "../kv/types.ts";
import { REGISTRY_DIR } from "../sched/registry.ts";
import { ServiceError } from "../service/errors.ts";

/**
 * admin: root or the `berth` group on the node's machine, through the node's unix socket (the socket's mode is the
 * grant); user: an etcd v2 user (password, or a TLS client certificate's CN); guest: anybody else.
 */
export type Caller = { kind: "admin" } | { kind: "user"; name: string } | { kind: "guest" };

export const ADMIN: Caller = { kind: "admin" };
export const GUEST: Caller = { kind: "guest" };

/** What a caller asks to do. */
export type Operation =
  | { kind: "read"; key: string; recursive?: boolean }
  | { kind: "write"; key: string; recursive?: boolean }
  /** submit, load, start, stop, unload, destroy, restart; machine drain/undrain. */
  | { kind: "units"; what: string }
  /** cluster add/remove/promote/move-leader; /v2/members writes. */
  | { kind: "membership"; what: string }
  /** `berth snapshot save`: reads every key, hidden and auth records included. */
  | { kind: "everything"; what: string }
  /** list-units, list-machines, status, journal, cluster members/health, node status. */
  | { kind: "view" };

/** etcd v2's users and roles (src/etcdv2/auth/ provides the real one). */
export interface KeyAccess {
  enabled(): boolean;
  authenticate(name: string, password: string): Promise<boolean>;
  /** user null: the guest role. `recursive` (a recursive get, delete or watch) needs a "*" pattern (etcd). */
  allowed(user: string | null, key: string, access: "read" | "write", recursive?: boolean): boolean;
  isRoot(user: string): boolean;
}

/** etcd's default: auth disabled, every key open to everybody; no user exists, so nobody logs in. */
export const AUTH_DISABLED: KeyAccess = {
  enabled: () => false,
  authenticate: async () => false,
  allowed: () => true,
  isRoot: () => false,
};

/** Admin, or etcd's root user: every right. */
export function isPrivileged(caller: Caller, keys: KeyAccess): boolean {
  return caller.kind === "admin" || (caller.kind === "user" && keys.isRoot(caller.name));
}

/** The key is the registry directory or below it (after etcd's cleaning, so "//_berth/./x" counts). */
export function isRegistryKey(key: string): boolean {
  const k = cleanKey(key);
  return k === REGISTRY_DIR || k.startsWith(`${REGISTRY_DIR}/`);
}

/** How a refusal reads, so the caller knows which door leads in. */
const HOW_TO_BE_ADMIN =
  "run berth as root or as a member of the berth group on a member (it talks to the node's unix socket, " +
  "e.g. unix:///run/berth/berth.sock), or through --tunnel as such a user; or authenticate as etcd's root user";

/** Why `caller` may not do `op`, or null when it may. */
export function refusal(caller: Caller, op: Operation, keys: KeyAccess): string | null {
  const privileged = isPrivileged(caller, keys);
  switch (op.kind) {
    case "view":
      return null;
    case "units":
    case "membership":
    case "everything":
      return privileged
        ? null
        : `${op.what} needs admin rights (${who(caller)} has none): ${HOW_TO_BE_ADMIN}`;
    case "read":
    case "write":
      if (privileged) return null;
      if (op.kind === "write" && isRegistryKey(op.key))
        return `writing under ${REGISTRY_DIR} (the scheduler's registry) needs admin rights (${who(caller)} has none): ${HOW_TO_BE_ADMIN}`;
      if (!keys.enabled()) return null;
      return keys.allowed(caller.kind === "user" ? caller.name : null, op.key, op.kind, op.recursive)
        ? null
        : "Insufficient credentials";
  }
}

function who(caller: Caller): string {
  return caller.kind === "user"
    ? `etcd user ${caller.name}`
    : caller.kind === "admin"
      ? "admin"
      : "an anonymous client";
}

/**
 * Throws when `caller` may not do `op`: key operations with etcd's 110 "The request requires user authentication"
 * (HTTP 401, as etcd), Berth's own operations with `permission_denied`.
 */
export function authorize(caller: Caller, op: Operation, keys: KeyAccess): void {
  const why = refusal(caller, op, keys);
  if (why === null) return;
  if (op.kind === "read" || op.kind === "write") {
    const err = new KvError(110, why, 0);
    throw new ServiceError("kv", err.message, err.toJSON());
  }
  throw new ServiceError("permission_denied", why);
}
