// HTTP/1.1 on Bun's TCP sockets, for the compiled binary: Bun's node:http layer (IncomingMessage and
// ServerResponse streams) costs several times what the handlers do per request. This is the small part of
// Go's net/http server etcd's clients rely on: keep-alive and pipelining (answered in order), Content-Length
// and chunked request bodies, Expect: 100-continue, chunked answers when the handler sets no Content-Length,
// "Connection: close" after Go's extra headers, and Go's 400/431 answers to requests it cannot parse. The
// handlers write the headers in wire order; nothing here reorders them or adds any but the framing ones.
import { STATUS_CODES } from "node:http";
import type { Socket as NodeSocket } from "node:net";
import { Duplex } from "node:stream";
import type { TCPSocketListener } from "bun";
import { isBerthUpgrade, SWITCHING_PROTOCOLS, UPGRADE_UNAUTHORIZED } from "../wire/http-upgrade.ts";
import type { ConnectionGate, ConnectionSlot } from "../wire/server.ts";
import { verifiedCertName } from "./client-cert.ts";
import { HeadReader, type RequestHead } from "./head.ts";
import { InFlightBytes } from "./in-flight.ts";
import { MAX_FORM_BYTES } from "./params.ts";
import type { BodyResult, HttpRequest, HttpResponse, Upgrader } from "./types.ts";

/** Go's DefaultMaxHeaderBytes plus the slack its reader allows. */
const MAX_HEADER_BYTES = (1 << 20) + 4096;
/** Bodies are buffered up to the largest limit any handler reads with (Go's maxFormSize). */
const MAX_BODY_BYTES = MAX_FORM_BYTES;
/**
 * Pipelined input held while a request is being answered (a long poll can take minutes): past this the socket is
 * not read until the answer is out, as Go's server does not read the next request while a handler runs.
 */
const MAX_PIPELINED_BYTES = MAX_HEADER_BYTES;

const BAD_REQUEST =
  "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request";
/** Sent to a connection over the node's client connection limit, which is then closed. */
export const TOO_MANY_CONNECTIONS =
  "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n503 Service Unavailable: too many connections";
/** Sent when the request data all connections hold would pass the server's budget (InFlightBytes). */
const OVERLOADED =
  "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\n\r\n503 Service Unavailable: too much request data in flight";
/** Sent when a request head or body does not arrive by its deadline. */
const REQUEST_TIMEOUT =
  "HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n408 Request Timeout";
const HEADERS_TOO_LARGE =
  "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large";

type Handler = (req: HttpRequest, res: HttpResponse) => void;

/** HTTPS: Bun terminates TLS on the listener; the bytes this file parses are the same. */
export interface HttpTlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
  ca?: string | Buffer;
  requestCert?: boolean;
}

export interface RawHttpApi {
  address: { host: string; port: number };
  /** Serves a node:net socket accepted elsewhere (the client port's HTTP requests). */
  serve(socket: NodeSocket): void;
  close(): Promise<void>;
}

/** What a connection needs of its socket: Bun's own, or a node:net one (NodeSocketTransport). */
interface RawSocket {
  write(data: string | Buffer): number;
  end(data?: string): unknown;
  pause(): void;
  resume(): void;
  /** Closes the socket after this many idle seconds (0: never). */
  timeout(seconds: number): void;
  readonly remoteAddress: string;
}

