import { describe, expect, it } from "vitest";
import { appendBytes, RaftTrafficStats } from "../src/etcdv2/raft-stats.ts";
import type { Entry, Message } from "../src/raft/types.ts";

const entry = (index: number, bytes = 100): Entry => ({
  index,
  term: 1,
  type: "normal",
  data: new Uint8Array(bytes),
});
const app = (to: string, prev: number, n: number): Message => ({
  type: "app",
  from: "n1",
  to,
  term: 1,
  index: prev,
  logTerm: 1,
  commit: prev,
  entries: Array.from({ length: n }, (_, i) => entry(prev + 1 + i)),
});
const ack = (from: string, index: number, reject = false): Message => ({
  type: "appResp",
  from,
  to: "n1",
  term: 1,
  index,
  reject,
});

function clocked() {
  let t = 0;
  const stats = new RaftTrafficStats(() => t);
  return { stats, at: (ms: number) => (t = ms) };
}

describe("Raft traffic stats (etcd's /v2/stats/self and /v2/stats/leader)", () => {
  it("counts appends sent and received, with rates over the recent window that drop to 0 when stale", () => {
    const { stats, at } = clocked();
    for (let i = 0; i < 11; i++) {
      at(i * 100);
      stats.sent([app("n2", i, 1), { ...app("n3", i, 1) }]);
    }
    expect(stats.sendAppendCount).toBe(22);
    const [pkg, bw] = stats.rates().send;
    // 22 appends over 1 s (the first at 0 ms, the last at 1000 ms).
    expect(pkg).toBeCloseTo(22, 5);
    expect(bw).toBeCloseTo(22 * appendBytes(app("n2", 0, 1)), 5);
    expect(stats.rates().recv).toEqual([0, 0]);
    at(2500);
    expect(stats.rates().send).toEqual([0, 0]);
    stats.received(app("n1", 5, 2));
    expect(stats.recvAppendCount).toBe(1);
  });

  it("measures each follower's append round trip (current, mean, deviation, extremes) and counts answers", () => {
    const { stats, at } = clocked();
    at(0);
    stats.sent([app("n2", 0, 1)]);
    at(2);
    stats.received(ack("n2", 1));
    at(10);
    stats.sent([app("n2", 1, 1)]);
    at(14);
    stats.sent([app("n2", 2, 1)]);
    at(16); // one answer covers both outstanding appends: the newest gives the round trip (2 ms)
    stats.received(ack("n2", 3));
    const f = stats.followerStats("n2");
    expect(f.counts).toEqual({ fail: 0, success: 2 });
    expect(f.latency.current).toBeCloseTo(0.002, 9);
    expect(f.latency.average).toBeCloseTo(0.002, 9);
    expect(f.latency.minimum).toBeCloseTo(0.002, 9);
    expect(f.latency.maximum).toBeCloseTo(0.002, 9);
    expect(f.latency.standardDeviation).toBeCloseTo(0, 9);
    at(20);
    stats.sent([app("n2", 3, 1)]);
    at(26);
    stats.received(ack("n2", 4));
    expect(f.latency.current).toBeCloseTo(0.006, 9);
    expect(f.latency.maximum).toBeCloseTo(0.006, 9);
    expect(f.latency.average).toBeCloseTo((0.002 + 0.002 + 0.006) / 3, 9);
    const mean = (0.002 + 0.002 + 0.006) / 3;
    const sd = Math.sqrt((0.002 ** 2 + 0.002 ** 2 + 0.006 ** 2) / 3 - mean ** 2);
    expect(f.latency.standardDeviation).toBeCloseTo(sd, 9);
  });

  it("counts rejected appends and unreachable followers as failures", () => {
    const { stats, at } = clocked();
    at(0);
    stats.sent([app("n3", 5, 1)]);
    stats.received(ack("n3", 5, true));
    stats.unreachable("n3");
    expect(stats.followerStats("n3").counts).toEqual({ fail: 2, success: 0 });
    // Answers from a member the leader never sent to are ignored; an unknown follower starts at zero.
    stats.received(ack("n9", 3));
    expect(stats.followerStats("n9")).toEqual({
      latency: { current: 0, average: 0, standardDeviation: 0, minimum: 0, maximum: 0 },
      counts: { fail: 0, success: 0 },
    });
  });
});

describe("rate window", () => {
  it("keeps only the newest 200 appends (etcd's statsQueue)", () => {
    let t = 0;
    const stats = new RaftTrafficStats(() => t);
    for (let i = 0; i < 250; i++) {
      t = i * 10; // one append every 10 ms for 2.5 s
      stats.sent([{ type: "app", from: "n1", to: "n2", term: 1, index: i, entries: [] }]);
    }
    // The window holds appends 50..249: 200 over 1.99 s.
    expect(stats.rates().send[0]).toBeCloseTo(200 / 1.99, 5);
    expect(stats.rates().send[1]).toBeCloseTo((200 * 32) / 1.99, 5);
  });
});
