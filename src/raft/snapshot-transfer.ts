// Snapshots between members, in chunks: a snapshot of any size crosses peer connections whose frames are
// bounded, and neither side holds the event loop or the connection for long.
//
// The sender makes three kinds of request on one connection: "raft.snap.begin" (the snap message without its
// data, and the data's size), "raft.snap.chunk" (offset and bytes, at most SNAP_WINDOW unanswered: the receiver
// answers once the chunk is written, so a slow disk or network slows the sender instead of filling buffers), and
// "raft.snap.end" (the CRC-32C of the data). The receiver writes the chunks to a temporary file, reads it back
// checking the CRC, removes it and only then hands the whole message to Raft. A transfer that is cut (the
// connection closes, the sender goes quiet, a new transfer from the same peer begins) is abandoned and its file
// removed; files left by a killed process are removed when the next one starts receiving.
import { randomBytes } from "node:crypto";
import { type FileHandle, mkdir, open, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Connection } from "../wire/connection.ts";
import { messageProblem } from "./message-check.ts";
import { crc32c } from "./storage/crc32c.ts";
import type { Message } from "./types.ts";

export const SNAP_BEGIN = "raft.snap.begin";
export const SNAP_CHUNK = "raft.snap.chunk";
export const SNAP_END = "raft.snap.end";
/** Chunks sent before the first is acknowledged. */
const SNAP_WINDOW = 4;
/** A request of a transfer unanswered this long fails it; a receiver drops a transfer idle this long. */
export const SNAP_IDLE_MS = 60_000;
/** Received files are read back (and checksummed) this much at a time. */
const READ_SLICE = 4 * 1024 * 1024;
const PART_SUFFIX = ".part";

/** Sends `m` (a snap message) over `conn` in chunks of at most `chunkBytes`. Resolves once the peer holds it. */
export async function sendSnapshotInChunks(conn: Connection, m: Message, chunkBytes: number): Promise<void> {
  const data = m.snapshot!.data;
  const id = randomBytes(8).toString("hex");
  const header: Message = { ...m, snapshot: { meta: m.snapshot!.meta, data: new Uint8Array(0) } };
  const opts = { timeoutMs: SNAP_IDLE_MS };
  await conn.request(SNAP_BEGIN, { id, message: header, size: data.length }, opts);
  const inFlight: Promise<unknown>[] = [];
  let crc = 0;
  for (let offset = 0; offset < data.length; offset += chunkBytes) {
    const chunk = data.subarray(offset, offset + chunkBytes);
    crc = crc32c(chunk, crc);
    const sent = conn.request(SNAP_CHUNK, { id, offset, data: chunk }, opts);
    // When the connection drops, every unanswered chunk fails; only the first is awaited (and rethrown).
    sent.catch(() => {});
    inFlight.push(sent);
    if (inFlight.length >= SNAP_WINDOW) await inFlight.shift();
  }
  await Promise.all(inFlight);
  await conn.request(SNAP_END, { id, crc }, opts);
}

interface Incoming {
  id: string;
  conn: Connection;
  message: Message;
  size: number;
  path: string;
  fh: FileHandle;
  /** Where the next chunk must start (chunks arrive in order on one connection). */
  next: number;
  /** The writes of the chunks received so far, in order; a failed one fails the transfer. */
  writes: Promise<void>;
  idle?: ReturnType<typeof setTimeout>;
}

const badRequest = (message: string) => Object.assign(new Error(message), { code: "bad_request" });

/** The receiving side: one transfer per sending peer at a time, each in its own file under `dir`. */
export class SnapshotReceiver {
  private readonly incoming = new Map<string, Incoming>();
  /** Files of abandoned transfers being removed. */
  private readonly removing = new Set<Promise<void>>();
  private cleaned: Promise<void> | null = null;
  private seq = 0;

  constructor(
    private readonly dir: string,
    private readonly selfId: string,
    private readonly logger?: (line: string) => void,
  ) {}

