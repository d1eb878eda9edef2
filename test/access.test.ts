// The authorization table (README "Security: who may do what"), cell by cell, on the pure decision
// (src/etcdv2/access.ts) and on the client API's mapping of methods to operations. test/authz.test.ts runs the same
// rules against real nodes, real users and a real sshd.
import { describe, expect, it } from "vitest";
import { AUTH_DISABLED, type Caller, type KeyAccess, type Operation, refusal } from "../src/etcdv2/access.ts";
import { operationOf } from "../src/node/client-api.ts";

/** etcd auth enabled: root; alice may read and write /alice; the guest role may read /public only. */
const ENABLED: KeyAccess = {
  enabled: () => true,
  authenticate: async (name, password) => password === `${name}-pw`,
  allowed: (user, key, access) =>
    user === "alice"
      ? key.startsWith("/alice")
      : user === null && access === "read" && key.startsWith("/public"),
  isRoot: (user) => user === "root",
};

const admin: Caller = { kind: "admin" };
const root: Caller = { kind: "user", name: "root" };
const alice: Caller = { kind: "user", name: "alice" };
const guest: Caller = { kind: "guest" };

type Cell = [row: string, caller: string, who: Caller, op: Operation, keys: KeyAccess, allowed: boolean];

const units: Operation = { kind: "units", what: "submitting units" };
const membership: Operation = { kind: "membership", what: "changing the membership" };
const view: Operation = { kind: "view" };

const CELLS: Cell[] = [
  // read keys (outside /_berth)
  ["read keys", "admin", admin, { kind: "read", key: "/x" }, ENABLED, true],
  ["read keys", "user root", root, { kind: "read", key: "/x" }, ENABLED, true],
  [
    "read keys (auth enabled, in its role)",
    "user NAME",
    alice,
    { kind: "read", key: "/alice/k" },
    ENABLED,
    true,
  ],
  [
    "read keys (auth enabled, outside its role)",
    "user NAME",
    alice,
    { kind: "read", key: "/x" },
    ENABLED,
    false,
  ],
  ["read keys (auth disabled)", "user NAME", alice, { kind: "read", key: "/x" }, AUTH_DISABLED, true],
  ["read keys (auth enabled, guest role)", "guest", guest, { kind: "read", key: "/public/k" }, ENABLED, true],
  [
    "read keys (auth enabled, outside the guest role)",
    "guest",
    guest,
    { kind: "read", key: "/x" },
    ENABLED,
    false,
  ],
  ["read keys (auth disabled)", "guest", guest, { kind: "read", key: "/x" }, AUTH_DISABLED, true],
  // write keys (outside /_berth)
  ["write keys", "admin", admin, { kind: "write", key: "/x" }, ENABLED, true],
  ["write keys", "user root", root, { kind: "write", key: "/x" }, ENABLED, true],
  [
    "write keys (auth enabled, in its role)",
    "user NAME",
    alice,
    { kind: "write", key: "/alice/k" },
    ENABLED,
    true,
  ],
  [
    "write keys (auth enabled, outside its role)",
    "user NAME",
    alice,
    { kind: "write", key: "/x" },
    ENABLED,
    false,
  ],
  ["write keys (auth disabled)", "user NAME", alice, { kind: "write", key: "/x" }, AUTH_DISABLED, true],
  [
    "write keys (auth enabled, guest role reads only)",
    "guest",
    guest,
    { kind: "write", key: "/public/k" },
    ENABLED,
    false,
  ],
  ["write keys (auth disabled)", "guest", guest, { kind: "write", key: "/x" }, AUTH_DISABLED, true],
  // read /_berth: as other keys
  ["read /_berth", "admin", admin, { kind: "read", key: "/_berth/units" }, ENABLED, true],
  ["read /_berth", "user root", root, { kind: "read", key: "/_berth/units" }, ENABLED, true],
  [
    "read /_berth (auth disabled)",
    "user NAME",
    alice,
    { kind: "read", key: "/_berth/units" },
    AUTH_DISABLED,
    true,
  ],
  [
    "read /_berth (auth enabled, outside its role)",
    "user NAME",
    alice,
    { kind: "read", key: "/_berth" },
    ENABLED,
    false,
  ],
  [
    "read /_berth (auth disabled)",
    "guest",
    guest,
    { kind: "read", key: "/_berth/units" },
    AUTH_DISABLED,
    true,
  ],
  // write /_berth: admin and root only, whatever the key permissions say
  [
    "write /_berth",
    "admin",
    admin,
    { kind: "write", key: "/_berth/units/a.service/object" },
    AUTH_DISABLED,
    true,
  ],
  [
    "write /_berth",
    "user root",
    root,
    { kind: "write", key: "/_berth/units/a.service/object" },
    ENABLED,
    true,
  ],
  [
    "write /_berth (auth disabled)",
    "user NAME",
    alice,
    { kind: "write", key: "/_berth/x" },
    AUTH_DISABLED,
    false,
  ],
  [
    "write /_berth (the directory itself)",
    "guest",
    guest,
    { kind: "write", key: "/_berth" },
    AUTH_DISABLED,
    false,
  ],
  [
    "write /_berth (auth disabled, a key spelt //_berth/./x)",
    "guest",
    guest,
    { kind: "write", key: "//_berth/./x" },
    AUTH_DISABLED,
    false,
  ],
  // unit operations (and with them: who may run a unit as root or as another user)
  ["unit operations", "admin", admin, units, AUTH_DISABLED, true],
  ["unit operations", "user root", root, units, ENABLED, true],
  ["unit operations", "user NAME", alice, units, ENABLED, false],
  ["unit operations (auth disabled)", "user NAME", alice, units, AUTH_DISABLED, false],
  ["unit operations (auth disabled)", "guest", guest, units, AUTH_DISABLED, false],
  // membership
  ["membership", "admin", admin, membership, AUTH_DISABLED, true],
  ["membership", "user root", root, membership, ENABLED, true],
  ["membership", "user NAME", alice, membership, ENABLED, false],
  ["membership (auth disabled)", "guest", guest, membership, AUTH_DISABLED, false],
  // read-only views
  ["read-only views", "admin", admin, view, ENABLED, true],
  ["read-only views", "user root", root, view, ENABLED, true],
  ["read-only views", "user NAME", alice, view, ENABLED, true],
  ["read-only views (auth enabled)", "guest", guest, view, ENABLED, true],
];

