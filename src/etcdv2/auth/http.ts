// /v2/auth (etcd 3.4's authHandler) and the credential checks the other routes make: HTTP Basic auth, the root
// role for /v2/auth and member changes, key permissions for /v2/keys. Answers carry etcd's shapes: a user or role
// document plus a newline, {"message": ...} without one for errors, 401 "Insufficient credentials".

import { type Caller, GUEST as GUEST_CALLER } from "../access.ts";
import {
  allowMethod,
  asKvError,
  clusterIdHeader,
  corsHeaders,
  type Headers,
  send,
  sendHttpError,
  sendKvError,
} from "../respond.ts";
import type { HttpContext, HttpRequest, HttpResponse } from "../types.ts";
import { hasRootRole, userMayAccess } from "./access.ts";
import { AuthError, isEmpty, permissionsOf, type Role, stringList, type User } from "./model.ts";
import type { AuthStore } from "./store.ts";

const MAX_AUTH_BODY = 64 * 1024;
const NO_AUTH = "Insufficient credentials";

// ---- Credentials ------------------------------------------------------------------------------------------

/** Go's Request.BasicAuth: "Basic " (any case) and strict base64 of "name:password", else null. */
export function parseBasicAuth(header: string): { name: string; password: string } | null {
  if (header.length < 6 || header.slice(0, 6).toLowerCase() !== "basic ") return null;
  const b64 = header.slice(6);
  if (b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return null;
  const text = Buffer.from(b64, "base64").toString("utf8");
  const colon = text.indexOf(":");
  if (colon < 0) return null;
  return { name: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** etcd's userFromBasicAuth: the user the Authorization header proves, or null. */
async function basicUser(store: AuthStore, req: HttpRequest): Promise<User | null> {
  const creds = parseBasicAuth(req.header("authorization") ?? "");
  if (creds === null) return null;
  return store.authenticate(creds.name, creds.password);
}

/** etcd's userFromClientCertificate (--client-cert-auth): the user named by a verified certificate's CN, if any. */
function certificateUser(store: AuthStore, req: HttpRequest): User | null {
  const cn = req.clientCertName?.() ?? null;
  if (cn === null) return null;
  try {
    return store.getUser(cn);
  } catch {
    return null;
  }
}

/**
 * Who an HTTP request is for Berth's own rules (src/etcdv2/access.ts): with auth enabled, the user its Basic
 * credentials prove (none or bad: guest, as etcd ignores credentials while auth is disabled); without an
 * Authorization header, the etcd user a verified client certificate's CN names (as on the msgpack port); else guest.
 */
export async function httpCaller(store: AuthStore, req: HttpRequest): Promise<Caller> {
  if ((req.header("authorization") ?? "") !== "") {
    if (!store.enabled()) return GUEST_CALLER;
    const user = await basicUser(store, req);
    return user === null ? GUEST_CALLER : { kind: "user", name: user.user };
  }
  const cn = req.clientCertName?.() ?? null;
  return cn === null ? GUEST_CALLER : { kind: "user", name: cn };
}

/** The caller of an upgrade to the msgpack protocol (wire/http-upgrade.ts), or null: its credentials are wrong. */
export async function upgradeCaller(store: AuthStore, req: HttpRequest): Promise<Caller | null> {
  if (store.enabled() && (req.header("authorization") ?? "") !== "" && (await basicUser(store, req)) === null)
    return null;
  return httpCaller(store, req);
}

/** etcd's hasRootAccess: auth disabled, or a user with the root role (Basic credentials, else the certificate's). */
export async function hasRootAccess(store: AuthStore, req: HttpRequest): Promise<boolean> {
  if (!store.enabled()) return true;
  const user =
    (req.header("authorization") ?? "") === "" ? certificateUser(store, req) : await basicUser(store, req);
  return user !== null && hasRootRole(user);
}

/** etcd's hasWriteRootAccess: reads are open, changes need the root role. */
export async function hasWriteRootAccess(store: AuthStore, req: HttpRequest): Promise<boolean> {
  if (req.method === "GET" || req.method === "HEAD") return true;
  return hasRootAccess(store, req);
}

/** etcd's hasKeyPrefixAccess: no Authorization header means the certificate's user or guest; a bad one nobody. */
export async function hasKeyAccess(
  store: AuthStore,
  req: HttpRequest,
  key: string,
  recursive: boolean,
): Promise<boolean> {
  if (!store.enabled()) return true;
  const write = req.method !== "GET" && req.method !== "HEAD";
  if ((req.header("authorization") ?? "") === "") {
    // etcd: no header means the certificate's user (--client-cert-auth), else guest.
    const user = certificateUser(store, req);
    return userMayAccess(store, user, key, write, user === null ? false : recursive);
  }
  const user = await basicUser(store, req);
  return user !== null && userMayAccess(store, user, key, write, recursive);
}

/** etcd's writeNoAuth (the non-key routes). */
export function sendNoAuth(res: HttpResponse): void {
  sendHttpError(res, 401, NO_AUTH);
}

/** etcd's writeKeyNoAuth: the key error document, errorCode 110. */
export function sendKeyNoAuth(ctx: HttpContext, res: HttpResponse): void {
  sendKvError(ctx, res, 110, NO_AUTH, 0);
}

// ---- /v2/auth ---------------------------------------------------------------------------------------------

/** Go's path.Clean of the part after /v2/auth, split on "/". */
function pieces(path: string): string[] {
  const out: string[] = [];
  for (const seg of path.slice("/v2/auth".length).split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return ["", ...out];
}

/** Routes /v2/auth paths as etcd's mux does; false when the path is not one of them (the caller answers 404). */
export async function handleAuth(
  ctx: HttpContext,
  store: AuthStore,
  req: HttpRequest,
  res: HttpResponse,
  path: string,
): Promise<boolean> {
  const h = new AuthHandler(ctx, store, req, res);
  if (path === "/v2/auth/enable") await h.enableDisable();
  else if (path === "/v2/auth/users") await h.baseUsers();
  else if (path === "/v2/auth/roles") await h.baseRoles();
  else if (path.startsWith("/v2/auth/users/") || path.startsWith("/v2/auth/roles/")) {
    const p = pieces(path);
    const users = p[1] === "users";
    if (p.length === 2) await (users ? h.baseUsers() : h.baseRoles());
    else if (p.length !== 3) {
      req.discard();
      sendHttpError(res, 400, "Invalid path");
    } else await (users ? h.forUser(p[2] as string) : h.forRole(p[2] as string));
  } else return false;
  return true;
}

class AuthHandler {
  constructor(
    private readonly ctx: HttpContext,
    private readonly store: AuthStore,
    private readonly req: HttpRequest,
    private readonly res: HttpResponse,
  ) {}

  /** The method is allowed and the caller has the root role (or auth is off); otherwise answered already. */
  private async admitted(methods: string[], rootFor: "all" | "changes"): Promise<boolean> {
    if (!allowMethod(this.res, this.req.method, methods)) {
      this.req.discard();
      return false;
    }
    const ok =
      rootFor === "all"
        ? await hasRootAccess(this.store, this.req)
        : await hasWriteRootAccess(this.store, this.req);
    if (!ok) {
      this.req.discard();
      sendNoAuth(this.res);
      return false;
    }
    return true;
  }

  private headers(): Headers {
    return [...corsHeaders(), ...clusterIdHeader(this.ctx), ["Content-Type", "application/json"]];
  }

  private json(status: number, doc: unknown): void {
    send(this.res, status, this.headers(), doc === undefined ? "" : `${JSON.stringify(doc)}\n`);
  }

  /** etcd's writeError: an AuthError as {"message"}, a store error as its key error, anything else a 500. */
  private failed(e: unknown): void {
    if (e instanceof AuthError) {
      send(this.res, e.status, this.headers(), JSON.stringify({ message: e.message }));
      return;
    }
    const kv = asKvError(e);
    if (kv) return sendKvError(this.ctx, this.res, kv.errorCode, kv.cause, kv.index);
    const message = e instanceof Error ? e.message : String(e);
    this.ctx.log(`http: /v2/auth: ${message}`);
    send(this.res, 500, this.headers(), JSON.stringify({ message }));
  }

  /** The request body as JSON, or null after answering etcd's 400. */
  private async body(): Promise<Record<string, unknown> | null> {
    const got = await this.req.readBody(MAX_AUTH_BODY);
    try {
      if (!got.ok) throw new Error("too large");
      const doc = JSON.parse(got.body.toString("utf8")) as unknown;
      if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw new Error("not an object");
      return doc as Record<string, unknown>;
    } catch {
      sendHttpError(this.res, 400, "Invalid JSON in request body.", clusterIdHeader(this.ctx));
      return null;
    }
  }

  private roleDoc(name: string): Role {
    return this.store.getRole(name);
  }

  async enableDisable(): Promise<void> {
    if (!(await this.admitted(["GET", "PUT", "DELETE"], "changes"))) return;
    this.req.discard();
    try {
      if (this.req.method === "GET") return this.json(200, { enabled: this.store.enabled() });
      if (this.req.method === "PUT") await this.store.enable();
      else await this.store.disable();
      this.json(200, undefined);
    } catch (e) {
      this.failed(e);
    }
  }

  async baseUsers(): Promise<void> {
    if (!(await this.admitted(["GET"], "all"))) return;
    this.req.discard();
    const users: { user: string; roles?: Role[] }[] = [];
    for (const name of this.store.allUsers()) {
      let u: User;
      try {
        u = this.store.getUser(name);
      } catch (e) {
        return this.failed(e);
      }
      // A role that no longer exists is left out of the list (and fails a single user's GET), as in etcd.
      const roles: Role[] = [];
      for (const r of u.roles ?? []) {
        try {
          roles.push(this.roleDoc(r));
        } catch {}
      }
      users.push(roles.length > 0 ? { user: u.user, roles } : { user: u.user });
    }
    this.json(200, { users: users.length > 0 ? users : null });
  }

  async forUser(name: string): Promise<void> {
    if (!(await this.admitted(["GET", "PUT", "DELETE"], "all"))) return;
    try {
      if (this.req.method === "GET") {
        this.req.discard();
        const u = this.store.getUser(name);
        const roles = (u.roles ?? []).map((r) => this.roleDoc(r));
        return this.json(200, roles.length > 0 ? { user: u.user, roles } : { user: u.user });
      }
      if (this.req.method === "DELETE") {
        this.req.discard();
        await this.store.deleteUser(name);
        return this.json(200, undefined);
      }
      const doc = await this.body();
      if (doc === null) return;
      let change: {
        user: unknown;
        password: string;
        roles: string[] | null;
        grant: string[];
        revoke: string[];
      };
      try {
        if (doc.password !== undefined && doc.password !== null && typeof doc.password !== "string")
          throw new TypeError("password");
        if (doc.user !== undefined && doc.user !== null && typeof doc.user !== "string")
          throw new TypeError("user");
        change = {
          user: doc.user ?? "",
          password: (doc.password as string | null | undefined) ?? "",
          roles: stringList(doc.roles),
          grant: stringList(doc.grant) ?? [],
          revoke: stringList(doc.revoke) ?? [],
        };
      } catch {
        return sendHttpError(this.res, 400, "Invalid JSON in request body.", clusterIdHeader(this.ctx));
      }
      if (change.user !== name)
        return sendHttpError(
          this.res,
          400,
          "User JSON name does not match the name in the URL",
          clusterIdHeader(this.ctx),
        );
      let out: User;
      let created = false;
      if (change.grant.length === 0 && change.revoke.length === 0) {
        if ((change.roles ?? []).length !== 0)
          out = await this.store.createUser(name, change.password, change.roles);
        else ({ user: out, created } = await this.store.createOrUpdateUser(name, change));
      } else {
        if ((change.roles ?? []).length !== 0)
          return sendHttpError(
            this.res,
            400,
            "User JSON contains both roles and grant/revoke",
            clusterIdHeader(this.ctx),
          );
        out = await this.store.updateUser(name, change);
      }
      this.json(created ? 201 : 200, { user: out.user, roles: out.roles });
    } catch (e) {
      this.failed(e);
    }
  }

  async baseRoles(): Promise<void> {
    if (!(await this.admitted(["GET"], "all"))) return;
    this.req.discard();
    try {
      this.json(200, { roles: this.store.allRoles().map((r) => this.roleDoc(r)) });
    } catch (e) {
      this.failed(e);
    }
  }

  async forRole(name: string): Promise<void> {
    if (!(await this.admitted(["GET", "PUT", "DELETE"], "all"))) return;
    try {
      if (this.req.method === "GET") {
        this.req.discard();
        return this.json(200, this.roleDoc(name));
      }
      if (this.req.method === "DELETE") {
        this.req.discard();
        await this.store.deleteRole(name);
        return this.json(200, undefined);
      }
      const doc = await this.body();
      if (doc === null) return;
      let role: unknown;
      let permissions: ReturnType<typeof permissionsOf>;
      let grant: ReturnType<typeof permissionsOf>;
      let revoke: ReturnType<typeof permissionsOf>;
      try {
        if (doc.role !== undefined && doc.role !== null && typeof doc.role !== "string")
          throw new TypeError();
        role = doc.role ?? "";
        permissions = permissionsOf(doc.permissions);
        grant = permissionsOf(doc.grant);
        revoke = permissionsOf(doc.revoke);
      } catch {
        return sendHttpError(this.res, 400, "Invalid JSON in request body.", clusterIdHeader(this.ctx));
      }
      if (role !== name)
        return sendHttpError(
          this.res,
          400,
          "Role JSON name does not match the name in the URL",
          clusterIdHeader(this.ctx),
        );
      if (isEmpty(grant) && isEmpty(revoke)) {
        const created: Role = { role: name, permissions: { kv: permissions ?? { read: null, write: null } } };
        await this.store.createRole(created);
        return this.json(201, created);
      }
      if (!isEmpty(permissions))
        return sendHttpError(
          this.res,
          400,
          "Role JSON contains both permissions and grant/revoke",
          clusterIdHeader(this.ctx),
        );
      this.json(200, await this.store.updateRole(name, grant, revoke));
    } catch (e) {
      this.failed(e);
    }
  }
}
