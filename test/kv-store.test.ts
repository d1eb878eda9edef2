import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { KvCommand } from "../src/kv/commands.ts";
import { rfc3339Nano, ttlSeconds } from "../src/kv/render.ts";
import { KvStore } from "../src/kv/store.ts";
import { EVENT_HISTORY_SIZE, KvError, type KvEvent } from "../src/kv/types.ts";

const T0 = Date.UTC(2026, 10, 25, 1, 0, 0, 0);

// Command builders with etcd's defaults, so tables stay short.
const set = (key: string, value = "", o: Partial<Extract<KvCommand, { op: "set" }>> = {}): KvCommand => ({
  op: "set",
  key,
  value,
  dir: false,
  ttl: null,
  refresh: false,
  now: T0,
  ...o,
});
const mkdir = (key: string, o: Partial<Extract<KvCommand, { op: "set" }>> = {}) =>
  set(key, "", { dir: true, ...o });
const create = (
  key: string,
  value = "",
  o: Partial<Extract<KvCommand, { op: "create" }>> = {},
): KvCommand => ({
  op: "create",
  key,
  value,
  dir: false,
  ttl: null,
  unique: false,
  now: T0,
  ...o,
});
const update = (
  key: string,
  value = "",
  o: Partial<Extract<KvCommand, { op: "update" }>> = {},
): KvCommand => ({
  op: "update",
  key,
  value,
  ttl: null,
  refresh: false,
  now: T0,
  ...o,
});
const cas = (key: string, value: string, o: Partial<Extract<KvCommand, { op: "cas" }>> = {}): KvCommand => ({
  op: "cas",
  key,
  value,
  ttl: null,
  refresh: false,
  now: T0,
  ...o,
});
const del = (key: string, o: Partial<Extract<KvCommand, { op: "delete" }>> = {}): KvCommand => ({
  op: "delete",
  key,
  dir: false,
  recursive: false,
  now: T0,
  ...o,
});
const cad = (key: string, o: Partial<Extract<KvCommand, { op: "cad" }>> = {}): KvCommand => ({
  op: "cad",
  key,
  now: T0,
  ...o,
});
const expire = (now: number): KvCommand => ({ op: "expire", now });

function run(store: KvStore, cmds: KvCommand[]): (KvEvent | KvEvent[] | KvError)[] {
  return cmds.map((c) => store.apply(c));
}

function ok(r: KvEvent | KvEvent[] | KvError): KvEvent {
  if (r instanceof KvError || Array.isArray(r))
    throw new Error(`expected an event, got ${JSON.stringify(r)}`);
  return r;
}

function getOk(s: KvStore, key: string, recursive = false, sorted = false, now = T0): KvEvent {
  const r = s.get(key, { recursive, sorted }, now);
  if (r instanceof KvError) throw new Error(`get ${key}: ${JSON.stringify(r)}`);
  return r;
}

const flush = () => new Promise<void>((r) => setTimeout(r, 0));

function collect(
  s: KvStore,
  key: string,
  opts: { recursive: boolean; stream: boolean; sinceIndex?: number },
) {
  const seen: KvEvent[] = [];
  const w = s.watch(key, opts, (e) => seen.push(e));
  if (w instanceof KvError) throw new Error(JSON.stringify(w));
  return { seen, w };
}

