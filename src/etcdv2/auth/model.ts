// etcd 3.4's v2 auth records (its etcdserver/api/v2auth): users with roles, roles with key permissions, the
// built-in `root` and `guest` roles, and the set arithmetic of grant/revoke. Pure: no store, no I/O.
//
// Go's JSON keeps a difference between a nil list (null) and an empty one ([]), and etcd's answers show it
// ({"roles":null} for a fresh user, "write":[] after a grant): lists here are `string[] | null` to keep it.

export const ROOT = "root";
export const GUEST = "guest";

export interface User {
  user: string;
  /** The password hash as stored (never answered to a client). */
  password: string;
  roles: string[] | null;
}

export interface RWPermission {
  read: string[] | null;
  write: string[] | null;
}

export interface Role {
  role: string;
  permissions: { kv: RWPermission };
}

/** A failure etcd answers as {"message": ...} with an HTTP status (its v2auth.Error and httptypes.HTTPError). */
export class AuthError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** etcd's authErr: the message gets the "auth: " prefix. */
export function authErr(status: number, message: string): AuthError {
  return new AuthError(status, `auth: ${message}`);
}

/** The root role is not stored: it always reads and writes everything, and cannot be changed. */
export const ROOT_ROLE: Role = { role: ROOT, permissions: { kv: { read: ["/*"], write: ["/*"] } } };

/** What `guest` gets when auth is enabled and no guest role exists yet: everything (etcd's default). */
export const DEFAULT_GUEST_ROLE: Role = { role: GUEST, permissions: { kv: { read: ["/*"], write: ["/*"] } } };

/** A user record as etcd stores it: {"user","password"(omitempty),"roles"}. */
export function userJson(u: User): string {
  return JSON.stringify(u.password === "" ? { user: u.user, roles: u.roles } : u);
}

export function roleJson(r: Role): string {
  return JSON.stringify(r);
}

/** etcd attaches the root role to the user named root, whatever is stored. */
export function withRootRole(u: User): User {
  if (u.user !== ROOT || u.roles?.includes(ROOT)) return u;
  return { ...u, roles: [...(u.roles ?? []), ROOT] };
}

// ---- Matching keys (etcd's simpleMatch / prefixMatch) -----------------------------------------------------

/** A pattern ending in "*" covers every key starting with what comes before it; any other covers itself only. */
function simpleMatch(pattern: string, key: string): boolean {
  if (pattern.endsWith("*")) return key.startsWith(pattern.slice(0, -1));
  return key === pattern;
}

/** For recursive requests only "*" patterns count: an exact key cannot grant a whole subtree. */
function prefixMatch(pattern: string, key: string): boolean {
  return pattern.endsWith("*") && key.startsWith(pattern.slice(0, -1));
}

/** etcd's Role.HasKeyAccess / HasRecursiveAccess. */
export function roleAllows(role: Role, key: string, write: boolean, recursive: boolean): boolean {
  if (role.role === ROOT) return true;
  const list = (write ? role.permissions.kv.write : role.permissions.kv.read) ?? [];
  const match = recursive ? prefixMatch : simpleMatch;
  return list.some((p) => p !== "" && match(p, key));
}

// ---- Grant and revoke (etcd's merge) ----------------------------------------------------------------------

const sorted = (set: Set<string>) => [...set].sort();

/** The user after a request's password/grant/revoke; `hash` is the new password's hash when one was given. */
export function mergeUser(old: User, grant: string[], revoke: string[], hash: string | null): User {
  const roles = new Set(old.roles ?? []);
  for (const g of grant) {
    if (roles.has(g)) throw authErr(409, `Granting duplicate role ${g} for user ${old.user}`);
    roles.add(g);
  }
  for (const r of revoke) {
    if (!roles.has(r)) throw authErr(409, `Revoking ungranted role ${r} for user ${old.user}`);
    roles.delete(r);
  }
  return { user: old.user, password: hash ?? old.password, roles: sorted(roles) };
}

/** The role after a request's grant then revoke (revoking what was never granted is ignored, as etcd does). */
export function mergeRole(old: Role, grant: RWPermission | null, revoke: RWPermission | null): Role {
  let kv = old.permissions.kv;
  if (grant) {
    const read = new Set(kv.read ?? []);
    for (const r of grant.read ?? []) {
      if (read.has(r)) throw authErr(409, `Granting duplicate read permission ${r}`);
      read.add(r);
    }
    const write = new Set(kv.write ?? []);
    for (const w of grant.write ?? []) {
      if (write.has(w)) throw authErr(409, `Granting duplicate write permission ${w}`);
      write.add(w);
    }
    kv = { read: sorted(read), write: sorted(write) };
  }
  if (revoke) {
    const read = new Set(kv.read ?? []);
    for (const r of revoke.read ?? []) read.delete(r);
    const write = new Set(kv.write ?? []);
    for (const w of revoke.write ?? []) write.delete(w);
    kv = { read: sorted(read), write: sorted(write) };
  }
  return { role: old.role, permissions: { kv } };
}

/** Go's reflect.DeepEqual on two string lists: null and [] differ. */
export function sameList(a: string[] | null, b: string[] | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export function sameRole(a: Role, b: Role): boolean {
  return (
    a.role === b.role &&
    sameList(a.permissions.kv.read, b.permissions.kv.read) &&
    sameList(a.permissions.kv.write, b.permissions.kv.write)
  );
}

// ---- Decoding request bodies as Go's encoding/json would -------------------------------------------------

/** A JSON list of strings, or null/absent; anything else is invalid JSON for etcd's struct. */
export function stringList(v: unknown): string[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) throw new TypeError("not a string list");
  return v as string[];
}

export function permissionsOf(v: unknown): RWPermission | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "object" || Array.isArray(v)) throw new TypeError("not an object");
  const kv = (v as { kv?: unknown }).kv;
  if (kv === undefined || kv === null) return { read: null, write: null };
  if (typeof kv !== "object" || Array.isArray(kv)) throw new TypeError("not an object");
  const o = kv as { read?: unknown; write?: unknown };
  return { read: stringList(o.read), write: stringList(o.write) };
}

/** etcd's Permissions.IsEmpty: absent, or no read and no write pattern. */
export function isEmpty(p: RWPermission | null): boolean {
  return p === null || ((p.read ?? []).length === 0 && (p.write ?? []).length === 0);
}

/** A stored record, or null when it is not one (a record written around these checks is ignored). */
export function parseUser(text: string): User | null {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (typeof o.user !== "string") return null;
    return {
      user: o.user,
      password: typeof o.password === "string" ? o.password : "",
      roles: stringList(o.roles),
    };
  } catch {
    return null;
  }
}

export function parseRole(text: string): Role | null {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (typeof o.role !== "string") return null;
    return { role: o.role, permissions: { kv: permissionsOf(o.permissions) ?? { read: null, write: null } } };
  } catch {
    return null;
  }
}
