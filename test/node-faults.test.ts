// Real dist/berth clusters under faults: 5-node reads and TTLs, a watch that survives a leader change without gaps
// or duplicates, compare-and-swap races, SIGKILL of the leader (and of every node) under continuous writes, and
// membership changes under load. Every acknowledged write must survive.
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BerthClient } from "../src/client/client.ts";
import type { KvResult } from "../src/client/protocol.ts";
import type { KvEvent } from "../src/kv/types.ts";
import { clientFor, currentLeader, liveNodes, TestCluster, waitFor } from "./support/cluster.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Ack {
  key: string;
  value: string;
  modifiedIndex: number;
}

/**
 * Clients writing unique keys (create-only) continuously, each retrying a failed write through the next target
 * node until it is acknowledged. A retried create that finds its key already there (105) was committed by an
 * earlier attempt, so it counts as acknowledged with the stored node's index.
 */
class Writers {
  readonly acks: Ack[] = [];
  errors = 0;
  private running = true;
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly c: TestCluster,
    private readonly prefix: string,
    count: number,
    private readonly targets: () => string[],
  ) {
    for (let i = 0; i < count; i++) this.loops.push(this.loop(i));
  }

  private async loop(w: number): Promise<void> {
    let client: BerthClient | null = null;
    let turn = w;
    let seq = 0;
    while (this.running) {
      const key = `${this.prefix}/w${w}/${String(seq).padStart(6, "0")}`;
      const value = `${w}-${seq}`;
      try {
        if (!client) {
          const names = this.targets();
          client = await clientFor(this.c, names[turn++ % names.length]!, 1000);
        }
        let r: KvResult;
        try {
          r = await client.call("kv.write", { method: "PUT", key, value, prevExist: false }, 7000);
        } catch (err) {
          const e = err as { code?: string; data?: { errorCode?: number } };
          if (e.code !== "kv" || e.data?.errorCode !== 105) throw err;
          r = await client.call("kv.get", { key }, 7000);
          if (r.event.node.value !== value) throw new Error(`${key} holds ${r.event.node.value}`);
        }
        this.acks.push({ key, value, modifiedIndex: r.event.node.modifiedIndex! });
        seq++;
      } catch {
        this.errors++;
        client?.close();
        client = null;
        await sleep(50);
      }
    }
    client?.close();
  }

  /** Stops writing; in-flight writes finish (or fail) first. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

/** Every key under `prefix` with its value and modifiedIndex, read through `name` (linearizable unless local). */
async function readAll(
  c: TestCluster,
  name: string,
  prefix: string,
  consistency: "linearizable" | "local" = "linearizable",
): Promise<Map<string, { value: string; modifiedIndex: number }>> {
  const cl = await clientFor(c, name, 3000);
  try {
    const out = new Map<string, { value: string; modifiedIndex: number }>();
    let r: KvResult;
    try {
      r = await cl.call("kv.get", { key: prefix, recursive: true, consistency }, 8000);
    } catch (err) {
      if ((err as { data?: { errorCode?: number } }).data?.errorCode === 100) return out;
      throw err;
    }
    const walk = (n: KvEvent["node"]) => {
      if (!n.dir) out.set(n.key, { value: n.value!, modifiedIndex: n.modifiedIndex! });
      for (const k of n.nodes ?? []) walk(k);
    };
    walk(r.event.node);
    return out;
  } finally {
    cl.close();
  }
}

function missing(acks: Ack[], stored: Map<string, { value: string }>): string[] {
  return acks.filter((a) => stored.get(a.key)?.value !== a.value).map((a) => a.key);
}