describe("errors with etcd's codes and causes", () => {
  const cases: { name: string; setup: KvCommand[]; cmd: KvCommand; code: number; cause: string }[] = [
    { name: "100 update missing", setup: [], cmd: update("/nope", "v"), code: 100, cause: "/nope" },
    { name: "100 first missing part", setup: [], cmd: update("/a/b/c", "v"), code: 100, cause: "/a" },
    { name: "100 delete missing", setup: [mkdir("/d")], cmd: del("/d/x"), code: 100, cause: "/d/x" },
    { name: "100 cas missing", setup: [], cmd: cas("/x", "v", { prevValue: "a" }), code: 100, cause: "/x" },
    { name: "100 cad missing", setup: [], cmd: cad("/x", { prevValue: "a" }), code: 100, cause: "/x" },
    {
      name: "100 set refresh missing",
      setup: [],
      cmd: set("/x", "", { refresh: true, ttl: 5 }),
      code: 100,
      cause: "/x",
    },
    {
      name: "101 cas value",
      setup: [set("/k", "hello2")],
      cmd: cas("/k", "v", { prevValue: "wrong" }),
      code: 101,
      cause: "[wrong != hello2]",
    },
    {
      name: "101 cas index",
      setup: [...Array.from({ length: 10 }, () => set("/k", "v"))],
      cmd: cas("/k", "v", { prevIndex: 1 }),
      code: 101,
      cause: "[1 != 10]",
    },
    {
      name: "101 cas both",
      setup: [set("/k", "v")],
      cmd: cas("/k", "x", { prevValue: "pv", prevIndex: 7 }),
      code: 101,
      cause: "[pv != v] [7 != 1]",
    },
    {
      name: "101 cad value",
      setup: [set("/k", "v")],
      cmd: cad("/k", { prevValue: "w" }),
      code: 101,
      cause: "[w != v]",
    },
    {
      name: "101 cad index",
      setup: [set("/k", "v")],
      cmd: cad("/k", { prevIndex: 3 }),
      code: 101,
      cause: "[3 != 1]",
    },
    { name: "102 set over dir", setup: [mkdir("/d")], cmd: set("/d", "v"), code: 102, cause: "/d" },
    { name: "102 set dir over dir", setup: [mkdir("/d")], cmd: mkdir("/d"), code: 102, cause: "/d" },
    { name: "102 update dir value", setup: [mkdir("/d")], cmd: update("/d", "v"), code: 102, cause: "/d" },
    {
      name: "102 cas dir",
      setup: [mkdir("/d")],
      cmd: cas("/d", "v", { prevValue: "x" }),
      code: 102,
      cause: "/d",
    },
    { name: "102 cad dir", setup: [mkdir("/d")], cmd: cad("/d", { prevValue: "x" }), code: 102, cause: "/d" },
    { name: "102 cad root", setup: [], cmd: cad("/", { prevValue: "x" }), code: 102, cause: "/" },
    { name: "102 delete dir plain", setup: [mkdir("/d")], cmd: del("/d"), code: 102, cause: "/d" },
    { name: "104 set below file", setup: [set("/f", "v")], cmd: set("/f/x", "v"), code: 104, cause: "/f" },
    {
      name: "104 create below file",
      setup: [set("/f", "v")],
      cmd: create("/f/x/y", "v"),
      code: 104,
      cause: "/f",
    },
    {
      name: "104 unique below file",
      setup: [set("/f", "v")],
      cmd: create("/f", "v", { unique: true }),
      code: 104,
      cause: "/f",
    },
    {
      name: "104 update below file",
      setup: [set("/f", "v")],
      cmd: update("/f/x", "v"),
      code: 104,
      cause: "/f",
    },
    {
      name: "105 create file exists",
      setup: [set("/k", "v")],
      cmd: create("/k", "v"),
      code: 105,
      cause: "/k",
    },
    {
      name: "105 create dir exists",
      setup: [mkdir("/d")],
      cmd: create("/d", "", { dir: true }),
      code: 105,
      cause: "/d",
    },
    { name: "107 set root", setup: [], cmd: set("/", "v"), code: 107, cause: "/" },
    { name: "107 create root", setup: [], cmd: create("/", "v"), code: 107, cause: "/" },
    { name: "107 update root", setup: [], cmd: update("/", ""), code: 107, cause: "/" },
    { name: "107 cas root", setup: [], cmd: cas("//", "v", { prevValue: "x" }), code: 107, cause: "/" },
    { name: "107 delete root", setup: [], cmd: del("/", { recursive: true }), code: 107, cause: "/" },
    { name: "107 cleaned to root", setup: [], cmd: set("/a/..", "v"), code: 107, cause: "/" },
    {
      name: "108 delete dir non-empty",
      setup: [set("/d/x", "v")],
      cmd: del("/d", { dir: true }),
      code: 108,
      cause: "/d",
    },
  ];
  it.each(cases)("$name", ({ setup, cmd, code, cause }) => {
    const s = new KvStore();
    run(s, setup);
    const before = s.index;
    const r = s.apply(cmd);
    expect(r).toBeInstanceOf(KvError);
    const err = r as KvError;
    expect(err.toJSON()).toEqual({ errorCode: code, message: err.message, cause, index: before });
    expect(s.index).toBe(before); // a failed command never consumes an index
  });

  it("get errors: 100 and 104", () => {
    const s = new KvStore();
    run(s, [set("/f", "v")]);
    expect((s.get("/missing/x", { recursive: false, sorted: false }, T0) as KvError).toJSON()).toEqual({
      errorCode: 100,
      message: "Key not found",
      cause: "/missing",
      index: 1,
    });
    expect((s.get("/f/x", { recursive: false, sorted: false }, T0) as KvError).errorCode).toBe(104);
  });
});

