// A full disk (a real, small tmpfs): the storage refuses what does not fit without leaving a torn record or a
// temporary file, stays usable, and takes the same write once space frees; a node opens its log on a full disk
// (no crash-loop); a real 3-node cluster refuses writes with a named error (etcd's NOSPACE), goes on serving
// reads and heartbeats, and accepts writes again once space frees, losing no acknowledged write.
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileRaftStorage } from "../src/raft/storage/file.ts";
import { type Entry, type Snapshot, StorageFullError } from "../src/raft/types.ts";
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
