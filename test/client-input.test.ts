// Bad input on a real node's client port: unknown methods, wrongly typed parameters, oversized values, garbage
// and oversized frames, half a handshake. Each gets a clear error where an answer is possible, and the node keeps
// serving a well-behaved client on another connection.
import { readFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BerthClient } from "../src/client/client.ts";
import { RemoteError } from "../src/wire/errors.ts";
import { encodeFrame, FrameDecoder } from "../src/wire/frame.ts";
import { handshake } from "../src/wire/handshake.ts";
import { clientFor, TestCluster, waitFor } from "./support/cluster.ts";

let c: TestCluster;
let good: BerthClient;
const sockets: Socket[] = [];

beforeAll(async () => {
  c = await TestCluster.start(1);
  good = await clientFor(c, "n1");
}, 30_000);

afterAll(async () => {
  good?.close();
  for (const s of sockets) s.destroy();
  await c?.stop();
});

/** The well-behaved client on its own connection still reads and writes. */
async function stillServes(tag: string): Promise<void> {
  const w = await good.call("kv.write", { method: "PUT", key: `/ok/${tag}`, value: tag });
  expect(w.event.node.value).toBe(tag);
  const r = await good.call("kv.get", { key: `/ok/${tag}` });
  expect(r.event.node.value).toBe(tag);
  // A fresh connection is accepted too.
  const fresh = await clientFor(c, "n1", 3000);
  try {
    expect((await fresh.call("node.status", {})).name).toBe("n1");
  } finally {
    fresh.close();
  }
}

async function remoteError(p: Promise<unknown>): Promise<RemoteError> {
  const err = await p.then(
    () => null,
    (e) => e,
  );
  expect(err).toBeInstanceOf(RemoteError);
  return err as RemoteError;
}

/** A raw TCP socket to the client port, collecting every frame the node sends (until it closes). */
function rawSocket(): Promise<{ socket: Socket; frames: unknown[]; closed: Promise<void> }> {
  const n = c.node("n1");
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: n.host, port: n.clientPort });
    sockets.push(socket);
    const frames: unknown[] = [];
    const decoder = new FrameDecoder();
    const closed = new Promise<void>((r) => socket.once("close", () => r()));
    socket.on("data", (d: Buffer) => {
      try {
        frames.push(...decoder.push(d));
      } catch {
        // the node's bytes are always frames; ignore a broken tail
      }
    });
    socket.on("error", () => {});
    socket.once("connect", () => resolve({ socket, frames, closed }));
    socket.once("error", reject);
  });
}

/** A raw socket that completed the handshake as a client; frames the node sends afterwards are collected. */
async function handshaken(): Promise<{ socket: Socket; frames: unknown[]; closed: Promise<void> }> {
  const n = c.node("n1");
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = netConnect({ host: n.host, port: n.clientPort }, () => resolve(s));
    s.once("error", reject);
  });
  sockets.push(socket);
  const closed = new Promise<void>((r) => socket.once("close", () => r()));
  socket.on("error", () => {});
  const { decoder, frames } = await handshake(socket, {
    side: "connect",
    role: "client",
    name: "raw-test",
    secret: null,
    timeoutMs: 3000,
    label: "n1",
  });
  socket.on("data", (d: Buffer) => {
    try {
      frames.push(...decoder.push(d));
    } catch {
      // ignore
    }
  });
  socket.resume();
  return { socket, frames, closed };
}

function errorFrame(frames: unknown[]): { code: string; message: string } | undefined {
  const f = frames.find((x) => Array.isArray(x) && x[0] === 3 && x[1] === "error") as unknown[] | undefined;
  return f?.[2] as { code: string; message: string } | undefined;
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)),
  ]);
}

