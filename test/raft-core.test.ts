// Hand-driven scenarios for the pure Raft core: each test controls exactly which messages are delivered.
import { describe, expect, it } from "vitest";
import { bestSuccessor } from "../src/raft/progress.ts";
import { bootstrapLog, ProposalError, Raft, type RaftConfig } from "../src/raft/raft.ts";
import type { Message, NodeId, ReadState, Snapshot } from "../src/raft/types.ts";
import { prng } from "./support/prng.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A cluster whose network only moves messages when told to. Persistence is instant and never lost. */
class Manual {
  nodes = new Map<NodeId, Raft>();
  queue: Message[] = [];
  applied = new Map<NodeId, string[]>();
  readStates = new Map<NodeId, ReadState[]>();
  down = new Set<NodeId>();

  constructor(ids: NodeId[], overrides: Partial<RaftConfig> = {}, spares: NodeId[] = []) {
    const boot = bootstrapLog(ids);
    ids.forEach((id, i) => {
      this.add(id, { ...boot, snapshot: null }, i, overrides);
    });
    const empty = { hardState: { term: 0, vote: null, commit: 0 }, entries: [], snapshot: null };
    spares.forEach((id, i) => {
      this.add(id, empty, 100 + i, overrides);
    });
    this.flush();
  }

  add(
    id: NodeId,
    state: ConstructorParameters<typeof Raft>[1],
    seed: number,
    overrides: Partial<RaftConfig>,
  ): void {
    const config: RaftConfig = {
      id,
      electionTick: 10,
      heartbeatTick: 1,
      maxInflightMsgs: 4,
      maxSizePerMsg: 1024,
      preVote: true,
      checkQuorum: true,
      random: prng(seed),
      ...overrides,
    };
    this.nodes.set(id, new Raft(config, state));
    this.applied.set(id, []);
    this.readStates.set(id, []);
  }

  get(id: NodeId): Raft {
    return this.nodes.get(id)!;
  }

  /** Runs every node's Ready loop, queueing outgoing messages. */
  flush(): void {
    for (const [id, r] of this.nodes) {
      while (r.hasReady()) {
        const rd = r.ready();
        this.queue.push(...rd.messages, ...rd.messagesAfterPersist);
        for (const e of rd.committedEntries) {
          if (e.type === "normal" && e.data.length > 0) this.applied.get(id)!.push(dec.decode(e.data));
        }
        this.readStates.get(id)!.push(...rd.readStates);
        r.advance(rd);
      }
    }
  }

  /**
   * Delivers queued messages until the network is quiet. `filter` may drop a message (false) or replace it
   * (returning another message).
   */
  deliverAll(filter: (m: Message) => boolean | Message = () => true, maxRounds = 100): void {
    for (let round = 0; round < maxRounds; round++) {
      this.flush();
      const batch = this.queue;
      this.queue = [];
      let moved = 0;
      for (const m of batch) {
        if (this.down.has(m.to) || this.down.has(m.from)) continue;
        const verdict = filter(m);
        if (verdict === false) continue;
        this.nodes.get(m.to)?.step(verdict === true ? m : verdict);
        moved++;
      }
      if (moved === 0) return;
    }
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) this.get(id).tick();
    this.flush();
  }

  /** Makes `id` campaign at once, as a leadership transfer does (voters still inside a leader lease listen). */
  elect(id: NodeId, filter?: (m: Message) => boolean | Message): void {
    const r = this.get(id);
    r.step({ type: "timeoutNow", from: id, to: id, term: r.term });
    this.deliverAll(filter);
    expect(this.get(id).role).toBe("leader");
  }

  propose(id: NodeId, value: string): void {
    this.get(id).propose([enc.encode(value)]);
    this.flush();
  }
}