describe("a 5-node cluster under faults", () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await TestCluster.start(5, { extraArgs: ["--snapshot-count=50"] });
  }, 30_000);

  afterAll(async () => {
    await c?.stop();
  });

  it("reads a write made through one node through every other, and expires a TTL on all five", async () => {
    const w = await clientFor(c, "n2");
    try {
      await w.call("kv.write", { method: "PUT", key: "/five", value: "hello" });
      await w.call("kv.write", { method: "PUT", key: "/five-ttl", value: "soon", ttl: 1 });
    } finally {
      w.close();
    }
    for (const n of c.nodes.filter((x) => x.name !== "n2")) {
      const cl = await clientFor(c, n.name);
      try {
        expect((await cl.call("kv.get", { key: "/five" })).event.node.value).toBe("hello");
        expect((await cl.call("kv.get", { key: "/five-ttl" })).event.node.value).toBe("soon");
      } finally {
        cl.close();
      }
    }
    await sleep(2000);
    for (const n of c.nodes) {
      await waitFor(
        `/five-ttl expired on ${n.name}`,
        async () => {
          const cl = await clientFor(c, n.name);
          try {
            await cl.call("kv.get", { key: "/five-ttl", consistency: "local" });
            return false;
          } catch (err) {
            return (err as { data?: { errorCode?: number } }).data?.errorCode === 100;
          } finally {
            cl.close();
          }
        },
        3000,
      );
    }
  }, 20_000);

  it("streams every write to a follower's recursive watch in order, once, across a leader change", async () => {
    const leader = await currentLeader(c);
    const watcher = c.nodes.find((n) => n.name !== leader)!.name;
    const wc = await clientFor(c, watcher);
    const sub = wc.subscribe("kv.watch", { key: "/wf", recursive: true, forever: true });
    const seen: KvResult[] = [];
    let streamError: unknown = null;
    const consuming = (async () => {
      try {
        for await (const r of sub) seen.push(r);
      } catch (err) {
        streamError = err;
      }
    })();
    // The watch is registered once a write made after it shows up.
    const others = c.nodes.filter((n) => n.name !== watcher).map((n) => n.name);
    const starter = await clientFor(c, others[0]!);
    await starter.call("kv.write", { method: "PUT", key: "/wf/start", value: "s" });
    starter.close();
    await waitFor("the watch saw /wf/start", () => seen.some((r) => r.event.node.key === "/wf/start"), 5000);

    const targets = () => others.filter((n) => liveNodes(c).some((l) => l.name === n));
    const writers = new Writers(c, "/wf/data", 3, targets);
    let killed = false;
    try {
      await sleep(1200);
      const before = writers.acks.length;
      await c.kill(leader);
      killed = true;
      await waitFor(
        "writes resume after the leader was killed",
        () => writers.acks.length > before + 30,
        20_000,
      );
      await sleep(800);
    } finally {
      await writers.stop();
    }
    expect(writers.acks.length).toBeGreaterThan(50);

    // Everything the watcher's replica holds under /wf (read linearizably through it) must reach the stream.
    const stored = await readAll(c, watcher, "/wf");
    const lastIndex = Math.max(...[...stored.values()].map((v) => v.modifiedIndex));
    await waitFor(
      "the watch caught up",
      () => seen.length > 0 && seen[seen.length - 1]!.event.node.modifiedIndex! >= lastIndex,
      10_000,
    );
    sub.close();
    wc.close();
    await consuming;
    expect(streamError).toBeNull();

    const indexes = seen.map((r) => r.event.node.modifiedIndex!);
    for (let i = 1; i < indexes.length; i++)
      expect(indexes[i]!, `event ${i}`).toBeGreaterThan(indexes[i - 1]!);
    expect(seen.every((r) => r.event.action === "create" || r.event.node.key === "/wf/start")).toBe(true);
    // No gap: the stream holds exactly the keys the replica holds, each once, with the stored index.
    const streamed = new Map(seen.map((r) => [r.event.node.key, r.event.node.modifiedIndex!]));
    expect(streamed.size).toBe(seen.length);
    expect([...streamed.keys()].sort()).toEqual([...stored.keys()].sort());
    for (const [k, v] of stored) expect(streamed.get(k), k).toBe(v.modifiedIndex);
    // Every acknowledged write is in the stream, at the index the writer was told.
    for (const a of writers.acks) expect(streamed.get(a.key), a.key).toBe(a.modifiedIndex);

    if (killed) {
      c.spawn(c.node(leader));
      await c.waitHealthy();
    }
  }, 45_000);

  it("lets exactly one of several concurrent compare-and-swaps win, round after round", async () => {
    const clients = await Promise.all(c.nodes.map((n) => clientFor(c, n.name)));
    try {
      let current = "r0";
      await clients[0]!.call("kv.write", { method: "PUT", key: "/cas", value: current });
      for (let round = 1; round <= 6; round++) {
        const results = await Promise.allSettled(
          clients.map((cl, i) =>
            cl.call("kv.write", { method: "PUT", key: "/cas", value: `r${round}-c${i}`, prevValue: current }),
          ),
        );
        const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
        expect(won, `round ${round}`).toHaveLength(1);
        for (const r of results) {
          if (r.status === "rejected")
            expect(r.reason, `round ${round}: ${r.reason?.message}`).toMatchObject({
              code: "kv",
              data: { errorCode: 101 },
            });
        }
        const winner = `r${round}-c${won[0]}`;
        for (const cl of clients)
          expect((await cl.call("kv.get", { key: "/cas" })).event.node.value).toBe(winner);
        current = winner;
      }
    } finally {
      for (const cl of clients) cl.close();
    }
  }, 20_000);

  it("keeps every acknowledged write across SIGKILL of the leader under load; the killed node catches up", async () => {
    await c.waitHealthy();
    const leader = await currentLeader(c);
    const survivors = () => liveNodes(c).map((n) => n.name);
    const writers = new Writers(c, "/load", 8, survivors);
    let afterKill = 0;
    let logAtKill = 0;
    try {
      await sleep(1000);
      await c.kill(leader);
      logAtKill = readFileSync(c.node(leader).logFile, "utf8").length;
      const atKill = writers.acks.length;
      // Enough writes while it is down that the new leader's log no longer holds what it misses: snapshots come
      // every 50 entries, but a leader keeps 5000 entries behind each one for slow followers.
      await waitFor(
        "writes continue through the survivors",
        () => writers.acks.length >= atKill + 5300,
        40_000,
      );
      afterKill = writers.acks.length - atKill;
    } finally {
      await writers.stop();
    }
    expect(afterKill).toBeGreaterThanOrEqual(5300);
    for (const n of survivors()) {
      const stored = await readAll(c, n, "/load");
      expect(missing(writers.acks, stored), `acknowledged writes missing on ${n}`).toEqual([]);
    }
    const expected = await readAll(c, survivors()[0]!, "/load");
    c.spawn(c.node(leader));
    await waitFor(
      `${leader} caught up after its restart`,
      async () => {
        const got = await readAll(c, leader, "/load", "local");
        return got.size === expected.size && missing(writers.acks, got).length === 0;
      },
      20_000,
      250,
    );
    const sinceRestart = readFileSync(c.node(leader).logFile, "utf8").slice(logAtKill);
    const viaSnapshot = /restoring snapshot/.test(sinceRestart);
    console.log(
      `leader ${leader} killed; ${writers.acks.length} acknowledged writes (${afterKill} while it was down, ` +
        `${writers.errors} failed attempts); it caught up ${viaSnapshot ? "via a snapshot" : "from the log"}`,
    );
    expect(viaSnapshot, `${leader} should have caught up by installing a snapshot`).toBe(true);
    await c.waitHealthy();
  }, 80_000);
});

