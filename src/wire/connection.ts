// One framed msgpack connection (peer, client or console), symmetric: either side may send requests, notifies
// and open streams, and either side may serve them.
//
// Envelopes are compact arrays whose first element is the kind:
//   [0, id, method, params]          request            → answered by one response with the same id
//   [1, id, result]                  response (ok)
//   [2, id, {code, message, data?}]  response (error)
//   [3, method, params]              notify (one-way); method "error" with {code, message} is the error frame a
//                                    side sends just before closing (bad frame, failed handshake); the receiver
//                                    surfaces it as the close reason
//   [4, sid, method, params, credit] stream open (consumer → producer), granting `credit` items
//   [5, sid, item]                   stream item (producer → consumer); each spends one credit
//   [6, sid, error | null]           stream end (producer → consumer), after every buffered item
//   [7, sid, n]                      more credit (consumer → producer), sent once half the window is consumed
//   [8, sid]                         stream cancel (consumer → producer)
//   [9, id, bytes, last]             part of a response too large for one frame: the receiver joins the parts'
//                                    bytes and decodes them as the response envelope ([1, id, …] or [2, id, …])
// Request ids and stream ids are chosen by the side that sends the request or opens the stream; the reply kinds
// differ, so both directions share the numbers without confusion.
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { joinHostPort } from "../host-port.ts";
import { ConnectionClosedError, RemoteError, type WireErrorBody, WireTimeoutError } from "./errors.ts";
import { DEFAULT_MAX_FRAME, decodeBody, encodeBody, FrameDecoder, FrameError } from "./frame.ts";

const REQ = 0;
const RES_OK = 1;
const RES_ERR = 2;
const NOTIFY = 3;
const S_OPEN = 4;
const S_ITEM = 5;
const S_END = 6;
const S_CREDIT = 7;
const S_CANCEL = 8;
const RES_PART = 9;

/**
 * Largest response sent and accepted in parts (kind 9) when it does not fit in one frame: a big `kv ls -r` is
 * answered, not refused, and the frame limit still bounds what one frame makes the receiver buffer. Only answers
 * to this side's own requests are joined, so a node never buffers parts a client sends it.
 */
export const MAX_RESPONSE_BYTES = 1 << 30;

/** Method name of the error frame (a notify sent just before closing). */
export const ERROR_FRAME_METHOD = "error";

/** Writes of at most this many bytes are merged into one buffer (one syscall); larger batches use cork. */
const CONCAT_LIMIT = 256 * 1024;
/** Messages received before serve() is called are held (up to this many), so early requests are not lost. */
const BACKLOG_LIMIT = 10_000;
/** After closing, how long the socket may linger (reading and discarding) before it is destroyed. */
const LINGER_MS = 2000;

export interface Handlers {
  request?(method: string, params: unknown, conn: Connection): Promise<unknown> | unknown;
  notify?(method: string, params: unknown, conn: Connection): void;
  stream?(method: string, params: unknown, sink: StreamSink, conn: Connection): void;
}

export interface RequestOptions {
  /** Reject with WireTimeoutError when no answer came within this time (no limit when absent). */
  timeoutMs?: number;
}

export interface StreamOptions {
  /** Items the producer may send ahead of consumption (default 64). */
  credit?: number;
}

export interface ConnectionOptions {
  /** Largest frame accepted from the other side (default 16 MiB); also the largest this side sends. */
  maxFrameBytes?: number;
  /** Items a stream sink holds beyond the consumer's credit before ending it with "slow_consumer" (default 1024). */
  streamBufferLimit?: number;
  /** A decoder that already consumed part of the socket (the handshake), with any frames it decoded past it. */
  decoder?: FrameDecoder;
  initialFrames?: unknown[];
  /** How the other end is named in error messages (default: its address). */
  label?: string;
  /**
   * Requests from the other side being served at once (default: no limit). At the limit this side stops reading
   * (TCP backpressure) and goes on once half of them are answered. Never set it where the same connection carries
   * what those requests wait for (peer connections carry Raft messages).
   */
  maxServedRequests?: number;
  /** Streams the other side may keep open at once (default: no limit); more are ended with "too_many_streams". */
  maxServedStreams?: number;
  /** Largest response sent or accepted in parts (default MAX_RESPONSE_BYTES). */
  maxResponseBytes?: number;
}