describe("leader election", () => {
  it("elects one leader, which commits a no-op before serving", () => {
    const c = new Manual(["a", "b", "c"]);
    c.tick("a", 20);
    c.deliverAll();
    expect(c.get("a").role).toBe("leader");
    expect(c.get("b").lead).toBe("a");
    expect(c.get("c").lead).toBe("a");
    expect(c.get("a").log.committed).toBe(4); // 3 bootstrap entries + the no-op of term 2
  });

  it("a single node elects itself and commits alone", () => {
    const c = new Manual(["solo"]);
    c.tick("solo", 20);
    expect(c.get("solo").role).toBe("leader");
    c.propose("solo", "x");
    expect(c.applied.get("solo")).toEqual(["x"]);
  });

  it("pre-vote: a partitioned node rejoining does not depose a healthy leader or raise terms", () => {
    const c = new Manual(["a", "b", "c"]);
    c.elect("a");
    const term = c.get("a").term;
    c.down.add("c");
    c.tick("c", 100); // c campaigns repeatedly in isolation
    c.queue = [];
    expect(c.get("c").term).toBe(term);
    c.down.delete("c");
    c.tick("c", 20);
    c.deliverAll();
    expect(c.get("a").role).toBe("leader");
    expect(c.get("a").term).toBe(term);
  });

  it("without pre-vote the same node would have raised its term (the test can tell the difference)", () => {
    const c = new Manual(["a", "b", "c"], { preVote: false });
    c.elect("a");
    const term = c.get("a").term;
    c.down.add("c");
    c.tick("c", 100);
    expect(c.get("c").term).toBeGreaterThan(term);
  });

  it("check-quorum: a leader cut off from the majority steps down within an election timeout", () => {
    const c = new Manual(["a", "b", "c"]);
    c.elect("a");
    c.down.add("b");
    c.down.add("c");
    for (let i = 0; i < 25; i++) {
      c.tick("a");
      c.deliverAll();
    }
    expect(c.get("a").role).toBe("follower");
  });

  it("voters ignore vote requests while they hear from a leader (leader lease)", () => {
    const c = new Manual(["a", "b", "c"]);
    c.elect("a");
    const b = c.get("b");
    b.step({ type: "vote", from: "c", to: "b", term: b.term + 1, index: 100, logTerm: 100 });
    expect(b.term).toBe(c.get("a").term);
    expect(b.lead).toBe("a");
  });
});

