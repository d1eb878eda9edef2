// A full disk (a real, small tmpfs): the storage refuses what does not fit without leaving a torn record or a
// temporary file, stays usable, and takes the same write once space frees; a node opens its log on a full disk
// (no crash-loop); a real 3-node cluster refuses writes with a named error (etcd's NOSPACE), goes on serving
// reads and heartbeats, and accepts writes again once space frees, losing no acknowledged write.
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { BerthClient } from "../src/client/client.ts";
import { NO_SPACE_CAUSE } from "../src/etcdv2/respond.ts";
import { FileRaftStorage } from "../src/raft/storage/file.ts";
import { type Entry, type Snapshot, StorageFullError } from "../src/raft/types.ts";
import { clientFor, currentLeader, liveNodes, TestCluster, waitFor } from "./support/cluster.ts";
import { fillUp, mountTmpfs, type Tmpfs, tempFiles } from "./support/tmpfs.ts";

const mounts: Tmpfs[] = [];
const opened: FileRaftStorage[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close().catch(() => {});
  for (const m of mounts.splice(0)) m.remove();
});

function tmpfs(bytes: number): string {
  const m = mountTmpfs(bytes);
  mounts.push(m);
  return m.dir;
}

async function open(dir: string, opts: { segmentBytes: number; preallocate: boolean }) {
  const s = await FileRaftStorage.open(dir, opts);
  opened.push(s);
  return s;
}

const entry = (index: number, bytes: number, term = 1): Entry => ({
  term,
  index,
  type: "normal",
  data: new Uint8Array(bytes).fill(index % 251),
});