describe("writes: actions, indexes and prevNode", () => {
  it("set, then set over it, in etcd's exact body format", () => {
    const s = new KvStore();
    expect(JSON.stringify(s.apply(set("/message", "hello")))).toBe(
      '{"action":"set","node":{"key":"/message","value":"hello","modifiedIndex":1,"createdIndex":1}}',
    );
    expect(JSON.stringify(s.apply(set("message", "hello2")))).toBe(
      '{"action":"set","node":{"key":"/message","value":"hello2","modifiedIndex":2,"createdIndex":2},' +
        '"prevNode":{"key":"/message","value":"hello","modifiedIndex":1,"createdIndex":1}}',
    );
    expect(JSON.stringify(s.get("/message", { recursive: false, sorted: false }, T0))).toBe(
      '{"action":"get","node":{"key":"/message","value":"hello2","modifiedIndex":2,"createdIndex":2}}',
    );
    expect(s.index).toBe(2);
  });

  it("normalises keys like path.Clean", () => {
    const s = new KvStore();
    const e = ok(s.apply(set("a//b/./c/../d/", "v")));
    expect(e.node.key).toBe("/a/b/d");
    expect(getOk(s, "/a/b/d").node.value).toBe("v");
  });

  it("empty value is kept as a value", () => {
    const s = new KvStore();
    expect(JSON.stringify(ok(s.apply(set("/e", ""))).node)).toBe(
      '{"key":"/e","value":"","modifiedIndex":1,"createdIndex":1}',
    );
  });

  it("creates implicit parent directories at the write's index", () => {
    const s = new KvStore();
    run(s, [set("/x", "1"), set("/a/b/c", "v")]);
    expect(getOk(s, "/a").node).toEqual({
      key: "/a",
      dir: true,
      nodes: [{ key: "/a/b", dir: true, modifiedIndex: 2, createdIndex: 2 }],
      modifiedIndex: 2,
      createdIndex: 2,
    });
  });

  it("set dir=true over a file replaces it (prevNode is the file)", () => {
    const s = new KvStore();
    run(s, [set("/k", "v")]);
    expect(s.apply(mkdir("/k"))).toEqual({
      action: "set",
      node: { key: "/k", dir: true, modifiedIndex: 2, createdIndex: 2 },
      prevNode: { key: "/k", value: "v", modifiedIndex: 1, createdIndex: 1 },
    });
  });

  it("create file and dir", () => {
    const s = new KvStore();
    expect(s.apply(create("/c", "v"))).toEqual({
      action: "create",
      node: { key: "/c", value: "v", modifiedIndex: 1, createdIndex: 1 },
    });
    expect(JSON.stringify(s.apply(create("/d", "", { dir: true })))).toBe(
      '{"action":"create","node":{"key":"/d","dir":true,"modifiedIndex":2,"createdIndex":2}}',
    );
  });

  it("update keeps createdIndex and reports prevNode", () => {
    const s = new KvStore();
    run(s, [set("/k", "a"), set("/other", "x")]);
    expect(s.apply(update("/k", "b"))).toEqual({
      action: "update",
      node: { key: "/k", value: "b", modifiedIndex: 3, createdIndex: 1 },
      prevNode: { key: "/k", value: "a", modifiedIndex: 1, createdIndex: 1 },
    });
  });

  it("update of a directory with an empty value only changes its TTL", () => {
    const s = new KvStore();
    run(s, [mkdir("/d"), set("/d/x", "v")]);
    const e = ok(s.apply(update("/d", "", { ttl: 30, now: T0 })));
    expect(JSON.stringify(e)).toBe(
      '{"action":"update","node":{"key":"/d","dir":true,"expiration":"2026-11-25T01:00:30Z","ttl":30,' +
        '"modifiedIndex":3,"createdIndex":1},"prevNode":{"key":"/d","dir":true,"modifiedIndex":1,"createdIndex":1}}',
    );
    expect(getOk(s, "/d/x").node.value).toBe("v");
    expect(s.nextExpiration()).toBe(T0 + 30_000);
  });

  it("compareAndSwap by value, by index, and by both", () => {
    const s = new KvStore();
    run(s, [set("/k", "one")]);
    expect(s.apply(cas("/k", "two", { prevValue: "one" }))).toEqual({
      action: "compareAndSwap",
      node: { key: "/k", value: "two", modifiedIndex: 2, createdIndex: 1 },
      prevNode: { key: "/k", value: "one", modifiedIndex: 1, createdIndex: 1 },
    });
    expect(ok(s.apply(cas("/k", "three", { prevIndex: 2 }))).node.value).toBe("three");
    expect(ok(s.apply(cas("/k", "four", { prevIndex: 3, prevValue: "three" }))).node.modifiedIndex).toBe(4);
  });

  it("delete file, dir, recursive dir; compareAndDelete", () => {
    const s = new KvStore();
    run(s, [set("/f", "v"), mkdir("/empty"), set("/tree/a/b", "1"), set("/g", "w")]);
    expect(JSON.stringify(s.apply(del("/f")))).toBe(
      '{"action":"delete","node":{"key":"/f","modifiedIndex":5,"createdIndex":1},' +
        '"prevNode":{"key":"/f","value":"v","modifiedIndex":1,"createdIndex":1}}',
    );
    expect(s.apply(del("/empty", { dir: true }))).toEqual({
      action: "delete",
      node: { key: "/empty", dir: true, modifiedIndex: 6, createdIndex: 2 },
      prevNode: { key: "/empty", dir: true, modifiedIndex: 2, createdIndex: 2 },
    });
    expect(ok(s.apply(del("/tree", { recursive: true }))).node).toEqual({
      key: "/tree",
      dir: true,
      modifiedIndex: 7,
      createdIndex: 3,
    });
    expect(s.get("/tree/a/b", { recursive: false, sorted: false }, T0)).toBeInstanceOf(KvError);
    expect(s.apply(cad("/g", { prevValue: "w" }))).toEqual({
      action: "compareAndDelete",
      node: { key: "/g", modifiedIndex: 8, createdIndex: 4 },
      prevNode: { key: "/g", value: "w", modifiedIndex: 4, createdIndex: 4 },
    });
    expect(getOk(s, "/").node.nodes).toBeUndefined();
  });

  it("delete a file with dir=true works (etcd allows it)", () => {
    const s = new KvStore();
    run(s, [set("/f", "v")]);
    expect(ok(s.apply(del("/f", { dir: true }))).action).toBe("delete");
  });
});

describe("in-order keys", () => {
  it("are named by the new index, 20 digits, and list in creation order when sorted", () => {
    const s = new KvStore();
    run(s, [set("/other", "x")]);
    const names: string[] = [];
    for (const v of ["a", "b", "c"]) names.push(ok(s.apply(create("/queue", v, { unique: true }))).node.key);
    expect(names).toEqual([
      "/queue/00000000000000000002",
      "/queue/00000000000000000003",
      "/queue/00000000000000000004",
    ]);
    run(
      s,
      Array.from({ length: 7 }, () => set("/other", "y")),
    );
    names.push(ok(s.apply(create("/queue", "d", { unique: true }))).node.key);
    expect(names[3]).toBe("/queue/00000000000000000012");
    const listing = getOk(s, "/queue", false, true).node.nodes?.map((n) => [n.key, n.value]);
    expect(listing).toEqual(names.map((k, i) => [k, "abcd"[i]]));
  });

  it("can be directories", () => {
    const s = new KvStore();
    expect(ok(s.apply(create("/q", "", { unique: true, dir: true }))).node).toEqual({
      key: "/q/00000000000000000001",
      dir: true,
      modifiedIndex: 1,
      createdIndex: 1,
    });
  });
});

