// Keys a client must not be able to write, against a real 3-node cluster (issue 17, points 2 and 6): the
// 100,000-level key that took a node to 12 GB and left every new leader replaying it is answered 4xx by the node
// asked, over HTTP and the client protocol, and nothing reaches the log; a malformed record under /_berth is
// refused the same way, naming the registry and the commands to use.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_KEY_BYTES, MAX_KEY_DEPTH } from "../src/kv/types.ts";
import { clientFor, currentLeader, TestCluster } from "./support/cluster.ts";

let c: TestCluster;
let leader: string;
let follower: string;

beforeAll(async () => {
  c = await TestCluster.start(3);
  leader = await currentLeader(c);
  follower = c.nodes.map((n) => n.name).find((n) => n !== leader) as string;
}, 60_000);

afterAll(async () => {
  await c?.stop();
});

async function http(node: string, method: string, key: string, form = "") {
  const res = await fetch(`${c.httpUrl(node)}/v2/keys${key}`, {
    method,
    body: form === "" ? undefined : form,
    headers: form === "" ? {} : { "Content-Type": "application/x-www-form-urlencoded" },
  });
  return { status: res.status, body: await res.json() };
}

/** Failed writes every replica has applied: a refused key that reached the log would add one on each. */
async function failedWrites(): Promise<number[]> {
  // A write then a quorum read on each node: everything proposed before is applied there by then.
  await http(leader, "PUT", "/robust/sync", "value=x");
  const out: number[] = [];
  for (const n of c.nodes) {
    await http(n.name, "GET", "/robust/sync?quorum=true");
    const s = (await (await fetch(`${c.httpUrl(n.name)}/v2/stats/store`)).json()) as Record<string, number>;
    out.push(s.setsFail! + s.createFail! + s.updateFail! + s.compareAndSwapFail!);
  }
  return out;
}

describe("key limits on a cluster", () => {
  it("answers the 100,000-level key 400 over HTTP and the client protocol, and proposes nothing", async () => {
    const key = "/a".repeat(100_000);
    const cause = `key is 200000 bytes; the limit is ${MAX_KEY_BYTES}`;
    const before = await failedWrites();
    for (const node of [follower, leader]) {
      for (const [method, form] of [
        ["PUT", "value=x"],
        ["POST", "value=x"],
        ["PUT", "dir=true"],
        ["PUT", "value=x&prevExist=true"],
      ] as const) {
        const r = await http(node, method, key, form);
        expect(r.status, `${method} ${form} on ${node}`).toBe(400);
        expect(r.body).toMatchObject({ errorCode: 209, message: "Invalid field", cause });
      }
      const client = await clientFor(c, node);
      try {
        const err = await client.call("kv.write", { method: "PUT", key, value: "x" }).then(
          () => null,
          (e: { code: string; data: unknown }) => e,
        );
        expect(err).toMatchObject({ code: "kv", data: { errorCode: 209, cause } });
      } finally {
        client.close();
      }
    }
    expect(await failedWrites()).toEqual(before);
    expect((await http(leader, "GET", "/a")).status).toBe(404);
  });

  it(`takes a ${MAX_KEY_DEPTH}-level key on every replica, refuses one level more with exit status 2`, async () => {
    const deep = `/robust${"/d".repeat(MAX_KEY_DEPTH - 1)}`;
    expect(await c.cli(["kv", "set", deep, "v"], c.endpoint(follower))).toMatchObject({
      code: 0,
      stdout: "v\n",
    });
    for (const n of c.nodes) {
      const r = await c.cli(["kv", "get", deep, "--consistency", "local"], c.endpoint(n.name));
      expect(r).toMatchObject({ code: 0, stdout: "v\n" });
    }
    const deeper = await c.cli(["kv", "set", `${deep}/d`, "v"]);
    expect(deeper.code).toBe(2);
    expect(deeper.stderr).toMatch(
      new RegExp(
        `^Error: 209: Invalid field \\(key has ${MAX_KEY_DEPTH + 1} levels; the limit is ${MAX_KEY_DEPTH}\\)`,
      ),
    );
    // Removing works at any depth (it builds nothing).
    expect((await c.cli(["kv", "rm", "/robust", "--recursive"])).code).toBe(0);
  });
});

describe("writes under /_berth on a cluster", () => {
  it("refuses a malformed record (admin: 106; anonymous HTTP: 401), takes a well-formed one and deletes, and list-machines works", async () => {
    const info = "/_berth/machines/cccccccccccccccccccccccccccccccc/info";
    const before = await failedWrites();
    const cli = await c.cli(["kv", "set", info, '{"name":"ghost"}']);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(
      /^Error: 106: The prefix of given key is a keyword in etcd \(\/_berth\/machines\/c{32}\/info: not a valid record: "id" must be "c{32}", the id in its key\. \/_berth is Berth's scheduler registry: change it with berth submit, start, stop, unload, destroy/,
    );
    // Over HTTP an anonymous client may not write the registry at all (authorization comes first: 401, etcd's 110).
    const r = await http(follower, "PUT", info, `value=${encodeURIComponent('{"name":"ghost"}')}`);
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ errorCode: 110 });
    expect(await failedWrites()).toEqual(before);

    const report = JSON.stringify({
      hash: "0".repeat(40),
      load: "loaded",
      active: "active",
      sub: "running",
      mainPid: 1,
      since: 1,
    });
    const stale = "/_berth/states/gone.service/cccccccccccccccccccccccccccccccc";
    expect((await c.cli(["kv", "set", stale, report])).code).toBe(0);
    expect((await c.cli(["kv", "rm", stale])).code).toBe(0);

    const machines = await c.cli(["list-machines", "--no-legend"]);
    expect(machines.code).toBe(0);
    expect(machines.stdout.trim().split("\n")).toHaveLength(3);
    expect(machines.stderr).toBe("");
  });
});
