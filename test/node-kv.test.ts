// A real 3-node cluster of dist/berth processes: the seed's first demonstration (write on one machine, read on
// another), TTLs, directories, compare-and-swap, watches, exit codes, and what happens when nodes die.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { berth, TestCluster } from "./support/cluster.ts";

let c: TestCluster;

beforeAll(async () => {
  c = await TestCluster.start(3);
});

afterAll(async () => {
  await c?.stop();
});

describe("berth kv against a 3-node cluster", () => {
  it("writes on one node and reads on the others", async () => {
    const set = await c.cli(["kv", "set", "/key1", "value1"], c.endpoint("n1"));
    expect(set).toMatchObject({ code: 0, stdout: "value1\n" });
    for (const n of ["n2", "n3"]) {
      const get = await c.cli(["kv", "get", "/key1"], c.endpoint(n));
      expect(get).toMatchObject({ code: 0, stdout: "value1\n" });
    }
  });

  it("prints etcd's documents with --output json and etcdctl's extended format", async () => {
    await c.cli(["kv", "set", "/j", "v"]);
    const json = await c.cli(["kv", "get", "/j", "--output", "json"], c.endpoint("n2"));
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout);
    expect(doc).toMatchObject({ action: "get", node: { key: "/j", value: "v" } });
    expect(Object.keys(doc.node)).toEqual(["key", "value", "modifiedIndex", "createdIndex"]);
    const ext = await c.cli(["kv", "get", "/j", "-o", "extended"]);
    expect(ext.stdout).toMatch(
      /^Key: \/j\nCreated-Index: \d+\nModified-Index: \d+\nTTL: 0\nIndex: \d+\n\nv\n$/,
    );
  });

  it("gives a missing key its own exit code and etcdctl's message", async () => {
    const r = await c.cli(["kv", "get", "/nokey"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^Error: 100: Key not found \(\/nokey\) \[\d+\]\n$/);
  });

  it("expires a key after its TTL on every replica, with the time kept by the leader", async () => {
    expect((await c.cli(["kv", "mk", "/ttl1", "x", "--ttl", "1"])).code).toBe(0);
    const during = await c.cli(["kv", "get", "/ttl1", "-o", "json"], c.endpoint("n3"));
    expect(JSON.parse(during.stdout).node.ttl).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 2500));
    for (const n of ["n1", "n2", "n3"]) {
      const r = await c.cli(["kv", "get", "/ttl1", "--consistency", "local"], c.endpoint(n));
      expect(r.code).toBe(4);
    }
  });

  it("handles directories, ordered listings and recursive removal", async () => {
    expect((await c.cli(["kv", "mkdir", "/d1"])).code).toBe(0);
    const again = await c.cli(["kv", "mkdir", "/d1"]);
    expect(again.code).toBe(5);
    expect(again.stderr).toMatch(/105: Key already exists \(\/d1\)/);
    await c.cli(["kv", "set", "/d1/b/c", "2"]);
    await c.cli(["kv", "set", "/d1/a", "1"]);
    await c.cli(["kv", "set", "/d1/_hidden", "h"]);
    const ls = await c.cli(["kv", "ls", "/d1", "--recursive", "--sort", "-p"]);
    expect(ls).toMatchObject({ code: 0, stdout: "/d1/a\n/d1/b/\n/d1/b/c\n" });
    const rmdir = await c.cli(["kv", "rmdir", "/d1"]);
    expect(rmdir.code).toBe(5);
    expect(rmdir.stderr).toMatch(/108: Directory not empty/);
    expect((await c.cli(["kv", "rm", "/d1", "--recursive"])).code).toBe(0);
    expect((await c.cli(["kv", "get", "/d1/a"])).code).toBe(4);
  });

  it("compares and swaps", async () => {
    await c.cli(["kv", "set", "/swap", "old"]);
    const bad = await c.cli(["kv", "set", "/swap", "new", "--swap-with-value", "wrong"]);
    expect(bad.code).toBe(5);
    expect(bad.stderr).toMatch(/101: Compare failed \(\[wrong != old\]\)/);
    const ok = await c.cli(["kv", "set", "/swap", "new", "--swap-with-value", "old"]);
    expect(ok).toMatchObject({ code: 0, stdout: "new\n" });
    const rm = await c.cli(["kv", "rm", "/swap"]);
    expect(rm).toMatchObject({ code: 0, stdout: "PrevNode.Value: new\n" });
  });

  it("sets a value that looks like a flag after --, with the client flags before or after the command", async () => {
    const after = await berth(["kv", "set", `--endpoint=${c.endpoint("n1")}`, "/dash", "--", "--help"]);
    expect(after).toMatchObject({ code: 0, stdout: "--help\n" });
    expect(await c.cli(["kv", "get", "/dash"])).toMatchObject({ code: 0, stdout: "--help\n" });
    // fleetctl's order: a client flag before the command still applies, and does not land after the --.
    const before = await berth(["--endpoint", c.endpoint("n2"), "kv", "set", "/dash", "--", "-h"]);
    expect(before).toMatchObject({ code: 0, stdout: "-h\n" });
    expect(await c.cli(["kv", "set", "/neg", "-5"])).toMatchObject({ code: 0, stdout: "-5\n" });
  });

  it("watches a prefix from another node and sees each change in order", async () => {
    const watch = berth(["kv", "watch", "/w", "--recursive", "--forever", `--endpoint=${c.endpoint("n3")}`], {
      timeoutMs: 4000,
    });
    await new Promise((r) => setTimeout(r, 700));
    await c.cli(["kv", "set", "/w/a", "1"], c.endpoint("n1"));
    await c.cli(["kv", "set", "/w/b", "2"], c.endpoint("n2"));
    const r = await watch;
    expect(r.stdout).toBe("[set] /w/a\n1\n[set] /w/b\n2\n");
  });

  it("replays history with --after-index and refuses a cleared index like etcd", async () => {
    const first = JSON.parse((await c.cli(["kv", "set", "/h", "1", "-o", "json"])).stdout);
    await c.cli(["kv", "set", "/h", "2"]);
    const r = await c.cli(["kv", "watch", "/h", "--after-index", String(first.node.modifiedIndex)]);
    expect(r).toMatchObject({ code: 0, stdout: "2\n" });
  });

  it("lists members and reports health", async () => {
    const m = await c.cli(["cluster", "members", "-o", "json"]);
    expect(m.code).toBe(0);
    const members = JSON.parse(m.stdout);
    expect(members.map((x: { name: string }) => x.name)).toEqual(["n1", "n2", "n3"]);
    expect(members.filter((x: { isLeader: boolean }) => x.isLeader)).toHaveLength(1);
    const h = await c.cli(["cluster", "health"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/cluster is healthy/);
  });

  it("fails over to the next endpoint and says clearly when none answers", async () => {
    const r = await c.cli(["kv", "get", "/key1"], `127.0.0.1:1,${c.endpoint("n2")}`);
    expect(r).toMatchObject({ code: 0, stdout: "value1\n" });
    const none = await c.cli(["kv", "get", "/key1"], "127.0.0.1:1");
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/cannot reach 127\.0\.0\.1:1/);
  });

  it("keeps every acknowledged write across SIGKILL of the leader, and errors clearly without a majority", async () => {
    for (let i = 0; i < 20; i++) expect((await c.cli(["kv", "set", `/dur/${i}`, String(i)])).code).toBe(0);
    const members = JSON.parse((await c.cli(["cluster", "members", "-o", "json"])).stdout);
    const leader = members.find((x: { isLeader: boolean }) => x.isLeader).name as string;
    await c.kill(leader);
    const survivor = c.nodes.find((n) => n.name !== leader)!.name;
    const after = await c.cli(["kv", "set", "/after-kill", "yes"], c.endpoint(survivor), 15_000);
    expect(after.code).toBe(0);
    // Second failure: no majority left, so a write must fail within the request timeout, not hang.
    const other = c.nodes.find((n) => n.name !== leader && n.name !== survivor)!.name;
    await c.kill(other);
    const started = Date.now();
    const stuck = await c.cli(
      ["kv", "set", "/nomajority", "x", "--request-timeout", "1s"],
      c.endpoint(survivor),
    );
    expect(stuck.code).toBe(3);
    expect(Date.now() - started).toBeLessThan(10_000);
    // Everyone back: all acknowledged writes are there.
    c.spawn(c.node(leader));
    c.spawn(c.node(other));
    await c.waitHealthy();
    for (let i = 0; i < 20; i++) {
      const r = await c.cli(["kv", "get", `/dur/${i}`], c.endpoint(leader));
      expect(r.stdout).toBe(`${i}\n`);
    }
    expect((await c.cli(["kv", "get", "/after-kill"], c.endpoint(other))).stdout).toBe("yes\n");
  }, 60_000);
});