export function startRawHttp(
  listenAt: { host: string; port: number } | null,
  handle: Handler,
  log: (l: string) => void,
  tls: HttpTlsOptions | null = null,
  gate: ConnectionGate | null = null,
  upgrader: Upgrader | null = null,
): Promise<RawHttpApi> {
  const conns = new Set<Conn>();
  const inFlight = new InFlightBytes(MAX_IN_FLIGHT_BYTES);
  const serve = (socket: NodeSocket) => {
    const c = new Conn(new NodeSocketTransport(socket), handle, log, null, inFlight, null, () =>
      verifiedCertName(socket),
    );
    conns.add(c);
    socket.on("data", (chunk: Buffer) => c.onData(chunk));
    socket.on("drain", () => c.onDrain());
    socket.on("end", () => c.onEnd());
    socket.on("timeout", () => socket.destroy());
    socket.on("error", (e) => log(`http: connection error: ${e.message}`));
    socket.on("close", () => {
      conns.delete(c);
      c.onClose();
    });
    socket.resume();
  };
  const stopAll = () => {
    // Long polls never end by themselves; dropping their connections also frees their watchers.
    for (const c of conns) c.destroy();
    conns.clear();
  };
  if (listenAt === null)
    return Promise.resolve({ address: { host: "", port: 0 }, serve, close: async () => stopAll() });
  const listener: TCPSocketListener<Conn | undefined> = Bun.listen<Conn | undefined>({
    hostname: listenAt.host,
    port: listenAt.port,
    ...(tls && {
      tls: {
        cert: tls.cert,
        key: tls.key,
        ca: tls.ca,
        requestCert: tls.requestCert === true,
        rejectUnauthorized: tls.requestCert === true,
      },
    }),
    allowHalfOpen: true,
    data: undefined,
    socket: {
      open(socket) {
        let slot: ConnectionSlot | null = null;
        if (gate) {
          slot = gate.acquire(`${socket.remoteAddress}`, () => socket.data?.destroy());
          if (!slot) {
            socket.end(TOO_MANY_CONNECTIONS);
            return;
          }
        }
        socket.setNoDelay(true);
        const c = new Conn(socket, handle, log, slot, inFlight, upgrader, () => verifiedCertName(socket));
        socket.data = c;
        conns.add(c);
      },
      data(socket, chunk) {
        socket.data?.onData(chunk);
      },
      drain(socket) {
        socket.data?.onDrain();
      },
      end(socket) {
        socket.data?.onEnd();
      },
      close(socket) {
        const c = socket.data;
        if (c) {
          conns.delete(c);
          c.onClose();
          socket.data = undefined;
        }
      },
      error(socket, e) {
        log(`http: connection error: ${e.message}`);
        socket.data?.onClose();
      },
    },
  });
  return Promise.resolve({
    address: { host: listener.hostname, port: listener.port },
    serve,
    close: async () => {
      listener.stop(true);
      stopAll();
    },
  });
}

/** A node:net socket as a RawSocket: writes are refused (0) while it waits for 'drain', as Bun's are. */
class NodeSocketTransport implements RawSocket {
  constructor(private readonly s: NodeSocket) {}
  write(data: string | Buffer): number {
    if (this.s.writableNeedDrain || this.s.destroyed) return 0;
    this.s.write(data);
    return typeof data === "string" ? Buffer.byteLength(data) : data.length;
  }
  end(data?: string): void {
    if (data === undefined) this.s.end();
    else this.s.end(data);
  }
  pause(): void {
    this.s.pause();
  }
  resume(): void {
    this.s.resume();
  }
  timeout(seconds: number): void {
    this.s.setTimeout(seconds * 1000);
  }
  get remoteAddress(): string {
    return this.s.remoteAddress ?? "";
  }
}

/** etcd's HTTP server reads a request within 5 minutes (Go's ReadTimeout); ours also bounds idle keep-alives. */
const IDLE_SECONDS = 300;
/**
 * A request head must be complete this long after its first byte, and its body this long after the head (Go's
 * ReadHeaderTimeout and ReadTimeout): the idle timeout alone restarts with every byte, so a client trickling a
 * byte at a time held its connection (and its memory) for ever. Past the deadline: 408 and close.
 */
export const HEAD_DEADLINE_MS = 10_000;
export const BODY_DEADLINE_MS = 60_000;
/**
 * Request bytes held at once by all connections of the server: heads and bodies not yet complete, pipelined input,
 * and bodies of requests being answered. Each body may be up to MAX_BODY_BYTES (10 MiB); without this budget a
 * few thousand unfinished bodies took the node's memory. A connection whose input would pass it gets a 503.
 */
export const MAX_IN_FLIGHT_BYTES = 64 << 20;