describe("listings", () => {
  const s = new KvStore();
  run(s, [
    set("/d/b", "2"),
    set("/d/a", "1"),
    set("/d/c/x", "3"),
    mkdir("/d/e"),
    set("/d/_h", "hidden"),
    set("/d/c/_y", "h"),
  ]);

  it("one level, sorted", () => {
    expect(JSON.stringify(getOk(s, "/d", false, true))).toBe(
      '{"action":"get","node":{"key":"/d","dir":true,"nodes":[' +
        '{"key":"/d/a","value":"1","modifiedIndex":2,"createdIndex":2},' +
        '{"key":"/d/b","value":"2","modifiedIndex":1,"createdIndex":1},' +
        '{"key":"/d/c","dir":true,"modifiedIndex":3,"createdIndex":3},' +
        '{"key":"/d/e","dir":true,"modifiedIndex":4,"createdIndex":4}' +
        '],"modifiedIndex":1,"createdIndex":1}}',
    );
  });

  it("unsorted keeps insertion order", () => {
    expect(getOk(s, "/d").node.nodes?.map((n) => n.key)).toEqual(["/d/b", "/d/a", "/d/c", "/d/e"]);
  });

  it("recursive nests nodes; empty dirs have no nodes field; hidden keys left out at every level", () => {
    const n = getOk(s, "/", true, true).node;
    expect(n.nodes?.map((x) => x.key)).toEqual(["/d"]);
    const d = n.nodes?.[0];
    expect(d?.nodes?.map((x) => x.key)).toEqual(["/d/a", "/d/b", "/d/c", "/d/e"]);
    expect(d?.nodes?.[2]?.nodes).toEqual([{ key: "/d/c/x", value: "3", modifiedIndex: 3, createdIndex: 3 }]);
    expect(d?.nodes?.[3]).toEqual({ key: "/d/e", dir: true, modifiedIndex: 4, createdIndex: 4 });
    expect("nodes" in (d?.nodes?.[3] ?? {})).toBe(false);
  });

  it("a direct get of a hidden key works", () => {
    expect(getOk(s, "/d/_h").node.value).toBe("hidden");
  });

  it("root get: etcd shows the root without key and indexes", () => {
    const n = getOk(s, "/").node;
    expect(JSON.stringify({ ...n, nodes: [] })).toBe('{"dir":true,"nodes":[]}');
  });

  it("counts gets in stats", () => {
    const t = new KvStore();
    t.get("/x", { recursive: false, sorted: false }, T0);
    t.get("/", { recursive: false, sorted: false }, T0);
    expect(t.stats()).toMatchObject({ getsSuccess: 1, getsFail: 1 });
  });
});