/** The producer's end of a stream. */
export interface StreamSink {
  /** Sends an item, or buffers it while the consumer has no credit left; ignored once closed. */
  push(item: unknown): void;
  /** Ends the stream (after the items already pushed), with an error when given. */
  end(error?: WireErrorBody): void;
  /** True once ended, cancelled by the consumer, or the connection is gone. */
  readonly closed: boolean;
  /** Called once when the sink closes for any reason (immediately when already closed). */
  onClose(cb: () => void): void;
  /** Remaining credit: items that can be pushed now without buffering. */
  readonly wanted: number;
  /** Called whenever the consumer grants credit and nothing is left buffered. */
  onDrain(cb: () => void): void;
}

/** The consumer's end of a stream: iterate it (once) for the items. */
export interface ClientStream<T = unknown> extends AsyncIterable<T> {
  /** Stops the stream; the producer is told and frees it. Pending iteration ends without error. */
  close(): void;
  /** Called once when the stream ends: without argument when it ended normally or was closed locally. */
  onEnd(cb: (error?: Error) => void): void;
  readonly ended: boolean;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** A TCP or TLS socket, or another byte stream to a node (a channel through an SSH tunnel). */
export type ByteStream = Duplex &
  Partial<Pick<Socket, "setNoDelay" | "setKeepAlive" | "remoteAddress" | "remotePort">>;

export class Connection {
  readonly remoteAddress: string;
  readonly label: string;
  private readonly decoder: FrameDecoder;
  private readonly maxFrameBytes: number;
  private readonly streamBufferLimit: number;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Parts received of responses too large for one frame, by request id. */
  private readonly parts = new Map<number, Buffer[]>();
  private partBytes = 0;
  private readonly maxResponseBytes: number;
  private readonly clientStreams = new Map<number, ClientStreamImpl>();
  private readonly sinks = new Map<number, SinkImpl>();
  private handlers: Handlers | null = null;
  private backlog: unknown[] = [];
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private blocked = false;
  private closedError: ConnectionClosedError | null = null;
  private readonly closeCbs: ((err: ConnectionClosedError) => void)[] = [];
  private readonly drainCbs: (() => void)[] = [];
  private lingerTimer: ReturnType<typeof setTimeout> | null = null;
  private socketError: string | null = null;
  private readonly maxServedRequests: number;
  private readonly maxServedStreams: number;
  /** Requests from the other side not yet answered. */
  private served = 0;
  /** Frames received while reading is paused at maxServedRequests, dispatched in order once it resumes. */
  private heldFrames: unknown[] | null = null;

  constructor(
    private readonly socket: ByteStream,
    opts: ConnectionOptions = {},
  ) {
    this.remoteAddress = formatAddress(socket.remoteAddress, socket.remotePort);
    this.label = opts.label ?? this.remoteAddress;
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME;
    this.streamBufferLimit = opts.streamBufferLimit ?? 1024;
    this.maxServedRequests = opts.maxServedRequests ?? Number.POSITIVE_INFINITY;
    this.maxServedStreams = opts.maxServedStreams ?? Number.POSITIVE_INFINITY;
    this.maxResponseBytes = opts.maxResponseBytes ?? MAX_RESPONSE_BYTES;
    this.decoder = opts.decoder ?? new FrameDecoder(this.maxFrameBytes);
    this.decoder.maxFrameBytes = this.maxFrameBytes;
    socket.setNoDelay?.(true);
    socket.setKeepAlive?.(true, 15_000);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err) => {
      this.socketError = err.message;
    });
    socket.on("end", () => this.shutdown(this.socketError ?? `${this.label} closed the connection`));
    socket.on("close", () => {
      if (this.lingerTimer) clearTimeout(this.lingerTimer);
      this.shutdown(this.socketError ?? `${this.label} closed the connection`);
    });
    socket.on("drain", () => this.onSocketDrain());
    for (const f of opts.initialFrames ?? []) {
      if (this.closedError) break;
      this.dispatch(f);
    }
    if (socket.destroyed) this.shutdown(this.socketError ?? `${this.label} closed the connection`);
    else if (this.decoder.pendingBytes > 0) this.onData(Buffer.alloc(0));
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  /** Why the connection closed (null while open). */
  get closeError(): ConnectionClosedError | null {
    return this.closedError;
  }