enum State {
  Head,
  Body,
  Chunked,
  /** Input is ignored: the connection closes once the current answer is out. */
  Drop,
  /** Switching to the msgpack protocol: input waits for the stream it is handed to (Conn.tunnel). */
  Upgrading,
}

class Conn {
  private input: Buffer | null = null;
  /** Input received while a request is answered, joined once reading resumes. */
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private readonly head = new HeadReader(MAX_HEADER_BYTES);
  /** Bytes of request data this connection counts against the server's budget. */
  private reserved = 0;
  /** The deadline of the head or body being read (null: none is being read). */
  private readTimer: ReturnType<typeof setTimeout> | null = null;
  private state = State.Head;
  private busy = false;
  private closed = false;
  private peerEnded = false;
  private out: Buffer[] = [];
  /** Bytes in `out`. */
  outBytes = 0;
  private current: Exchange | null = null;
  // The request being read.
  private pending: Exchange | null = null;
  private remaining = 0;
  private chunks: Buffer[] = [];
  private size = 0;
  private chunkTrailers = false;

  /** After a switch to the msgpack protocol: the stream the connection's bytes now flow through. */
  private tunnel: Duplex | null = null;
  /** A tunnel write waiting for the socket to take queued bytes. */
  private drained: (() => void) | null = null;

  constructor(
    private readonly socket: RawSocket,
    private readonly handle: Handler,
    private readonly log: (l: string) => void,
    /** Its place under the listener's connection limit: idle (may make room for a newcomer) unless answering. */
    private readonly slot: ConnectionSlot | null,
    private readonly inFlight: InFlightBytes,
    /** Takes over requests to switch to the msgpack protocol (the HTTP listener only). */
    private readonly upgrader: Upgrader | null,
    readonly certName: () => string | null,
  ) {
    // Between requests a connection may sit for this long at most, so idle clients cannot hold file descriptors
    // forever (a request being read has its own deadline).
    socket.timeout(IDLE_SECONDS);
    slot?.idle(true);
  }

  onData(chunk: Buffer): void {
    if (this.tunnel !== null) {
      if (!this.tunnel.push(chunk)) {
        this.readPaused = true;
        this.socket.pause();
      }
      return;
    }
    if (this.closed || this.state === State.Drop) return;
    if (this.busy) {
      this.queued.push(chunk);
      this.queuedBytes += chunk.length;
      if (this.queuedBytes > MAX_PIPELINED_BYTES && !this.readPaused) {
        this.readPaused = true;
        this.socket.pause();
      }
    } else {
      this.input =
        this.input === null || this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
      this.pump();
    }
    this.account();
  }

  /** Brings this connection's share of the in-flight budget to what it holds now; over the budget: 503, close. */
  private account(): void {
    if (this.closed) return;
    const held =
      this.queuedBytes +
      (this.input?.length ?? 0) +
      this.head.bufferedBytes +
      this.size +
      (this.current?.body.length ?? 0);
    if (held > this.reserved && !this.inFlight.take(held - this.reserved)) {
      this.log(
        `refused a request from ${this.socket.remoteAddress}: the server holds ${this.inFlight.used} bytes of unfinished requests, its limit is ${this.inFlight.limit}`,
      );
      this.fail(OVERLOADED);
      this.releaseBudget();
      return;
    }
    if (held < this.reserved) this.inFlight.give(this.reserved - held);
    this.reserved = held;
  }

  private releaseBudget(): void {
    this.inFlight.give(this.reserved);
    this.reserved = 0;
  }

  /** Starts (or replaces) the deadline of what is being read; past it: 408 and close. */
  private deadline(ms: number | null): void {
    if (this.readTimer !== null) clearTimeout(this.readTimer);
    this.readTimer = null;
    if (ms === null || this.closed) return;
    this.readTimer = setTimeout(() => {
      this.readTimer = null;
      if (this.closed || this.busy || this.state === State.Drop) return;
      this.fail(REQUEST_TIMEOUT);
      this.account();
    }, ms);
  }