describe("log replication", () => {
  it("replicates and commits proposals in order on every node", () => {
    const c = new Manual(["a", "b", "c"]);
    c.elect("a");
    for (let i = 0; i < 20; i++) c.propose("a", `v${i}`);
    c.deliverAll();
    const want = Array.from({ length: 20 }, (_, i) => `v${i}`);
    for (const id of ["a", "b", "c"]) expect(c.applied.get(id)).toEqual(want);
  });

  it("entries replaced while they were being written are handed to storage again (stableTo checks the term)", () => {
    const c = new Manual(["a", "b", "c"]);
    const b = c.get("b");
    const entry = (term: number, index: number) => ({
      term,
      index,
      type: "normal" as const,
      data: enc.encode(`${term}.${index}`),
    });
    b.step({
      type: "app",
      from: "a",
      to: "b",
      term: 2,
      index: 3,
      logTerm: 1,
      entries: [entry(2, 4), entry(2, 5)],
      commit: 3,
    });
    const writing = b.ready();
    expect(writing.entries.map((e) => e.index)).toEqual([4, 5]);
    // While 4..5 are on their way to the disk, a new leader replaces entry 5 (inputs may be stepped meanwhile).
    b.step({
      type: "app",
      from: "c",
      to: "b",
      term: 3,
      index: 4,
      logTerm: 2,
      entries: [entry(3, 5)],
      commit: 3,
    });
    b.advance(writing);
    // Entry 5 of term 2 is durable, but the log now holds entry 5 of term 3: that one must still be written.
    const next = b.ready();
    expect(next.entries.map((e) => `${e.term}.${e.index}`)).toContain("3.5");
    expect(next.mustSync).toBe(true);
  });

  it("with the write asynchronous: a follower applies what the leader committed while its own copy is being written, and acknowledges only durable entries", () => {
    const c = new Manual(["a", "b", "c"]);
    c.elect("a");
    c.propose("a", "v1");
    c.deliverAll();
    const [a, b, cc] = [c.get("a"), c.get("b"), c.get("c")];
    a.propose([enc.encode("v2")]);
    const rdA = a.ready();
    a.advance(rdA);
    const appTo = (id: NodeId) => rdA.messages.find((m) => m.type === "app" && m.to === id)!;
    b.step(appTo("b"));
    const writing = b.ready();
    expect(writing.entries.map((e) => dec.decode(e.data))).toEqual(["v2"]);
    expect(writing.messagesAfterPersist.map((m) => m.type)).toEqual(["appResp"]);
    // c acknowledges; the leader commits v2 and says so to b, whose write of v2 is still in flight.
    cc.step(appTo("c"));
    const rdC = cc.ready();
    cc.advance(rdC);
    for (const m of rdC.messagesAfterPersist) a.step(m);
    const rdA2 = a.ready();
    a.advance(rdA2);
    const commitToB = rdA2.messages.find((m) => m.type === "app" && m.to === "b")!;
    expect(commitToB.commit).toBe(writing.entries[0]!.index);
    b.step(commitToB);
    expect(b.hasReadyWhileWriting()).toBe(true);
    const meanwhile = b.readyWhileWriting();
    expect(meanwhile.committedEntries.map((e) => dec.decode(e.data))).toEqual(["v2"]);
    expect(meanwhile.entries).toEqual([]);
    expect(meanwhile.hardState).toBeNull();
    // Its answer to the commit message acknowledges v2, which is not durable yet: it waits for the next write.
    expect(meanwhile.messagesAfterPersist).toEqual([]);
    expect(meanwhile.messages).toEqual([]);
    b.applied(meanwhile);
    expect(b.hasReadyWhileWriting()).toBe(false);
    b.persisted(writing);
    const next = b.ready();
    expect(next.committedEntries).toEqual([]);
    expect(next.messagesAfterPersist.map((m) => m.type)).toEqual(["appResp"]);
  });

  it("with its write held up (a full disk), a follower answers heartbeats and forwards reads, and acknowledges nothing", () => {
    const c = new Manual(["a", "b", "c"]);
    c.elect("a");
    c.deliverAll();
    const [a, b] = [c.get("a"), c.get("b")];
    a.propose([enc.encode("v1")]);
    const rdA = a.ready();
    a.advance(rdA);
    b.step(rdA.messages.find((m) => m.type === "app" && m.to === "b")!);
    const writing = b.ready();
    expect(writing.messagesAfterPersist.map((m) => m.type)).toEqual(["appResp"]);
    // The write does not complete. Without answers to its heartbeats the leader's check-quorum would depose it.
    b.step({ type: "heartbeat", from: "a", to: "b", term: a.term, commit: 0, context: enc.encode("r1") });
    b.readIndex(enc.encode("r2"));
    expect(b.hasReadyWhileWriting()).toBe(true);
    const meanwhile = b.readyWhileWriting();
    expect(meanwhile.messages.map((m) => [m.type, m.to])).toEqual([
      ["heartbeatResp", "a"],
      ["readIndex", "a"],
    ]);
    expect(meanwhile.messagesAfterPersist).toEqual([]);
    b.applied(meanwhile);
    expect(b.hasReadyWhileWriting()).toBe(false);
  });

  it("followers refuse proposals with the leader's id", () => {
    const c = new Manual(["a", "b", "c"]);
    c.elect("a");
    expect(() => c.get("b").propose([enc.encode("x")])).toThrowError(ProposalError);
    try {
      c.get("b").propose([enc.encode("x")]);
    } catch (e) {
      expect((e as ProposalError).leader).toBe("a");
    }
  });

  it("flow control: at most maxInflightMsgs appends are outstanding to a silent follower", () => {
    const c = new Manual(["a", "b", "c"], { maxSizePerMsg: 1, maxInflightMsgs: 4 });
    c.elect("a");
    c.down.add("c");
    for (let i = 0; i < 50; i++) c.propose("a", `v${i}`);
    const toC = c.queue.filter((m) => m.to === "c" && m.type === "app" && (m.entries?.length ?? 0) > 0);
    expect(toC.length).toBeLessThanOrEqual(4);
  });

  it("fast back-off skips a whole conflicting term per round trip", () => {
    const c = new Manual(["a", "b", "c"]);
    c.elect("a");
    // b is elected (with c), then cut off, and appends 30 entries nobody else gets.
    c.down.add("a");
    c.elect("b");
    c.down.add("c");
    for (let i = 0; i < 30; i++) c.propose("b", `stale${i}`);
    c.queue = [];
    // c wins a later term with a's vote and commits a fresh entry; then b comes back.
    c.down.clear();
    c.down.add("b");
    c.elect("c");
    for (let i = 0; i < 20; i++) c.propose("c", `fresh${i}`);
    c.deliverAll();
    // A new leader probes b from its own last index, 20 entries above where b's log diverges.
    c.elect("a");
    c.down.delete("b");
    let rejections = 0;
    const count = (m: Message) => {
      if (m.type === "appResp" && m.reject) rejections++;
      return true;
    };
    c.tick("a", 1);
    c.deliverAll(count);
    expect(c.applied.get("b")).toContain("fresh19");
    expect(c.get("b").log.lastIndex()).toBe(c.get("a").log.lastIndex());
    // One step back per conflicting term, not one per conflicting entry (30).
    expect(rejections).toBeGreaterThan(0);
    expect(rejections).toBeLessThanOrEqual(2);
  });

  it("commits entries of earlier terms only through an entry of its own term (Raft §5.4.2, Figure 8)", () => {
    const c = new Manual(["a", "b", "c", "d", "e"], { maxSizePerMsg: 1 });
    c.elect("a");
    // (a) a appends X and replicates it to b only.
    c.propose("a", "X");
    c.deliverAll((m) => m.to === "b" || m.from === "b");
    c.queue = [];
    const xIndex = c.get("a").log.lastIndex();
    // (b) a and b go down; e is elected by c and d but its own entries reach nobody.
    c.down.add("a");
    c.down.add("b");
    c.elect("e", (m) => m.type !== "app");
    c.queue = [];
    expect(c.get("e").log.term(xIndex)).toBe(c.get("e").term);
    // (c) e goes down; a learns of the newer term, is elected by b and c, and copies X to c. Its own
    // no-op (after X) is held back.
    c.down.clear();
    c.down.add("e");
    c.down.add("d");
    const a = c.get("a");
    a.step({ type: "appResp", from: "c", to: "a", term: c.get("c").term });
    const holdBackAfterX = (m: Message) =>
      m.type === "app" ? { ...m, entries: (m.entries ?? []).filter((e) => e.index <= xIndex) } : true;
    c.elect("a", holdBackAfterX);
    expect(["a", "b", "c"].map((id) => c.get(id).log.term(xIndex))).toEqual([2, 2, 2]);
    // X is on a majority, yet it must not be committed by counting: e could still be elected (d's and
    // c's) and overwrite it, since e's last term is higher.
    expect(a.log.committed).toBeLessThan(xIndex);
    // Once the no-op of a's own term reaches the majority (resent after the next heartbeat), X commits with it.
    c.tick("a", 1);
    c.deliverAll();
    expect(a.log.committed).toBeGreaterThan(xIndex);
  });
});