  /** Bytes queued for the socket and not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.outBytes + (this.socket.destroyed ? 0 : this.socket.writableLength);
  }

  /** Requests sent and not yet answered. */
  get pendingRequests(): number {
    return this.pending.size;
  }

  /** Starts serving requests, notifies and streams from the other side (messages that came earlier included). */
  serve(handlers: Handlers): void {
    this.handlers = handlers;
    const backlog = this.backlog;
    this.backlog = [];
    for (const m of backlog) {
      if (this.closedError) break;
      this.dispatch(m);
    }
  }

  request(method: string, params: unknown, opts: RequestOptions = {}): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const p: Pending = { resolve, reject, timer: undefined };
      const ms = opts.timeoutMs;
      if (ms !== undefined && Number.isFinite(ms)) {
        p.timer = setTimeout(
          () => {
            if (this.pending.delete(id))
              reject(new WireTimeoutError(`${method} to ${this.label} got no answer within ${ms} ms`));
          },
          Math.max(0, ms),
        );
      }
      this.pending.set(id, p);
      try {
        this.send([REQ, id, method, params]);
      } catch (err) {
        this.pending.delete(id);
        if (p.timer) clearTimeout(p.timer);
        reject(err);
      }
    });
  }

  /** One-way message; silently dropped when the connection is closed. Throws when params cannot be encoded. */
  notify(method: string, params: unknown): void {
    this.send([NOTIFY, method, params]);
  }

  openStream<T = unknown>(method: string, params: unknown, opts: StreamOptions = {}): ClientStream<T> {
    const credit = Math.max(1, Math.floor(opts.credit ?? 64));
    const sid = this.nextId++;
    const s = new ClientStreamImpl(this, sid, credit);
    if (this.closedError) {
      s.finish(this.closedError);
      return s as ClientStream<T>;
    }
    this.clientStreams.set(sid, s);
    try {
      this.send([S_OPEN, sid, method, params, credit]);
    } catch (err) {
      this.clientStreams.delete(sid);
      s.finish(err as Error);
    }
    return s as ClientStream<T>;
  }

  /** Closes the connection: pending requests and streams fail with ConnectionClosedError, queued writes go out. */
  close(reason = "closed by this side"): void {
    this.shutdown(reason);
  }

  /** Sends an error frame ({code, message}) and closes; the other side reports it as the close reason. */
  closeWithError(code: string, message: string): void {
    if (this.closedError) return;
    try {
      this.send([NOTIFY, ERROR_FRAME_METHOD, { code, message }]);
    } catch {
      // nothing more to say
    }
    this.shutdown(`${code}: ${message}`, code);
  }

  /** Called once with the close reason (immediately when already closed). */
  onClose(cb: (err: ConnectionClosedError) => void): void {
    if (this.closedError) cb(this.closedError);
    else this.closeCbs.push(cb);
  }

  /** Called whenever the socket drains after a write was refused (bufferedBytes fell back). */
  onDrain(cb: () => void): void {
    this.drainCbs.push(cb);
  }

  // ---- Sending ------------------------------------------------------------------------------------------

  /** @internal Queues one envelope; writes happen once per tick, merged. */
  send(envelope: unknown[]): void {
    if (this.closedError) return;
    const body = encodeBody(envelope);
    if (body.length > this.maxFrameBytes)
      throw new FrameError(
        "frame_too_large",
        `message of ${body.length} bytes exceeds the frame limit of ${this.maxFrameBytes} bytes`,
      );
    this.enqueue(body);
  }

  /** Queues one encoded envelope. */
  private enqueue(body: Buffer): void {
    this.out.push(body);
    this.outBytes += body.length + 4;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.out.length === 0 || this.socket.destroyed) return;
    if (this.blocked && !this.closedError) return; // resumes on 'drain'
    const bodies = this.out;
    const total = this.outBytes;
    this.out = [];
    this.outBytes = 0;
    let ok: boolean;
    if (total <= CONCAT_LIMIT) {
      const buf = Buffer.allocUnsafe(total);
      let pos = 0;
      for (const b of bodies) {
        buf.writeUInt32BE(b.length, pos);
        b.copy(buf, pos + 4);
        pos += 4 + b.length;
      }
      ok = this.socket.write(buf);
    } else {
      this.socket.cork();
      ok = true;
      let small: Buffer[] = [];
      let smallBytes = 0;
      const writeSmall = () => {
        if (small.length === 0) return;
        const buf = Buffer.allocUnsafe(smallBytes);
        let pos = 0;
        for (const b of small) {
          buf.writeUInt32BE(b.length, pos);
          b.copy(buf, pos + 4);
          pos += 4 + b.length;
        }
        ok = this.socket.write(buf) && ok;
        small = [];
        smallBytes = 0;
      };
      for (const b of bodies) {
        if (b.length >= 64 * 1024) {
          writeSmall();
          const h = Buffer.allocUnsafe(4);
          h.writeUInt32BE(b.length, 0);
          ok = this.socket.write(h) && ok;
          ok = this.socket.write(b) && ok;
        } else {
          small.push(b);
          smallBytes += 4 + b.length;
          if (smallBytes >= CONCAT_LIMIT) writeSmall();
        }
      }
      writeSmall();
      this.socket.uncork();
    }
    if (!ok) this.blocked = true;
  }

  private onSocketDrain(): void {
    this.blocked = false;
    if (this.out.length > 0) this.flush();
    if (!this.blocked) for (const cb of this.drainCbs) cb();
  }

  // ---- Receiving ----------------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.closedError) return; // lingering: read and discard until the other side closes
    let frames: unknown[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      const e = err as FrameError;
      this.closeWithError(e.code ?? "frame_undecodable", e.message);
      return;
    }
    this.dispatchAll(frames);
  }

  /** Dispatches frames in order; once reading is paused (see maxServedRequests) the rest wait, still in order. */
  private dispatchAll(frames: unknown[]): void {
    for (let i = 0; i < frames.length; i++) {
      if (this.closedError) return;
      if (this.heldFrames) {
        for (let k = i; k < frames.length; k++) this.heldFrames.push(frames[k]);
        return;
      }
      this.dispatch(frames[i]);
    }
  }

  /** One served request was answered: read again once half of the allowed ones are. */
  private requestDone(): void {
    this.served--;
    if (!this.heldFrames || this.served > this.maxServedRequests / 2 || this.closedError) return;
    const held = this.heldFrames;
    this.heldFrames = null;
    this.socket.resume();
    this.dispatchAll(held);
  }

  private dispatch(m: unknown): void {
    if (!Array.isArray(m) || typeof m[0] !== "number") {
      this.closeWithError("bad_envelope", "received a message that is not a Berth envelope");
      return;
    }
    switch (m[0]) {
      case REQ:
      case S_OPEN:
        if (!this.handlers) return this.hold(m);
        if (m[0] === REQ) this.serveRequest(m[1] as number, String(m[2]), m[3]);
        else this.serveStream(m[1] as number, String(m[2]), m[3], Number(m[4]));
        return;
      case NOTIFY: {
        const method = String(m[1]);
        if (method === ERROR_FRAME_METHOD) {
          const e = (m[2] ?? {}) as Partial<WireErrorBody>;
          const code = typeof e.code === "string" ? e.code : "error";
          this.shutdown(`${this.label} reported ${code}: ${String(e.message ?? "")}`, code);
          return;
        }
        if (!this.handlers) return this.hold(m);
        try {
          this.handlers.notify?.(method, m[2], this);
        } catch {
          // a notify has nobody to answer
        }
        return;
      }
      case RES_OK:
      case RES_ERR: {
        const id = m[1] as number;
        const p = this.pending.get(id);
        if (!p) return; // timed out already
        this.pending.delete(id);
        if (p.timer) clearTimeout(p.timer);
        if (m[0] === RES_OK) p.resolve(m[2]);
        else p.reject(toRemoteError(m[2]));
        return;
      }
      case RES_PART:
        this.receivePart(m[1] as number, m[2], m[3] === true);
        return;
      case S_ITEM:
        this.clientStreams.get(m[1] as number)?.deliver(m[2]);
        return;
      case S_END: {
        const s = this.clientStreams.get(m[1] as number);
        if (!s) return;
        this.clientStreams.delete(m[1] as number);
        s.finish(m[2] == null ? undefined : toRemoteError(m[2]));
        return;
      }
      case S_CREDIT:
        this.sinks.get(m[1] as number)?.grant(Number(m[2]) || 0);
        return;
      case S_CANCEL: {
        const sink = this.sinks.get(m[1] as number);
        if (!sink) return;
        this.sinks.delete(m[1] as number);
        sink.terminate();
        return;
      }
      default:
        this.closeWithError("bad_envelope", `unknown envelope kind ${m[0]}`);
    }
  }

  private hold(m: unknown[]): void {
    if (this.backlog.length < BACKLOG_LIMIT) {
      this.backlog.push(m);
      return;
    }
    // Nobody serves this connection: refuse instead of holding without bound.
    if (m[0] === REQ)
      this.send([RES_ERR, m[1], { code: "unknown_method", message: "this endpoint serves no requests" }]);
    else if (m[0] === S_OPEN)
      this.send([S_END, m[1], { code: "unknown_method", message: "this endpoint serves no streams" }]);
  }

  private serveRequest(id: number, method: string, params: unknown): void {
    const h = this.handlers?.request;
    if (!h) {
      this.respondError(id, { code: "unknown_method", message: `unknown method "${method}"` });
      return;
    }
    let r: unknown;
    try {
      r = h(method, params, this);
    } catch (err) {
      this.respondError(id, errorBody(err));
      return;
    }
    if (r !== null && typeof r === "object" && typeof (r as PromiseLike<unknown>).then === "function") {
      if (++this.served >= this.maxServedRequests && !this.heldFrames) {
        this.heldFrames = [];
        this.socket.pause();
      }
      (r as PromiseLike<unknown>).then(
        (v) => {
          this.respond(id, v);
          this.requestDone();
        },
        (err) => {
          this.respondError(id, errorBody(err));
          this.requestDone();
        },
      );
    } else {
      this.respond(id, r);
    }
  }

  private respond(id: number, result: unknown): void {
    if (this.closedError) return;
    let body: Buffer;
    try {
      body = encodeBody([RES_OK, id, result]);
    } catch (err) {
      this.respondError(id, {
        code: "internal",
        message: `cannot encode the result: ${(err as Error).message}`,
      });
      return;
    }
    if (body.length <= this.maxFrameBytes) return this.enqueue(body);
    if (body.length > this.maxResponseBytes) {
      this.respondError(id, {
        code: "too_large",
        message: `the result of ${body.length} bytes exceeds the limit of ${this.maxResponseBytes} bytes`,
      });
      return;
    }
    // Too large for one frame: in parts, queued back to back (kind 9 headers take far less than 64 bytes).
    const step = this.maxFrameBytes - 64;
    for (let at = 0; at < body.length; at += step) {
      const end = Math.min(body.length, at + step);
      this.send([RES_PART, id, body.subarray(at, end), end === body.length]);
    }
  }

  /** One part of a response too large for a frame; the last one completes it. */
  private receivePart(id: number, bytes: unknown, last: boolean): void {
    const p = this.pending.get(id);
    const parts = this.parts.get(id) ?? [];
    this.parts.delete(id);
    for (const b of parts) this.partBytes -= b.length;
    if (!p || !Buffer.isBuffer(bytes)) return; // timed out (or not ours): drop what came
    parts.push(bytes);
    const size = parts.reduce((n, b) => n + b.length, 0);
    if (this.partBytes + size > this.maxResponseBytes) {
      this.pending.delete(id);
      if (p.timer) clearTimeout(p.timer);
      p.reject(
        new RemoteError(
          "too_large",
          `the answer passed the limit of ${this.maxResponseBytes} bytes; dropped`,
        ),
      );
      return;
    }
    if (!last) {
      this.parts.set(id, parts);
      this.partBytes += size;
      return;
    }
    let envelope: unknown;
    try {
      envelope = decodeBody(Buffer.concat(parts, size));
    } catch (err) {
      this.closeWithError("frame_undecodable", (err as Error).message);
      return;
    }
    const m = envelope as unknown[];
    if (!Array.isArray(m) || (m[0] !== RES_OK && m[0] !== RES_ERR) || m[1] !== id) {
      this.closeWithError("bad_envelope", "the parts of a response joined into something else");
      return;
    }
    this.dispatch(m);
  }

  private respondError(id: number, body: WireErrorBody): void {
    try {
      this.send([RES_ERR, id, body]);
    } catch {
      this.send([RES_ERR, id, { code: body.code, message: body.message }]);
    }
  }

  private serveStream(sid: number, method: string, params: unknown, credit: number): void {
    if (this.sinks.size >= this.maxServedStreams) {
      this.send([
        S_END,
        sid,
        {
          code: "too_many_streams",
          message: `this connection already has ${this.sinks.size} open streams, the most a node serves on one`,
        },
      ]);
      return;
    }
    const sink = new SinkImpl(
      this,
      sid,
      Number.isFinite(credit) ? Math.max(0, credit) : 0,
      this.streamBufferLimit,
    );
    this.sinks.set(sid, sink);
    const h = this.handlers?.stream;
    if (!h) {
      sink.end({ code: "unknown_method", message: `unknown stream "${method}"` });
      return;
    }
    try {
      h(method, params, sink, this);
    } catch (err) {
      sink.end(errorBody(err));
    }
  }

  /** @internal */
  forgetSink(sid: number): void {
    this.sinks.delete(sid);
  }

  /** @internal */
  forgetClientStream(sid: number): void {
    this.clientStreams.delete(sid);
  }

  // ---- Closing ------------------------------------------------------------------------------------------

  private shutdown(reason: string, reasonCode?: string): void {
    if (this.closedError) return;
    const err = new ConnectionClosedError(`connection to ${this.label} closed: ${reason}`, reasonCode);
    this.closedError = err;
    // Write what is queued (responses, an error frame), then half-close; keep reading (and discarding) so the
    // other side gets our last frames rather than a reset, and destroy the socket if it does not close.
    if (!this.socket.destroyed) {
      this.flush();
      this.socket.end();
      this.lingerTimer = setTimeout(() => this.socket.destroy(), LINGER_MS);
      this.lingerTimer.unref?.();
    }
    this.out = [];
    this.outBytes = 0;
    this.parts.clear();
    this.partBytes = 0;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
    const streams = [...this.clientStreams.values()];
    this.clientStreams.clear();
    for (const s of streams) s.finish(err);
    const sinks = [...this.sinks.values()];
    this.sinks.clear();
    for (const s of sinks) s.terminate();
    this.backlog = [];
    for (const cb of this.closeCbs.splice(0)) {
      try {
        cb(err);
      } catch {
        // a close callback must not break the others
      }
    }
  }
}

