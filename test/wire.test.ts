// The framed msgpack connection layer over real loopback sockets: requests, notifies, streams with credit,
// malformed input, and the handshake (secret, role, protocol version).
import { randomBytes } from "node:crypto";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { PROTOCOL_VERSION, VERSION } from "../src/version.ts";
import { type ConnectOptions, connect } from "../src/wire/client.ts";
import type { ClientStream, Connection, Handlers, StreamSink } from "../src/wire/connection.ts";
import {
  AuthError,
  ConnectionClosedError,
  HandshakeError,
  RemoteError,
  UnavailableError,
  VersionMismatchError,
  WireTimeoutError,
} from "../src/wire/errors.ts";
import { encodeFrame, FrameDecoder, FrameError } from "../src/wire/frame.ts";
import { type Listener, type ListenOptions, listen } from "../src/wire/server.ts";
import { waitFor } from "./support/processes.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Refusal {
  reason: string;
  code: string;
}

/** A listener; `handlers` null leaves accepted connections unserved (serve() called later by the test). */
async function server(handlers: Handlers | null, opts: Partial<ListenOptions> = {}) {
  const accepted: Connection[] = [];
  const refused: Refusal[] = [];
  const waiters: ((c: Connection) => void)[] = [];
  const l = await listen({
    host: "127.0.0.1",
    port: 0,
    secret: null,
    role: "client",
    name: "srv",
    onConnection: (c) => {
      if (handlers) c.serve(handlers);
      accepted.push(c);
      for (const w of waiters.splice(0)) w(c);
    },
    onRefused: (reason, _remote, code) => refused.push({ reason, code }),
    ...opts,
  });
  cleanups.push(() => l.close());
  const nextConnection = () => new Promise<Connection>((r) => waiters.push(r));
  return { l, accepted, refused, nextConnection };
}

async function dial(l: Listener, opts: Partial<ConnectOptions> = {}) {
  const r = await connect({
    host: "127.0.0.1",
    port: l.address.port,
    secret: null,
    role: "client",
    name: "cli",
    ...opts,
  });
  cleanups.push(() => r.conn.close());
  return r;
}

/** A server and a connected client; `server` is the accepting side's Connection. */
async function pair(
  handlers: Handlers,
  lopts: Partial<ListenOptions> = {},
  copts: Partial<ConnectOptions> = {},
) {
  const s = await server(handlers, lopts);
  const accepted = s.nextConnection();
  const { conn, hello } = await dial(s.l, copts);
  return { ...s, conn, hello, server: await accepted };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a rejection");
}

/** A raw TCP socket that records the frames it receives (handshake and error frames). */
function rawSocket(port: number) {
  const socket = netConnect({ host: "127.0.0.1", port });
  const decoder = new FrameDecoder();
  const frames: unknown[] = [];
  socket.on("data", (chunk) => {
    try {
      frames.push(...decoder.push(chunk));
    } catch {
      // the tests only look at what decoded
    }
  });
  socket.on("error", () => {});
  const closed = new Promise<void>((r) => socket.on("close", () => r()));
  cleanups.push(() => socket.destroy());
  return { socket, frames, closed };
}

function hello(overrides: Record<string, unknown> = {}) {
  return {
    magic: "berth",
    protocol: PROTOCOL_VERSION,
    version: VERSION,
    role: "client",
    name: "raw",
    nonce: randomBytes(32),
    auth: false,
    ...overrides,
  };
}

function errorFrame(frames: unknown[]): { code: string; message: string } | undefined {
  const f = frames.find((x) => Array.isArray(x) && x[0] === 3 && x[1] === "error") as unknown[] | undefined;
  return f?.[2] as { code: string; message: string } | undefined;
}

