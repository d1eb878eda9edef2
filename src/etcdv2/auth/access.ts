// Who may touch which key, by etcd 3.4's v2 rules (its v2http/client_auth.go): with auth disabled everybody may;
// with auth enabled a user needs a role whose read/write patterns cover the key (any pattern for a single key,
// only "*" patterns for a recursive request), the root role covers everything, and an anonymous caller gets the
// guest role's patterns. Shared by the HTTP API (Basic auth) and the msgpack API (KeyAccess, wired by access.ts).
import type { KeyAccess } from "../access.ts";
import { GUEST, ROOT, roleAllows, type User } from "./model.ts";
import type { AuthStore } from "./store.ts";

/** etcd's hasKeyPrefixAccess for an authenticated user, or hasGuestAccess for `null`. */
export function userMayAccess(
  store: AuthStore,
  user: User | null,
  key: string,
  write: boolean,
  recursive: boolean,
): boolean {
  if (!store.enabled()) return true;
  if (user === null) {
    // etcd checks the guest role with the single-key rule even for recursive requests.
    const guest = tryRole(store, GUEST);
    return guest !== null && roleAllows(guest, key, write, false);
  }
  for (const name of user.roles ?? []) {
    const role = tryRole(store, name);
    if (role !== null && roleAllows(role, key, write, recursive)) return true;
  }
  return false;
}

export function hasRootRole(user: User): boolean {
  return (user.roles ?? []).includes(ROOT);
}

function tryRole(store: AuthStore, name: string) {
  try {
    return store.getRole(name);
  } catch {
    return null;
  }
}

export function createKeyAccess(store: AuthStore): KeyAccess {
  const known = (name: string): User | null => {
    try {
      return store.getUser(name);
    } catch {
      return null;
    }
  };
  return {
    enabled: () => store.enabled(),
    authenticate: async (name, password) => (await store.authenticate(name, password)) !== null,
    allowed: (user, key, access, recursive = false) => {
      if (!store.enabled()) return true;
      // A name that is no (longer a) user has no roles: nothing, not the guest's rights.
      const u = user === null ? null : (known(user) ?? { user, password: "", roles: [] });
      return userMayAccess(store, u, key, access === "write", recursive);
    },
    isRoot: (name) => {
      const u = known(name);
      return u !== null && hasRootRole(u);
    },
  };
}
