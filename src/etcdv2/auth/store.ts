// The v2 auth users, roles and on/off switch, kept in the replicated store under AUTH_PREFIX (etcd keeps them in
// its store's /2 namespace, beside the keys' /1). Every member reads them from its own replica, so every member
// enforces the same state; the kv API refuses the prefix to everybody (src/node/kv-service.ts), so the password
// hashes are never readable and the records change only through here. The semantics are etcd 3.4's v2auth store.
import type { KvResult, KvWriteRequest } from "../../client/protocol.ts";
import type { TreeNode } from "../../kv/store.ts";
import { asKvError } from "../respond.ts";
import {
  type AuthError,
  authErr,
  DEFAULT_GUEST_ROLE,
  GUEST,
  mergeRole,
  mergeUser,
  parseRole,
  parseUser,
  ROOT,
  ROOT_ROLE,
  type Role,
  type RWPermission,
  roleJson,
  sameList,
  sameRole,
  type User,
  userJson,
  withRootRole,
} from "./model.ts";
import { checkPassword, hashPassword } from "./passwords.ts";
import { AUTH_PREFIX } from "./prefix.ts";

const USERS = `${AUTH_PREFIX}/users`;
const ROLES = `${AUTH_PREFIX}/roles`;
const ENABLED = `${AUTH_PREFIX}/enabled`;

export interface AuthStoreDeps {
  /** The node at a key in this member's replica, hidden keys included (KvStore.peek). */
  peek(key: string): Readonly<TreeNode> | null;
  /** A write under AUTH_PREFIX through the log (KvService.writeAuthRecord). */
  write(req: KvWriteRequest): Promise<KvResult>;
  /** Waits for a linearizable read point (etcd reads with quorum before it updates a record). */
  sync(): Promise<void>;
}

/** What a PUT on /v2/auth/users/NAME asks for. */
export interface UserChange {
  password: string;
  roles: string[] | null;
  grant: string[];
  revoke: string[];
}

export class AuthStore {
  constructor(private readonly d: AuthStoreDeps) {}

  enabled(): boolean {
    return this.d.peek(ENABLED)?.value === "true";
  }

  allUsers(): string[] {
    return this.names(USERS);
  }

  /** The user (root always with the root role), or a 404 AuthError. */
  getUser(name: string): User {
    const u = this.readUser(name);
    if (u === null) throw authErr(404, `User ${name} does not exist.`);
    return u;
  }

  /** The user if `password` is theirs, else null (an unknown user and a wrong password look alike). */
  async authenticate(name: string, password: string): Promise<User | null> {
    const u = this.readUser(name);
    if (u === null || u.password === "") return null;
    return (await checkPassword(u.password, password)) ? u : null;
  }

  /** etcd's CreateUser: the password is required; an existing user is a 409. */
  async createUser(name: string, password: string, roles: string[] | null): Promise<User> {
    if (password === "") throw authErr(400, `Cannot create user ${name} with an empty password`);
    const user = withRootRole({ user: name, password: await hashPassword(password), roles });
    await this.put(`${USERS}/${name}`, userJson(user), false, () =>
      authErr(409, `User ${name} already exists.`),
    );
    return user;
  }

  /** etcd's CreateOrUpdateUser (a PUT with no roles, grant or revoke): `created` says which it was. */
  async createOrUpdateUser(name: string, change: UserChange): Promise<{ user: User; created: boolean }> {
    await this.d.sync();
    if (this.readUser(name) !== null) return { user: await this.updateUser(name, change), created: false };
    return { user: await this.createUser(name, change.password, change.roles), created: true };
  }

  async updateUser(name: string, change: UserChange): Promise<User> {
    await this.d.sync();
    const old = this.readUser(name);
    if (old === null) throw authErr(404, `User ${name} does not exist.`);
    const hash = change.password !== "" ? await hashPassword(change.password) : null;
    const next = mergeUser(old, change.grant, change.revoke, hash);
    if (next.password === old.password && sameList(next.roles, old.roles))
      throw authErr(400, "User not updated. Use grant/revoke/password to update the user.");
    await this.put(`${USERS}/${name}`, userJson(next), true, null);
    return next;
  }