class SinkImpl implements StreamSink {
  private credit: number;
  private buffer: unknown[] = [];
  private isClosed = false;
  /** The end envelope's error (null: normal end) waiting behind buffered items; undefined: not ended. */
  private pendingEnd: WireErrorBody | null | undefined = undefined;
  private closeCbs: (() => void)[] = [];
  private drainCbs: (() => void)[] = [];

  constructor(
    private readonly conn: Connection,
    private readonly sid: number,
    credit: number,
    private readonly limit: number,
  ) {
    this.credit = credit;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get wanted(): number {
    return this.buffer.length > 0 ? 0 : this.credit;
  }

  push(item: unknown): void {
    if (this.isClosed) return;
    if (this.credit > 0 && this.buffer.length === 0) {
      this.credit--;
      this.conn.send([S_ITEM, this.sid, item]);
      return;
    }
    this.buffer.push(item);
    if (this.buffer.length > this.limit) {
      this.buffer = [];
      this.end({
        code: "slow_consumer",
        message: `the consumer did not keep up: more than ${this.limit} items waited beyond its credit`,
      });
    }
  }

  end(error?: WireErrorBody): void {
    if (this.isClosed) return;
    this.pendingEnd = error ? { code: error.code, message: error.message, data: error.data } : null;
    this.markClosed();
    this.flushEnd();
  }

  onClose(cb: () => void): void {
    if (this.isClosed) cb();
    else this.closeCbs.push(cb);
  }

  onDrain(cb: () => void): void {
    this.drainCbs.push(cb);
  }

  /** @internal The consumer granted more credit. */
  grant(n: number): void {
    this.credit += n;
    while (this.credit > 0 && this.buffer.length > 0) {
      this.credit--;
      this.conn.send([S_ITEM, this.sid, this.buffer.shift()]);
    }
    if (this.pendingEnd !== undefined) {
      this.flushEnd();
      return;
    }
    if (this.credit > 0 && !this.isClosed) for (const cb of this.drainCbs) cb();
  }

  /** @internal Cancelled by the consumer or the connection closed: drop everything. */
  terminate(): void {
    this.buffer = [];
    this.pendingEnd = undefined;
    this.markClosed();
  }

  private flushEnd(): void {
    if (this.buffer.length > 0 || this.pendingEnd === undefined) return;
    const body = this.pendingEnd;
    this.pendingEnd = undefined;
    this.conn.forgetSink(this.sid);
    try {
      this.conn.send([S_END, this.sid, body]);
    } catch {
      this.conn.send([S_END, this.sid, body && { code: body.code, message: body.message }]);
    }
  }

  private markClosed(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.drainCbs = [];
    for (const cb of this.closeCbs.splice(0)) {
      try {
        cb();
      } catch {
        // keep closing
      }
    }
  }
}

class ClientStreamImpl implements ClientStream {
  private queue: unknown[] = [];
  private waiters: { resolve(r: IteratorResult<unknown>): void; reject(e: Error): void }[] = [];
  private done = false;
  private error: Error | undefined;
  private errorReported = false;
  private consumedSinceGrant = 0;
  private endCbs: ((e?: Error) => void)[] = [];