  onDrain(): void {
    while (this.out.length > 0 && !this.closed) {
      const b = this.out[0] as Buffer;
      const n = this.socket.write(b);
      if (n < b.length) {
        if (n > 0) {
          this.out[0] = b.subarray(n);
          this.outBytes -= n;
        }
        return;
      }
      this.out.shift();
      this.outBytes -= b.length;
    }
    if (this.out.length === 0 && this.closeWhenFlushed) this.socket.end();
    if (this.out.length === 0 && this.drained !== null) {
      const done = this.drained;
      this.drained = null;
      done();
    }
  }

  /** The client closed its side: finish what is in hand (a long poll ends now), then close. */
  onEnd(): void {
    this.peerEnded = true;
    if (this.tunnel !== null) {
      this.tunnel.push(null);
      return;
    }
    const cur = this.current;
    if (cur === null) this.destroy();
    else if (cur.res.streaming) this.destroy();
  }

  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.deadline(null);
    this.slot?.release();
    this.releaseBudget();
    this.queued = [];
    this.queuedBytes = 0;
    this.out = [];
    this.outBytes = 0;
    const cur = this.current;
    this.current = null;
    cur?.res.closed();
    if (this.tunnel !== null && !this.tunnel.destroyed) this.tunnel.destroy();
  }

  destroy(): void {
    if (!this.closed) this.socket.end();
    this.onClose();
  }

  private closeWhenFlushed = false;
  /** Reading stopped while a request is answered and too much pipelined input waits (MAX_PIPELINED_BYTES). */
  private readPaused = false;

  /** Sends bytes in order, queueing what the socket does not take now. */
  send(data: string | Buffer): void {
    if (this.closed) return;
    if (this.out.length > 0) {
      const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
      this.out.push(buf);
      this.outBytes += buf.length;
      return;
    }
    const n = this.socket.write(data);
    const len = typeof data === "string" ? Buffer.byteLength(data) : data.length;
    if (n < len) {
      const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
      const rest = buf.subarray(Math.max(n, 0));
      this.out.push(rest);
      this.outBytes += rest.length;
    }
  }

  private fail(answer: string): void {
    this.state = State.Drop;
    this.input = null;
    this.queued = [];
    this.queuedBytes = 0;
    this.chunks = [];
    this.size = 0;
    this.deadline(null);
    this.send(answer);
    this.endAfterFlush();
  }

  private endAfterFlush(): void {
    if (this.out.length === 0) this.socket.end();
    else this.closeWhenFlushed = true;
  }

  /** Called by the exchange when its answer is complete. */
  done(ex: Exchange): void {
    if (this.current !== ex) return;
    this.current = null;
    this.busy = false;
    this.socket.timeout(IDLE_SECONDS);
    if (ex.closeAfter || this.peerEnded) {
      this.state = State.Drop;
      this.input = null;
      this.queued = [];
      this.queuedBytes = 0;
      this.account();
      this.endAfterFlush();
      return;
    }
    this.slot?.idle(true);
    if (this.readPaused) {
      this.readPaused = false;
      this.socket.resume();
    }
    this.account();
    if ((this.input !== null && this.input.length > 0) || this.queuedBytes > 0)
      queueMicrotask(() => {
        this.pump();
        this.account();
      });
  }

  private pump(): void {
    if (this.busy || this.closed) return;
    if (this.queuedBytes > 0) {
      const parts = this.input === null ? this.queued : [this.input, ...this.queued];
      this.input = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
      this.queued = [];
      this.queuedBytes = 0;
    }
    while (!this.busy && !this.closed && this.input !== null && this.input.length > 0) {
      if (this.state === State.Head) {
        if (!this.readHead()) return;
      } else if (this.state === State.Body) {
        const input = this.input;
        const take = Math.min(this.remaining, input.length);
        this.addBody(input.subarray(0, take));
        this.input = take === input.length ? null : input.subarray(take);
        this.remaining -= take;
        if (this.state !== State.Body) return;
        if (this.remaining === 0) this.dispatch();
      } else if (this.state === State.Chunked) {
        if (!this.readChunk()) return;
      } else return;
    }
  }

  private addBody(b: Buffer): void {
    if (b.length === 0) return;
    this.size += b.length;
    if (this.size > MAX_BODY_BYTES) {
      // Given up without buffering the rest; the connection cannot be reused.
      const ex = this.pending as Exchange;
      ex.tooLarge = true;
      ex.closeAfter = true;
      this.chunks = [];
      this.dispatch();
      this.state = State.Drop;
      this.input = null;
      return;
    }
    this.chunks.push(b);
  }

  /** Reads request head input; false when more input is needed (or the connection failed). */
  private readHead(): boolean {
    const r = this.head.push(this.input as Buffer);
    this.input = null;
    if (r.kind === "more") {
      if (this.readTimer === null && this.head.bufferedBytes > 0) this.deadline(HEAD_DEADLINE_MS);
      return false;
    }
    if (r.kind === "bad") {
      this.fail(r.status === 431 ? HEADERS_TOO_LARGE : BAD_REQUEST);
      return false;
    }
    this.input = r.rest;
    return this.startRequest(r.head);
  }

  /** Sets up the exchange for a parsed head: dispatched now, or once its body is read. */
  private startRequest({ method, target, http10, headers }: RequestHead): boolean {
    this.deadline(null);
    const connection = (headers.get("connection") ?? "").toLowerCase();
    const ex = new Exchange(this, method, target, headers, http10);
    if (this.upgrader !== null && !http10 && isBerthUpgrade(method, target, (n) => headers.get(n))) {
      this.upgrade(ex, this.upgrader);
      return false;
    }
    ex.closeAfter = http10 ? true : /(^|,)\s*close\s*(,|$)/.test(connection);
    ex.requestedClose = !http10 && ex.closeAfter;
    this.pending = ex;
    this.chunks = [];
    this.size = 0;

    const te = headers.get("transfer-encoding");
    const cl = headers.get("content-length");
    // Go answers 100 Continue when the handler reads the body; every handler that gets one reads it.
    if (
      !http10 &&
      (te !== undefined || (cl !== undefined && cl !== "0")) &&
      (headers.get("expect") ?? "").toLowerCase() === "100-continue"
    )
      this.send("HTTP/1.1 100 Continue\r\n\r\n");
    let bodyExpected = false;
    if (te !== undefined) {
      if (te.toLowerCase() !== "chunked") {
        this.fail(BAD_REQUEST);
        return false;
      }
      this.state = State.Chunked;
      this.remaining = -1;
      this.chunkTrailers = false;
      bodyExpected = true;
    } else if (cl !== undefined && cl !== "") {
      if (!/^\d+$/.test(cl)) {
        this.fail(BAD_REQUEST);
        return false;
      }
      const n = Number(cl);
      if (n > MAX_BODY_BYTES) {
        ex.tooLarge = true;
        ex.closeAfter = true;
        this.state = State.Drop;
        this.input = null;
        this.dispatch();
        return false;
      }
      this.remaining = n;
      this.state = n > 0 ? State.Body : State.Head;
      bodyExpected = n > 0;
    }
    if (bodyExpected) this.deadline(BODY_DEADLINE_MS);
    else this.dispatch();
    return true;
  }

  /** Answers a request to switch to the msgpack protocol: 101 and the connection handed over, or 401 and close. */
  private upgrade(ex: Exchange, upgrader: Upgrader): void {
    this.state = State.Upgrading;
    this.busy = true; // input arriving meanwhile is queued for the stream
    this.deadline(null);
    this.slot?.idle(false);
    this.socket.timeout(0);
    upgrader.caller(ex).then(
      (caller) => {
        if (this.closed) return;
        if (caller === null) return this.fail(UPGRADE_UNAUTHORIZED);
        this.send(SWITCHING_PROTOCOLS);
        upgrader.take(this.detach(), caller, this.socket.remoteAddress);
      },
      (e: Error) => {
        this.log(`http: upgrade from ${this.socket.remoteAddress} failed: ${e.message}`);
        this.destroy();
      },
    );
  }

  /** The connection's bytes as a stream, from the input already received on. */
  private detach(): Duplex {
    const conn = this;
    const socket = this.socket;
    const stream = new Duplex({
      read() {
        if (conn.readPaused) {
          conn.readPaused = false;
          socket.resume();
        }
      },
      write(chunk: Buffer, _encoding, done) {
        conn.send(chunk);
        if (conn.outBytes === 0) done();
        else conn.drained = () => done();
      },
      final(done) {
        socket.end();
        done();
      },
      destroy(err, done) {
        if (!conn.closed) conn.destroy();
        done(err);
      },
    });
    Object.assign(stream, { remoteAddress: socket.remoteAddress });
    const rest = [this.input, ...this.queued].filter((b): b is Buffer => b !== null && b.length > 0);
    this.input = null;
    this.queued = [];
    this.queuedBytes = 0;
    this.account();
    this.tunnel = stream;
    for (const b of rest) stream.push(b);
    if (this.peerEnded) stream.push(null);
    return stream;
  }

  /** One step of a chunked request body; false when more input is needed. */
  private readChunk(): boolean {
    const input = this.input as Buffer;
    const nl = input.indexOf("\r\n");
    if (this.remaining < 0 || this.chunkTrailers) {
      if (nl < 0) {
        if (input.length > 4096) this.fail(BAD_REQUEST);
        return false;
      }
      const line = input.toString("latin1", 0, nl);
      this.input = nl + 2 === input.length ? null : input.subarray(nl + 2);
      if (this.chunkTrailers) {
        if (line === "") {
          this.state = State.Head;
          this.dispatch();
        }
        return true;
      }
      const hex = (line.split(";")[0] ?? "").trim();
      if (!/^[0-9a-fA-F]{1,15}$/.test(hex)) {
        this.fail(BAD_REQUEST);
        return false;
      }
      const n = Number.parseInt(hex, 16);
      if (n === 0) this.chunkTrailers = true;
      else this.remaining = n;
      return true;
    }
    // Chunk data, then its CRLF.
    if (input.length < this.remaining + 2) {
      if (this.remaining > 0 && input.length > 0) {
        const take = Math.min(this.remaining, input.length);
        this.addBody(input.subarray(0, take));
        this.remaining -= take;
        this.input = take === input.length ? null : input.subarray(take);
        return this.state === State.Chunked && this.input !== null && this.input.length >= 2;
      }
      return false;
    }
    this.addBody(input.subarray(0, this.remaining));
    if (this.state !== State.Chunked) return false;
    if (input[this.remaining] !== 13 || input[this.remaining + 1] !== 10) {
      this.fail(BAD_REQUEST);
      return false;
    }
    const rest = this.remaining + 2;
    this.input = rest === input.length ? null : input.subarray(rest);
    this.remaining = -1;
    return true;
  }

  private dispatch(): void {
    const ex = this.pending as Exchange;
    this.pending = null;
    if (this.state === State.Body || this.state === State.Chunked) this.state = State.Head;
    ex.body = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    this.chunks = [];
    this.size = 0;
    this.busy = true;
    this.current = ex;
    this.deadline(null);
    this.slot?.idle(false);
    this.socket.timeout(0); // an answer may take long (a long poll); only idle connections time out
    try {
      this.handle(ex, ex.res);
    } catch (e) {
      this.log(`http: handler failed: ${(e as Error).message}`);
      this.destroy();
    }
  }
}

