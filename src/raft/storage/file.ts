// Durable Raft storage: a segmented write-ahead log plus snapshot files.
//
// wal/<seq 16>-<firstIndex 16>.wal holds records [u32 length][u32 crc32c][u8 type][payload], little-endian, where
// length counts the payload and the crc covers type + payload. A save() is one write and one fdatasync (none for
// a save that need not be synced: a lone commit index, flushed by the next synced save), so a crash leaves at most
// one torn batch at the tail of the last segment, which load() discards. Anything else that
// fails its checksum (a bad record with valid ones after it, or in an older segment) throws: it was acknowledged.
//
// Segments are preallocated (as etcd's WAL is): created as segmentBytes of zeros, synced, and written in place at
// the log's end with positioned writes, so a save's fdatasync overwrites allocated blocks inside the file's size and
// flushes data only, with no journal commit for a size change. The next segment is prepared in the background
// (wal/next.wal.tmp, renamed into place at rotation) once the current one is half full. A length of 0 is never a
// valid record (every record has at least its type byte, and no type decodes from an empty payload), so the log
// of a segment ends at the first record position from which the rest of the file is zeros. Non-zero bytes there
// are a torn write in the last segment (overwritten with zeros on load, so a later, shorter write can never leave
// stale records behind it) and corruption in any other. Segments written before preallocation (no zero tail, the
// file ends at the last record) load unchanged; the last one is extended with zeros when opened for writing.
//
// A full disk is not a broken one (etcd's NOSPACE): an append that runs out of space is undone (the blocks it added
// given back, what it wrote in place zeroed, so no torn record is left for the next load) and rejects with
// StorageFullError; a segment or snapshot that cannot be created leaves no file behind; preallocation is skipped,
// not required, when there is no room for a whole segment. The same call succeeds once space frees.
//
// snap/<term 16>-<index 16>.snap holds ["BSN1"][u32 crc32c of the rest][u32 meta length][meta JSON][data]; the
// newest two are kept so a corrupt newest one can fall back to its predecessor.
import { constants as fsc, writeSync } from "node:fs";
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type {
  Entry,
  HardState,
  RaftStorage,
  RecoveryReport,
  Snapshot,
  SnapshotMeta,
  StoredState,
} from "../types.ts";
import { EMPTY_HARD_STATE, isNoSpace, StorageFullError } from "../types.ts";
import { crc32c } from "./crc32c.ts";
import { createZeroFile, lastNonZero, zeroFill } from "./prealloc.ts";

const REC_ENTRY = 1;
const REC_HARD_STATE = 2;
/** Written when a snapshot lands past the log's end (installed from a leader): the log restarts after it. */
const REC_SNAPSHOT = 3;
const HEADER = 9;
const SNAP_MAGIC = 0x314e5342; // "BSN1" read as a little-endian u32
const KEEP_SNAPSHOTS = 2;
const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** The next segment, zero-filled ahead of rotation; never matches SEGMENT_RE, so load() never reads it as log. */
const SPARE_NAME = "next.wal.tmp";

export interface FileRaftStorageOptions {
  /** A segment is closed and a new one started once a write would take it past this size. */
  segmentBytes?: number;
  /** Zero-fill each segment to segmentBytes when it is created (default true); off, segments grow by appends. */
  preallocate?: boolean;
  logger?: (line: string) => void;
  /** Told how long each log append's fdatasync took, in seconds (the WAL fsync histogram of /metrics). */
  onFsync?: (seconds: number) => void;
}

interface Segment {
  seq: number;
  firstIndex: number;
  name: string;
  /** Highest entry index written to the segment; -1 when it holds none (compaction may drop it). */
  maxIndex: number;
  /** Offset just past its last record, as found by load(); what follows is zeros. */
  end: number;
}

const pad16 = (n: number) => String(n).padStart(16, "0");
const segmentName = (seq: number, firstIndex: number) => `${pad16(seq)}-${pad16(firstIndex)}.wal`;
const snapshotName = (term: number, index: number) => `${pad16(term)}-${pad16(index)}.snap`;
const SEGMENT_RE = /^(\d{16})-(\d{16})\.wal$/;
const SNAPSHOT_RE = /^(\d{16})-(\d{16})\.snap$/;

// ---- record codec ----

