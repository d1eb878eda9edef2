// etcd 3.4's v2 auth: users, roles, root and guest, in the replicated store (see store.ts).
export { createKeyAccess } from "./access.ts";
export { AUTH_PREFIX, isAuthKey } from "./prefix.ts";
export { AuthStore } from "./store.ts";