class Exchange implements HttpRequest {
  body: Buffer = Buffer.alloc(0);
  tooLarge = false;
  closeAfter = false;
  /** The client asked for Connection: close (Go then says so in the answer). */
  requestedClose = false;
  readonly res: RawResponse;

  constructor(
    readonly conn: Conn,
    readonly method: string,
    readonly url: string,
    private readonly headers: Map<string, string>,
    readonly http10: boolean,
  ) {
    this.res = new RawResponse(this);
  }

  header(name: string): string | undefined {
    return this.headers.get(name);
  }

  readBody(limit: number): Promise<BodyResult> {
    if (this.tooLarge || this.body.length > limit) return Promise.resolve({ ok: false, tooLarge: true });
    return Promise.resolve({ ok: true, body: this.body });
  }

  discard(): void {}

  clientCertName(): string | null {
    return this.conn.certName();
  }
}

class RawResponse implements HttpResponse {
  headersSent = false;
  status = 0;
  finished = false;
  /** Headers flushed ahead of a body that follows later (long polls). */
  streaming = false;
  private head = "";
  private chunked = false;
  private noBody = false;
  private headWritten = false;
  private closeFns: (() => void)[] | null = [];

  constructor(private readonly ex: Exchange) {}

  writeHead(status: number, raw: string[]): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.status = status;
    const ex = this.ex;
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "status code"}\r\n`;
    let hasLength = false;
    let hasConnection = false;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i] as string;
      const value = raw[i + 1] as string;
      head += `${name}: ${value}\r\n`;
      if (name.length === 14 && name.toLowerCase() === "content-length") hasLength = true;
      else if (name.length === 10 && name.toLowerCase() === "connection") {
        hasConnection = true;
        if (/close/i.test(value)) ex.closeAfter = true;
      }
    }
    const bodyAllowed = status >= 200 && status !== 204 && status !== 304;
    this.noBody = !bodyAllowed || ex.method === "HEAD";
    if (!hasLength && !this.noBody) {
      // HTTP/1.0 has no chunking: the end of the connection ends the body.
      if (ex.http10) ex.closeAfter = true;
      else this.chunked = true;
    }
    if (ex.requestedClose && !hasConnection) head += "Connection: close\r\n";
    if (this.chunked) head += "Transfer-Encoding: chunked\r\n";
    this.head = `${head}\r\n`;
  }

  flushHeaders(): void {
    if (!this.headersSent) this.writeHead(200, []);
    this.streaming = true;
    if (this.headWritten) return;
    this.headWritten = true;
    this.ex.conn.send(this.head);
  }

  write(chunk: string): void {
    if (this.finished) return;
    if (!this.headersSent) this.writeHead(200, []);
    let data = "";
    if (!this.headWritten) {
      this.headWritten = true;
      data = this.head;
    }
    if (!this.noBody && chunk.length > 0) {
      data += this.chunked ? `${Buffer.byteLength(chunk).toString(16)}\r\n${chunk}\r\n` : chunk;
    }
    if (data !== "") this.ex.conn.send(data);
  }

  get bufferedBytes(): number {
    return this.ex.conn.outBytes;
  }

  end(body?: Buffer | string): void {
    if (this.finished) return;
    if (!this.headersSent) this.writeHead(200, []);
    this.finished = true;
    const conn = this.ex.conn;
    const head = this.headWritten ? "" : this.head;
    this.headWritten = true;
    const len = body === undefined ? 0 : typeof body === "string" ? Buffer.byteLength(body) : body.length;
    if (this.noBody || len === 0) {
      const tail = this.chunked ? "0\r\n\r\n" : "";
      if (head + tail !== "") conn.send(head + tail);
    } else if (typeof body === "string") {
      conn.send(this.chunked ? `${head}${len.toString(16)}\r\n${body}\r\n0\r\n\r\n` : head + body);
    } else if (body !== undefined) {
      if (this.chunked)
        conn.send(
          Buffer.concat([Buffer.from(`${head}${len.toString(16)}\r\n`), body, Buffer.from("\r\n0\r\n\r\n")]),
        );
      else if (head === "") conn.send(body);
      else conn.send(Buffer.concat([Buffer.from(head, "utf8"), body]));
    }
    conn.done(this.ex);
    this.closed();
  }

  onClose(fn: () => void): void {
    if (this.closeFns === null) fn();
    else this.closeFns.push(fn);
  }

  /** The answer is complete or the client went away: run the close callbacks once. */
  closed(): void {
    const fns = this.closeFns;
    if (fns === null) return;
    this.closeFns = null;
    for (const fn of fns) {
      try {
        fn();
      } catch {
        // a callback's failure must not keep the others from running
      }
    }
  }

  destroy(): void {
    this.ex.conn.destroy();
  }
}
