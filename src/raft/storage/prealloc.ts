// Zero-filled preallocation for WAL segments. Node has no fallocate(2), and an fallocated range is "unwritten"
// anyway (the first write into it still converts the extent, a journal commit), so segments are filled with real
// zeros once, synced, and from then on every save() overwrites allocated blocks inside the file's size: its
// fdatasync flushes data only, with no metadata for the filesystem journal to commit.
import { type FileHandle, open } from "node:fs/promises";

const CHUNK = 1024 * 1024;
/** Shared and never written to: only ever the source of writes and comparisons. */
const ZEROS = Buffer.alloc(CHUNK);

/** Writes zeros over [from, to) in 1 MiB positioned writes; the caller syncs. */
export async function zeroFill(fh: FileHandle, from: number, to: number): Promise<void> {
  let pos = from;
  while (pos < to) {
    const { bytesWritten } = await fh.write(ZEROS, 0, Math.min(CHUNK, to - pos), pos);
    pos += bytesWritten;
  }
}

/** Creates (or replaces) `path` as `bytes` zeros, durable once this resolves (the directory entry aside). */
export async function createZeroFile(path: string, bytes: number): Promise<void> {
  const fh = await open(path, "w");
  try {
    await zeroFill(fh, 0, bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Index of the last non-zero byte of `buf` at or after `from`, or -1 when [from, end) is all zeros. */
export function lastNonZero(buf: Uint8Array, from: number): number {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const step = 64 * 1024;
  for (let end = b.length; end > from; end -= step) {
    const start = Math.max(from, end - step);
    if (b.compare(ZEROS, 0, end - start, start, end) === 0) continue;
    for (let i = end - 1; i >= start; i--) if (b[i] !== 0) return i;
  }
  return -1;
}
