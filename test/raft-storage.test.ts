// Durable Raft storage: WAL round trips, suffix replacement, rotation and compaction, snapshots, and recovery
// from torn tails (repaired) versus mid-log corruption and missing segments (refused). Segments are preallocated
// with zeros, so "the end of the log" is the end of the records, followed by zeros to the end of the file.
import {
  existsSync,
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

async function openFile(dir: string, segmentBytes?: number, preallocate?: boolean): Promise<FileRaftStorage> {
  const s = await FileRaftStorage.open(dir, { ...(segmentBytes ? { segmentBytes } : {}), preallocate });
  opened.push(s);
  return s;
}

/** Closes `s` and loads a fresh instance over the same directory, as a restart would. */
async function reopen(s: FileRaftStorage, dir: string, segmentBytes?: number) {
  await s.close();
  const again = await openFile(dir, segmentBytes);
  return { storage: again, loaded: await again.load() };
}

/** Offsets where records start in a segment, plus the end of the last whole one (framing only, no checksums). */
function boundaries(buf: Buffer): number[] {
  const at = [0];
  let off = 0;
  while (off + 9 <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len === 0 || off + 9 + len > buf.length) break;
    off += 9 + len;
    at.push(off);
  }
  return at;
}
const recordsEnd = (buf: Buffer) => boundaries(buf).at(-1)!;
const allZero = (buf: Uint8Array) => buf.every((b) => b === 0);
/** One past the last non-zero byte of buf[from, to), or `from` when it is all zeros. */
function nonZeroEnd(buf: Buffer, from: number, to: number): number {
  for (let i = to - 1; i >= from; i--) if (buf[i] !== 0) return i + 1;
  return from;
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
/** The log's segments (the background-prepared next segment, next.wal.tmp, is not one). */
const walFiles = (dir: string) =>
  readdirSync(join(dir, "wal"))
    .filter((f) => f.endsWith(".wal"))
    .sort();
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
    for (const f of before) {
      // Preallocated to the segment size; the records themselves stay within it, zeros after them.
      const bytes = readFileSync(join(dir, "wal", f));
      expect(bytes.length).toBe(512);
      expect(recordsEnd(bytes)).toBeLessThanOrEqual(512);
      expect(allZero(bytes.subarray(recordsEnd(bytes)))).toBe(true);
    }

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
    const SEG = 64 * 1024;
    const s = await openFile(dir, SEG);
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
    expect(pristine.length).toBe(SEG);
    const bounds = boundaries(pristine);
    const end = bounds.at(-1)!;

    // Three shapes of tear, each keeping `keep` bytes of what was written: the file cut there (a segment from
    // before preallocation), zeros from there on (the write's later pages never landed), or noise up to the end.
    for (let round = 0; round < 60; round++) {
      const keep = Math.floor(rand() * end);
      const shape = round % 3;
      const torn = Buffer.from(pristine);
      if (shape === 0) writeFileSync(path, pristine.subarray(0, keep));
      else {
        torn.fill(0, keep, end);
        if (shape === 2)
          for (let i = keep; i < end; i++) torn[i] = pristine[i]! ^ (1 + Math.floor(rand() * 255));
        writeFileSync(path, torn);
      }
      const t = await openFile(dir, SEG);
      const l = await t.load();
      expect(written.slice(0, l.entries.length)).toEqual(l.entries);
      // The log ends at the last whole record before the tear (or one whose lost bytes were zeros anyway, as
      // entry data here is); everything after it is zeros now, in place.
      const intact = (b: number) => b <= keep || (shape === 1 && allZero(pristine.subarray(keep, b)));
      const logEnd = Math.max(...bounds.filter(intact));
      const after = readFileSync(path);
      expect(after.length).toBe(SEG);
      expect(after.subarray(0, logEnd).equals(pristine.subarray(0, logEnd))).toBe(true);
      expect(allZero(after.subarray(logEnd))).toBe(true);
      const tornEnd =
        shape === 2 ? nonZeroEnd(torn, logEnd, end) : nonZeroEnd(pristine, logEnd, Math.max(keep, logEnd));
      expect(l.report.truncatedBytes).toBe(tornEnd - logEnd);
      if (l.report.truncatedBytes > 0) expect(l.report.notes.join("\n")).toMatch(/truncated \d+ torn bytes/);
      else expect(l.report.notes.join("\n")).not.toMatch(/torn/);
      // The repaired log takes new writes right after what survived.
      const next = l.entries.length + 1;
      await t.save(hs(2, next), [entry(next, 2, "after")]);
      const again = await reopen(t, dir, SEG);
      expect(again.loaded.entries).toEqual([...l.entries, entry(next, 2, "after")]);
      expect(again.loaded.report.truncatedBytes).toBe(0);
      expect(again.loaded.hardState).toEqual(hs(2, next));
      await again.storage.close();
    }
  });

  it("cuts noise at the tail (a torn write that reached the disk as garbage); zeros past it are a clean end", async () => {
    const dir = tempDir();
    const s = await openFile(dir, 4096);
    await s.load();
    await s.save(hs(1, 1), range(1, 3));
    await s.close();
    const path = join(dir, "wal", walFiles(dir)[0]!);
    const bytes = readFileSync(path);
    const end = recordsEnd(bytes);

    // Zeros, whether the preallocated tail or more appended past the file's end, end the log with no note.
    writeFileSync(path, Buffer.concat([bytes, Buffer.alloc(37, 0)]));
    let t = await openFile(dir, 4096);
    let l = await t.load();
    expect(indexes(l.entries)).toEqual([1, 2, 3]);
    expect(l.report.truncatedBytes).toBe(0);
    expect(l.report.notes.join("\n")).not.toMatch(/torn/);
    await t.close();

    const noisy = Buffer.from(bytes);
    noisy.fill(0x5a, end, end + 37);
    writeFileSync(path, noisy);
    t = await openFile(dir, 4096);
    l = await t.load();
    expect(indexes(l.entries)).toEqual([1, 2, 3]);
    expect(l.report.truncatedBytes).toBe(37);
    await t.close();
    expect(readFileSync(path).equals(bytes)).toBe(true); // the noise is zeroed, the file keeps its size
  });

  it("zeroes a torn record followed by zeros, so a shorter write over it leaves no stale bytes behind", async () => {
    const dir = tempDir();
    const s = await openFile(dir, 8192);
    await s.load();
    await s.save(hs(1, 2), range(1, 2));
    const big = { ...entry(3), data: new Uint8Array(1500).fill(0xee) };
    await s.save(null, [big]);
    await s.close();
    const path = join(dir, "wal", walFiles(dir)[0]!);
    const bytes = readFileSync(path);
    const bounds = boundaries(bytes);
    const start = bounds.at(-2)!;
    // The big record's first page never reached the disk, its second did: zeros, then a run of 0xee, then zeros.
    bytes.fill(0, start, start + 700);
    writeFileSync(path, bytes);

    let t = await openFile(dir, 8192);
    let l = await t.load();
    expect(indexes(l.entries)).toEqual([1, 2]);
    expect(l.report.truncatedBytes).toBe(bounds.at(-1)! - start); // from the log's end to the last non-zero byte
    expect(l.report.notes.join("\n")).toMatch(/truncated \d+ torn bytes .*\(offset \d+/);
    expect(allZero(readFileSync(path).subarray(start))).toBe(true);

    // A short write lands where the torn one was; nothing of it survives after the new record.
    await t.save(hs(2, 3), [entry(3, 2, "short")]);
    const r = await reopen(t, dir, 8192);
    t = r.storage;
    l = r.loaded;
    expect(l.entries).toEqual([entry(1), entry(2), entry(3, 2, "short")]);
    expect(l.report.truncatedBytes).toBe(0);
    expect(l.report.notes.join("\n")).not.toMatch(/torn/);
    const now = readFileSync(path);
    expect(allZero(now.subarray(recordsEnd(now)))).toBe(true);
    await t.save(null, range(4, 6, 2));
    const r2 = await reopen(t, dir, 8192);
    expect(indexes(r2.loaded.entries)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("refuses to load when a record in the middle of the log is corrupt", async () => {
    const dir = tempDir();
    const s = await openFile(dir, 64 * 1024);
    await s.load();
    for (let i = 1; i <= 20; i += 2) await s.save(hs(1, i), range(i, i + 1));
    await s.close();
    const path = join(dir, "wal", walFiles(dir)[0]!);
    const bytes = readFileSync(path);
    const end = recordsEnd(bytes);
    for (const at of [20, Math.floor(end / 2), end - 150]) {
      const bad = Buffer.from(bytes);
      bad[at]! ^= 0x01;
      writeFileSync(path, bad);
      const t = await openFile(dir, 64 * 1024);
      await expect(t.load()).rejects.toThrow(/corrupt record in .*\.wal at offset \d+/);
      await t.close();
      // Nothing was truncated or zeroed: the evidence stays on disk.
      expect(readFileSync(path).equals(bad)).toBe(true);
    }
    // A damaged last record has nothing valid after it: a torn tail, cut as before.
    const bounds = boundaries(bytes);
    const bad = Buffer.from(bytes);
    bad[bounds.at(-2)! + 12]! ^= 0x01;
    writeFileSync(path, bad);
    const t = await openFile(dir, 64 * 1024);
    const l = await t.load();
    expect(indexes(l.entries)).toEqual(range(1, 19).map((e) => e.index));
    expect(l.report.truncatedBytes).toBe(end - bounds.at(-2)!);
  });

  it("refuses to load when an older segment is corrupt or a middle segment is missing", async () => {
    const dir = tempDir();
    const s = await openFile(dir, 300);
    await s.load();
    for (let i = 1; i <= 60; i += 3) await s.save(hs(1, i), range(i, i + 2));
    await s.close();
    const files = walFiles(dir);
    expect(files.length).toBeGreaterThan(3);

    // The tail of a non-last segment is never a torn write: neither a cut record nor noise in its zero tail.
    const first = join(dir, "wal", files[0]!);
    const original = readFileSync(first);
    const end = recordsEnd(original);
    expect(end).toBeLessThan(original.length);
    truncateSync(first, end - 5);
    let t = await openFile(dir, 300);
    await expect(t.load()).rejects.toThrow(/corrupt record in .*0001-0000000000000001\.wal at offset/);
    await t.close();
    const noisy = Buffer.from(original);
    noisy[original.length - 1] = 0x01;
    writeFileSync(first, noisy);
    t = await openFile(dir, 300);
    await expect(t.load()).rejects.toThrow(
      /corrupt record in .*0001-0000000000000001\.wal at offset .*later segments/,
    );
    await t.close();
    // Zeros past the records, however many, are its clean end.
    writeFileSync(first, original.subarray(0, end));
    t = await openFile(dir, 300);
    expect(indexes((await t.load()).entries)).toEqual(range(1, 60).map((e) => e.index));
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
  it("preallocates segments with zeros and loads the zero tail as a clean end", async () => {
    const dir = tempDir();
    const s = await openFile(dir); // the default 64 MiB segment
    await s.load();
    const path = join(dir, "wal", walFiles(dir)[0]!);
    expect(statSync(path).size).toBe(64 * 1024 * 1024);
    await s.save(hs(1, 0), range(1, 10));
    await s.save(hs(1, 10), []);
    const { storage, loaded } = await reopen(s, dir);
    expect(indexes(loaded.entries)).toEqual(range(1, 10).map((e) => e.index));
    expect(loaded.hardState).toEqual(hs(1, 10));
    expect(loaded.report.truncatedBytes).toBe(0);
    expect(loaded.report.notes.join("\n")).not.toMatch(/torn|truncated/);
    await storage.close();
    const bytes = readFileSync(path);
    expect(bytes.length).toBe(64 * 1024 * 1024); // saves overwrite in place; the file never grew
    expect(allZero(bytes.subarray(recordsEnd(bytes)))).toBe(true);
  });

  it("rotates into preallocated segments, prepared in the background, and ignores a leftover spare", async () => {
    const dir = tempDir();
    let s = await openFile(dir, 1024);
    await s.load();
    await s.save(hs(3, 0, "n2"), []);
    let spareSeen = false;
    for (let i = 1; i <= 400; i += 4) {
      await s.save(null, range(i, i + 3, 3));
      spareSeen ||= existsSync(join(dir, "wal", "next.wal.tmp"));
    }
    expect(spareSeen).toBe(true);
    const files = walFiles(dir);
    expect(files.length).toBeGreaterThan(5);
    files.forEach((f, i) => {
      expect(f.startsWith(String(i + 1).padStart(16, "0"))).toBe(true);
      const bytes = readFileSync(join(dir, "wal", f));
      expect(bytes.length).toBe(1024);
      expect(recordsEnd(bytes)).toBeGreaterThan(0);
      expect(allZero(bytes.subarray(recordsEnd(bytes)))).toBe(true);
    });
    // A spare left half written by a crash is not part of the log, and is replaced.
    await s.close();
    writeFileSync(join(dir, "wal", "next.wal.tmp"), Buffer.alloc(100, 0x77));
    s = await openFile(dir, 1024);
    const r = { loaded: await s.load() };
    expect(existsSync(join(dir, "wal", "next.wal.tmp"))).toBe(false);
    expect(indexes(r.loaded.entries)).toEqual(range(1, 400).map((e) => e.index));
    expect(r.loaded.hardState).toEqual(hs(3, 0, "n2"));
    expect(r.loaded.report.truncatedBytes).toBe(0);
    // A batch larger than a segment still goes into one, growing it past the preallocation.
    const huge = { ...entry(401, 3), data: new Uint8Array(10_000).fill(7) };
    await s.save(null, [huge]);
    await s.save(null, [entry(402, 3)]);
    const r2 = await reopen(s, dir, 1024);
    expect(r2.loaded.entries.slice(-2)).toEqual([huge, entry(402, 3)]);
    expect(walFiles(dir).some((f) => statSync(join(dir, "wal", f)).size > 10_000)).toBe(true);
  });

  it("survives reopen-append-reopen cycles, across rotations, and reads segments written without preallocation", async () => {
    const dir = tempDir();
    // The format before preallocation: files end at their last record.
    const old = await openFile(dir, 2048, false);
    await old.load();
    await old.save(hs(1, 0), range(1, 30));
    await old.close();
    for (const f of walFiles(dir)) {
      const bytes = readFileSync(join(dir, "wal", f));
      expect(recordsEnd(bytes)).toBe(bytes.length);
    }
    const rand = prng(7);
    let last = 30;
    for (let cycle = 0; cycle < 25; cycle++) {
      const s = await openFile(dir, 2048);
      const l = await s.load();
      expect(indexes(l.entries)).toEqual(range(1, last).map((e) => e.index));
      expect(l.report.truncatedBytes).toBe(0);
      expect(l.hardState.commit).toBe(cycle === 0 ? 0 : last);
      const n = 1 + Math.floor(rand() * 12);
      for (let k = 1; k <= n; k++) await s.save(k === n ? hs(1, last + n) : null, [entry(last + k)]);
      // Only the segment being written is extended; the ones before it keep their old shape.
      last += n;
      await s.close();
      const tail = walFiles(dir).at(-1)!;
      expect(statSync(join(dir, "wal", tail)).size).toBeGreaterThanOrEqual(2048);
    }
    const s = await openFile(dir, 2048);
    const l = await s.load();
    expect(l.entries).toEqual(range(1, last));
  });
});