describe("TTL", () => {
  it("renders expiration as RFC3339Nano and ttl rounded up", () => {
    expect(rfc3339Nano(Date.UTC(2026, 10, 25, 1, 0, 24, 589))).toBe("2026-11-25T01:00:24.589Z");
    expect(rfc3339Nano(Date.UTC(2026, 10, 25, 1, 0, 24, 500))).toBe("2026-11-25T01:00:24.5Z");
    expect(rfc3339Nano(Date.UTC(2026, 10, 25, 1, 0, 24, 0))).toBe("2026-11-25T01:00:24Z");
    const cases: [number, number][] = [
      [5000, 5],
      [4001, 5],
      [4000, 4],
      [1, 1],
      [0, 0],
      [-1, 0],
      [-1000, -1],
      [-1500, -1],
    ];
    for (const [left, ttl] of cases) expect(ttlSeconds(T0 + left, T0)).toBe(ttl);
  });

  it("set with ttl shows expiration and ttl; get counts down from `now`", () => {
    const s = new KvStore();
    const now = T0 + 589;
    expect(JSON.stringify(s.apply(set("/t", "v", { ttl: 24, now })))).toBe(
      '{"action":"set","node":{"key":"/t","value":"v","expiration":"2026-11-25T01:00:24.589Z","ttl":24,' +
        '"modifiedIndex":1,"createdIndex":1}}',
    );
    expect(getOk(s, "/t", false, false, now + 10_000).node.ttl).toBe(14);
    expect(getOk(s, "/t", false, false, now + 10_001).node.ttl).toBe(14);
    expect(getOk(s, "/t", false, false, now + 10_999).node.ttl).toBe(14);
    expect(getOk(s, "/t", false, false, now + 11_000).node.ttl).toBe(13);
    // ttl 0 is omitted (omitempty) but the expiration stays.
    const at = getOk(s, "/t", false, false, now + 24_000).node;
    expect(at.ttl).toBeUndefined();
    expect(at.expiration).toBe("2026-11-25T01:00:24.589Z");
  });

  it("ttl null makes a node permanent again; update/cas can set and clear TTLs", () => {
    const s = new KvStore();
    run(s, [set("/k", "v", { ttl: 10 })]);
    expect(s.nextExpiration()).toBe(T0 + 10_000);
    run(s, [set("/k", "v2")]);
    expect(s.nextExpiration()).toBeNull();
    expect(getOk(s, "/k").node.expiration).toBeUndefined();
    run(s, [update("/k", "v3", { ttl: 7 })]);
    expect(s.nextExpiration()).toBe(T0 + 7000);
    run(s, [cas("/k", "v4", { prevValue: "v3", ttl: 3 })]);
    expect(s.nextExpiration()).toBe(T0 + 3000);
    run(s, [cas("/k", "v5", { prevValue: "v4" })]);
    expect(s.nextExpiration()).toBeNull();
  });

  it("refresh keeps the value, resets the TTL, takes an index and notifies nobody", async () => {
    const s = new KvStore();
    run(s, [set("/k", "keep", { ttl: 5 }), set("/u", "u", { ttl: 5 }), set("/c", "c", { ttl: 5 })]);
    const { seen } = collect(s, "/", { recursive: true, stream: true });
    const e = ok(s.apply(set("/k", "", { refresh: true, ttl: 60, now: T0 + 1000 })));
    expect(e.node).toMatchObject({ value: "keep", ttl: 60, modifiedIndex: 4 });
    expect(e.prevNode?.value).toBe("keep");
    expect(ok(s.apply(update("/u", "", { refresh: true, ttl: 60 }))).node.value).toBe("u");
    expect(ok(s.apply(cas("/c", "ignored", { refresh: true, ttl: 60, prevValue: "c" }))).node.value).toBe(
      "c",
    );
    expect(s.index).toBe(6);
    expect(s.nextExpiration()).toBe(T0 + 60_000);
    await flush();
    expect(seen).toEqual([]);
    // Nor are refreshes replayed from history.
    const past = collect(s, "/", { recursive: true, stream: false, sinceIndex: 4 });
    await flush();
    expect(past.seen).toEqual([]);
    run(s, [set("/after", "x")]);
    await flush();
    expect(past.seen.map((x) => x.node.key)).toEqual(["/after"]);
  });

  it("expire removes files and dirs (recursively) in expiration order, one index each", async () => {
    const s = new KvStore();
    run(s, [
      set("/a", "1", { ttl: 3 }),
      mkdir("/dir", { ttl: 2 }),
      set("/dir/inner", "x", { ttl: 10 }),
      set("/dir/sub/y", "y"),
      set("/keep", "k", { ttl: 100 }),
    ]);
    expect(s.nextExpiration()).toBe(T0 + 2000);
    const { seen } = collect(s, "/", { recursive: true, stream: true });
    const inner = collect(s, "/dir/inner", { recursive: false, stream: false });
    expect(s.apply(expire(T0 + 1999))).toEqual([]);
    expect(s.index).toBe(5);
    const events = s.apply(expire(T0 + 3000)) as KvEvent[];
    expect(events).toEqual([
      {
        action: "expire",
        node: { key: "/dir", dir: true, modifiedIndex: 6, createdIndex: 2 },
        prevNode: {
          key: "/dir",
          dir: true,
          expiration: "2026-11-25T01:00:02Z",
          ttl: -1,
          modifiedIndex: 2,
          createdIndex: 2,
        },
      },
      {
        action: "expire",
        node: { key: "/a", modifiedIndex: 7, createdIndex: 1 },
        prevNode: {
          key: "/a",
          value: "1",
          expiration: "2026-11-25T01:00:03Z",
          modifiedIndex: 1,
          createdIndex: 1,
        },
      },
    ]);
    expect(s.index).toBe(7);
    expect(s.nextExpiration()).toBe(T0 + 100_000); // /dir/inner left the heap with its directory
    expect(getOk(s, "/", true).node.nodes?.map((n) => n.key)).toEqual(["/keep"]);
    expect(s.stats().expireCount).toBe(2);
    await flush();
    expect(seen).toEqual(events);
    expect(inner.seen.map((e) => e.node.key)).toEqual(["/dir"]); // told its directory went away
  });

  it("equal expirations expire in key order", () => {
    const s = new KvStore();
    run(s, [set("/b", "", { ttl: 1 }), set("/a", "", { ttl: 1 }), set("/c", "", { ttl: 1 })]);
    expect((s.apply(expire(T0 + 1000)) as KvEvent[]).map((e) => e.node.key)).toEqual(["/a", "/b", "/c"]);
  });

  it("nextExpiration stays cheap with many TTL keys", () => {
    const s = new KvStore();
    const n = 20_000;
    for (let i = 0; i < n; i++) s.apply(set(`/k/${i}`, "v", { ttl: 1 + ((i * 7919) % n), now: T0 }));
    expect(s.nextExpiration()).toBe(T0 + 1000);
    const t = performance.now();
    for (let i = 0; i < 100_000; i++) s.nextExpiration();
    expect(performance.now() - t).toBeLessThan(500);
    const events = s.apply(expire(T0 + 10_000)) as KvEvent[];
    expect(events).toHaveLength(10);
    expect(s.nextExpiration()).toBe(T0 + 11_000);
  });
});

