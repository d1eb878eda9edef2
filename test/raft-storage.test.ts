// Durable Raft storage: WAL round trips, suffix replacement, rotation and compaction, snapshots, and recovery
// from torn tails (repaired) versus mid-log corruption and missing segments (refused).
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { crc32c } from "../src/raft/storage/crc32c.ts";
import { FileRaftStorage } from "../src/raft/storage/file.ts";
import { MemoryRaftStorage } from "../src/raft/storage/memory.ts";
import type { Entry, HardState, RaftStorage, Snapshot } from "../src/raft/types.ts";
import { prng } from "./support/prng.ts";

const enc = new TextEncoder();
const dirs: string[] = [];
const opened: FileRaftStorage[] = [];

afterEach(async () => {
  for (const s of opened.splice(0)) await s.close().catch(() => {});
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "berth-raft-storage-"));
  dirs.push(d);
  return d;
}

async function openFile(dir: string, segmentBytes?: number): Promise<FileRaftStorage> {
  const s = await FileRaftStorage.open(dir, segmentBytes ? { segmentBytes } : {});
  opened.push(s);
  return s;
}

/** Closes `s` and loads a fresh instance over the same directory, as a restart would. */
async function reopen(s: FileRaftStorage, dir: string, segmentBytes?: number) {
  await s.close();
  const again = await openFile(dir, segmentBytes);
  return { storage: again, loaded: await again.load() };
}

const entry = (index: number, term = 1, text = `e${index}`): Entry => ({
  term,
  index,
  type: index % 7 === 0 ? "conf" : "normal",
  data: enc.encode(text),
});
const range = (from: number, to: number, term = 1) =>
  Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, term));
const hs = (term: number, commit: number, vote: string | null = "n1"): HardState => ({ term, vote, commit });
const snap = (index: number, term: number, text = `snap${index}`): Snapshot => ({
  meta: { index, term, confState: { voters: ["n1", "n2", "n3"], learners: [] } },
  data: enc.encode(text),
});
const indexes = (es: Entry[]) => es.map((e) => e.index);
const walFiles = (dir: string) => readdirSync(join(dir, "wal")).sort();
const snapFiles = (dir: string) => readdirSync(join(dir, "snap")).sort();

