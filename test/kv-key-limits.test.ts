// Key limits and linear size in the store itself (issue 17, point 2): a key too long or too deep is refused when a
// log entry carrying it is applied (an older log must not kill a node), and a deep-but-allowed key costs memory
// and snapshot bytes in proportion to its length, not to its length times its depth.
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import type { KvCommand } from "../src/kv/commands.ts";
import { KvStore } from "../src/kv/store.ts";
import { KvError, type KvEvent, MAX_KEY_BYTES, MAX_KEY_DEPTH } from "../src/kv/types.ts";

const T0 = Date.UTC(2026, 11, 7, 0, 0, 0, 0);
const set = (key: string, value = "v"): KvCommand => ({
  op: "set",
  key,
  value,
  dir: false,
  ttl: null,
  refresh: false,
  now: T0,
});
const get = (s: KvStore, key: string, recursive = false) => s.get(key, { recursive, sorted: true }, T0);

/** A key of `depth` levels, each segment `seg` long. */
const deepKey = (depth: number, seg = 1) =>
  Array.from({ length: depth }, (_, i) => `${i % 10}`.repeat(seg)).reduce((k, s) => `${k}/${s}`, "");

describe("key limits when a log entry is applied", () => {
  it("answers the issue's 100,000-level key with an error and builds nothing", () => {
    const s = new KvStore();
    s.apply(set("/before", "1"));
    const key = "/a".repeat(100_000);
    for (const cmd of [
      set(key),
      { op: "create", key, value: "", dir: true, ttl: null, unique: true, now: T0 } as KvCommand,
      { op: "update", key, value: "x", ttl: null, refresh: false, now: T0 } as KvCommand,
      { op: "cas", key, value: "x", prevValue: "v", ttl: null, refresh: false, now: T0 } as KvCommand,
    ]) {
      const r = s.apply(cmd);
      expect(r).toBeInstanceOf(KvError);
      expect((r as KvError).errorCode).toBe(209);
      expect((r as KvError).cause).toBe(`key is 200000 bytes; the limit is ${MAX_KEY_BYTES}`);
    }
    expect(s.index).toBe(1);
    expect(get(s, "/a")).toBeInstanceOf(KvError);
    // A delete builds nothing: it may name any key (and so remove one an older version stored).
    expect((s.apply({ op: "delete", key, dir: false, recursive: false, now: T0 }) as KvError).errorCode).toBe(
      100,
    );
    expect(s.snapshot().length).toBeLessThan(1000);
  });

  it(`accepts ${MAX_KEY_DEPTH} levels and ${MAX_KEY_BYTES} bytes, refuses one more of either`, () => {
    const s = new KvStore();
    expect(s.apply(set(deepKey(MAX_KEY_DEPTH)))).not.toBeInstanceOf(KvError);
    const deeper = s.apply(set(deepKey(MAX_KEY_DEPTH + 1)));
    expect((deeper as KvError).cause).toBe(
      `key has ${MAX_KEY_DEPTH + 1} levels; the limit is ${MAX_KEY_DEPTH}`,
    );
    // Depth counts levels after cleaning: "a/./b/../c" is two.
    expect(s.apply(set(`${deepKey(MAX_KEY_DEPTH)}/./x/..`))).not.toBeInstanceOf(KvError);
    // Bytes are UTF-8 bytes as sent: "é" is two.
    const long = `/${"é".repeat(1000)}${"x".repeat(MAX_KEY_BYTES - 2001)}`;
    expect(Buffer.byteLength(long)).toBe(MAX_KEY_BYTES);
    expect(s.apply(set(long))).not.toBeInstanceOf(KvError);
    expect((s.apply(set(`${long}y`)) as KvError).cause).toBe(
      `key is ${MAX_KEY_BYTES + 1} bytes; the limit is ${MAX_KEY_BYTES}`,
    );
  });
});

describe("size linear in the data", () => {
  // 256 levels of 31-byte names: an 8 KiB key, the largest and deepest allowed.
  const key = deepKey(MAX_KEY_DEPTH, 31);

  it("snapshots a deepest allowed key in a few times its length (full paths per node took 1 MiB)", () => {
    expect(Buffer.byteLength(key)).toBe(MAX_KEY_BYTES);
    const s = new KvStore();
    s.apply(set(key));
    // The set event kept in the history holds the key once; each of the 256 nodes adds its name and indexes.
    expect(s.snapshot().length).toBeLessThan(4 * MAX_KEY_BYTES);
    const b = new KvStore();
    b.restore(s.snapshot());
    expect(b.snapshot()).toEqual(s.snapshot());
    expect((get(b, key) as KvEvent).node).toMatchObject({ key, value: "v" });
  });

  it("names every node by its full key in listings, events and errors", () => {
    const s = new KvStore();
    s.apply(set("/d/e/f", "1"));
    s.apply(set("/d/g", "2"));
    const tree = (get(s, "/d", true) as KvEvent).node;
    expect(JSON.stringify(tree)).toMatch(/"key":"\/d\/e".*"key":"\/d\/e\/f".*"key":"\/d\/g"/);
    expect((get(s, "/d/e/f/x") as KvError).toJSON()).toMatchObject({ errorCode: 104, cause: "/d/e/f" });
    expect((get(s, "/d/e/nope/x") as KvError).cause).toBe("/d/e/nope");
    const del = s.apply({ op: "delete", key: "/d", dir: true, recursive: true, now: T0 }) as KvEvent;
    expect(del.node.key).toBe("/d");
    expect(del.prevNode?.key).toBe("/d");
    s.apply({ ...set("/t/u", "1"), ttl: 1 } as KvCommand);
    const [expired] = s.apply({ op: "expire", now: T0 + 1000 }) as KvEvent[];
    expect(expired?.node.key).toBe("/t/u");
  });

  it("restores a snapshot of the previous layout (full paths, version 1)", () => {
    const v1 = new Packr({ useRecords: false, mapsAsObjects: true }).pack({
      v: 1,
      index: 3,
      nodes: [
        ["/a", 1, "", 1, 1, null],
        ["/a/b", 0, "x", 2, 2, null],
        ["/c", 0, "y", 3, 3, T0 + 5000],
      ],
      history: [],
      stats: [],
    });
    const s = new KvStore();
    s.restore(v1);
    expect(s.index).toBe(3);
    expect((get(s, "/a/b") as KvEvent).node).toMatchObject({ key: "/a/b", value: "x" });
    expect(s.nextExpiration()).toBe(T0 + 5000);
  });
});