describe("watches", () => {
  it("once watcher fires once, asynchronously, then is removed", async () => {
    const s = new KvStore();
    const { seen } = collect(s, "/k", { recursive: false, stream: false });
    expect(s.stats().watchers).toBe(1);
    run(s, [set("/k", "1")]);
    expect(seen).toEqual([]); // never inside apply()
    run(s, [set("/k", "2")]);
    await flush();
    expect(seen.map((e) => e.node.value)).toEqual(["1"]);
    expect(s.stats().watchers).toBe(0);
  });

  it("stream watcher keeps going until cancel", async () => {
    const s = new KvStore();
    const { seen, w } = collect(s, "/k", { recursive: false, stream: true });
    run(s, [set("/k", "1"), set("/other", "x"), update("/k", "2"), del("/k")]);
    await flush();
    expect(seen.map((e) => [e.action, e.node.modifiedIndex])).toEqual([
      ["set", 1],
      ["update", 3],
      ["delete", 4],
    ]);
    w.cancel();
    expect(s.stats().watchers).toBe(0);
    run(s, [set("/k", "3")]);
    await flush();
    expect(seen).toHaveLength(3);
  });

  it("cancel drops events not yet delivered", async () => {
    const s = new KvStore();
    const { seen, w } = collect(s, "/k", { recursive: false, stream: true });
    run(s, [set("/k", "1")]);
    w.cancel();
    await flush();
    expect(seen).toEqual([]);
  });

  it("non-recursive watchers ignore children; recursive ones see them but not hidden ones", async () => {
    const s = new KvStore();
    run(s, [mkdir("/d")]);
    const flat = collect(s, "/d", { recursive: false, stream: true });
    const deep = collect(s, "/d", { recursive: true, stream: true });
    const root = collect(s, "/", { recursive: true, stream: true });
    const hiddenDirect = collect(s, "/d/_h", { recursive: false, stream: true });
    const inHidden = collect(s, "/d/_hd", { recursive: true, stream: true });
    run(s, [set("/d/x", "1"), set("/d/_h", "2"), set("/d/_hd/y", "3"), set("/dx", "no")]);
    await flush();
    expect(flat.seen).toEqual([]);
    expect(deep.seen.map((e) => e.node.key)).toEqual(["/d/x"]);
    expect(root.seen.map((e) => e.node.key)).toEqual(["/d/x", "/dx"]);
    expect(hiddenDirect.seen.map((e) => e.node.key)).toEqual(["/d/_h"]);
    expect(inHidden.seen.map((e) => e.node.key)).toEqual(["/d/_hd/y"]);
  });

  it("a watcher on a key inside a deleted dir, and on the dir itself, sees the delete once", async () => {
    const s = new KvStore();
    run(s, [set("/d/a/b", "1")]);
    const leaf = collect(s, "/d/a/b", { recursive: false, stream: true });
    const dir = collect(s, "/d", { recursive: false, stream: true });
    const e = ok(s.apply(del("/d", { recursive: true })));
    await flush();
    expect(leaf.seen).toEqual([e]);
    expect(dir.seen).toEqual([e]);
  });

  it("sinceIndex serves the first matching past event", async () => {
    const s = new KvStore();
    run(s, [set("/a", "1"), set("/b", "1"), set("/a", "2"), set("/b", "2")]);
    const once = collect(s, "/a", { recursive: false, stream: false, sinceIndex: 2 });
    const fromStart = collect(s, "/b", { recursive: false, stream: false, sinceIndex: 1 });
    expect(once.seen).toEqual([]);
    await flush();
    expect(once.seen.map((e) => [e.node.key, e.node.modifiedIndex])).toEqual([["/a", 3]]);
    expect(fromStart.seen.map((e) => e.node.modifiedIndex)).toEqual([2]);
    expect(s.stats().watchers).toBe(0);
  });

  it("a stream from the past replays every match, then goes live", async () => {
    const s = new KvStore();
    run(s, [set("/d/a", "1"), set("/x", "1"), set("/d/b", "1")]);
    const st = collect(s, "/d", { recursive: true, stream: true, sinceIndex: 1 });
    run(s, [set("/d/c", "1")]);
    await flush();
    expect(st.seen.map((e) => e.node.key)).toEqual(["/d/a", "/d/b", "/d/c"]);
  });

  it("history remembers directory deletion for keys below it", async () => {
    const s = new KvStore();
    run(s, [set("/d/k", "1"), del("/d", { recursive: true })]);
    const w = collect(s, "/d/k", { recursive: false, stream: false, sinceIndex: 2 });
    await flush();
    expect(w.seen.map((e) => [e.action, e.node.key])).toEqual([["delete", "/d"]]);
  });

  it("a future sinceIndex waits for that index", async () => {
    const s = new KvStore();
    const w = collect(s, "/k", { recursive: false, stream: false, sinceIndex: 3 });
    run(s, [set("/k", "1"), set("/k", "2"), set("/k", "3")]);
    await flush();
    expect(w.seen.map((e) => e.node.modifiedIndex)).toEqual([3]);
  });

  it("401 when the requested index has left the history", () => {
    const s = new KvStore();
    for (let i = 0; i < EVENT_HISTORY_SIZE + 5; i++) s.apply(set("/k", String(i)));
    const r = s.watch("/k", { recursive: false, stream: false, sinceIndex: 3 }, () => {});
    expect(r).toBeInstanceOf(KvError);
    expect((r as KvError).toJSON()).toEqual({
      errorCode: 401,
      message: "The event in requested index is outdated and cleared",
      cause: "the requested history has been cleared [6/3]",
      index: EVENT_HISTORY_SIZE + 5,
    });
    expect(s.watch("/k", { recursive: false, stream: false, sinceIndex: 6 }, () => {})).not.toBeInstanceOf(
      KvError,
    );
  });

  it("a throwing listener does not disturb the store or other watchers", async () => {
    const s = new KvStore();
    s.watch("/k", { recursive: false, stream: true }, () => {
      throw new Error("boom");
    });
    const other = collect(s, "/k", { recursive: false, stream: true });
    run(s, [set("/k", "1")]);
    await flush();
    expect(other.seen).toHaveLength(1);
  });
});

