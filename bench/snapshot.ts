// Large stores and snapshots, against real dist/berth processes on loopback (issue 17, point 4):
// - fill: a 3-member cluster (100 ms ticks, as in production) takes N small keys from 64 concurrent writers while
//   every member snapshots every 10,000 entries. Counted: elections (any "became leader" after the first), the
//   slowest answer to a `node.status` asked of each member every 100 ms (from the bench process, itself busy with
//   the writers), and the stalls of 1 s or more the members log themselves.
// - catchup: a one-member cluster is filled to B bytes of values, then a second member joins and must catch up
//   from a snapshot (streamed in chunks: the store is larger than a peer frame of 128 MiB).
import { readFileSync } from "node:fs";
import { BerthClient } from "../src/client/client.ts";
import type { NodeStatus } from "../src/client/protocol.ts";
import { TestCluster, waitFor } from "../test/support/cluster.ts";

const PRODUCTION_TIMING = ["--tick=100ms", "--election-ticks=10", "--wal-segment-size=67108864"];

async function client(c: TestCluster, name: string): Promise<BerthClient> {
  return BerthClient.connect({ endpoints: [c.endpoint(name)], timeoutMs: 30_000, name: "bench" });
}

async function leaderOf(c: TestCluster): Promise<string> {
  return waitFor("a leader", async () => {
    const cl = await client(c, c.nodes[0]!.name);
    try {
      return ((await cl.call("node.status", {}, 5000)) as NodeStatus).leader;
    } finally {
      cl.close();
    }
  });
}

/** Writes `count` keys from `writers` concurrent clients: value(i) at key(i). */
async function write(
  c: TestCluster,
  leader: string,
  count: number,
  writers: number,
  key: (i: number) => string,
  value: (i: number) => string,
): Promise<{ seconds: number; retries: number }> {
  let retries = 0;
  const clients = await Promise.all(Array.from({ length: 4 }, () => client(c, leader)));
  let next = 0;
  const start = performance.now();
  try {
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        const cl = clients[w % clients.length]!;
        while (next < count) {
          const i = next++;
          // A PUT can be retried as it is: one times out (5 s) when a member stalls, which the code before this
          // bench's fixes did for seconds at a time.
          for (let attempt = 1; ; attempt++) {
            try {
              await cl.call("kv.write", { method: "PUT", key: key(i), value: value(i) }, 30_000);
              break;
            } catch (err) {
              retries++;
              if (attempt === 5) throw err;
            }
          }
        }
      }),
    );
  } finally {
    for (const cl of clients) cl.close();
  }
  return { seconds: (performance.now() - start) / 1000, retries };
}

/** Asks every member for its status every 100 ms; the slowest answer per member is its longest stall. */
function probeStalls(c: TestCluster): { stop(): Promise<Map<string, number>> } {
  let running = true;
  const worst = new Map<string, number>();
  const loops = c.nodes.map(async (n) => {
    const cl = await client(c, n.name);
    while (running) {
      const t = performance.now();
      try {
        await cl.call("node.status", {}, 30_000);
      } catch {}
      worst.set(n.name, Math.max(worst.get(n.name) ?? 0, performance.now() - t));
      await new Promise((r) => setTimeout(r, 100));
    }
    cl.close();
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return worst;
    },
  };
}

const logOf = (c: TestCluster, name: string) => readFileSync(c.node(name).logFile, "utf8");
const count = (text: string, re: RegExp) => (text.match(re) ?? []).length;
const peakRssMiB = (c: TestCluster, name: string) => {
  const pid = c.node(name).proc?.pid;
  const m = pid ? /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8")) : null;
  return m ? Math.round(Number(m[1]) / 1024) : -1;
};

export interface FillResult {
  keys: number;
  seconds: number;
  /** Writes that failed (timed out) and were sent again. */
  retries: number;
  elections: number;
  snapshots: number;
  lastSnapshotMiB: number;
  worstStallMs: number;
  /** Stalls of 1 s or more the members logged themselves ("could not run for N ms"), and the longest. */
  loggedStalls: number;
  worstLoggedStallMs: number;
  peakRssMiB: number;
}