function writeU64(buf: Buffer, off: number, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`wal: cannot encode ${n} as u64`);
  buf.writeUInt32LE(n % 0x100000000, off);
  buf.writeUInt32LE(Math.floor(n / 0x100000000), off + 4);
}

const readU64 = (buf: Buffer, off: number) => buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * 0x100000000;

/** Appends records into one preallocated buffer so a save() is a single write. */
class RecordWriter {
  private off = 0;
  constructor(readonly buf: Buffer) {}

  static entrySize = (e: Entry) => HEADER + 17 + e.data.length;
  static hardStateSize = (vote: Buffer | null) => HEADER + 17 + (vote?.length ?? 0);
  static snapshotSize = () => HEADER + 16;

  entry(e: Entry): void {
    const p = this.begin(REC_ENTRY, 17 + e.data.length);
    writeU64(this.buf, p, e.term);
    writeU64(this.buf, p + 8, e.index);
    this.buf[p + 16] = e.type === "conf" ? 1 : 0;
    this.buf.set(e.data, p + 17);
    this.end(p - HEADER);
  }

  hardState(hs: HardState, vote: Buffer | null): void {
    const p = this.begin(REC_HARD_STATE, 17 + (vote?.length ?? 0));
    writeU64(this.buf, p, hs.term);
    writeU64(this.buf, p + 8, hs.commit);
    this.buf[p + 16] = vote ? 1 : 0;
    if (vote) this.buf.set(vote, p + 17);
    this.end(p - HEADER);
  }

  snapshot(term: number, index: number): void {
    const p = this.begin(REC_SNAPSHOT, 16);
    writeU64(this.buf, p, term);
    writeU64(this.buf, p + 8, index);
    this.end(p - HEADER);
  }

  private begin(type: number, len: number): number {
    this.buf.writeUInt32LE(len, this.off);
    this.buf[this.off + 8] = type;
    this.off += HEADER + len;
    return this.off - len;
  }

  private end(start: number): void {
    const len = this.buf.readUInt32LE(start);
    this.buf.writeUInt32LE(crc32c(this.buf.subarray(start + 8, start + HEADER + len)), start + 4);
  }
}

type WalRecord =
  | { kind: "entry"; entry: Entry }
  | { kind: "hardState"; hardState: HardState }
  | { kind: "snapshot"; term: number; index: number };

/** Decodes the record at `off`, or returns why it is not a valid one. */
function readRecord(buf: Buffer, off: number): { record: WalRecord; next: number } | { bad: string } {
  if (buf.length - off < HEADER) return { bad: `${buf.length - off} bytes, shorter than a record header` };
  const len = buf.readUInt32LE(off);
  if (len === 0) return { bad: "zero length" };
  if (len > buf.length - off - HEADER) return { bad: `length ${len} runs past the end of the file` };
  const body = buf.subarray(off + 8, off + HEADER + len);
  if (crc32c(body) !== buf.readUInt32LE(off + 4)) return { bad: "checksum mismatch" };
  const record = decodePayload(body[0]!, buf.subarray(off + HEADER, off + HEADER + len));
  return record ? { record, next: off + HEADER + len } : { bad: `undecodable record of type ${body[0]}` };
}

function decodePayload(type: number, p: Buffer): WalRecord | null {
  if (type === REC_ENTRY && p.length >= 17 && p[16]! <= 1) {
    const entry: Entry = {
      term: readU64(p, 0),
      index: readU64(p, 8),
      type: p[16] === 1 ? "conf" : "normal",
      data: new Uint8Array(p.subarray(17)), // a copy: the segment buffer must not stay alive behind it
    };
    return { kind: "entry", entry };
  }
  if (type === REC_HARD_STATE && p.length >= 17 && p[16]! <= 1) {
    const vote = p[16] === 1 ? p.toString("utf8", 17) : null;
    return { kind: "hardState", hardState: { term: readU64(p, 0), commit: readU64(p, 8), vote } };
  }
  if (type === REC_SNAPSHOT && p.length === 16)
    return { kind: "snapshot", term: readU64(p, 0), index: readU64(p, 8) };
  return null;
}

/** Whether any valid record starts in (from, upTo]: if so, the bad bytes at `from` are not a torn tail. A record
 * starts with its non-zero length, so none starts after the last non-zero byte: pass that as `upTo`. */
