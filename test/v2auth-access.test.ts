// createKeyAccess, the v2 auth rules the msgpack API's authorization (src/etcdv2/access.ts) calls: on an in-memory
// store with the auth records written as the HTTP API writes them.
import { describe, expect, it } from "vitest";
import { createKeyAccess } from "../src/etcdv2/auth/access.ts";
import { parseBasicAuth } from "../src/etcdv2/auth/http.ts";
import { AuthStore } from "../src/etcdv2/auth/store.ts";
import { commandFor } from "../src/kv/requests.ts";
import { KvStore } from "../src/kv/store.ts";
import { KvError, type KvEvent } from "../src/kv/types.ts";
import { kvFailure } from "../src/service/errors.ts";

function authStore(): AuthStore {
  const kv = new KvStore();
  return new AuthStore({
    peek: (key) => kv.peek(key),
    write: async (req) => {
      const r = kv.apply(commandFor(req, Date.now()));
      if (r instanceof KvError) throw kvFailure(r);
      return { event: r as KvEvent, etcdIndex: kv.index, raftIndex: 0, raftTerm: 0 };
    },
    sync: async () => {},
  });
}

describe("createKeyAccess", () => {
  it("allows everything while auth is disabled, etcd's rules once enabled", async () => {
    const store = authStore();
    const access = createKeyAccess(store);
    expect(access.enabled()).toBe(false);
    expect(access.allowed(null, "/anything", "write")).toBe(true);
    expect(access.allowed("nobody", "/anything", "write")).toBe(true);

    await store.createUser("root", "rootpw", null);
    await store.createUser("ann", "annpw", null);
    await store.createRole({
      role: "app",
      permissions: { kv: { read: ["/app/*", "/one"], write: ["/app/*"] } },
    });
    await store.updateUser("ann", { password: "", roles: null, grant: ["app"], revoke: [] });
    await store.enable();
    expect(access.enabled()).toBe(true);

    expect(await access.authenticate("ann", "annpw")).toBe(true);
    expect(await access.authenticate("ann", "wrong")).toBe(false);
    expect(await access.authenticate("ghost", "annpw")).toBe(false);
    expect(access.isRoot("root")).toBe(true);
    expect(access.isRoot("ann")).toBe(false);
    expect(access.isRoot("ghost")).toBe(false);

    expect(access.allowed("ann", "/app/x", "write")).toBe(true);
    expect(access.allowed("ann", "/one", "read")).toBe(true);
    expect(access.allowed("ann", "/one", "write")).toBe(false);
    expect(access.allowed("ann", "/one/below", "read")).toBe(false);
    expect(access.allowed("ann", "/other", "read")).toBe(false);
    // Recursive requests need a "*" pattern: "/one" covers the key, not a subtree.
    expect(access.allowed("ann", "/app/", "read", true)).toBe(true);
    expect(access.allowed("ann", "/one", "read", true)).toBe(false);
    expect(access.allowed("root", "/", "write", true)).toBe(true);
    // A name that is not a user gets nothing (not even the guest's rights).
    expect(access.allowed("ghost", "/x", "read")).toBe(false);
    // Guest: the default guest role (created by enable) reads and writes everything, until revoked.
    expect(access.allowed(null, "/x", "write")).toBe(true);
    await store.updateRole("guest", null, { read: null, write: ["/*"] });
    expect(access.allowed(null, "/x", "write")).toBe(false);
    expect(access.allowed(null, "/x", "read")).toBe(true);

    await store.updateUser("ann", { password: "newpw", roles: null, grant: [], revoke: [] });
    expect(await access.authenticate("ann", "annpw")).toBe(false);
    expect(await access.authenticate("ann", "newpw")).toBe(true);
  });

  it("stores password hashes, never passwords", async () => {
    const store = authStore();
    await store.createUser("ann", "s3cret-pw", null);
    const u = store.getUser("ann");
    expect(u.password).toMatch(/^scrypt\$/);
    expect(u.password).not.toContain("s3cret-pw");
  });

  it("reads HTTP Basic credentials as Go's Request.BasicAuth does", () => {
    const b = (s: string) => Buffer.from(s).toString("base64");
    expect(parseBasicAuth(`Basic ${b("ann:pw:with:colons")}`)).toEqual({
      name: "ann",
      password: "pw:with:colons",
    });
    expect(parseBasicAuth(`bAsIc ${b("ann:")}`)).toEqual({ name: "ann", password: "" });
    expect(parseBasicAuth(`Basic ${b("no colon")}`)).toBeNull();
    expect(parseBasicAuth("Basic !!!")).toBeNull();
    expect(parseBasicAuth(`Bearer ${b("ann:pw")}`)).toBeNull();
  });
});