export async function benchSnapshotFill(keys: number): Promise<FillResult> {
  const c = await TestCluster.start(3, { extraArgs: PRODUCTION_TIMING });
  try {
    const leader = await leaderOf(c);
    const probe = probeStalls(c);
    const value = "x".repeat(100);
    const { seconds, retries } = await write(
      c,
      leader,
      keys,
      64,
      (i) => `/fill/d${i % 1000}/k${i}`,
      () => value,
    );
    const stalls = await probe.stop();
    const logs = c.nodes.map((n) => logOf(c, n.name)).join("\n");
    const logged = [...logs.matchAll(/could not run for (\d+) ms/g)].map((m) => Number(m[1]));
    const sizes = [...logs.matchAll(/snapshot at index \d+ \((\d+) bytes\)/g)].map((m) => Number(m[1]));
    return {
      keys,
      seconds,
      retries,
      // The first leader of the cluster is not an election caused by the fill.
      elections: count(logs, /became leader at term/g) - 1,
      snapshots: sizes.length,
      lastSnapshotMiB: Math.round((sizes.at(-1) ?? 0) / 1048576),
      worstStallMs: Math.round(Math.max(...stalls.values())),
      loggedStalls: logged.length,
      worstLoggedStallMs: Math.max(0, ...logged),
      peakRssMiB: Math.max(...c.nodes.map((n) => peakRssMiB(c, n.name))),
    };
  } finally {
    await c.stop();
  }
}

export interface CatchUpResult {
  storeMiB: number;
  fillSeconds: number;
  fillRetries: number;
  catchUpSeconds: number;
  viaSnapshot: boolean;
  leaderPeakRssMiB: number;
  memberPeakRssMiB: number;
}

export async function benchSnapshotCatchUp(bytes: number): Promise<CatchUpResult> {
  const VALUE_BYTES = 16 * 1024;
  const c = await TestCluster.start(1, { extraArgs: PRODUCTION_TIMING });
  try {
    const keys = Math.ceil(bytes / VALUE_BYTES);
    const body = "v".repeat(VALUE_BYTES - 16);
    const fill = await write(
      c,
      "n1",
      keys,
      32,
      (i) => `/big/d${i % 100}/k${i}`,
      (i) => `${i}`.padEnd(16) + body,
    );
    const n1 = await client(c, "n1");
    const target = ((await n1.call("node.status", {}, 5000)) as NodeStatus).appliedIndex;
    n1.close();
    const n2 = await c.define("n2", "127.0.0.2", PRODUCTION_TIMING);
    c.spawn(n2, ["--join"]);
    const start = performance.now();
    // As a learner: `cluster add` returns at once instead of waiting (at most 30 s) to promote it.
    const add = await c.cli(
      ["cluster", "add", "n2", `${n2.host}:${n2.peerPort}`, "--learner"],
      c.endpoint("n1"),
    );
    if (add.code !== 0) throw new Error(`cluster add failed: ${add.stderr}`);
    await waitFor(
      "n2 caught up",
      async () => {
        const cl = await client(c, "n2");
        try {
          return ((await cl.call("node.status", {}, 30_000)) as NodeStatus).appliedIndex >= target;
        } finally {
          cl.close();
        }
      },
      600_000,
      500,
    );
    return {
      storeMiB: Math.round((keys * VALUE_BYTES) / 1048576),
      fillSeconds: fill.seconds,
      fillRetries: fill.retries,
      catchUpSeconds: (performance.now() - start) / 1000,
      viaSnapshot: /restoring snapshot/.test(logOf(c, "n2")),
      leaderPeakRssMiB: peakRssMiB(c, "n1"),
      memberPeakRssMiB: peakRssMiB(c, "n2"),
    };
  } finally {
    await c.stop();
  }
}