/** A plain TCP server that runs `onSocket` and destroys its sockets on cleanup. */
async function fakeNode(onSocket: (sock: Socket) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const fake: Server = createServer((sock: Socket) => {
    sockets.add(sock);
    sock.on("error", () => {});
    onSocket(sock);
  });
  await new Promise<void>((r) => fake.listen(0, "127.0.0.1", () => r()));
  cleanups.push(
    () =>
      new Promise((r) => {
        for (const sock of sockets) sock.destroy();
        fake.close(r);
      }),
  );
  return (fake.address() as { port: number }).port;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe("requests", () => {
  it("answers many concurrent requests, each matched to its caller by id", async () => {
    const { conn } = await pair({
      request: async (method, params) => {
        // Answer out of order, so matching by arrival order would fail.
        await sleep(Math.floor(Math.random() * 20));
        return { method, echo: params };
      },
    });
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => conn.request(`m${i % 7}`, { i, bin: new Uint8Array([i & 255]) })),
    );
    results.forEach((r, i) => {
      const res = r as { method: string; echo: { i: number; bin: Uint8Array } };
      expect(res.method).toBe(`m${i % 7}`);
      expect(res.echo.i).toBe(i);
      expect(res.echo.bin).toBeInstanceOf(Uint8Array);
      expect([...res.echo.bin]).toEqual([i & 255]);
    });
    expect(conn.pendingRequests).toBe(0);
  });

  it("either side may serve requests on the same connection", async () => {
    const { conn, server: srv } = await pair({ request: () => "from-server" });
    conn.serve({ request: (m) => `client answers ${m}` });
    expect(await conn.request("x", null)).toBe("from-server");
    expect(await srv.request("y", null)).toBe("client answers y");
  });

  it("rejects with a timeout error when no answer comes in time, and later answers are ignored", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const { conn } = await pair({
      request: async (method) => {
        if (method === "slow") await gate;
        return method;
      },
    });
    const started = Date.now();
    const err = await rejection(conn.request("slow", null, { timeoutMs: 100 }));
    expect(err).toBeInstanceOf(WireTimeoutError);
    expect((err as WireTimeoutError).code).toBe("timeout");
    expect(err.message).toMatch(/slow .*no answer within 100 ms/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    release();
    // The late response is dropped; the connection keeps working.
    expect(await conn.request("fast", null)).toBe("fast");
  });

  it("carries a handler's error code, message and data to the caller", async () => {
    const { conn } = await pair({
      request: async (method) => {
        if (method === "throw")
          throw Object.assign(new Error("key not found"), {
            code: "kv",
            data: { errorCode: 100, key: "/a" },
          });
        if (method === "sync-throw") throw Object.assign(new Error("sync"), { code: "bad_request" });
        if (method === "plain") throw { code: "not_leader", message: "n2 is not the leader", data: ["n1"] };
        if (method === "untyped") throw new Error("something broke");
        return null;
      },
    });
    const e1 = (await rejection(conn.request("throw", null))) as RemoteError;
    expect(e1).toBeInstanceOf(RemoteError);
    expect(e1.code).toBe("kv");
    expect(e1.message).toBe("key not found");
    expect(e1.data).toEqual({ errorCode: 100, key: "/a" });

    const e2 = (await rejection(conn.request("sync-throw", null))) as RemoteError;
    expect([e2.code, e2.message, e2.data]).toEqual(["bad_request", "sync", undefined]);

    // A thrown plain object with the error-body shape keeps its fields too.
    const e3 = (await rejection(conn.request("plain", null))) as RemoteError;
    expect([e3.code, e3.message, e3.data]).toEqual(["not_leader", "n2 is not the leader", ["n1"]]);

    const e4 = (await rejection(conn.request("untyped", null))) as RemoteError;
    expect([e4.code, e4.message]).toEqual(["internal", "something broke"]);
  });

  it("answers unknown_method when the other side serves no requests", async () => {
    const { conn } = await pair({});
    const err = (await rejection(conn.request("nope", null))) as RemoteError;
    expect(err.code).toBe("unknown_method");
  });

  it("fails pending requests with ConnectionClosedError when the connection closes", async () => {
    const { conn, server: srv } = await pair({ request: () => new Promise(() => {}) });
    const p = conn.request("hang", null);
    await sleep(20);
    srv.close("test");
    const err = (await rejection(p)) as ConnectionClosedError;
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.code).toBe("unavailable");
    expect(await rejection(conn.request("after", null))).toBeInstanceOf(ConnectionClosedError);
  });
});