  async deleteUser(name: string): Promise<void> {
    if (this.enabled() && name === ROOT) throw authErr(403, "Cannot delete root user while auth is enabled.");
    await this.remove(`${USERS}/${name}`, () => authErr(404, `User ${name} does not exist`));
  }

  /** Every role name, root included, sorted. */
  allRoles(): string[] {
    return [ROOT, ...this.names(ROLES)].sort();
  }

  getRole(name: string): Role {
    if (name === ROOT) return ROOT_ROLE;
    const n = this.d.peek(`${ROLES}/${name}`);
    const r = n && n.children === null ? parseRole(n.value) : null;
    if (r === null) throw authErr(404, `Role ${name} does not exist.`);
    return r;
  }

  async createRole(role: Role): Promise<void> {
    if (role.role === ROOT) throw authErr(403, `Cannot modify role ${ROOT}: is root role.`);
    await this.put(`${ROLES}/${role.role}`, roleJson(role), false, () =>
      authErr(409, `Role ${role.role} already exists.`),
    );
  }

  async updateRole(name: string, grant: RWPermission | null, revoke: RWPermission | null): Promise<Role> {
    if (name === ROOT) throw authErr(403, `Cannot modify role ${ROOT}: is root role.`);
    await this.d.sync();
    const old = this.getRole(name);
    const next = mergeRole(old, grant, revoke);
    if (sameRole(old, next)) throw authErr(400, "Role not updated. Use grant/revoke to update the role.");
    await this.put(`${ROLES}/${name}`, roleJson(next), true, null);
    return next;
  }

  async deleteRole(name: string): Promise<void> {
    if (name === ROOT) throw authErr(403, `Cannot modify role ${ROOT}: is root role.`);
    await this.remove(`${ROLES}/${name}`, () => authErr(404, `Role ${name} doesn't exist.`));
  }

  /** etcd's EnableAuth: needs the root user; creates the default guest role when there is none. */
  async enable(): Promise<void> {
    if (this.enabled()) throw authErr(409, "already enabled");
    await this.d.sync();
    if (this.readUser(ROOT) === null) throw authErr(409, "No root user available, please create one");
    if (this.d.peek(`${ROLES}/${GUEST}`) === null) await this.createRole(DEFAULT_GUEST_ROLE);
    await this.put(ENABLED, "true", null, null);
  }

  async disable(): Promise<void> {
    if (!this.enabled()) throw authErr(409, "already disabled");
    await this.put(ENABLED, "false", null, null);
  }

  // ---- Records ----------------------------------------------------------------------------------------------

  private readUser(name: string): User | null {
    const n = this.d.peek(`${USERS}/${name}`);
    const u = n && n.children === null ? parseUser(n.value) : null;
    return u && withRootRole(u);
  }

  private names(dir: string): string[] {
    const n = this.d.peek(dir);
    return n?.children ? [...n.children.keys()].sort() : [];
  }

  /** A PUT; `prevExist` false = create only (`exists` names the 409), true = update only, null = either. */
  private async put(
    key: string,
    value: string,
    prevExist: boolean | null,
    exists: (() => AuthError) | null,
  ): Promise<void> {
    try {
      await this.d.write({ method: "PUT", key, value, ...(prevExist === null ? {} : { prevExist }) });
    } catch (e) {
      const kv = asKvError(e);
      if (kv?.errorCode === 105 && exists) throw exists();
      throw e;
    }
  }

  private async remove(key: string, missing: () => AuthError): Promise<void> {
    try {
      await this.d.write({ method: "DELETE", key, prevExist: true });
    } catch (e) {
      if (asKvError(e)?.errorCode === 100) throw missing();
      throw e;
    }
  }
}