describe("linearizable reads (ReadIndex)", () => {
  it("the leader answers after a heartbeat round with its commit index", () => {
    const c = new Manual(["a", "b", "c"]);
    c.elect("a");
    c.propose("a", "w1");
    c.deliverAll();
    c.get("a").readIndex(enc.encode("r1"));
    c.flush();
    expect(c.readStates.get("a")).toEqual([]);
    c.deliverAll();
    const rs = c.readStates.get("a")!;
    expect(rs).toHaveLength(1);
    expect(dec.decode(rs[0]!.context)).toBe("r1");
    expect(rs[0]!.index).toBe(c.get("a").log.committed);
  });

  it("a follower's read is confirmed by the leader and answered with the leader's commit index", () => {
    const c = new Manual(["a", "b", "c"]);
    c.elect("a");
    c.propose("a", "w1");
    c.deliverAll();
    c.get("b").readIndex(enc.encode("rb"));
    c.deliverAll();
    const rs = c.readStates.get("b")!;
    expect(rs.map((r) => dec.decode(r.context))).toEqual(["rb"]);
    expect(rs[0]!.index).toBe(c.get("a").log.committed);
  });

  it("a deposed leader cut off from the majority never answers a read", () => {
    const c = new Manual(["a", "b", "c"]);
    c.elect("a");
    c.down.add("b");
    c.down.add("c");
    c.get("a").readIndex(enc.encode("stale?"));
    c.deliverAll();
    for (let i = 0; i < 5; i++) c.tick("a");
    c.deliverAll();
    expect(c.readStates.get("a")).toEqual([]);
  });
});