/** user+sys CPU seconds of a process (Linux). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) * 1024;
}

describe("bad input on the client port", () => {
  it("answers an unknown method or stream with unknown_method", async () => {
    const call = good.call as unknown as (m: string, p: unknown) => Promise<unknown>;
    const e = await remoteError(call.call(good, "kv.nonsense", {}));
    expect(e.code).toBe("unknown_method");
    expect(e.message).toMatch(/unknown method "kv\.nonsense"/);
    const sub = good.subscribe("kv.nope" as "kv.watch", { key: "/x" });
    const it = sub[Symbol.asyncIterator]();
    const se = await remoteError(it.next());
    expect(se.code).toBe("unknown_method");
    await stillServes("unknown");
  });

  it("refuses wrongly typed parameters with bad_request, before anything reaches the log", async () => {
    const call = good.call as unknown as (m: string, p: unknown) => Promise<unknown>;
    const bad: [string, unknown][] = [
      ["kv.get", { key: 5 }],
      ["kv.get", { key: "/x", recursive: "yes" }],
      ["kv.get", { key: "/x", consistency: "eventual" }],
      ["kv.get", [1, 2, 3]],
      ["kv.get", "just a string"],
      ["kv.write", { method: "PATCH", key: "/x" }],
      ["kv.write", { method: "PUT", key: 7, value: "v" }],
      ["kv.write", { method: "PUT", key: "/x", value: 5 }],
      ["kv.write", { method: "PUT", key: "/x", value: "v", ttl: "ten" }],
      ["kv.write", { method: "PUT", key: "/x", value: "v", ttl: -1 }],
      ["kv.write", { method: "PUT", key: "/x", value: "v", prevIndex: "3" }],
      // Optional flags of the wrong type must not silently change what the write means.
      ["kv.write", { method: "PUT", key: "/x", value: "v", prevExist: "false" }],
      ["kv.write", { method: "PUT", key: "/x", value: "v", prevValue: 5 }],
      ["kv.write", { method: "PUT", key: "/x", dir: "yes" }],
      ["kv.write", { method: "DELETE", key: "/x", recursive: 1 }],
      ["kv.write", null],
      ["cluster.remove", { name: 42 }],
    ];
    // The node's own start-up writes (member attributes, machine record and state) come first: wait for a
    // commit index that holds still for half a second.
    const commitIndex = async () => (await good.call("node.status", {})).commitIndex;
    const before = await waitFor("the node at rest", async () => {
      const a = await commitIndex();
      await new Promise((r) => setTimeout(r, 500));
      return (await commitIndex()) === a ? a : null;
    });
    const wrong: string[] = [];
    for (const [method, params] of bad) {
      const e = await call.call(good, method, params).then(
        () => null,
        (err) => err as RemoteError,
      );
      if (e?.code !== "bad_request" || e.message.length < 5)
        wrong.push(`${method} ${JSON.stringify(params)} -> ${e ? `${e.code}: ${e.message}` : "accepted"}`);
    }
    expect(wrong).toEqual([]);
    // Nothing was proposed (the node publishes nothing else at rest).
    expect((await good.call("node.status", {})).commitIndex).toBe(before);
    expect((await remoteError(good.call("kv.get", { key: "/x" }))).code).toBe("kv");
    const ws = good.subscribe("kv.watch", { key: 5 } as unknown as { key: string });
    const we = await remoteError(ws[Symbol.asyncIterator]().next());
    expect(we.code).toBe("bad_request");
    const ws2 = good.subscribe("kv.watch", { key: "/x", sinceIndex: -4 });
    expect((await remoteError(ws2[Symbol.asyncIterator]().next())).code).toBe("bad_request");
    await stillServes("types");
  });

  it("refuses a value over 1 MiB with a clear message, and accepts one just under", async () => {
    const big = "x".repeat(1024 * 1024 + 1);
    const e = await remoteError(good.call("kv.write", { method: "PUT", key: "/big", value: big }));
    expect(e.code).toBe("bad_request");
    expect(e.message).toMatch(/1048577 bytes; the limit is 1048576/);
    const ok = await good.call("kv.write", { method: "PUT", key: "/big", value: "y".repeat(1024 * 1024) });
    expect(ok.event.node.value?.length).toBe(1024 * 1024);
    await stillServes("big");
  });

  it("answers garbage instead of a hello with an error frame and closes", async () => {
    const { socket, frames, closed } = await rawSocket();
    // (An HTTP request line is not garbage here: the client port serves etcd's HTTP API too.)
    socket.write("SSH-2.0-OpenSSH_9.2p1 Debian\r\n");
    await within(closed, 5000, "node closes a socket that sends another protocol");
    const err = errorFrame(frames);
    expect(err?.code).toBe("handshake_failed");
    expect(err?.message).toMatch(/not speaking the Berth protocol/);
    await stillServes("garbage-hello");
  });

  it("closes a connection that sends an undecodable frame after the handshake, with frame_undecodable", async () => {
    const { socket, frames, closed } = await handshaken();
    // 0xc1 is never used in msgpack.
    socket.write(Buffer.from([0, 0, 0, 3, 0xc1, 0xc1, 0xc1]));
    await within(closed, 5000, "node closes after a garbage frame");
    expect(errorFrame(frames)?.code).toBe("frame_undecodable");
    await stillServes("garbage-frame");
  });

  it("closes a connection that sends a well-formed frame that is no envelope, with bad_envelope", async () => {
    const { socket, frames, closed } = await handshaken();
    socket.write(encodeFrame({ hello: "world" }));
    await within(closed, 5000, "node closes after a non-envelope");
    expect(errorFrame(frames)?.code).toBe("bad_envelope");
    await stillServes("not-envelope");
  });

  it("closes a connection that announces an oversized frame, with frame_too_large", async () => {
    const { socket, frames, closed } = await handshaken();
    const header = Buffer.alloc(4);
    header.writeUInt32BE(64 * 1024 * 1024, 0);
    socket.write(header);
    socket.write(Buffer.alloc(1024, 0x90));
    await within(closed, 5000, "node closes after an oversized frame header");
    const err = errorFrame(frames);
    expect(err?.code).toBe("frame_too_large");
    expect(err?.message).toMatch(/exceeds the limit/);
    await stillServes("oversized-frame");
  });

  it("times out half a handshake without blocking other clients", async () => {
    const { socket, frames, closed } = await rawSocket();
    const hello = encodeFrame({ magic: "berth" });
    socket.write(hello.subarray(0, Math.floor(hello.length / 2)));
    const started = Date.now();
    // Meanwhile, others are served normally.
    await stillServes("half-handshake");
    await within(closed, 8000, "node drops a half-finished handshake");
    expect(Date.now() - started).toBeGreaterThan(3000);
    // The node spoke first (its hello), then told us why it gave up.
    expect((frames[0] as { magic?: string }).magic).toBe("berth");
    expect(errorFrame(frames)?.code).toBe("timeout");
    await stillServes("after-half-handshake");
  }, 15_000);

  it("stops reading an HTTP connection that pipelines megabytes behind a long poll, until the poll is answered", async () => {
    const n = c.node("n1");
    const s = netConnect({ host: n.host, port: n.httpPort });
    sockets.push(s);
    s.on("error", () => {}); // the node resets the connection once it refuses the junk
    let answer = "";
    s.on("data", (d: Buffer) => {
      answer += d.toString("latin1");
    });
    const closed = new Promise<void>((r) => s.once("close", () => r()));
    await new Promise<void>((r) => s.once("connect", () => r()));
    s.write("GET /v2/keys/pipelined?wait=true HTTP/1.1\r\nHost: x\r\n\r\n");
    await new Promise((r) => setTimeout(r, 200));
    // 64 MiB of junk behind it: a node that kept reading would have to buffer (and re-copy) all of it.
    const pid = n.proc!.pid!;
    const cpu0 = cpuSeconds(pid);
    const rss0 = rssBytes(pid);
    const junk = Buffer.alloc(1 << 20, 0x61);
    for (let i = 0; i < 64; i++) s.write(junk);
    await new Promise((r) => setTimeout(r, 1500));
    expect(s.writableLength).toBeGreaterThan(32 << 20);
    expect(cpuSeconds(pid) - cpu0).toBeLessThan(0.5);
    expect(rssBytes(pid) - rss0).toBeLessThan(24 << 20);
    await good.call("kv.write", { method: "PUT", key: "/pipelined", value: "v" });
    await closed; // the poll's answer, then the junk is read and refused, and the connection closes
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(answer).toContain('"action":"set"');
    await stillServes("after-pipelined-junk");
  }, 30_000);

  it("keeps at most 1024 streams open per connection; more end with too_many_streams", async () => {
    const client = await clientFor(c, "n1");
    try {
      const open = Array.from({ length: 1024 }, (_, i) =>
        client.subscribe("kv.watch", { key: `/many/${i}` }),
      );
      const over = client.subscribe("kv.watch", { key: "/many/over" });
      const e = await remoteError(over[Symbol.asyncIterator]().next());
      expect(e.code).toBe("too_many_streams");
      // Closing one frees a place; the watch that takes it sees writes.
      open[0]!.close();
      await new Promise((r) => setTimeout(r, 100));
      const again = client.subscribe("kv.watch", { key: "/many/again" });
      const next = again[Symbol.asyncIterator]().next();
      await good.call("kv.write", { method: "PUT", key: "/many/again", value: "seen" });
      expect(((await next).value as { event: { node: { value: string } } }).event.node.value).toBe("seen");
      for (const s of open) s.close();
      again.close();
    } finally {
      client.close();
    }
    await stillServes("after-many-streams");
  }, 30_000);
});