describe("notifies", () => {
  it("delivers one-way messages in order, in both directions", async () => {
    const got: unknown[] = [];
    const { conn, server: srv } = await pair({ notify: (method, params) => got.push([method, params]) });
    for (let i = 0; i < 100; i++) conn.notify("tick", i);
    await waitFor("100 messages", () => got.length === 100, 3000, 5);
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => ["tick", i]));

    const back: unknown[] = [];
    conn.serve({ notify: (method, params) => back.push([method, params]) });
    srv.notify("push", { x: new Uint8Array([1, 2]) });
    await waitFor("the answer back", () => back.length === 1, 3000, 5);
    const [[method, params]] = back as [[string, { x: Uint8Array }]];
    expect(method).toBe("push");
    expect([...params.x]).toEqual([1, 2]);
  });

  it("holds messages that arrive before serve() is called", async () => {
    const s = await server(null);
    const accepted = s.nextConnection();
    const { conn } = await dial(s.l);
    const srv = await accepted;
    conn.notify("early", 1);
    const early = conn.request("early-req", 2);
    await sleep(50);
    const got: unknown[] = [];
    srv.serve({ notify: (m, p) => got.push([m, p]), request: (m, p) => [m, p] });
    expect(await early).toEqual(["early-req", 2]);
    expect(got).toEqual([["early", 1]]);
  });
});

describe("streams", () => {
  /** A producer that pushes only while the consumer wants more (the intended use of wanted/onDrain). */
  function politeProducer(total: number, stats: { pushed: number; sink?: StreamSink }) {
    return (_method: string, _params: unknown, sink: StreamSink) => {
      stats.sink = sink;
      let i = 0;
      const pump = () => {
        while (sink.wanted > 0 && i < total) {
          sink.push(i++);
          stats.pushed++;
        }
        if (i === total) sink.end();
      };
      sink.onDrain(pump);
      pump();
    };
  }

  it("respects the consumer's credit: the producer waits until items are consumed", async () => {
    const stats = { pushed: 0 };
    const { conn } = await pair({ stream: politeProducer(200, stats) });
    const s = conn.openStream<number>("numbers", null, { credit: 8 });
    await sleep(100);
    // Nothing consumed yet: exactly one window went out.
    expect(stats.pushed).toBe(8);
    const items: number[] = [];
    for await (const n of s) items.push(n);
    expect(items).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(s.ended).toBe(true);
  });

  it("ends a stream whose consumer never reads with slow_consumer once the buffer limit is exceeded", async () => {
    let sink!: StreamSink;
    let closedFired = false;
    const { conn } = await pair(
      {
        stream: (_m, _p, sk) => {
          sink = sk;
          sk.onClose(() => {
            closedFired = true;
          });
          // An impolite producer: ignores `wanted`.
          for (let i = 0; i < 1000; i++) sk.push(i);
        },
      },
      { streamBufferLimit: 16 },
    );
    const s = conn.openStream("flood", null, { credit: 4 });
    const ended = new Promise<Error | undefined>((r) => s.onEnd(r));
    const err = (await ended) as RemoteError;
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.code).toBe("slow_consumer");
    expect(err.message).toMatch(/did not keep up/);
    expect(sink.closed).toBe(true);
    expect(closedFired).toBe(true);
    // Iterating now yields the items that were within credit, then the error.
    const items: unknown[] = [];
    const iterErr = await rejection(
      (async () => {
        for await (const x of s) items.push(x);
      })(),
    );
    expect(items).toEqual([0, 1, 2, 3]);
    expect((iterErr as RemoteError).code).toBe("slow_consumer");
  });

  it("cancelling a stream frees the producer's sink", async () => {
    const stats: { pushed: number; sink?: StreamSink } = { pushed: 0 };
    let sinkClosed!: Promise<void>;
    const produce = politeProducer(Number.POSITIVE_INFINITY, stats);
    const { conn } = await pair({
      stream: (m, p, sink) => {
        sinkClosed = new Promise((r) => sink.onClose(r));
        produce(m, p, sink);
      },
      request: () => "still fine",
    });
    const s: ClientStream<number> = conn.openStream<number>("endless", null, { credit: 4 });
    const items: number[] = [];
    for await (const n of s) {
      items.push(n);
      if (items.length === 3) break; // calls return(), which cancels
    }
    expect(items).toEqual([0, 1, 2]);
    await sinkClosed;
    expect(stats.sink!.closed).toBe(true);
    const before = stats.pushed;
    await sleep(50);
    expect(stats.pushed).toBe(before);
    expect(await conn.request("x", null)).toBe("still fine");
  });

  it("ends with the producer's error (code, message, data)", async () => {
    const { conn } = await pair({
      stream: (_m, _p, sink) => {
        sink.push("a");
        sink.end({ code: "compacted", message: "index 3 was compacted", data: { index: 3 } });
      },
    });
    const items: unknown[] = [];
    const err = (await rejection(
      (async () => {
        for await (const x of conn.openStream("s", null)) items.push(x);
      })(),
    )) as RemoteError;
    expect(items).toEqual(["a"]);
    expect([err.code, err.message, err.data]).toEqual(["compacted", "index 3 was compacted", { index: 3 }]);
  });

  it("ends the consumer's stream when the connection closes", async () => {
    const { conn, server: srv } = await pair({ stream: () => {} });
    const s = conn.openStream("idle", null);
    const ended = new Promise<Error | undefined>((r) => s.onEnd(r));
    await sleep(20);
    srv.close("bye");
    expect(await ended).toBeInstanceOf(ConnectionClosedError);
  });
});