describe("membership and leadership", () => {
  it("a learner catches up without voting, is promoted, and then counts for the quorum", () => {
    const c = new Manual(["a", "b", "c"], {}, ["d"]);
    c.elect("a");
    for (let i = 0; i < 5; i++) c.propose("a", `v${i}`);
    c.deliverAll();
    c.get("a").proposeConfChange({ type: "addLearner", id: "d" });
    c.deliverAll();
    c.tick("a", 2);
    c.deliverAll();
    expect(c.applied.get("d")).toEqual(["v0", "v1", "v2", "v3", "v4"]);
    expect(c.get("a").confState()).toEqual({ voters: ["a", "b", "c"], learners: ["d"] });
    c.get("a").proposeConfChange({ type: "promote", id: "d" });
    c.deliverAll();
    expect(c.get("d").confState().voters).toContain("d");
    // With d a voter, a and d alone cannot commit in a 4-voter cluster, but a, b and d can.
    c.down.add("c");
    c.down.add("b");
    c.propose("a", "needs-three");
    c.deliverAll();
    expect(c.applied.get("a")).not.toContain("needs-three");
    c.down.delete("b");
    c.tick("a", 1);
    c.deliverAll();
    expect(c.applied.get("a")).toContain("needs-three");
  });

  it("refuses a second membership change while one is pending, and invalid ones", () => {
    const c = new Manual(["a", "b", "c"], {}, ["d", "e"]);
    c.elect("a");
    c.get("a").proposeConfChange({ type: "addLearner", id: "d" });
    expect(() => c.get("a").proposeConfChange({ type: "addLearner", id: "e" })).toThrow(
      /already in progress/,
    );
    c.deliverAll();
    expect(() => c.get("a").proposeConfChange({ type: "promote", id: "b" })).toThrow(/not a learner/);
    expect(() => c.get("a").proposeConfChange({ type: "remove", id: "zz" })).toThrow(/not a member/);
  });

  it("removing the leader makes it step down and hand over at once", () => {
    const c = new Manual(["a", "b", "c"]);
    c.elect("a");
    c.get("a").proposeConfChange({ type: "remove", id: "a" });
    c.deliverAll();
    expect(c.get("a").role).toBe("follower");
    const leaders = ["b", "c"].filter((id) => c.get(id).role === "leader");
    expect(leaders).toHaveLength(1);
    expect(c.get(leaders[0]!).confState().voters).toEqual(["b", "c"]);
  });

  it("transfers leadership to an up-to-date follower, refusing proposals meanwhile", () => {
    const c = new Manual(["a", "b", "c"]);
    c.elect("a");
    c.down.add("b");
    c.propose("a", "x");
    c.deliverAll();
    c.get("a").transferLeadership("b");
    expect(() => c.get("a").propose([enc.encode("y")])).toThrow(/leadership is moving/);
    c.down.delete("b");
    c.tick("a", 1);
    c.deliverAll();
    expect(c.get("b").role).toBe("leader");
    expect(c.applied.get("b")).toContain("x");
  });
});

describe("snapshots", () => {
  it("a follower too far behind is sent the snapshot and continues from it", () => {
    const c = new Manual(["a", "b", "c"]);
    c.elect("a");
    c.down.add("c");
    for (let i = 0; i < 30; i++) c.propose("a", `v${i}`);
    c.deliverAll();
    const a = c.get("a");
    const snap: Snapshot = {
      meta: { index: a.log.applied, term: a.log.term(a.log.applied)!, confState: a.confState() },
      data: enc.encode(JSON.stringify(c.applied.get("a"))),
    };
    a.compact(snap, 0);
    expect(a.log.firstIndex()).toBe(snap.meta.index + 1);
    c.down.delete("c");
    const snapsSent: Message[] = [];
    c.tick("a", 1);
    c.deliverAll((m) => {
      if (m.type === "snap") snapsSent.push(m);
      return true;
    });
    expect(snapsSent).toHaveLength(1);
    c.propose("a", "after");
    c.deliverAll();
    expect(c.get("c").log.snapshotIndex).toBe(snap.meta.index);
    expect(c.applied.get("c")).toEqual(["after"]); // the rest came in the snapshot, not as entries
  });
});

describe("bestSuccessor (a leader handing over: shutting down, or removing itself)", () => {
  const p = (id: string, match: number, recentActive = true, learner = false) => ({
    id,
    match,
    recentActive,
    learner,
  });
  it("picks the voter most caught up, preferring those heard from lately; never itself or a learner", () => {
    expect(bestSuccessor([p("n1", 9), p("n2", 5), p("n3", 7)], "n1")).toBe("n3");
    expect(bestSuccessor([p("n1", 9), p("n2", 5), p("n3", 8, false)], "n1")).toBe("n2");
    expect(bestSuccessor([p("n1", 9), p("n2", 5, false), p("n3", 8, false)], "n1")).toBe("n3");
    expect(bestSuccessor([p("n1", 9), p("l1", 9, true, true)], "n1")).toBeNull();
  });
});
