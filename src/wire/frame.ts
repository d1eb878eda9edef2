// Framing shared by every Berth connection (peer, client, console): a 4-byte big-endian body length followed by
// a msgpack body. Binary values (Uint8Array/Buffer) travel as msgpack `bin` and decode as Buffers.
import { Packr } from "msgpackr";

/** Largest body a decoder accepts unless told otherwise (16 MiB). */
export const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;

const HEADER = 4;

// useRecords:false keeps the encoding plain msgpack (no msgpackr record extension), so any peer can read it.
// Without shared structures every unpack starts from an empty record table, so a peer cannot plant state.
const packr = new Packr({ useRecords: false });

export type FrameErrorCode = "frame_too_large" | "frame_undecodable";

export class FrameError extends Error {
  constructor(
    readonly code: FrameErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "FrameError";
  }
}

/** Encodes one value as a complete frame (header + body). */
export function encodeFrame(value: unknown): Buffer {
  const body = packr.pack(value);
  const out = Buffer.allocUnsafe(HEADER + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, HEADER);
  return out;
}

/** Encodes only the body of a frame; `frameHeader(body.length)` precedes it on the wire. */
export function encodeBody(value: unknown): Buffer {
  return packr.pack(value);
}

export function frameHeader(length: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER);
  h.writeUInt32BE(length, 0);
  return h;
}

/** Decodes one msgpack body (throws FrameError "frame_undecodable"). */
export function decodeBody(body: Uint8Array): unknown {
  try {
    return packr.unpack(body);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new FrameError("frame_undecodable", `undecodable frame of ${body.length} bytes: ${why}`);
  }
}

/**
 * Turns a byte stream into values. Chunks are kept as received (no re-concatenation per push); a body is copied
 * at most once, and only when it spans chunks, so the cost is linear in the bytes received.
 * After a FrameError the decoder refuses further input.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  /** Index of the first unread chunk (consumed chunks are dropped in bulk, not shifted one by one). */
  private head = 0;
  /** Read offset into chunks[head]. */
  private offset = 0;
  /** Unread bytes across chunks. */
  private buffered = 0;
  /** Body length of the frame being assembled, or -1 while its header is incomplete. */
  private need = -1;
  private failed: FrameError | null = null;

  constructor(public maxFrameBytes: number = DEFAULT_MAX_FRAME) {}

  /** Bytes received but not yet decoded. */
  get pendingBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): unknown[] {
    if (this.failed) throw this.failed;
    const out: unknown[] = [];
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    try {
      for (;;) {
        if (this.need < 0) {
          if (this.buffered < HEADER) break;
          const len = this.take(HEADER).readUInt32BE(0);
          if (len > this.maxFrameBytes)
            throw new FrameError(
              "frame_too_large",
              `frame of ${len} bytes exceeds the limit of ${this.maxFrameBytes} bytes`,
            );
          this.need = len;
        }
        if (this.buffered < this.need) break;
        const body = this.take(this.need);
        this.need = -1;
        out.push(decodeBody(body));
      }
    } catch (err) {
      this.failed =
        err instanceof FrameError ? err : new FrameError("frame_undecodable", (err as Error)?.message ?? "");
      this.chunks = [];
      this.head = 0;
      this.buffered = 0;
      throw this.failed;
    }
    return out;
  }

  /** Removes `n` buffered bytes (n <= buffered): a view when they lie in one chunk, else one copy. */
  private take(n: number): Buffer {
    const first = this.chunks[this.head]!;
    const avail = first.length - this.offset;
    let result: Buffer;
    if (n <= avail) {
      result = first.subarray(this.offset, this.offset + n);
      this.offset += n;
      if (this.offset === first.length) this.advance();
    } else {
      result = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[this.head]!;
        const k = Math.min(c.length - this.offset, n - filled);
        c.copy(result, filled, this.offset, this.offset + k);
        filled += k;
        this.offset += k;
        if (this.offset === c.length) this.advance();
      }
    }
    this.buffered -= n;
    return result;
  }

  private advance(): void {
    this.offset = 0;
    this.head++;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}