describe("FileRaftStorage on a full disk", () => {
  for (const preallocate of [true, false]) {
    it(`refuses what does not fit with StorageFullError, leaves no torn record nor temporary file, and takes the write once space frees (preallocate ${preallocate})`, async () => {
      const dir = tmpfs(1024 * 1024);
      const log = join(dir, "raft");
      const s = await open(log, { segmentBytes: 128 * 1024, preallocate });
      await s.load();
      await s.save({ term: 1, vote: "n1", commit: 0 }, []);
      let next = 1;
      for (; next <= 10; next++) await s.save(null, [entry(next, 1000)]);
      // Full but for 8 KiB: a 12 KB batch lands in part (two whole records, then the write fails) unless the
      // segment it goes to was preallocated.
      const filler = join(dir, "filler");
      fillUp(filler, 8 * 1024);
      let failure: unknown = null;
      for (let i = 0; i < 200 && failure === null; i++) {
        try {
          await s.save(null, [
            entry(next, 3000),
            entry(next + 1, 3000),
            entry(next + 2, 3000),
            entry(next + 3, 3000),
          ]);
          next += 4;
        } catch (err) {
          failure = err;
        }
      }
      expect(failure).toBeInstanceOf(StorageFullError);
      expect(tempFiles(dir)).toEqual([]);
      // A snapshot that does not fit: refused the same way, its temporary file removed.
      const snap: Snapshot = {
        meta: { index: next - 1, term: 1, confState: { voters: ["n1"], learners: [] } },
        data: new Uint8Array(512 * 1024),
      };
      await expect(s.saveSnapshot(snap)).rejects.toBeInstanceOf(StorageFullError);
      expect(tempFiles(dir)).toEqual([]);

      // Space frees; a shorter write than the refused one goes where it would have gone (another term's entry).
      rmSync(filler);
      await s.save({ term: 2, vote: null, commit: 0 }, [entry(next, 10, 2)]);
      await s.save(null, [entry(next + 1, 10, 2)]);
      await s.close();
      const again = await open(log, { segmentBytes: 128 * 1024, preallocate });
      const state = await again.load();
      expect(state.entries.map((e) => e.index)).toEqual(Array.from({ length: next + 1 }, (_, i) => i + 1));
      expect(state.entries.at(-1)?.term).toBe(2);
      expect(state.entries.at(-2)?.data.length).toBe(10);
      expect(state.report.truncatedBytes).toBe(0);
      expect(state.hardState.term).toBe(2);
    });
  }

  it("opens a log on a full disk without preallocating its segment (no crash-loop), and preallocates it once there is room", async () => {
    const dir = tmpfs(1024 * 1024);
    const log = join(dir, "raft");
    const written = await open(log, { segmentBytes: 512 * 1024, preallocate: false });
    await written.load();
    await written.save({ term: 1, vote: null, commit: 0 }, [entry(1, 100), entry(2, 100)]);
    await written.close();
    const filler = join(dir, "filler");
    fillUp(filler);
    const s = await open(log, { segmentBytes: 512 * 1024, preallocate: true });
    expect((await s.load()).entries.map((e) => e.index)).toEqual([1, 2]);
    expect(tempFiles(dir)).toEqual([]);
    await expect(s.save(null, [entry(3, 64 * 1024)])).rejects.toBeInstanceOf(StorageFullError);
    rmSync(filler);
    await s.save(null, [entry(3, 64 * 1024)]);
    await s.close();
    const reopened = await open(log, { segmentBytes: 512 * 1024, preallocate: true });
    expect((await reopened.load()).entries.map((e) => e.index)).toEqual([1, 2, 3]);
    expect(existsSync(join(log, "wal", "next.wal.tmp"))).toBe(false);
  });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One write; its outcome ("ok" or the error's code) and how long the answer took. */
async function tryWrite(cl: BerthClient, key: string, value: string) {
  const t0 = performance.now();
  try {
    await cl.call("kv.write", { method: "PUT", key, value }, 10_000);
    return { outcome: "ok", ms: performance.now() - t0 };
  } catch (err) {
    return { outcome: (err as { code?: string }).code ?? String(err), ms: performance.now() - t0 };
  }
}

describe("a 3-node cluster whose disk fills up", () => {
  it("refuses writes with no_space, serves reads and heartbeats, writes again once space frees, and loses nothing", async () => {
    const fs = mountTmpfs(24 * 1024 * 1024);
    mounts.push(fs);
    // All three data directories on the one small disk (as the review found them: every node crashed at once).
    const c = await TestCluster.start(3, {
      dataRoot: fs.dir,
      extraArgs: ["--wal-segment-size=262144", "--request-timeout=2s"],
    });
    const clients = new Map<string, BerthClient>();
    try {
      for (const n of c.nodes) clients.set(n.name, await clientFor(c, n.name, 3000));
      const acked = new Map<string, string>();
      const leader = await currentLeader(c);
      const status = () => clients.get(leader)!.call("node.status", {}, 2000);
      for (let i = 0; i < 20; i++) {
        const r = await tryWrite(clients.get(leader)!, `/before/k${i}`, `v${i}`);
        expect(r.outcome).toBe("ok");
        acked.set(`/before/k${i}`, `v${i}`);
      }
      const term = (await status()).term;

      const filler = join(fs.dir, "filler");
      fillUp(filler);
      // Writes through every node go on while the preallocated segments have room, then fail with no_space.
      const value = "x".repeat(300);
      const refused: number[] = [];
      const others: string[] = [];
      let consecutive = 0;
      for (let i = 0; consecutive < 12 && i < 5000; i++) {
        const name = c.nodes[i % 3]!.name;
        const key = `/full/k${i}`;
        const r = await tryWrite(clients.get(name)!, key, value);
        if (r.outcome === "ok") acked.set(key, value);
        if (r.outcome === "no_space") refused.push(r.ms);
        else if (r.outcome !== "ok") others.push(r.outcome);
        consecutive = r.outcome === "no_space" ? consecutive + 1 : 0;
      }
      expect(consecutive).toBe(12);
      // The writes in flight when the disks filled up can only time out (their outcome is unknown).
      expect(others.every((o) => o === "timeout")).toBe(true);
      console.log(
        `disk full: ${refused.length} writes refused (slowest answer ${Math.max(...refused).toFixed(1)} ms), ` +
          `${others.length} timed out in the transition`,
      );
      expect(tempFiles(fs.dir)).toEqual([]);

      // The named error through HTTP (as etcd's NOSPACE), /health false, the CLI's exit code 6.
      const http = await fetch(`${c.httpUrl(leader)}/v2/keys/full/http`, {
        method: "PUT",
        body: new URLSearchParams({ value: "v" }),
      });
      expect(http.status).toBe(500);
      expect(await http.json()).toMatchObject({ errorCode: 300, cause: NO_SPACE_CAUSE });
      expect((await fetch(`${c.httpUrl(leader)}/health`)).status).toBe(503);
      const cli = await c.cli(["kv", "set", "/full/cli", "v"], c.endpoint(leader));
      expect(cli.code).toBe(6);
      expect(cli.stderr).toMatch(/no space left/);

      // Reads go on through every node, and heartbeats: no election while the disks stay full.
      await sleep(3000);
      for (const cl of clients.values()) {
        const r = await cl.call("kv.get", { key: "/before/k3" }, 3000);
        expect(r.event.node.value).toBe("v3");
      }
      expect((await status()).term).toBe(term);
      expect(liveNodes(c).length).toBe(3);

      // A member restarted on the full disk comes up (no crash-loop) and serves reads.
      const follower = c.nodes.find((n) => n.name !== leader)!.name;
      clients.get(follower)!.close();
      await c.restart(follower);
      clients.set(
        follower,
        await waitFor("the restarted member", () => clientFor(c, follower, 1000).catch(() => null), 15_000),
      );
      const read = await waitFor(
        "a read through the restarted member",
        () =>
          clients
            .get(follower)!
            .call("kv.get", { key: "/before/k4" }, 2000)
            .catch(() => null),
        15_000,
      );
      expect(read.event.node.value).toBe("v4");
      expect(liveNodes(c).length).toBe(3);
      expect(tempFiles(fs.dir)).toEqual([]);

      // Space frees: each member takes its held-up write again (within its retry period) and accepts writes.
      rmSync(filler);
      const freed = performance.now();
      for (const [name, cl] of clients) {
        const key = `/after/${name}`;
        await waitFor(
          `a write accepted through ${name} after space freed`,
          async () => (await tryWrite(cl, key, name)).outcome === "ok" || null,
          20_000,
          50,
        );
        acked.set(key, name);
      }
      console.log(
        `writes resumed through every member ${(performance.now() - freed).toFixed(0)} ms after space freed`,
      );
      expect((await fetch(`${c.httpUrl(leader)}/health`)).status).toBe(200);

      // Every member killed and restarted: every acknowledged write is there (no torn record broke a start).
      for (const cl of clients.values()) cl.close();
      clients.clear();
      for (const n of c.nodes) await c.kill(n.name);
      for (const n of c.nodes) c.spawn(n);
      await c.waitHealthy(30_000);
      const cl = await clientFor(c, "n1", 3000);
      clients.set("n1", cl);
      for (const [key, v] of acked) {
        const r = await cl.call("kv.get", { key }, 5000);
        expect(r.event.node.value).toBe(v);
      }
    } finally {
      for (const cl of clients.values()) cl.close();
      await c.stop();
    }
  }, 150_000);
});