  /** Serves one of the transfer requests from `from`; returns the complete message once "end" checks out. */
  async handle(
    conn: Connection,
    from: string,
    method: string,
    params: unknown,
  ): Promise<{ done: Message } | { ok: true }> {
    const p = (params ?? {}) as Record<string, unknown>;
    if (method === SNAP_BEGIN) {
      await this.begin(conn, from, p);
      return { ok: true };
    }
    const t = this.incoming.get(from);
    if (!t || t.id !== p.id || t.conn !== conn) throw badRequest("no such snapshot transfer (abandoned?)");
    this.touch(from, t);
    if (method === SNAP_CHUNK) {
      const data = p.data;
      if (!(data instanceof Uint8Array) || p.offset !== t.next || t.next + data.length > t.size)
        throw badRequest(`chunk out of order or past the size (expected offset ${t.next})`);
      const at = t.next;
      t.next += data.length;
      t.writes = t.writes.then(() => writeFully(t.fh, data, at));
      await t.writes;
      return { ok: true };
    }
    if (method === SNAP_END) {
      try {
        await t.writes;
        if (t.next !== t.size) throw badRequest(`received ${t.next} of ${t.size} bytes`);
        const data = await readChecked(t.fh, t.size, p.crc);
        return { done: { ...t.message, snapshot: { meta: t.message.snapshot!.meta, data } } };
      } finally {
        await this.abandon(from, t);
      }
    }
    throw badRequest(`unknown snapshot request ${method}`);
  }

  /** Abandons the transfers that were coming over `conn` (it closed). */
  connectionClosed(conn: Connection): void {
    for (const [from, t] of this.incoming)
      if (t.conn === conn) void this.abandon(from, t, "connection closed");
  }

  /** Abandons every transfer (the transport stops); resolves once their files are gone. */
  async stop(): Promise<void> {
    await Promise.all([...this.incoming].map(([from, t]) => this.abandon(from, t)));
    await Promise.all(this.removing);
  }

  private async begin(conn: Connection, from: string, p: Record<string, unknown>): Promise<void> {
    const m = p.message as Message | undefined;
    const problem = messageProblem(m);
    if (problem || m?.type !== "snap") throw badRequest(`malformed snapshot message: ${problem ?? m?.type}`);
    if (m.from !== from || m.to !== this.selfId) throw badRequest("snapshot message from/to do not match");
    if (typeof p.id !== "string" || !Number.isSafeInteger(p.size) || (p.size as number) < 0)
      throw badRequest("snapshot transfer without an id or size");
    const old = this.incoming.get(from);
    if (old) await this.abandon(from, old, "a new transfer began");
    await this.clean();
    const path = join(this.dir, `${Date.now()}-${++this.seq}${PART_SUFFIX}`);
    const fh = await open(path, "w+");
    const t: Incoming = {
      id: p.id,
      conn,
      message: m,
      size: p.size as number,
      path,
      fh,
      next: 0,
      writes: Promise.resolve(),
    };
    this.incoming.set(from, t);
    this.touch(from, t);
    // The connection may have closed while the file was being opened: nothing would abandon this transfer then.
    if (conn.closed) {
      await this.abandon(from, t, "connection closed");
      throw badRequest("the connection closed while the transfer began");
    }
  }

  private touch(from: string, t: Incoming): void {
    clearTimeout(t.idle);
    t.idle = setTimeout(() => void this.abandon(from, t, "the sender went quiet"), SNAP_IDLE_MS);
    t.idle.unref?.();
  }

  private async abandon(from: string, t: Incoming, why?: string): Promise<void> {
    if (this.incoming.get(from) !== t) return;
    this.incoming.delete(from);
    clearTimeout(t.idle);
    if (why) this.logger?.(`snapshot transfer from ${from} abandoned: ${why}`);
    const removed = (async () => {
      await t.writes.catch(() => {});
      await t.fh.close().catch(() => {});
      await rm(t.path, { force: true });
    })();
    this.removing.add(removed);
    try {
      await removed;
    } finally {
      this.removing.delete(removed);
    }
  }

  /** Creates the directory and removes what a killed process left in it (once per receiver). */
  private clean(): Promise<void> {
    this.cleaned ??= (async () => {
      await mkdir(this.dir, { recursive: true });
      for (const name of await readdir(this.dir))
        if (name.endsWith(PART_SUFFIX)) await rm(join(this.dir, name), { force: true });
    })();
    return this.cleaned;
  }

  /** Removes leftovers now (at start-up), not only when the first transfer begins. */
  start(): Promise<void> {
    return this.clean();
  }
}

async function writeFully(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** The file's bytes, read a slice at a time, if their CRC-32C is `expected`. */
async function readChecked(fh: FileHandle, size: number, expected: unknown): Promise<Uint8Array> {
  const data = Buffer.allocUnsafe(size);
  let crc = 0;
  for (let off = 0; off < size; ) {
    const { bytesRead } = await fh.read(data, off, Math.min(READ_SLICE, size - off), off);
    if (bytesRead === 0) throw badRequest(`the received snapshot file ends at ${off} of ${size} bytes`);
    crc = crc32c(data.subarray(off, off + bytesRead), crc);
    off += bytesRead;
  }
  if (crc !== expected) throw badRequest("the received snapshot fails its checksum");
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