function validRecordAfter(buf: Buffer, from: number, upTo: number): number | null {
  for (let off = from + 1; off + HEADER <= buf.length && off <= upTo; off++) {
    const len = buf.readUInt32LE(off);
    if (len === 0 || len > buf.length - off - HEADER) continue;
    if ("record" in readRecord(buf, off)) return off;
  }
  return null;
}

// ---- log replay ----

/** Rebuilds the logical log from records in write order; a lower index replaces the suffix (last writer wins). */
class LogReplay {
  entries: Entry[] = [];
  /** Index just before entries[0]; null until the first entry or snapshot marker. */
  base: number | null = null;
  hardState: HardState = { ...EMPTY_HARD_STATE };

  get lastIndex(): number {
    return (this.base ?? 0) + this.entries.length;
  }

  apply(r: WalRecord, where: string): void {
    if (r.kind === "hardState") this.hardState = r.hardState;
    else if (r.kind === "snapshot") this.marker(r.index);
    else this.entry(r.entry, where);
  }

  private entry(e: Entry, where: string): void {
    if (this.base === null || e.index <= this.base) {
      this.base = e.index - 1;
      this.entries = [e];
      return;
    }
    const last = this.lastIndex;
    if (e.index > last + 1)
      throw new Error(`wal: gap in the log at ${where}: entry ${e.index} follows ${last}`);
    this.entries.length = e.index - this.base - 1;
    this.entries.push(e);
  }

  private marker(index: number): void {
    if (this.base !== null && index <= this.lastIndex) return;
    this.base = index;
    this.entries = [];
  }
}

// ---- snapshot files ----

/** A snapshot's data is checksummed and written this much at a time, so a large one never holds the event loop. */
const SNAP_WRITE_SLICE = 4 * 1024 * 1024;

/** Writes a snapshot file's bytes to `fh` in slices: the header, the data, then the checksum over both. */
async function writeSnapshotTo(fh: FileHandle, s: Snapshot): Promise<void> {
  const meta = Buffer.from(JSON.stringify(s.meta), "utf8");
  const head = Buffer.allocUnsafe(12 + meta.length);
  head.writeUInt32LE(SNAP_MAGIC, 0);
  head.writeUInt32LE(meta.length, 8);
  head.set(meta, 12);
  let crc = crc32c(head.subarray(8));
  await writeAll(fh, head, 0);
  for (let off = 0; off < s.data.length; off += SNAP_WRITE_SLICE) {
    const slice = s.data.subarray(off, off + SNAP_WRITE_SLICE);
    crc = crc32c(slice, crc);
    await writeAll(fh, Buffer.from(slice.buffer, slice.byteOffset, slice.byteLength), head.length + off);
  }
  const sum = Buffer.allocUnsafe(4);
  sum.writeUInt32LE(crc, 0);
  await writeAll(fh, sum, 4);
}

