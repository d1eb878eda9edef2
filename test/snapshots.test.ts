// Snapshots against real dist/berth processes: a member added to a cluster whose store is larger than a peer
// frame catches up through a chunked snapshot, and one killed (SIGKILL) while receiving it starts cleanly, leaves
// no partial file and catches up after all. The frame limit is lowered (--peer-max-frame) so the store stays small.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientFor, currentLeader, TestCluster, waitFor } from "./support/cluster.ts";

const FRAME = 64 * 1024;
const VALUE = "v".repeat(12 * 1024);
const KEYS = 700; // ~8.4 MiB of values: some 270 chunks of 32 KiB

let c: TestCluster;
beforeAll(async () => {
  c = await TestCluster.start(3, {
    extraArgs: [`--peer-max-frame=${FRAME}`, "--snapshot-count=100"],
  });
}, 30_000);
afterAll(async () => {
  await c?.stop();
});

/** Snapshot files a node is receiving into (see src/raft/snapshot-transfer.ts). */
function partFiles(name: string): string[] {
  const dir = join(c.node(name).dataDir, "raft", "snap-recv");
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith(".part")) : [];
}

/**
 * The large keys, then enough small writes that the leader's log no longer starts at the beginning (it keeps
 * 5,000 entries behind its snapshot for slow followers): a new member can only start from a snapshot.
 */
async function fill(): Promise<void> {
  const leader = await currentLeader(c);
  const cl = await clientFor(c, leader, 10_000);
  const writes = (count: number, write: (i: number) => Promise<unknown>) => {
    let next = 0;
    const worker = async () => {
      while (next < count) await write(next++);
    };
    return Promise.all(Array.from({ length: 8 }, worker));
  };
  try {
    await writes(KEYS, (i) =>
      cl.call("kv.write", { method: "PUT", key: `/big/k${i}`, value: `${i}:${VALUE}` }, 10_000),
    );
    await writes(5_200, (i) => cl.call("kv.write", { method: "PUT", key: "/small", value: `${i}` }, 10_000));
  } finally {
    cl.close();
  }
}

const nameOf = (key: string) => key.slice(key.lastIndexOf("/") + 2); // "/big/k12" -> "12"

/** How many of the large keys `name` holds, with their right values (-1 when it cannot answer). */
async function keysOn(name: string): Promise<number> {
  const cl = await clientFor(c, name, 3000);
  try {
    const r = await cl.call("kv.get", { key: "/big", recursive: true, consistency: "local" }, 8000);
    return (r.event.node.nodes ?? []).filter((n) => n.value === `${nameOf(n.key)}:${VALUE}`).length;
  } catch {
    return -1;
  }
}

describe("snapshots larger than a peer frame", () => {
  it("a new member killed while receiving one leaves no partial file, restarts, and catches up through chunks", async () => {
    await fill();
    const n4 = await c.define("n4", "127.0.0.4", [`--peer-max-frame=${FRAME}`]);
    c.spawn(n4, ["--join"]);
    const add = c.cli(["cluster", "add", "n4", `${n4.host}:${n4.peerPort}`], c.endpoint("n1"), 60_000);
    // Killed as soon as its first chunks land: the transfer is cut half way.
    await waitFor("n4 receiving a snapshot", () => partFiles("n4").length > 0, 30_000, 1);
    await c.kill("n4");
    expect(partFiles("n4"), "the killed process leaves its partial file").toHaveLength(1);
    c.spawn(n4);
    const added = await add;
    expect(added.code, added.stderr + c.logs()).toBe(0);
    await waitFor("n4 holding every key", async () => (await keysOn("n4")) === KEYS, 30_000);
    expect(partFiles("n4")).toEqual([]);
    expect(readFileSync(n4.logFile, "utf8")).toMatch(/restoring snapshot at index/);
  }, 120_000);
});