describe("limits per connection (client listeners)", () => {
  it("stops reading past maxServedRequests and goes on, in order, once half of them are answered", async () => {
    const release: (() => void)[] = [];
    let started = 0;
    const { conn } = await pair(
      {
        request: (_m, p) => {
          started++;
          return new Promise((r) => release.push(() => r(p)));
        },
      },
      { maxServedRequests: 4 },
    );
    const answers = Array.from({ length: 10 }, (_, i) => conn.request("slow", i, { timeoutMs: 10_000 }));
    await sleep(150);
    expect(started).toBe(4); // the other six wait unread (in the socket or held frames), not in the handler
    for (const r of release.splice(0, 2)) r();
    await sleep(100);
    expect(started).toBe(6); // two answered: 2 in progress <= 4/2, so reading resumed and two more started
    while (started < 10 || release.length > 0) {
      for (const r of release.splice(0)) r();
      await sleep(20);
    }
    expect(await Promise.all(answers)).toEqual(Array.from({ length: 10 }, (_, i) => i));
  });

  it("ends streams past maxServedStreams with too_many_streams; a closed one frees its place", async () => {
    const sinks: StreamSink[] = [];
    const { conn } = await pair({ stream: (_m, _p, sink) => void sinks.push(sink) }, { maxServedStreams: 2 });
    const a = conn.openStream("w", null);
    conn.openStream("w", null);
    const third = conn.openStream("w", null);
    const err = await (async () => {
      try {
        for await (const _ of third) {
        }
      } catch (e) {
        return e as RemoteError;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(RemoteError);
    expect(err!.code).toBe("too_many_streams");
    sinks[0]!.end();
    for await (const _ of a) {
    }
    await sleep(50);
    const fourth = conn.openStream<number>("w", null);
    await sleep(50);
    expect(sinks.length).toBe(3);
    sinks[2]!.push(7);
    sinks[2]!.end();
    const got: number[] = [];
    for await (const n of fourth) got.push(n);
    expect(got).toEqual([7]);
  });
});

describe("malformed input", () => {
  it("refuses to send a frame over its own limit, and the connection stays usable", async () => {
    const { conn } = await pair(
      { request: (_m, p) => (p as Uint8Array).length },
      {},
      { maxFrameBytes: 1024 },
    );
    const err = (await rejection(conn.request("big", new Uint8Array(4096)))) as FrameError;
    expect(err).toBeInstanceOf(FrameError);
    expect(err.code).toBe("frame_too_large");
    expect(err.message).toMatch(/exceeds the frame limit of 1024 bytes/);
    expect(() => conn.notify("big", new Uint8Array(4096))).toThrow(/frame limit/);
    expect(await conn.request("small", new Uint8Array(10))).toBe(10);
  });

  it("sends an answer larger than a frame in parts, which the asking side joins (others go on meanwhile)", async () => {
    const big = randomBytes(100_000);
    const { conn } = await pair(
      { request: (m, p) => (m === "big" ? { blob: big, n: 7 } : p) },
      { maxFrameBytes: 1024 },
      { maxFrameBytes: 1024 },
    );
    const [answer, small] = await Promise.all([conn.request("big", null), conn.request("echo", "hi")]);
    expect(Buffer.compare((answer as { blob: Buffer }).blob, big)).toBe(0);
    expect((answer as { n: number }).n).toBe(7);
    expect(small).toBe("hi");
    expect(await conn.request("echo", "after")).toBe("after");
  });

  it("an oversized frame closes the connection with a clear reason; the listener keeps accepting", async () => {
    const s = await server({ request: (_m, p) => (p as Uint8Array).length }, { maxFrameBytes: 1024 });
    const { conn } = await dial(s.l);
    const err = (await rejection(conn.request("big", new Uint8Array(4096)))) as ConnectionClosedError;
    expect(err).toBeInstanceOf(ConnectionClosedError);
    expect(err.reasonCode).toBe("frame_too_large");
    expect(err.message).toMatch(/frame_too_large: frame of \d+ bytes exceeds the limit of 1024 bytes/);
    expect(conn.closed).toBe(true);
    const { conn: again } = await dial(s.l);
    expect(await again.request("small", new Uint8Array(100))).toBe(100);
  });

  it("garbage instead of a handshake is refused; the listener keeps accepting", async () => {
    const s = await server({ request: () => "ok" });
    const raw = rawSocket(s.l.address.port);
    raw.socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await raw.closed;
    expect(errorFrame(raw.frames)?.code).toBe("handshake_failed");
    expect(errorFrame(raw.frames)?.message).toMatch(/not speaking the Berth protocol/);
    await waitFor("one refused connection", () => s.refused.length === 1, 3000, 5);
    expect(s.refused[0]!.code).toBe("handshake_failed");
    const { conn } = await dial(s.l);
    expect(await conn.request("x", null)).toBe("ok");
  });

  it("garbage after the handshake closes that connection with an error frame", async () => {
    const s = await server({ request: () => "ok" });
    const accepted = s.nextConnection();
    const raw = rawSocket(s.l.address.port);
    raw.socket.write(encodeFrame(hello()));
    await waitFor("an ok frame", () => raw.frames.some((f) => (f as { ok?: boolean }).ok === true), 3000, 5);
    const srv = await accepted;
    // A 5-byte body of 0xc1, a byte msgpack never uses.
    raw.socket.write(Buffer.from([0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1]));
    await raw.closed;
    expect(errorFrame(raw.frames)?.code).toBe("frame_undecodable");
    expect(srv.closed).toBe(true);
    expect(srv.closeError?.reasonCode).toBe("frame_undecodable");
    const { conn } = await dial(s.l);
    expect(await conn.request("x", null)).toBe("ok");
  });

  it("a decodable message that is not an envelope closes the connection (bad_envelope)", async () => {
    const s = await server({});
    const raw = rawSocket(s.l.address.port);
    raw.socket.write(encodeFrame(hello()));
    await waitFor("an ok frame", () => raw.frames.some((f) => (f as { ok?: boolean }).ok === true), 3000, 5);
    raw.socket.write(encodeFrame({ hello: "world" }));
    await raw.closed;
    expect(errorFrame(raw.frames)?.code).toBe("bad_envelope");
  });
});

describe("handshake", () => {
  const secret = Buffer.from("the-right-cluster-secret");

  it("accepts a connector that knows the secret", async () => {
    const { conn, hello: h } = await pair(
      { request: () => "in" },
      { secret, role: "peer" },
      { secret, role: "peer" },
    );
    expect(h.name).toBe("srv");
    expect(h.role).toBe("peer");
    expect(await conn.request("x", null)).toBe("in");
  });

  it("a wrong secret is refused on both sides with an AuthError", async () => {
    const s = await server({}, { secret, role: "peer" });
    const err = await rejection(dial(s.l, { secret: Buffer.from("a-wrong-secret"), role: "peer" }));
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).code).toBe("auth_failed");
    expect(err.message).toMatch(/cluster secret \(wrong secret\?\)/);
    await waitFor("one refused connection", () => s.refused.length === 1, 3000, 5);
    expect(s.refused[0]!.code).toBe("auth_failed");
    expect(s.refused[0]!.reason).toMatch(/did not prove knowledge of the cluster secret|wrong secret/);
    expect(s.accepted).toHaveLength(0);
  });

  it("a connector without a secret is told one is required", async () => {
    const s = await server({}, { secret, role: "peer" });
    const err = await rejection(dial(s.l, { secret: null, role: "peer" }));
    expect(err).toBeInstanceOf(AuthError);
    expect(err.message).toMatch(/requires the cluster secret, and none was configured here/);
    await waitFor("one refused connection", () => s.refused.length === 1, 3000, 5);
    expect(s.refused[0]!.code).toBe("auth_failed");
  });

  it("a connector holding the secret refuses a node that does not ask for it, before reading anything from it", async () => {
    // An impostor on a member's peer address: no secret, answers "no auth" and sends at once.
    const got: unknown[] = [];
    const s = await server(null, { secret: null, role: "peer", name: "n3" });
    s.nextConnection().then((c) => {
      c.serve({ notify: (_m, p) => got.push(p), request: (_m, p) => got.push(p) });
      c.notify("raft", [{ type: "vote", from: "n3", to: "a", term: 1000 }]);
      c.request("leader.kv.write", { key: "/owned" }).catch(() => {});
    });
    const err = await rejection(dial(s.l, { secret, role: "peer", name: "a" }));
    expect(err).toBeInstanceOf(AuthError);
    expect(err.message).toMatch(/does not hold the cluster secret, so it cannot prove it is a member/);
    await sleep(50);
    expect(got).toEqual([]);
  });

  it("a member's proof cannot vouch for another name: a relay renaming both ends is refused on both sides", async () => {
    // The impostor listens on a down member's address (n3) and relays the dialer's handshake to a live member (n1),
    // calling itself n3 on both sides. Proofs bound to nonces and sides alone would let it through.
    const n1 = await server({ request: () => "replicated data" }, { secret, role: "peer", name: "n1" });
    const rename = (f: unknown) =>
      f && typeof f === "object" && (f as { magic?: unknown }).magic === "berth" ? { ...f, name: "n3" } : f;
    const port = await fakeNode((dialer) => {
      const upstream = rawSocket(n1.l.address.port);
      const fromDialer = new FrameDecoder();
      const fromUpstream = new FrameDecoder();
      dialer.on("data", (chunk) => {
        for (const f of fromDialer.push(chunk)) upstream.socket.write(encodeFrame(rename(f)));
      });
      upstream.socket.on("data", (chunk) => {
        for (const f of fromUpstream.push(chunk)) dialer.write(encodeFrame(rename(f)));
      });
      upstream.socket.on("close", () => dialer.destroy());
      dialer.on("close", () => upstream.socket.destroy());
    });
    const err = await rejection(
      connect({ host: "127.0.0.1", port, secret, role: "peer", name: "a", timeoutMs: 2000 }),
    );
    expect(err).toBeInstanceOf(AuthError);
    expect(err.message).toMatch(/did not prove knowledge of the cluster secret/);
    await waitFor("one refused connection", () => n1.refused.length === 1, 3000, 5);
    expect(n1.refused[0]!.code).toBe("auth_failed");
    expect(n1.accepted).toHaveLength(0);
  });

  it("refuses a peer of a release whose proofs bind no names, saying so", async () => {
    const s = await server({}, { secret, role: "peer" });
    const raw = rawSocket(s.l.address.port);
    raw.socket.write(encodeFrame(hello({ role: "peer", auth: true, version: "0.9.0" })));
    await raw.closed;
    expect(errorFrame(raw.frames)?.message).toMatch(
      /runs a berth \(0\.9\.0\) that proves the cluster secret the older, one-sided way/,
    );
    expect(s.accepted).toHaveLength(0);
  });

  it("refuses a connector of the other role on both sides", async () => {
    const s = await server({}, { role: "peer" });
    const err = await rejection(dial(s.l, { role: "client" }));
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as HandshakeError).code).toBe("wrong_role");
    expect(err.message).toMatch(/serves peer connections, not client connections/);
    await waitFor("one refused connection", () => s.refused.length === 1, 3000, 5);
    expect(s.refused[0]!.code).toBe("wrong_role");
  });

  it("the acceptor refuses a hello of another protocol version", async () => {
    const s = await server({});
    const raw = rawSocket(s.l.address.port);
    raw.socket.write(encodeFrame(hello({ protocol: PROTOCOL_VERSION + 98, version: "9.9.9" })));
    await raw.closed;
    const e = errorFrame(raw.frames);
    expect(e?.code).toBe("version_mismatch");
    expect(e?.message).toMatch(/protocol version mismatch.*speaks \d+ \(berth 9\.9\.9\)/);
    await waitFor("one refused connection", () => s.refused.length === 1, 3000, 5);
    expect(s.refused[0]!.code).toBe("version_mismatch");
  });

  it("the connector refuses a node of another protocol version", async () => {
    const port = await fakeNode((sock) =>
      sock.write(encodeFrame(hello({ protocol: PROTOCOL_VERSION + 1, version: "99.0.0", name: "future" }))),
    );
    const err = await rejection(
      connect({ host: "127.0.0.1", port, secret: null, role: "client", name: "cli", timeoutMs: 2000 }),
    );
    expect(err).toBeInstanceOf(VersionMismatchError);
    expect((err as VersionMismatchError).code).toBe("version_mismatch");
    expect(err.message).toMatch(/protocol version mismatch/);
  });

  it("a silent endpoint fails the handshake with a timeout", async () => {
    const port = await fakeNode(() => {});
    const err = await rejection(
      connect({ host: "127.0.0.1", port, secret: null, role: "client", name: "cli", timeoutMs: 200 }),
    );
    expect(err).toBeInstanceOf(WireTimeoutError);
    expect(err.message).toMatch(/did not complete within/);
  });

  it("nothing listening → UnavailableError with a readable reason", async () => {
    const port = await freePort();
    const err = await rejection(
      connect({ host: "127.0.0.1", port, secret: null, role: "client", name: "cli" }),
    );
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as UnavailableError).code).toBe("unavailable");
    expect(err.message).toBe(
      `cannot connect to 127.0.0.1:${port}: connection refused (is a node running there?)`,
    );
  });
});