function decodeSnapshot(buf: Buffer): Snapshot | string {
  if (buf.length < 12 || buf.readUInt32LE(0) !== SNAP_MAGIC) return "bad header";
  if (crc32c(buf.subarray(8)) !== buf.readUInt32LE(4)) return "checksum mismatch";
  const metaLen = buf.readUInt32LE(8);
  if (12 + metaLen > buf.length) return "meta runs past the end of the file";
  const meta = JSON.parse(buf.toString("utf8", 12, 12 + metaLen)) as SnapshotMeta;
  return { meta, data: new Uint8Array(buf.subarray(12 + metaLen)) };
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, fsc.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Appends up to this size are written with a synchronous write(2): a copy into the page cache, cheaper than a
 * round trip to the thread pool; only the fdatasync that follows waits for the disk (off the event loop). */
const SYNC_WRITE_LIMIT = 256 * 1024;

async function writeAll(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  if (buf.length <= SYNC_WRITE_LIMIT) {
    while (done < buf.length) done += writeSync(fh.fd, buf, done, buf.length - done, position + done);
    return;
  }
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

export class FileRaftStorage implements RaftStorage {
  private readonly walDir: string;
  private readonly snapDir: string;
  private readonly segmentBytes: number;
  private readonly preallocate: boolean;
  private readonly logger: (line: string) => void;
  private readonly onFsync: ((seconds: number) => void) | null;
  private segments: Segment[] = [];
  private fh: FileHandle | null = null;
  /** Where the next record goes in the current segment: the end of its log, not of the (preallocated) file. */
  private writeOff = 0;
  /** Size of the current segment's file before the append under way: what a failed append truncates back to. */
  private allocated = 0;
  /** The next segment being zero-filled in the background: its path once ready, null if that failed. */
  private spare: Promise<string | null> | null = null;
  private lastIndex = 0;
  private snapIndex = 0;
  private hardState: HardState = { ...EMPTY_HARD_STATE };
  private loaded = false;
  private closed = false;
  /** Set after a failed write or fsync: the file's state is unknown, so no further writes are trusted. */
  private broken: Error | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly dir: string,
    opts: FileRaftStorageOptions,
  ) {
    this.walDir = join(dir, "wal");
    this.snapDir = join(dir, "snap");
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.preallocate = opts.preallocate ?? true;
    this.logger = opts.logger ?? (() => {});
    this.onFsync = opts.onFsync ?? null;
  }

  static async open(dir: string, opts: FileRaftStorageOptions = {}): Promise<FileRaftStorage> {
    const s = new FileRaftStorage(dir, opts);
    await mkdir(s.walDir, { recursive: true });
    await mkdir(s.snapDir, { recursive: true });
    return s;
  }

  load(): Promise<StoredState> {
    return this.serial(() => this.recover());
  }

  save(hardState: HardState | null, entries: Entry[], sync = true): Promise<void> {
    return this.serial(async () => {
      await this.ensureLoaded();
      if (!hardState && entries.length === 0) return;
      this.checkContiguous(entries);
      const votes = hardState?.vote != null ? Buffer.from(hardState.vote, "utf8") : null;
      let size = entries.reduce((n, e) => n + RecordWriter.entrySize(e), 0);
      if (hardState) size += RecordWriter.hardStateSize(votes);
      if (this.writeOff > 0 && this.writeOff + size > this.segmentBytes) {
        await this.rotate(entries[0]?.index ?? this.lastIndex + 1);
      }
      // A new segment opens with the current hard state, so compacting older segments never loses it.
      const carry = this.writeOff === 0 && !hardState ? this.hardState : null;
      const carryVote = carry?.vote != null ? Buffer.from(carry.vote, "utf8") : null;
      if (carry) size += RecordWriter.hardStateSize(carryVote);
      const w = new RecordWriter(Buffer.allocUnsafe(size));
      if (carry) w.hardState(carry, carryVote);
      if (hardState) w.hardState(hardState, votes);
      for (const e of entries) w.entry(e);
      await this.append(w.buf, sync);
      if (hardState) this.hardState = { ...hardState };
      const last = entries[entries.length - 1];
      if (last) {
        this.lastIndex = last.index;
        const seg = this.segments[this.segments.length - 1]!;
        seg.maxIndex = Math.max(seg.maxIndex, last.index);
      }
    });
  }

  saveSnapshot(snapshot: Snapshot): Promise<void> {
    const { term, index } = snapshot.meta;
    const name = snapshotName(term, index);
    const record = async (writeFile: boolean) => {
      await this.ensureLoaded();
      if (writeFile) await this.writeSnapshotFile(name, snapshot);
      this.snapIndex = Math.max(this.snapIndex, index);
      if (index > this.lastIndex) {
        // Installed from a leader past our log's end: entries from index + 1 on follow without a gap.
        const w = new RecordWriter(Buffer.allocUnsafe(RecordWriter.snapshotSize()));
        w.snapshot(term, index);
        await this.append(w.buf);
        this.lastIndex = index;
      }
      await this.pruneSnapshots();
    };
    // Once loaded, the snapshot's own file in snap/ is written, synced and renamed into place before joining the
    // queue, so log appends go on meanwhile instead of waiting behind its fsyncs; only the bookkeeping is queued.
    // Callers do not save two snapshots at once.
    if (this.loaded && !this.closed && !this.broken)
      return this.writeSnapshotFile(name, snapshot).then(() => this.serial(() => record(false)));
    return this.serial(() => record(true));
  }

  private async writeSnapshotFile(name: string, snapshot: Snapshot): Promise<void> {
    const tmp = join(this.snapDir, `${name}.tmp`);
    try {
      const fh = await open(tmp, "w");
      try {
        await writeSnapshotTo(fh, snapshot);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, join(this.snapDir, name));
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      if (isNoSpace(err)) throw new StorageFullError(`snap: no space for ${name}: ${(err as Error).message}`);
      throw err;
    }
    await fsyncDir(this.snapDir);
  }

  compact(index: number): Promise<void> {
    return this.serial(async () => {
      await this.ensureLoaded();
      // Never drop entries that no durable snapshot covers, whatever the caller asks.
      const upTo = Math.min(index, this.snapIndex);
      let dropped = 0;
      while (this.segments.length > 1 && this.segments[0]!.maxIndex <= upTo) {
        const seg = this.segments.shift()!;
        await rm(join(this.walDir, seg.name));
        dropped++;
      }
      if (dropped > 0) {
        await fsyncDir(this.walDir);
        this.logger(`wal: compacted ${dropped} segment(s) up to index ${upTo}`);
      }
    });
  }

  close(): Promise<void> {
    return this.serial(async () => {
      this.closed = true;
      await this.fh?.close();
      this.fh = null;
      await this.spare; // no background I/O outlives close(); a leftover spare file is removed by the next load
    });
  }

  /** Runs operations one at a time even if the caller overlaps them. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = async () => {
      if (this.closed) throw new Error(`raft storage ${this.dir}: closed`);
      if (this.broken)
        throw new Error(`raft storage ${this.dir}: unusable after an I/O error: ${this.broken.message}`);
      return fn();
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => {});
    return p;
  }

  private async ensureLoaded(): Promise<void> {
    if (!this.loaded) await this.recover();
  }

  private checkContiguous(entries: Entry[]): void {
    const first = entries[0];
    if (!first) return;
    if (first.index > this.lastIndex + 1) {
      throw new Error(
        `wal: entry ${first.index} would leave a gap after the last stored index ${this.lastIndex}`,
      );
    }
    entries.forEach((e, i) => {
      if (e.index !== first.index + i) throw new Error(`wal: entries are not contiguous at index ${e.index}`);
    });
  }

  private async append(buf: Buffer, sync = true): Promise<void> {
    try {
      await writeAll(this.fh!, buf, this.writeOff);
      if (sync) {
        const started = this.onFsync ? performance.now() : 0;
        await this.fh!.datasync();
        this.onFsync?.((performance.now() - started) / 1000);
      }
    } catch (err) {
      if (isNoSpace(err) && (await this.undoAppend(buf.length)))
        throw new StorageFullError(`wal: no space for ${buf.length} bytes: ${(err as Error).message}`);
      this.broken = err as Error;
      throw err;
    }
    this.writeOff += buf.length;
    this.allocated = Math.max(this.allocated, this.writeOff);
    this.prepareSpare();
  }

  /** After an append ran out of space: gives back the blocks it added and zeroes what it wrote in place, durably,
   * so nothing of it is read as a record, nor left behind a later, shorter write. False if that failed too. */
  private async undoAppend(length: number): Promise<boolean> {
    const fh = this.fh!;
    try {
      await fh.truncate(Math.max(this.allocated, this.writeOff));
      await zeroFill(fh, this.writeOff, Math.min(this.allocated, this.writeOff + length));
      await fh.datasync();
      return true;
    } catch {
      return false;
    }
  }

  /** Starts zero-filling the next segment once the current one is half full, so rotation only renames it. */
  private prepareSpare(): void {
    if (!this.preallocate || this.spare || this.closed || this.writeOff < this.segmentBytes / 2) return;
    const path = join(this.walDir, SPARE_NAME);
    this.spare = createZeroFile(path, this.segmentBytes).then(
      () => path,
      async (err: Error) => {
        await rm(path, { force: true }).catch(() => {}); // a partial spare must not hold on to the space it took
        this.logger(`wal: preparing the next segment failed (${err.message}); rotation will create it`);
        return null;
      },
    );
  }

  /** The current segment stays open until the next one exists: a rotation that fails changes nothing. */
  private async rotate(firstIndex: number): Promise<void> {
    const prev = this.segments[this.segments.length - 1];
    const old = this.fh;
    await this.createSegment((prev?.seq ?? 0) + 1, firstIndex);
    await old?.close();
  }

  private async createSegment(seq: number, firstIndex: number): Promise<void> {
    const name = segmentName(seq, firstIndex);
    const path = join(this.walDir, name);
    let created: { fh: FileHandle; size: number } | null = null;
    try {
      created = await this.newSegmentFile(path);
      await fsyncDir(this.walDir);
    } catch (err) {
      await created?.fh.close().catch(() => {});
      await rm(path, { force: true }).catch(() => {});
      if (isNoSpace(err))
        throw new StorageFullError(`wal: no space for segment ${name}: ${(err as Error).message}`);
      throw err;
    }
    this.fh = created.fh;
    this.segments.push({ seq, firstIndex, name, maxIndex: -1, end: 0 });
    this.writeOff = 0;
    this.allocated = created.size;
  }

  /** Preallocated when a whole segment fits (zero-filled and synced under the spare name first, so it never appears
   * half-allocated); otherwise empty, growing as it is written, rather than no segment and no writes at all. */
  private async newSegmentFile(path: string): Promise<{ fh: FileHandle; size: number }> {
    if (this.preallocate) {
      const ready = await this.spare;
      this.spare = null;
      const spare = join(this.walDir, SPARE_NAME);
      try {
        if (ready === null) await createZeroFile(spare, this.segmentBytes);
        await rename(spare, path);
        return { fh: await open(path, "r+"), size: this.segmentBytes };
      } catch (err) {
        await rm(spare, { force: true }).catch(() => {});
        if (!isNoSpace(err)) throw err;
        this.logger(
          `wal: no room to preallocate a segment (${(err as Error).message}); it grows as it is written`,
        );
      }
    }
    return { fh: await open(path, "wx+"), size: 0 };
  }

  // ---- recovery ----

  private async recover(): Promise<StoredState> {
    await this.fh?.close();
    this.fh = null;
    this.loaded = false;
    // A spare left by an earlier process may be incomplete: start over. One this instance prepared is good.
    if (!this.spare) await rm(join(this.walDir, SPARE_NAME), { force: true });
    const report: RecoveryReport = { notes: [], truncatedBytes: 0 };
    const note = (line: string) => {
      report.notes.push(line);
      this.logger(line);
    };
    const snapshot = await this.loadSnapshot(note);
    const snapIndex = snapshot?.meta.index ?? 0;
    const replay = new LogReplay();
    this.segments = await this.listSegments();
    for (const [i, seg] of this.segments.entries()) {
      const isLast = i === this.segments.length - 1;
      await this.replaySegment(seg, isLast, replay, report, note);
    }
    if (replay.base !== null && replay.base > snapIndex) {
      const where = this.segments[0]?.name ?? "wal";
      throw new Error(
        `wal: log starts after index ${replay.base} (${where}) but the snapshot only covers up to ${snapIndex}: ` +
          "entries are missing",
      );
    }
    const last = this.segments[this.segments.length - 1];
    if (last) {
      this.fh = await open(join(this.walDir, last.name), "r+");
      this.writeOff = last.end;
      const { size } = await this.fh.stat();
      this.allocated = size;
      if (this.preallocate && size < this.segmentBytes) {
        // Written before preallocation, or cut short: extend it, so saves from here on overwrite in place. Without
        // room for that the node still starts (a full disk must not make it crash-loop): the segment grows instead.
        try {
          await zeroFill(this.fh, size, this.segmentBytes);
          await this.fh.sync();
          this.allocated = this.segmentBytes;
        } catch (err) {
          if (!isNoSpace(err)) throw err;
          await this.fh.truncate(size);
          note(
            `wal: no room to extend ${last.name} to ${this.segmentBytes} bytes; it grows as it is written`,
          );
        }
      }
    } else {
      await this.createSegment(1, Math.max(replay.lastIndex, snapIndex) + 1);
    }
    this.hardState = replay.hardState;
    this.snapIndex = snapIndex;
    this.lastIndex = Math.max(replay.lastIndex, snapIndex);
    this.loaded = true;
    const entries = replay.entries.filter((e) => e.index > snapIndex);
    if (entries.length > 0 || snapshot) {
      note(
        `wal: recovered ${entries.length} entries (${entries[0]?.index ?? "-"}..${entries.at(-1)?.index ?? "-"}) ` +
          `over snapshot ${snapIndex} from ${this.segments.length} segment(s)`,
      );
    }
    return { hardState: { ...replay.hardState }, snapshot, entries, report };
  }

  private async listSegments(): Promise<Segment[]> {
    const segs: Segment[] = [];
    for (const name of await readdir(this.walDir)) {
      const m = SEGMENT_RE.exec(name);
      if (m) segs.push({ seq: Number(m[1]), firstIndex: Number(m[2]), name, maxIndex: -1, end: 0 });
    }
    segs.sort((a, b) => a.seq - b.seq);
    for (let i = 1; i < segs.length; i++) {
      const [a, b] = [segs[i - 1]!, segs[i]!];
      if (b.seq !== a.seq + 1) {
        throw new Error(`wal: segment(s) missing between ${a.name} and ${b.name} (sequence ${a.seq + 1})`);
      }
    }
    return segs;
  }

  private async replaySegment(
    seg: Segment,
    isLast: boolean,
    replay: LogReplay,
    report: RecoveryReport,
    note: (line: string) => void,
  ): Promise<void> {
    const path = join(this.walDir, seg.name);
    const buf = await readFile(path);
    let off = 0;
    while (off < buf.length) {
      const r = readRecord(buf, off);
      if ("bad" in r) {
        seg.end = off;
        // Zeros to the end of the file: the segment's clean end (its preallocated, never written tail).
        const lastByte = lastNonZero(buf, off);
        if (lastByte < 0) return;
        const after = isLast ? validRecordAfter(buf, off, lastByte) : off;
        if (after !== null) {
          throw new Error(
            `wal: corrupt record in ${path} at offset ${off} (${r.bad})` +
              (isLast ? `; a valid record follows at offset ${after}` : "; later segments follow") +
              ": refusing to drop acknowledged entries",
          );
        }
        // A torn write: zero it rather than leave it for a later, shorter write to stop part way through.
        const torn = lastByte + 1 - off;
        await zeroRange(path, off, lastByte + 1);
        report.truncatedBytes += torn;
        note(`wal: truncated ${torn} torn bytes at the end of segment ${seg.name} (offset ${off}: ${r.bad})`);
        return;
      }
      replay.apply(r.record, `${path} offset ${off}`);
      if (r.record.kind === "entry") seg.maxIndex = Math.max(seg.maxIndex, r.record.entry.index);
      off = r.next;
    }
    seg.end = off;
  }

  private async loadSnapshot(note: (line: string) => void): Promise<Snapshot | null> {
    const found: { term: number; index: number; name: string }[] = [];
    for (const name of await readdir(this.snapDir)) {
      const m = SNAPSHOT_RE.exec(name);
      if (m) found.push({ term: Number(m[1]), index: Number(m[2]), name });
      else if (name.endsWith(".tmp")) {
        // A snapshot write that never reached its rename: never acknowledged.
        await rm(join(this.snapDir, name), { force: true });
        note(`snap: removed unfinished ${name}`);
      }
    }
    found.sort((a, b) => b.index - a.index || b.term - a.term);
    for (const f of found) {
      const decoded = decodeSnapshotSafe(await readFile(join(this.snapDir, f.name)));
      if (typeof decoded !== "string") return decoded;
      note(`snap: ${f.name} is unusable (${decoded}); falling back to an older snapshot`);
    }
    return null;
  }

  private async pruneSnapshots(): Promise<void> {
    const names = (await readdir(this.snapDir)).filter((n) => SNAPSHOT_RE.test(n));
    const byIndex = (n: string) => Number(SNAPSHOT_RE.exec(n)![2]);
    names.sort((a, b) => byIndex(b) - byIndex(a) || b.localeCompare(a));
    for (const name of names.slice(KEEP_SNAPSHOTS)) await rm(join(this.snapDir, name), { force: true });
  }
}

function decodeSnapshotSafe(buf: Buffer): Snapshot | string {
  try {
    return decodeSnapshot(buf);
  } catch (err) {
    return `undecodable: ${(err as Error).message}`;
  }
}

/** Overwrites [from, to) of the file with zeros, durably; the file keeps its size (and its allocation). */
async function zeroRange(path: string, from: number, to: number): Promise<void> {
  const fh = await open(path, "r+");
  try {
    await zeroFill(fh, from, to);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}