describe("stats", () => {
  it("counts successes and failures per operation", () => {
    const s = new KvStore();
    run(s, [
      set("/k", "v"),
      set("/", "x"),
      create("/k", "v"),
      create("/c", "v"),
      update("/k", "w"),
      update("/none", "w"),
      cas("/k", "x", { prevValue: "w" }),
      cas("/k", "x", { prevValue: "nope" }),
      cad("/k", { prevValue: "x" }),
      cad("/k", { prevValue: "x" }),
      del("/c"),
      del("/c"),
    ]);
    collect(s, "/k", { recursive: false, stream: true });
    expect(s.stats()).toEqual({
      getsSuccess: 0,
      getsFail: 0,
      setsSuccess: 1,
      setsFail: 1,
      deleteSuccess: 1,
      deleteFail: 1,
      updateSuccess: 1,
      updateFail: 1,
      createSuccess: 1,
      createFail: 1,
      compareAndSwapSuccess: 1,
      compareAndSwapFail: 1,
      compareAndDeleteSuccess: 1,
      compareAndDeleteFail: 1,
      expireCount: 0,
      watchers: 1,
    });
  });
});

describe("snapshot and restore", () => {
  function populated(): KvStore {
    const s = new KvStore();
    run(s, [
      set("/a/b/c", "1", { ttl: 50 }),
      mkdir("/dir", { ttl: 20 }),
      set("/dir/_hidden", "h"),
      create("/q", "x", { unique: true }),
      create("/q", "y", { unique: true }),
      set("/z", "z"),
      update("/z", "zz", { ttl: 5 }),
      del("/q/00000000000000000004"),
      set("/a/b/c", "", { refresh: true, ttl: 60 }),
    ]);
    return s;
  }

  it("snapshot parts hold the state of the moment they were asked for, however the store changes while they are taken", () => {
    const a = populated();
    // Enough keys for several parts (10,000 nodes each).
    run(
      a,
      Array.from({ length: 25_000 }, (_, i) => set(`/many/k${i}`, `v${i}`)),
    );
    const before = a.snapshot();
    const parts = a.snapshotParts()[Symbol.iterator]();
    const taken = [parts.next().value!];
    run(a, [
      set("/many/k1", "changed"),
      del("/many/k20000"),
      set("/new", "x"),
      del("/a", { recursive: true }),
    ]);
    for (let p = parts.next(); !p.done; p = parts.next()) taken.push(p.value);
    expect(taken.length).toBeGreaterThan(3);
    const b = new KvStore();
    b.restore(Buffer.concat(taken));
    expect(b.snapshot()).toEqual(before);
    expect(b.index).toBe(a.index - 4);
  });

  it("restores the same tree, index, expirations, history and stats", async () => {
    const a = populated();
    const b = new KvStore();
    b.restore(a.snapshot());
    expect(b.index).toBe(a.index);
    expect(JSON.stringify(b.get("/", { recursive: true, sorted: false }, T0 + 1234))).toBe(
      JSON.stringify(a.get("/", { recursive: true, sorted: false }, T0 + 1234)),
    );
    expect(b.nextExpiration()).toBe(a.nextExpiration());
    expect(b.stats()).toEqual(a.stats());
    expect(b.snapshot()).toEqual(a.snapshot());
    // Same waitIndex answers from the restored history.
    const wa = collect(a, "/", { recursive: true, stream: true, sinceIndex: 1 });
    const wb = collect(b, "/", { recursive: true, stream: true, sinceIndex: 1 });
    await flush();
    expect(wb.seen).toEqual(wa.seen);
    expect(wb.seen.length).toBeGreaterThan(0);
    // And both expire the same way afterwards.
    expect(b.apply(expire(T0 + 60_000))).toEqual(a.apply(expire(T0 + 60_000)));
    expect(b.snapshot()).toEqual(a.snapshot());
  });

  it("existing watchers survive a restore and catch up from its history", async () => {
    const leader = new KvStore();
    const follower = new KvStore();
    const w = collect(follower, "/k", { recursive: false, stream: true });
    run(leader, [set("/k", "1"), set("/x", "1"), set("/k", "2")]);
    follower.restore(leader.snapshot());
    run(leader, [set("/k", "3")]);
    follower.restore(leader.snapshot());
    await flush();
    expect(w.seen.map((e) => e.node.value)).toEqual(["1", "2", "3"]);
    expect(follower.stats().watchers).toBe(1);
  });

  it("restore replaces, not merges", () => {
    const a = new KvStore();
    run(a, [set("/only-a", "1")]);
    const b = new KvStore();
    run(b, [set("/only-b", "1"), set("/t", "", { ttl: 1 })]);
    b.restore(a.snapshot());
    expect(b.get("/only-b", { recursive: false, sorted: false }, T0)).toBeInstanceOf(KvError);
    expect(b.nextExpiration()).toBeNull();
    expect(b.index).toBe(1);
  });
});

