// A leader process that dies closes its peer connections at once: the followers pre-vote on that signal instead of
// waiting out the election timeout. A closed connection to a leader the others still hear deposes nobody. Real
// dist/berth processes with the default tick (100 ms: elections after 1-2 s of silence), peer traffic through the
// chaos proxies (test/chaos/proxy.ts) so single links can be reset. Behaviour is checked through the logs' election
// reasons and the terms; how fast it is lives in `npm run bench -- failover`.
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { BerthClient } from "../src/client/client.ts";
import { ChaosCluster } from "./chaos/cluster.ts";

const PRE_VOTE_ON_CLOSE = "leader connection closed: pre-vote";

async function status(c: ChaosCluster, name: string) {
  const client = await BerthClient.connect({ endpoints: [c.endpoint(name)], timeoutMs: 1000, name: "test" });
  try {
    return await client.call("node.status", {}, 1000);
  } finally {
    client.close();
  }
}

/** The leader every live node agrees on, and its term. */
async function agreedLeader(c: ChaosCluster, live: string[]): Promise<{ leader: string; term: number }> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const seen = await Promise.all(live.map((n) => status(c, n).catch(() => null)));
    const first = seen[0];
    if (first?.leader && seen.every((s) => s?.leader === first.leader && s.term === first.term))
      return { leader: first.leader, term: first.term };
    if (Date.now() > deadline) throw new Error(`no agreed leader: ${JSON.stringify(seen)}\n${c.logs()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Writes through `via` in a loop until one that started after `since` succeeds. */
async function firstWriteAfter(c: ChaosCluster, via: string, since: number): Promise<void> {
  const client = await BerthClient.connect({ endpoints: [c.endpoint(via)], timeoutMs: 2000, name: "test" });
  try {
    for (let i = 0; ; i++) {
      const started = Date.now();
      try {
        await client.call("kv.write", { method: "PUT", key: "/failover/k", value: `v${i}` }, 2000);
        if (started >= since) return;
      } catch {
        // no leader yet, or the write was in flight to the dead one: try again
      }
      if (Date.now() - since > 20_000) throw new Error(`no write succeeded through ${via}\n${c.logs()}`);
    }
  } finally {
    client.close();
  }
}

const logOf = (c: ChaosCluster, name: string) => readFileSync(c.node(name).logFile, "utf8");

describe("leader failover on a closed connection", () => {
  let cluster: ChaosCluster | null = null;
  afterEach(async () => {
    await cluster?.stop();
    cluster = null;
  });

  it("a SIGKILLed leader: a follower pre-votes on the closed connection and the next term's leader takes writes", async () => {
    const c = await ChaosCluster.start(3, { tickMs: 100 });
    cluster = c;
    const names = c.nodes.map((n) => n.name);
    const { leader, term } = await agreedLeader(c, names);
    const survivors = names.filter((n) => n !== leader);
    const writer = firstWriteAfter(c, survivors[0]!, 0);
    await writer;
    const killedAt = Date.now();
    await c.kill(leader);
    await firstWriteAfter(c, survivors[1]!, killedAt);
    const after = await agreedLeader(c, survivors);
    // One election (no split vote), started by the closed connection rather than by an election timeout.
    expect(after.term).toBe(term + 1);
    const winner = logOf(c, after.leader);
    expect(winner, c.logs()).toContain(`${PRE_VOTE_ON_CLOSE} (leader ${leader}, term ${term})`);
    expect(winner).toContain(`became leader at term ${term + 1}`);
  }, 60_000);

  it("a follower's connections to a live leader reset: no election, no term change", async () => {
    const c = await ChaosCluster.start(3, { tickMs: 100 });
    cluster = c;
    const names = c.nodes.map((n) => n.name);
    const { leader, term } = await agreedLeader(c, names);
    const follower = names.find((n) => n !== leader)!;
    for (let i = 0; i < 3; i++) {
      // Both directions' connections reset (etcd's and a kernel's RST alike), then the link works again.
      c.net.partition([[leader], [follower]], "drop");
      c.net.heal();
      await firstWriteAfter(c, follower, Date.now());
      await new Promise((r) => setTimeout(r, 300));
    }
    await new Promise((r) => setTimeout(r, 2500));
    expect(logOf(c, follower), "the follower saw its leader connection close").toContain(PRE_VOTE_ON_CLOSE);
    expect(await agreedLeader(c, names)).toEqual({ leader, term });
  }, 60_000);
});
