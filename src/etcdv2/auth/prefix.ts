// Where the v2 auth users, roles and switch live in the replicated store. A hidden key (never listed under "/",
// never seen by a recursive watch of "/"), and refused by the kv API to every caller (KvService): password
// hashes must never be readable, and the records change only through /v2/auth.
import { cleanKey } from "../../kv/path.ts";

export const AUTH_PREFIX = "/_berth_auth";

/** Whether the key (cleaned as the store cleans it) is AUTH_PREFIX or below it. */
export function isAuthKey(key: string): boolean {
  const k = cleanKey(key);
  return k === AUTH_PREFIX || k.startsWith(`${AUTH_PREFIX}/`);
}