describe("determinism (property)", () => {
  const keyArb = fc.constantFrom("/a", "/a/b", "/a/b/c", "/d", "/d/_h", "/q", "a//b/../x", "/", "/e/f");
  const valArb = fc.constantFrom("", "v", "w", "hello");
  const ttlArb = fc.option(fc.integer({ min: 0, max: 20 }), { nil: null });
  const nowArb = fc.integer({ min: 0, max: 30_000 }).map((d) => T0 + d);
  const idxArb = fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined });
  const pvArb = fc.option(valArb, { nil: undefined });
  const cmdArb: fc.Arbitrary<KvCommand> = fc.oneof(
    fc.record({
      op: fc.constant("set" as const),
      key: keyArb,
      value: valArb,
      dir: fc.boolean(),
      ttl: ttlArb,
      refresh: fc.boolean(),
      now: nowArb,
    }),
    fc.record({
      op: fc.constant("create" as const),
      key: keyArb,
      value: valArb,
      dir: fc.boolean(),
      ttl: ttlArb,
      unique: fc.boolean(),
      now: nowArb,
    }),
    fc.record({
      op: fc.constant("update" as const),
      key: keyArb,
      value: valArb,
      ttl: ttlArb,
      refresh: fc.boolean(),
      now: nowArb,
    }),
    fc.record({
      op: fc.constant("cas" as const),
      key: keyArb,
      value: valArb,
      prevValue: pvArb,
      prevIndex: idxArb,
      ttl: ttlArb,
      refresh: fc.boolean(),
      now: nowArb,
    }),
    fc.record({
      op: fc.constant("delete" as const),
      key: keyArb,
      dir: fc.boolean(),
      recursive: fc.boolean(),
      now: nowArb,
    }),
    fc.record({
      op: fc.constant("cad" as const),
      key: keyArb,
      prevValue: pvArb,
      prevIndex: idxArb,
      now: nowArb,
    }),
    fc.record({ op: fc.constant("expire" as const), now: nowArb }),
  );

  it("two replicas applying the same commands agree; apply never throws; restore round-trips", () => {
    fc.assert(
      fc.property(fc.array(cmdArb, { maxLength: 60 }), (cmds) => {
        const a = new KvStore();
        const b = new KvStore();
        for (const c of cmds) {
          const before = a.index;
          const ra = a.apply(c);
          const rb = b.apply(structuredClone(c));
          expect(JSON.stringify(ra)).toBe(JSON.stringify(rb));
          if (ra instanceof KvError) expect(a.index).toBe(before);
          else if (!Array.isArray(ra)) expect(a.index).toBe(before + 1);
          else expect(a.index).toBe(before + ra.length);
        }
        expect(a.snapshot()).toEqual(b.snapshot());
        const c = new KvStore();
        c.restore(a.snapshot());
        expect(c.snapshot()).toEqual(a.snapshot());
        expect(JSON.stringify(c.get("/", { recursive: true, sorted: true }, T0))).toBe(
          JSON.stringify(a.get("/", { recursive: true, sorted: true }, T0)),
        );
      }),
      { numRuns: 300, seed: 42 },
    );
  });
});

describe("scale", () => {
  it("snapshots and restores a directory with 100k keys", () => {
    const s = new KvStore();
    for (let i = 0; i < 100_000; i++) s.apply(set(`/big/${i}`, "v", { ttl: i % 2 ? 60 : null }));
    const t = new KvStore();
    t.restore(s.snapshot());
    expect(t.index).toBe(100_000);
    expect(t.nextExpiration()).toBe(T0 + 60_000);
    expect(getOk(t, "/big/99999").node.value).toBe("v");
  });
});

describe("key count (berth_store_keys)", () => {
  /** Keys and directories below the root, counted by walking a recursive listing. */
  function walked(s: KvStore, now: number): number {
    const count = (n: { nodes?: unknown[] }): number =>
      (n.nodes ?? []).reduce<number>((sum, c) => sum + 1 + count(c as { nodes?: unknown[] }), 0);
    return count(getOk(s, "/", true, false, now).node as { nodes?: unknown[] });
  }

  it("follows creates (with their parent directories), replaces, recursive deletes, expiries and restores", () => {
    const key = fc.constantFrom("/a", "/a/b", "/a/b/c", "/d", "/d/e", "/f");
    const cmd = fc.oneof(
      fc
        .tuple(key, fc.boolean(), fc.option(fc.constantFrom(1, 2), { nil: null }))
        .map(([k, dir, ttl]) => set(k, dir ? "" : "v", { dir, ttl })),
      key.map((k) => create(k, "v")),
      fc.tuple(key, fc.boolean()).map(([k, recursive]) => del(k, { recursive, dir: true })),
      key.map((k) => del(k)),
    );
    fc.assert(
      fc.property(fc.array(cmd, { maxLength: 30 }), fc.integer({ min: 0, max: 30 }), (cmds, expireAt) => {
        const s = new KvStore();
        cmds.forEach((c, i) => {
          s.apply(c);
          if (i === expireAt) s.apply(expire(T0 + 1500));
          expect(s.keyCount).toBe(walked(s, T0 + (i >= expireAt ? 1500 : 0)));
        });
        const copy = new KvStore();
        copy.restore(s.snapshot());
        expect(copy.keyCount).toBe(s.keyCount);
      }),
      { numRuns: 300 },
    );
  });
});