describe("the authorization table", () => {
  it.each(CELLS)("%s: %s", (_row, _caller, who, op, keys, allowed) => {
    const why = refusal(who, op, keys);
    if (allowed) expect(why).toBeNull();
    else expect(why).toMatch(/admin rights|Insufficient credentials/);
  });

  it("a refusal of Berth's own operations says how to get the right", () => {
    expect(refusal(guest, units, AUTH_DISABLED)).toMatch(/berth group .*unix socket.*--tunnel/);
  });
});

describe("the client API's methods and what they need", () => {
  const p = { key: "/_berth/units" };
  it.each([
    ["units.submit", "units"],
    ["units.setDesired", "units"],
    ["units.destroy", "units"],
    ["machines.drain", "units"],
    ["cluster.add", "membership"],
    ["cluster.remove", "membership"],
    ["cluster.promote", "membership"],
    ["cluster.move-leader", "membership"],
    ["kv.get", "read"],
    ["kv.watch", "read"],
    ["kv.write", "write"],
    ["units.list", "view"],
    ["units.states", "view"],
    ["units.cat", "view"],
    ["units.status", "view"],
    ["units.journal", "view"],
    ["units.journal.follow", "view"],
    ["machines.list", "view"],
    ["machines.drainStatus", "view"],
    ["machines.containers", "view"],
    ["registry.problems", "view"],
    ["cluster.members", "view"],
    ["cluster.health", "view"],
    ["node.status", "view"],
  ])("%s is a %s operation", (method, kind) => {
    expect(operationOf(method, p).kind).toBe(kind);
  });
});
