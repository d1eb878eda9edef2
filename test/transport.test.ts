// PeerTransport over real loopback sockets: delivery, binary payloads, snapshots, unreachable peers, reconnects,
// request forwarding and authentication.
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { PeerTransport, type PeerTransportOptions, PeerUnreachableError } from "../src/raft/transport.ts";
import type { Message, NodeId } from "../src/raft/types.ts";
import { waitFor } from "./support/processes.ts";

const SECRET = Buffer.from("transport-test-secret");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Member {
  id: string;
  t: PeerTransport;
  got: Message[];
  unreachable: NodeId[];
  snapshots: [NodeId, boolean][];
  logs: string[];
  addr: string;
}

const started: PeerTransport[] = [];
afterEach(async () => {
  for (const t of started.splice(0)) await t.stop();
});
/** Where the members write the snapshots they receive. */
const scratch = mkdtempSync(join(tmpdir(), "berth-transport-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function member(
  id: string,
  opts: Partial<PeerTransportOptions> & { port?: number } = {},
): Promise<Member> {
  const m: Member = { id, got: [], unreachable: [], snapshots: [], logs: [], addr: "" } as unknown as Member;
  m.t = new PeerTransport({
    selfId: id,
    secret: SECRET,
    listenHost: "127.0.0.1",
    listenPort: opts.port ?? 0,
    onMessage: (msg) => m.got.push(msg),
    reportUnreachable: (p) => m.unreachable.push(p),
    reportSnapshot: (p, ok) => m.snapshots.push([p, ok]),
    logger: (l) => m.logs.push(l),
    dialTimeoutMs: 1000,
    snapshotDir: join(scratch, id),
    ...opts,
  });
  await m.t.start();
  started.push(m.t);
  m.addr = `127.0.0.1:${m.t.address.port}`;
  return m;
}

/** Three members that know each other's addresses (as the driver's setPeers would tell them). */
async function trio(opts: Partial<PeerTransportOptions> = {}) {
  const ms = [await member("n1", opts), await member("n2", opts), await member("n3", opts)];
  const peers = new Map(ms.map((m) => [m.id, m.addr]));
  for (const m of ms) m.t.setPeers(peers);
  return ms as [Member, Member, Member];
}

function msg(from: string, to: string, extra: Partial<Message> = {}): Message {
  return { type: "heartbeat", from, to, term: 1, ...extra };
}

/** Sends `m` every 20 ms until `cond` holds (Raft resends too; the first sends may race a dial). */
async function sendUntil(t: PeerTransport, m: Message, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("message not delivered in time");
    t.send([m]);
    await sleep(20);
  }
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; data?: unknown }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("expected a rejection");
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe("PeerTransport", () => {
  it("delivers messages to each destination, in order, including the ones sent before the first dial finished", async () => {
    const [n1, n2, n3] = await trio();
    n1.t.send([msg("n1", "n2", { index: 1 }), msg("n1", "n3", { index: 2 }), msg("n1", "n2", { index: 3 })]);
    await waitFor("n2 to get 2 messages and n3 1", () => n2.got.length === 2 && n3.got.length === 1, 5000, 5);
    expect(n2.got.map((m) => m.index)).toEqual([1, 3]);
    expect(n3.got.map((m) => m.index)).toEqual([2]);
    expect(n2.got[0]).toEqual(msg("n1", "n2", { index: 1 }));
    // Replies go the other way (n2 dials n1 now).
    n2.t.send([msg("n2", "n1", { type: "heartbeatResp" })]);
    n3.t.send([msg("n3", "n1", { type: "heartbeatResp" })]);
    await waitFor("n1 to get 2 messages", () => n1.got.length === 2, 5000, 5);
    expect(n1.got.map((m) => m.from).sort()).toEqual(["n2", "n3"]);
    expect(n1.unreachable).toEqual([]);
  });

  it("keeps Uint8Array payloads (entry data, context, snapshot data) intact", async () => {
    const [n1, n2] = await trio();
    const data = new Uint8Array([0, 1, 2, 250, 255]);
    const context = new Uint8Array([9, 8, 7]);
    n1.t.send([
      msg("n1", "n2", {
        type: "app",
        logTerm: 1,
        index: 4,
        commit: 4,
        entries: [
          { term: 1, index: 5, type: "normal", data },
          { term: 1, index: 6, type: "normal", data: new Uint8Array(0) },
        ],
      }),
      msg("n1", "n2", { type: "heartbeat", context }),
    ]);
    await waitFor("n2 to get 2 messages", () => n2.got.length === 2, 5000, 5);
    const [app, hb] = n2.got as [Message, Message];
    expect(app.entries![0]!.data).toBeInstanceOf(Uint8Array);
    expect([...app.entries![0]!.data]).toEqual([...data]);
    expect(app.entries![1]!.data).toBeInstanceOf(Uint8Array);
    expect(app.entries![1]!.data.length).toBe(0);
    expect(hb.context).toBeInstanceOf(Uint8Array);
    expect([...hb.context!]).toEqual([9, 8, 7]);
  });

  it("drops malformed messages and ones claiming another sender, and says why; well-formed ones still arrive", async () => {
    const [n1, n2] = await trio();
    const entry = (index: number, data: unknown = new Uint8Array(1)) => ({
      term: 1,
      index,
      type: "normal",
      data,
    });
    const bad = [
      // A snap without its snapshot would throw inside the receiver's Raft pass.
      msg("n1", "n2", { type: "snap" }),
      msg("n1", "n2", { type: "app", index: 4, logTerm: 1, entries: [entry(5), entry(7)] as never }),
      msg("n1", "n2", { type: "app", index: 4, logTerm: 1, entries: [entry(5, "text")] as never }),
      msg("n1", "n2", { term: -1 }),
      msg("n1", "n2", { type: "nonsense" as never }),
      msg("n3", "n2", { index: 99 }),
    ];
    n1.t.send(bad);
    await sendUntil(n1.t, msg("n1", "n2", { index: 1 }), () => n2.got.length > 0);
    // The snap travels as a request of its own: the receiver refused it.
    await waitFor("a snapshot at n1", () => n1.snapshots.length === 1, 5000, 5);
    expect(n1.snapshots).toEqual([["n2", false]]);
    expect(new Set(n2.got.map((m) => m.index))).toEqual(new Set([1]));
    const logs = n2.logs.join("\n");
    // One line per sender and interval (rate-limited), naming the first problem seen.
    expect(logs).toMatch(/dropped a malformed message from n1: /);
    expect(logs).toMatch(/claiming to be from n3, sent by n1/);
  });

  it("sends snapshots as requests and reports the outcome", async () => {
    const [n1, n2] = await trio();
    const snapData = new Uint8Array(200_000).map((_, i) => i & 255);
    n1.t.send([
      msg("n1", "n2", {
        type: "snap",
        snapshot: {
          meta: { index: 10, term: 2, confState: { voters: ["n1", "n2", "n3"], learners: [] } },
          data: snapData,
        },
      }),
    ]);
    await waitFor("a snapshot at n1", () => n1.snapshots.length === 1, 5000, 5);
    expect(n1.snapshots).toEqual([["n2", true]]);
    const snap = n2.got.find((m) => m.type === "snap")!;
    expect(snap.snapshot!.meta.index).toBe(10);
    expect(snap.snapshot!.data).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(snap.snapshot!.data).equals(Buffer.from(snapData))).toBe(true);
  });

  const snapTo = (from: string, to: string, data: Uint8Array) =>
    msg(from, to, {
      type: "snap",
      snapshot: {
        meta: { index: 10, term: 2, confState: { voters: ["n1", "n2", "n3"], learners: [] } },
        data,
      },
    });
  /** Snapshot files a member is receiving into. */
  const partFiles = (id: string) => readdirSync(join(scratch, id)).filter((n) => n.endsWith(".part"));
  const received = (m: Member) => m.got.filter((x) => x.type === "snap");

  it("sends a snapshot larger than the frame limit in chunks; it arrives whole and leaves no file", async () => {
    const [n1, n2] = await trio({ maxFrameBytes: 64 * 1024 });
    const data = randomBytes(1024 * 1024);
    n1.t.send([snapTo("n1", "n2", data)]);
    await waitFor("a snapshot at n1", () => n1.snapshots.length === 1, 5000, 5);
    expect(n1.snapshots).toEqual([["n2", true]]);
    expect(received(n2)).toHaveLength(1);
    expect(Buffer.from(received(n2)[0]!.snapshot!.data).equals(data)).toBe(true);
    expect(partFiles("n2")).toEqual([]);
  });

  it("sends one snapshot to a peer at a time: asking again meanwhile does not start (or encode) another", async () => {
    const [n1, n2] = await trio({ maxFrameBytes: 64 * 1024 });
    const data = randomBytes(4 * 1024 * 1024);
    n1.t.send([snapTo("n1", "n2", data)]);
    n1.t.send([snapTo("n1", "n2", data)]);
    await waitFor("a snapshot at n1", () => n1.snapshots.length > 0, 5000, 5);
    await sleep(100);
    expect(n1.snapshots).toEqual([["n2", true]]);
    expect(received(n2)).toHaveLength(1);
  });

  it("a transfer cut short (the sender goes away) leaves no file, and the next one arrives whole", async () => {
    const [n1, n2, n3] = await trio({ maxFrameBytes: 64 * 1024 });
    const data = randomBytes(16 * 1024 * 1024);
    n1.t.send([snapTo("n1", "n2", data)]);
    await waitFor("a partial snapshot file at n2", () => partFiles("n2").length === 1, 10_000, 5);
    await n1.t.stop();
    await waitFor("no partial snapshot file left at n2", () => partFiles("n2").length === 0, 5000, 5);
    expect(received(n2)).toEqual([]);
    expect(n2.logs.join("\n")).toMatch(/snapshot transfer from n1 abandoned: connection closed/);
    n3.t.send([snapTo("n3", "n2", data)]);
    await waitFor("a snapshot at n3", () => n3.snapshots.length === 1, 10_000, 5);
    expect(n3.snapshots).toEqual([["n2", true]]);
    expect(Buffer.from(received(n2)[0]!.snapshot!.data).equals(data)).toBe(true);
    expect(partFiles("n2")).toEqual([]);
  });

  it("a receiver going away mid-transfer fails the transfer at the sender, which reports it", async () => {
    const [n1, n2] = await trio({ maxFrameBytes: 64 * 1024 });
    n1.t.send([snapTo("n1", "n2", randomBytes(16 * 1024 * 1024))]);
    await waitFor("a partial snapshot file at n2", () => partFiles("n2").length === 1, 10_000, 5);
    await n2.t.stop();
    await waitFor("a snapshot at n1", () => n1.snapshots.length === 1, 5000, 5);
    expect(n1.snapshots).toEqual([["n2", false]]);
    expect(partFiles("n2")).toEqual([]);
  });

  it("removes the snapshot files a killed process left behind when it starts", async () => {
    mkdirSync(join(scratch, "n7"), { recursive: true });
    writeFileSync(join(scratch, "n7", "1700000000000-1.part"), "half a snapshot");
    await member("n7");
    expect(partFiles("n7")).toEqual([]);
  });

  it("reports unreachable peers (no listener, unknown address) and failed snapshots", async () => {
    const [n1] = await trio();
    const deadPort = await freePort();
    n1.t.setPeers(new Map([["n4", `127.0.0.1:${deadPort}`]]));
    n1.t.send([msg("n1", "n4")]);
    await waitFor("n1 to report n4 unreachable", () => n1.unreachable.includes("n4"), 5000, 5);
    // While backing off, further sends are dropped and reported without waiting for a dial.
    n1.t.send([msg("n1", "n9")]);
    await waitFor("n1 to report n9 unreachable", () => n1.unreachable.includes("n9"), 5000, 5);
    await sleep(300);
    n1.t.send([
      msg("n1", "n4", {
        type: "snap",
        snapshot: {
          meta: { index: 1, term: 1, confState: { voters: [], learners: [] } },
          data: new Uint8Array(1),
        },
      }),
    ]);
    await waitFor("a snapshot at n1", () => n1.snapshots.length === 1, 5000, 5);
    expect(n1.snapshots).toEqual([["n4", false]]);
    expect(n1.logs.some((l) => /n4/.test(l) && /refused/.test(l))).toBe(true);
  });

  it("rate-limits unreachable reports", async () => {
    const [n1] = await trio();
    n1.t.setPeers(new Map([["n4", `127.0.0.1:${await freePort()}`]]));
    const start = Date.now();
    for (let i = 0; i < 50; i++) {
      n1.t.send([msg("n1", "n4")]);
      await sleep(2);
    }
    await sleep(50);
    // At most one report per 250 ms window (however slow the machine ran the loop).
    const windows = Math.ceil((Date.now() - start) / 250) + 1;
    expect(n1.unreachable.length).toBeGreaterThan(0);
    expect(n1.unreachable.length).toBeLessThanOrEqual(windows);
    expect(n1.unreachable.length).toBeLessThan(50);
  });

  it("reconnects after a peer restarts on the same address", async () => {
    const [n1, n2] = await trio();
    await sendUntil(n1.t, msg("n1", "n2"), () => n2.got.length > 0);
    const port = n2.t.address.port;
    await n2.t.stop();
    started.splice(started.indexOf(n2.t), 1);
    await waitFor(
      "n1 to report n2 unreachable while sending to it",
      () => {
        n1.t.send([msg("n1", "n2")]);
        return n1.unreachable.includes("n2");
      },
      5000,
      5,
    );
    const again = await member("n2", { port });
    again.t.setPeers(new Map([["n1", n1.addr]]));
    await sendUntil(n1.t, msg("n1", "n2", { index: 42 }), () => again.got.some((m) => m.index === 42));
    expect(n1.logs.some((l) => /connection to n2 lost/.test(l))).toBe(true);
  });

  it("forwards requests: results, errors with code/message/data, timeouts, and 'unreachable'", async () => {
    const seen: [string, unknown, string][] = [];
    const onRequest = async (method: string, params: unknown, from: string) => {
      seen.push([method, params, from]);
      if (method === "leader.fail")
        throw Object.assign(new Error("Key not found"), {
          code: "kv",
          data: { errorCode: 100, cause: "/a" },
        });
      if (method === "leader.hang") return new Promise(() => {});
      return { ok: params };
    };
    const [n1, n2] = await trio({ onRequest });
    const res = (await n1.t.request(
      "n2",
      "leader.put",
      { key: "/a", value: new Uint8Array([1, 2]) },
      2000,
    )) as {
      ok: { key: string; value: Uint8Array };
    };
    expect(res.ok.key).toBe("/a");
    // Binary values come back as Buffers (a Uint8Array subclass).
    expect(res.ok.value).toBeInstanceOf(Uint8Array);
    expect([...res.ok.value]).toEqual([1, 2]);
    expect(seen[0]![2]).toBe("n1");

    const err = await rejection(n1.t.request("n2", "leader.fail", null, 2000));
    expect([err.code, err.message, err.data]).toEqual([
      "kv",
      "Key not found",
      { errorCode: 100, cause: "/a" },
    ]);

    const t = await rejection(n1.t.request("n2", "leader.hang", null, 150));
    expect(t.code).toBe("timeout");

    // The reverse direction works over n2's own outbound connection.
    expect(await n2.t.request("n1", "leader.get", 7, 2000)).toEqual({ ok: 7 });

    n1.t.setPeers(new Map([["n4", `127.0.0.1:${await freePort()}`]]));
    const u = await rejection(n1.t.request("n4", "leader.put", null, 2000));
    expect(u).toBeInstanceOf(PeerUnreachableError);
    expect(u.code).toBe("unreachable");
    const unknown = await rejection(n1.t.request("n9", "leader.put", null, 2000));
    expect(unknown.code).toBe("unreachable");
  });

  it("a request to a peer without onRequest fails with unknown_method", async () => {
    const [n1] = await trio();
    const err = await rejection(n1.t.request("n2", "leader.put", null, 2000));
    expect(err.code).toBe("unknown_method");
  });

  it("a peer that went down makes request() reject with 'unreachable'", async () => {
    const [n1, n2] = await trio({ onRequest: () => "pong" });
    expect(await n1.t.request("n2", "ping", null, 2000)).toBe("pong");
    await n2.t.stop();
    started.splice(started.indexOf(n2.t), 1);
    await sleep(50);
    const err = await rejection(n1.t.request("n2", "ping", null, 2000));
    expect(err.code).toBe("unreachable");
  });

  it("answers over the inbound connection when it has no address for the sender (a joining node)", async () => {
    const [n1] = await trio();
    const n5 = await member("n5");
    n1.t.setPeers(new Map([["n5", n5.addr]]));
    await sendUntil(n1.t, msg("n1", "n5"), () => n5.got.length > 0);
    n5.t.send([msg("n5", "n1", { type: "heartbeatResp", index: 77 })]);
    await waitFor("the message at index 77", () => n1.got.some((m) => m.index === 77), 5000, 5);
    expect(n5.unreachable).toEqual([]);
  });

  it("a transport with the wrong secret cannot deliver messages, and the refusal is logged once", async () => {
    const [n1] = await trio();
    const bad = await member("n4", { secret: Buffer.from("not-the-cluster-secret") });
    bad.t.setPeers(new Map([["n1", n1.addr]]));
    for (let i = 0; i < 20; i++) {
      bad.t.send([msg("n4", "n1")]);
      await sleep(20);
    }
    expect(n1.got).toEqual([]);
    expect(bad.unreachable).toContain("n1");
    const refusals = n1.logs.filter((l) => /refused a peer connection/.test(l));
    expect(refusals.length).toBe(1);
    expect(refusals[0]).toMatch(/secret/);
    // The other direction fails too.
    n1.t.setPeers(new Map([["n4", bad.addr]]));
    n1.t.send([msg("n1", "n4")]);
    await waitFor("n1 to report n4 unreachable", () => n1.unreachable.includes("n4"), 5000, 5);
    expect(bad.got).toEqual([]);
  });

  it("refuses to deliver to a node whose name does not match the configured id", async () => {
    const [n1, , n3] = await trio();
    // "n2" is configured at n3's address.
    n1.t.setPeers(new Map([["n2", n3.addr]]));
    n1.t.send([msg("n1", "n2")]);
    await waitFor("n1 to report n2 unreachable", () => n1.unreachable.includes("n2"), 5000, 5);
    expect(n3.got).toEqual([]);
    expect(n1.logs.some((l) => /not "n2"/.test(l))).toBe(true);
  });

  it("drops messages and reports the peer when too much is queued for its connection", async () => {
    const [n1, n2] = await trio({ maxBufferedBytes: 1 });
    await sendUntil(n1.t, msg("n1", "n2"), () => n2.got.length > 0);
    n1.t.send([
      msg("n1", "n2", { entries: [{ term: 1, index: 1, type: "normal", data: new Uint8Array(1000) }] }),
    ]);
    n1.t.send([msg("n1", "n2")]); // same tick: the first is still queued
    await waitFor("n1 to report n2 unreachable", () => n1.unreachable.includes("n2"), 5000, 5);
  });

  it("a request in flight to a peer that leaves the cluster still gets its answer; nothing new is sent there", async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const arrived: string[] = [];
    const onRequest = async (method: string) => {
      arrived.push(method);
      await released;
      return `${method} done`;
    };
    const [n1, n2, n3] = await trio({ onRequest });
    const answer = n1.t.request("n2", "leader.remove", { name: "n2" }, 5000);
    await waitFor("one message arrived", () => arrived.length === 1, 5000, 5);
    // Removing the leader through a follower: the follower applies the removal before the leader's answer is back.
    n1.t.setPeers(new Map([["n3", n3.addr]]));
    n1.t.send([msg("n1", "n2")]);
    await waitFor("n1 to report n2 unreachable", () => n1.unreachable.includes("n2"), 5000, 5);
    release();
    expect(await answer).toBe("leader.remove done");
    expect(n2.got).toEqual([]);
    const after = await rejection(n1.t.request("n2", "leader.put", null, 1000));
    expect(after.code).toBe("unreachable");
  });

  it("setPeers closes connections to removed peers and stop() is idempotent", async () => {
    const [n1, n2] = await trio();
    await sendUntil(n1.t, msg("n1", "n2"), () => n2.got.length > 0);
    n1.t.setPeers(new Map([["n3", "127.0.0.1:1"]]));
    n1.t.send([msg("n1", "n2")]);
    await waitFor("n1 to report n2 unreachable", () => n1.unreachable.includes("n2"), 5000, 5);
    await n1.t.stop();
    await n1.t.stop();
    n1.t.send([msg("n1", "n3")]); // ignored after stop
  });
});