describe("crc32c", () => {
  it("matches the Castagnoli check value and chains", () => {
    expect(crc32c(enc.encode("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    const all = enc.encode("The quick brown fox jumps over the lazy dog, twice over.");
    for (const cut of [0, 1, 7, 8, 9, 30, all.length]) {
      expect(crc32c(all.subarray(cut), crc32c(all.subarray(0, cut)))).toBe(crc32c(all));
    }
  });
});

/** The contract both storages share. */
function contract(name: string, make: () => Promise<RaftStorage>) {
  describe(`${name}: RaftStorage contract`, () => {
    it("starts empty", async () => {
      const s = await make();
      const l = await s.load();
      expect(l.entries).toEqual([]);
      expect(l.snapshot).toBeNull();
      expect(l.hardState).toEqual({ term: 0, vote: null, commit: 0 });
    });

    it("stores entries and the latest hard state, replaces a conflicting suffix", async () => {
      const s = await make();
      await s.load();
      await s.save(hs(1, 0), range(1, 5));
      await s.save(null, range(6, 8));
      await s.save(hs(2, 4, null), [entry(4, 2, "x4"), entry(5, 2, "x5")]);
      const l = await s.load();
      expect(indexes(l.entries)).toEqual([1, 2, 3, 4, 5]);
      expect(l.entries[3]).toEqual(entry(4, 2, "x4"));
      expect(l.entries[4]!.data).toBeInstanceOf(Uint8Array);
      expect(l.hardState).toEqual(hs(2, 4, null));
    });

    it("returns only entries after the snapshot, and restarts the log after an installed snapshot", async () => {
      const s = await make();
      await s.load();
      await s.save(hs(1, 10), range(1, 10));
      await s.saveSnapshot(snap(6, 1));
      await s.compact(6);
      let l = await s.load();
      expect(l.snapshot?.meta.index).toBe(6);
      expect(indexes(l.entries)).toEqual([7, 8, 9, 10]);
      // A leader's snapshot past the log's end; entries then continue after it.
      await s.saveSnapshot(snap(50, 3));
      await s.save(hs(3, 51), range(51, 52, 3));
      l = await s.load();
      expect(l.snapshot?.meta).toEqual(snap(50, 3).meta);
      expect(indexes(l.entries)).toEqual([51, 52]);
    });

    it("refuses a save that would leave a gap", async () => {
      const s = await make();
      await s.load();
      await s.save(null, range(1, 3));
      await expect(s.save(null, range(5, 6))).rejects.toThrow(/gap/);
    });
  });
}

contract("MemoryRaftStorage", async () => new MemoryRaftStorage());
contract("FileRaftStorage", async () => openFile(tempDir()));

describe("FileRaftStorage", () => {
  it("round-trips entries and hard state across a reopen", async () => {
    const dir = tempDir();
    const s = await openFile(dir);
    await s.load();
    const big = { ...entry(3), data: new Uint8Array(100_000).map((_, i) => i * 31) };
    await s.save(hs(1, 0), [entry(1), entry(2), big]);
    await s.save(hs(2, 3, "n2"), range(4, 9, 2));
    const { loaded } = await reopen(s, dir);
    expect(loaded.entries).toEqual([entry(1), entry(2), big, ...range(4, 9, 2)]);
    expect(loaded.hardState).toEqual(hs(2, 3, "n2"));
    expect(loaded.report.truncatedBytes).toBe(0);
  });

  it("keeps the replaced suffix replaced across a reopen and appends after it", async () => {
    const dir = tempDir();
    let s = await openFile(dir);
    await s.load();
    await s.save(hs(1, 2), range(1, 10));
    await s.save(hs(2, 2), [entry(6, 2, "new6")]);
    let r = await reopen(s, dir);
    s = r.storage;
    expect(indexes(r.loaded.entries)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(r.loaded.entries[5]).toEqual(entry(6, 2, "new6"));
    await s.save(null, range(7, 8, 2));
    r = await reopen(s, dir);
    expect(indexes(r.loaded.entries)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(r.loaded.entries[7]!.term).toBe(2);
  });

  it("rotates segments, compacts whole old segments only, and keeps the hard state", async () => {
    const dir = tempDir();
    let s = await openFile(dir, 512);
    await s.load();
    await s.save(hs(1, 0, "n3"), []);
    for (let i = 1; i <= 100; i += 5) await s.save(null, range(i, i + 4));
    const before = walFiles(dir);
    expect(before.length).toBeGreaterThan(5);
    expect(before[0]).toBe("0000000000000001-0000000000000001.wal");
    for (const f of before) expect(statSync(join(dir, "wal", f)).size).toBeLessThanOrEqual(512);

    // Compaction is capped by the durable snapshot: nothing goes without one.
    await s.compact(60);
    expect(walFiles(dir)).toEqual(before);
    await s.saveSnapshot(snap(60, 1));
    await s.compact(60);
    const after = walFiles(dir);
    expect(after.length).toBeLessThan(before.length);
    expect(after.at(-1)).toBe(before.at(-1));

    const r = await reopen(s, dir, 512);
    s = r.storage;
    expect(r.loaded.snapshot?.meta.index).toBe(60);
    expect(indexes(r.loaded.entries)).toEqual(range(61, 100).map((e) => e.index));
    expect(r.loaded.hardState).toEqual(hs(1, 0, "n3"));

    // Compacting everything still keeps the last segment, and the log stays writable.
    await s.saveSnapshot(snap(100, 1));
    await s.compact(100);
    expect(walFiles(dir)).toEqual([after.at(-1)]);
    await s.save(hs(2, 101), range(101, 102, 2));
    const r2 = await reopen(s, dir, 512);
    expect(indexes(r2.loaded.entries)).toEqual([101, 102]);
    expect(r2.loaded.hardState).toEqual(hs(2, 101));
  });

  it("keeps the newest two snapshots and falls back when the newest is corrupt", async () => {
    const dir = tempDir();
    const s = await openFile(dir);
    await s.load();
    await s.save(hs(1, 30), range(1, 30));
    for (const i of [10, 20, 30]) await s.saveSnapshot(snap(i, 1));
    expect(snapFiles(dir)).toEqual([
      "0000000000000001-0000000000000020.snap",
      "0000000000000001-0000000000000030.snap",
    ]);
    let r = await reopen(s, dir);
    expect(r.loaded.snapshot).toEqual(snap(30, 1));
    expect(r.loaded.entries).toEqual([]);

    const newest = join(dir, "snap", "0000000000000001-0000000000000030.snap");
    const bytes = readFileSync(newest);
    bytes[bytes.length - 2]! ^= 0x40;
    writeFileSync(newest, bytes);
    r = await reopen(r.storage, dir);
    expect(r.loaded.snapshot).toEqual(snap(20, 1));
    expect(indexes(r.loaded.entries)).toEqual(range(21, 30).map((e) => e.index));
    expect(r.loaded.report.notes.join("\n")).toMatch(/0030\.snap is unusable/);
  });

  it("cuts a torn tail at any offset, returns a prefix of what was written, and stays writable", async () => {
    const rand = prng(20240607);
    const dir = tempDir();
    const s = await openFile(dir);
    await s.load();
    const written: Entry[] = [];
    for (let i = 1; i <= 40; i += 4) {
      const batch = range(i, i + 3, 1).map((e) => ({ ...e, data: new Uint8Array(Math.floor(rand() * 200)) }));
      written.push(...batch);
      await s.save(hs(1, i), batch);
    }
    await s.close();
    const [segment] = walFiles(dir);
    const path = join(dir, "wal", segment!);
    const pristine = readFileSync(path);

    for (let round = 0; round < 40; round++) {
      writeFileSync(path, pristine);
      const cut = 1 + Math.floor(rand() * (pristine.length - 1));
      truncateSync(path, pristine.length - cut);
      const t = await openFile(dir);
      const l = await t.load();
      expect(written.slice(0, l.entries.length)).toEqual(l.entries);
      const kept = statSync(path).size;
      expect(kept + l.report.truncatedBytes).toBe(pristine.length - cut);
      if (l.report.truncatedBytes > 0) expect(l.report.notes.join("\n")).toMatch(/truncated \d+ torn bytes/);
      // The repaired log takes new writes right after what survived.
      const next = l.entries.length + 1;
      await t.save(hs(2, next), [entry(next, 2, "after")]);
      const again = await reopen(t, dir);
      expect(again.loaded.entries).toEqual([...l.entries, entry(next, 2, "after")]);
      expect(again.loaded.report.truncatedBytes).toBe(0);
      expect(again.loaded.hardState).toEqual(hs(2, next));
      await again.storage.close();
    }
  });

  it("cuts garbage appended at the tail (a torn write that reached the disk as noise)", async () => {
    const dir = tempDir();
    const s = await openFile(dir);
    await s.load();
    await s.save(hs(1, 1), range(1, 3));
    await s.close();
    const path = join(dir, "wal", walFiles(dir)[0]!);
    writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.alloc(37, 0)]));
    const t = await openFile(dir);
    const l = await t.load();
    expect(indexes(l.entries)).toEqual([1, 2, 3]);
    expect(l.report.truncatedBytes).toBe(37);
  });

  it("refuses to load when a record in the middle of the log is corrupt", async () => {
    const dir = tempDir();
    const s = await openFile(dir);
    await s.load();
    for (let i = 1; i <= 20; i += 2) await s.save(hs(1, i), range(i, i + 1));
    await s.close();
    const path = join(dir, "wal", walFiles(dir)[0]!);
    const bytes = readFileSync(path);
    for (const at of [20, Math.floor(bytes.length / 2), bytes.length - 150]) {
      const bad = Buffer.from(bytes);
      bad[at]! ^= 0x01;
      writeFileSync(path, bad);
      const t = await openFile(dir);
      await expect(t.load()).rejects.toThrow(/corrupt record in .*\.wal at offset \d+/);
      await t.close();
      // Nothing was truncated: the evidence stays on disk.
      expect(readFileSync(path).length).toBe(bytes.length);
    }
  });

  it("refuses to load when an older segment is corrupt or a middle segment is missing", async () => {
    const dir = tempDir();
    const s = await openFile(dir, 300);
    await s.load();
    for (let i = 1; i <= 60; i += 3) await s.save(hs(1, i), range(i, i + 2));
    await s.close();
    const files = walFiles(dir);
    expect(files.length).toBeGreaterThan(3);

    // The tail of a non-last segment is never a torn write.
    const first = join(dir, "wal", files[0]!);
    const original = readFileSync(first);
    truncateSync(first, original.length - 5);
    let t = await openFile(dir, 300);
    await expect(t.load()).rejects.toThrow(/corrupt record in .*0001-0000000000000001\.wal at offset/);
    await t.close();
    writeFileSync(first, original);

    rmSync(join(dir, "wal", files[2]!));
    t = await openFile(dir, 300);
    await expect(t.load()).rejects.toThrow(/segment\(s\) missing between/);
    await t.close();
  });

  it("refuses to load when the first segments are gone without a snapshot covering them", async () => {
    const dir = tempDir();
    const s = await openFile(dir, 300);
    await s.load();
    for (let i = 1; i <= 30; i += 3) await s.save(hs(1, i), range(i, i + 2));
    await s.close();
    rmSync(join(dir, "wal", walFiles(dir)[0]!));
    const t = await openFile(dir, 300);
    await expect(t.load()).rejects.toThrow(/entries are missing/);
  });

  it("serializes overlapping calls", async () => {
    const dir = tempDir();
    const s = await openFile(dir);
    await s.load();
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.save(hs(1, i), [entry(i + 1)])));
    const { loaded } = await reopen(s, dir);
    expect(indexes(loaded.entries)).toEqual(range(1, 20).map((e) => e.index));
    expect(loaded.hardState).toEqual(hs(1, 19));
  });
});