  constructor(
    private readonly conn: Connection,
    private readonly sid: number,
    private readonly window: number,
  ) {}

  get ended(): boolean {
    return this.done;
  }

  onEnd(cb: (error?: Error) => void): void {
    if (this.done) cb(this.error);
    else this.endCbs.push(cb);
  }

  close(): void {
    if (this.done) return;
    this.conn.forgetClientStream(this.sid);
    this.conn.send([S_CANCEL, this.sid]);
    this.queue = [];
    this.errorReported = true;
    this.finish(undefined);
  }

  /** @internal */
  deliver(item: unknown): void {
    if (this.done) return;
    const w = this.waiters.shift();
    if (w) {
      this.consumed();
      w.resolve({ value: item, done: false });
    } else {
      this.queue.push(item);
    }
  }

  /** @internal The stream ended (error: remote error or connection loss). */
  finish(error: Error | undefined): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    for (const w of this.waiters.splice(0)) {
      if (error && !this.errorReported) {
        this.errorReported = true;
        w.reject(error);
      } else w.resolve({ value: undefined, done: true });
    }
    for (const cb of this.endCbs.splice(0)) {
      try {
        cb(error);
      } catch {
        // keep going
      }
    }
  }

  private consumed(): void {
    this.consumedSinceGrant++;
    if (!this.done && this.consumedSinceGrant >= Math.max(1, Math.floor(this.window / 2))) {
      this.conn.send([S_CREDIT, this.sid, this.consumedSinceGrant]);
      this.consumedSinceGrant = 0;
    }
  }

