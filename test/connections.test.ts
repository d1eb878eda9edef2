// Connections against a real node (the built binary): idle and trickling clients cannot lock the CLI out, request
// heads and bodies have deadlines, unfinished requests share a memory budget, a stream watcher that never reads is
// cut off, HTTP heads are parsed strictly and incrementally, and a msgpack answer over the 16 MiB frame limit
// arrives in parts.
import { readFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { clientFor, TestCluster, waitFor } from "./support/cluster.ts";

let cluster: TestCluster;
const held: Socket[] = [];
const timers: ReturnType<typeof setInterval>[] = [];

beforeAll(async () => {
  cluster = await TestCluster.start(1, { extraArgs: ["--max-client-connections=50"] });
});

afterAll(async () => {
  await cluster?.stop();
});

afterEach(() => {
  for (const t of timers.splice(0)) clearInterval(t);
  for (const s of held.splice(0)) s.destroy();
});

/** A connection the test keeps (destroyed after the test), with everything it receives and whether it closed. */
function open(port: number): Promise<{ s: Socket; got: () => string; closed: Promise<void> }> {
  const n = cluster.node("n1");
  return new Promise((resolve) => {
    const s = netConnect({ host: n.host, port });
    held.push(s);
    let got = "";
    s.on("data", (d: Buffer) => {
      got += d.toString("latin1");
    });
    s.on("error", () => {});
    const closed = new Promise<void>((r) => s.once("close", () => r()));
    const done = () => resolve({ s, got: () => got, closed });
    s.once("connect", done);
    s.once("close", done);
  });
}

/** One request on a new connection; the whole answer up to the close. */
async function request(text: string | Buffer[]): Promise<string> {
  const c = await open(cluster.node("n1").httpPort);
  for (const part of typeof text === "string" ? [text] : text) c.s.write(part);
  await c.closed;
  return c.got();
}

const put = (key: string, value = "1") =>
  `PUT /v2/keys/${key} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${value.length + 6}\r\nConnection: close\r\n\r\nvalue=${value}`;

describe("connections", () => {
  it("with 300 idle TCP connections and 50 trickling HTTP clients open, 20 of 20 CLI calls succeed", async () => {
    const n = cluster.node("n1");
    for (let i = 0; i < 300; i++) await open(n.clientPort);
    // Each trickler sends one byte of a head every 200 ms: the idle timeout alone never fires.
    const head = `GET /v2/keys/a HTTP/1.1\r\nHost: x\r\nX-Slow: ${"a".repeat(1000)}`;
    const tricklers: Awaited<ReturnType<typeof open>>[] = [];
    for (let i = 0; i < 50; i++) {
      const t = await open(n.httpPort);
      let k = 0;
      timers.push(setInterval(() => t.s.destroyed || t.s.write(head[k++ % head.length] as string), 200));
      tricklers.push(t);
    }
    const codes: number[] = [];
    for (let i = 0; i < 20; i++) codes.push((await cluster.cli(["kv", "set", `/cli/${i}`, "v"])).code);
    expect(codes).toEqual(Array(20).fill(0));
    // The HTTP port is full of tricklers, all idle: a new request takes the place of the oldest.
    expect(await request(put("http-after-trickle"))).toMatch(/^HTTP\/1\.1 201/);
    await tricklers[0]!.closed;
    // The others' heads are not done by the deadline (10 s after their first byte): 408, closed.
    const last = tricklers.at(-1)!;
    await last.closed;
    expect(last.got()).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
    expect(readFileSync(n.logFile, "utf8")).toMatch(/closed \d+ idle HTTP connection\(s\) to make room/);
  }, 60_000);

  it("parses a head sent a byte at a time, and refuses a space before a field's colon with 400", async () => {
    const bytes = Buffer.from(put("byte-by-byte", "bytes"));
    const parts = Array.from(bytes, (b) => Buffer.from([b]));
    const c = await open(cluster.node("n1").httpPort);
    for (const p of parts) {
      c.s.write(p);
      await new Promise((r) => setImmediate(r));
    }
    await c.closed;
    expect(c.got()).toMatch(/^HTTP\/1\.1 201/);
    // "Transfer-Encoding : chunked" must not be read as a request without a body (the chunks would then be
    // taken for the next request: request smuggling).
    const smuggle =
      "POST /v2/keys/smuggled HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
      "Transfer-Encoding : chunked\r\n\r\n7\r\nvalue=1\r\n0\r\n\r\n";
    expect(await request(smuggle)).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    const client = await clientFor(cluster, "n1");
    try {
      await expect(client.call("kv.get", { key: "/smuggled" })).rejects.toThrow(/Key not found/);
    } finally {
      client.close();
    }
  });

  it("counts unfinished request bodies against one budget: past 64 MiB a new one gets 503, and the budget comes back", async () => {
    const n = cluster.node("n1");
    const nine = Buffer.alloc(9 << 20, 0x61);
    const conns: Awaited<ReturnType<typeof open>>[] = [];
    for (let i = 0; i < 8; i++) {
      const c = await open(n.httpPort);
      c.s.write(
        `PUT /v2/keys/body${i} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${10 << 20}\r\n\r\nvalue=`,
      );
      c.s.write(nine);
      conns.push(c);
    }
    await waitFor("a body refused", async () => conns.some((c) => c.got().includes("503")), 10_000);
    const refused = conns.filter((c) => c.got() !== "");
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const c of refused)
      expect(c.got()).toMatch(/^HTTP\/1\.1 503 .*\r\n[\s\S]*too much request data in flight/);
    expect(readFileSync(n.logFile, "utf8")).toMatch(/bytes of unfinished requests, its limit is 67108864/);
    for (const c of conns) c.s.destroy();
    await waitFor(
      "a write once they are gone",
      async () => (await request(put("after-bodies"))).startsWith("HTTP/1.1 201"),
      5000,
    );
  });

  it("cuts off a stream watcher that never reads, and answers a `kv ls -r` larger than the 16 MiB frame limit", async () => {
    const n = cluster.node("n1");
    const w = await open(n.httpPort);
    w.s.write("GET /v2/keys/big?wait=true&stream=true&recursive=true HTTP/1.1\r\nHost: x\r\n\r\n");
    await waitFor("the watch headers", async () => w.got().startsWith("HTTP/1.1 200"), 5000);
    w.s.pause();
    const client = await clientFor(cluster, "n1", 20_000);
    const value = "v".repeat(1_000_000);
    try {
      for (let i = 0; i < 32; i++) await client.call("kv.write", { method: "PUT", key: `/big/${i}`, value });
    } finally {
      client.close();
    }
    await waitFor(
      "the watcher cut off",
      async () => /cut off a stream watcher of \/big/.test(readFileSync(n.logFile, "utf8")),
      10_000,
    );
    w.s.resume();
    await w.closed;
    const events = w.got().match(/"action":"set"/g) ?? [];
    expect(events.length).toBeLessThan(32);
    // 32 MB of values: one answer over the frame limit, sent in parts.
    const ls = await cluster.cli(["kv", "ls", "--recursive", "/big"], undefined, 60_000);
    expect(ls.stderr).toBe("");
    expect(ls.code).toBe(0);
    expect(ls.stdout.trim().split("\n")).toHaveLength(32);
  }, 60_000);
});