describe("a 3-node cluster: total loss and membership changes", () => {
  let c: TestCluster;

  beforeAll(async () => {
    c = await TestCluster.start(3);
  }, 30_000);

  afterAll(async () => {
    await c?.stop();
  });

  it("loses nothing acknowledged when every node is SIGKILLed during writes", async () => {
    const writers = new Writers(c, "/all", 4, () => ["n1", "n2", "n3"]);
    await sleep(1500);
    await Promise.all(c.nodes.map((n) => c.kill(n.name)));
    await writers.stop();
    expect(writers.acks.length).toBeGreaterThan(20);
    for (const n of c.nodes) c.spawn(n);
    await c.waitHealthy();
    for (const n of c.nodes) {
      const stored = await readAll(c, n.name, "/all");
      expect(missing(writers.acks, stored), `acknowledged writes missing on ${n.name}`).toEqual([]);
    }
  }, 45_000);

  it("adds a fourth member and removes the leader through a follower while clients write", async () => {
    // The leader is the hard one to remove: it answers the forwarded removal as the follower applies it.
    const victim = await currentLeader(c);
    const stay = ["n1", "n2", "n3"].filter((n) => n !== victim);
    let targets = stay;
    const writers = new Writers(c, "/members", 3, () => targets);
    try {
      await sleep(500);
      const n4 = await c.define("n4", "127.0.0.4");
      c.spawn(n4, ["--join"]);
      const add = await c.cli(
        ["cluster", "add", "n4", `${n4.host}:${n4.peerPort}`],
        c.endpoint("n1"),
        45_000,
      );
      expect(add.code, add.stderr + c.logs()).toBe(0);
      expect(add.stdout).toMatch(/n4/);
      let members = JSON.parse((await c.cli(["cluster", "members", "-o", "json"], c.endpoint("n3"))).stdout);
      expect(members.map((m: { name: string; role: string }) => `${m.name}:${m.role}`)).toEqual([
        "n1:voter",
        "n2:voter",
        "n3:voter",
        "n4:voter",
      ]);
      targets = [...stay, "n4"];
      const beforeRemove = writers.acks.length;
      const rm = await c.cli(["cluster", "remove", victim], c.endpoint(stay[0]!), 20_000);
      expect(rm.code, rm.stderr).toBe(0);
      members = JSON.parse((await c.cli(["cluster", "members", "-o", "json"], c.endpoint("n4"))).stdout);
      expect(members.map((m: { name: string }) => m.name)).toEqual(targets);
      await c.kill(victim);
      await waitFor(
        "writes continue after the removal",
        () => writers.acks.length > beforeRemove + 30,
        15_000,
      );
    } finally {
      await writers.stop();
    }
    for (const n of targets) {
      const stored = await readAll(c, n, "/members");
      expect(missing(writers.acks, stored), `acknowledged writes missing on ${n}`).toEqual([]);
    }
    const h = await c.cli(["cluster", "health"], c.endpoint("n4"));
    expect(h.code, h.stdout + h.stderr).toBe(0);
    expect(existsSync(c.node("n4").logFile)).toBe(true);
  }, 60_000);
});