  next(): Promise<IteratorResult<unknown>> {
    if (this.queue.length > 0) {
      const value = this.queue.shift();
      this.consumed();
      return Promise.resolve({ value, done: false });
    }
    if (this.done) {
      if (this.error && !this.errorReported) {
        this.errorReported = true;
        return Promise.reject(this.error);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  [Symbol.asyncIterator](): AsyncIterator<unknown> {
    return {
      next: () => this.next(),
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

function toRemoteError(v: unknown): RemoteError {
  const e = (v ?? {}) as Partial<WireErrorBody>;
  return new RemoteError(
    typeof e.code === "string" ? e.code : "internal",
    typeof e.message === "string" ? e.message : "unknown error",
    e.data,
  );
}

/**
 * How a thrown value travels: an Error (or a plain {code, message} object) with a string `code` keeps it, its
 * message and `data`; anything else is "internal".
 */
export function errorBody(err: unknown): WireErrorBody {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const data = (err as { data?: unknown }).data;
    if (typeof code === "string" && code !== "") {
      return data === undefined ? { code, message: err.message } : { code, message: err.message, data };
    }
    return { code: "internal", message: err.message };
  }
  // A plain object shaped like an error body (thrown by code that does not build Error instances) keeps its fields.
  if (err !== null && typeof err === "object") {
    const { code, message, data } = err as { code?: unknown; message?: unknown; data?: unknown };
    if (typeof code === "string" && code !== "" && typeof message === "string")
      return data === undefined ? { code, message } : { code, message, data };
  }
  return { code: "internal", message: String(err) };
}

export function formatAddress(host: string | undefined, port: number | undefined): string {
  if (!host) return "(unknown)";
  return joinHostPort(host, String(port));
}
