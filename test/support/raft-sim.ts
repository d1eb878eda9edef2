// A deterministic simulation of whole Raft clusters: a network that drops, delays, duplicates, reorders and
// partitions messages; crashes that keep only what was persisted; and Raft's safety properties checked as it runs.
import { bootstrapLog, ProposalError, Raft, type Ready } from "../../src/raft/raft.ts";
import type { ConfChange, Entry, HardState, Message, NodeId, Snapshot } from "../../src/raft/types.ts";
import { pick, prng } from "./prng.ts";

export interface SimOptions {
  seed: number;
  nodes: number;
  /** Extra nodes that start outside the cluster and may be added (membership changes). */
  spares?: number;
  dropRate?: number;
  duplicateRate?: number;
  /** Chance per time unit of a fault event (crash, restart, partition, heal). */
  faultRate?: number;
  membershipChanges?: boolean;
  /** Take a snapshot when this many entries were applied since the last one. */
  snapshotEvery?: number;
  /** Chance that a read arrives while a Ready's entries are being written. */
  readDuringWriteRate?: number;
  /** Chance that a node crashes between sending a Ready's appends and persisting them (default 0.0005). */
  crashMidWriteRate?: number;
}

interface Disk {
  hardState: HardState;
  snapshot: Snapshot | null;
  entries: Entry[];
}

interface SimNode {
  id: NodeId;
  raft: Raft | null;
  disk: Disk;
  /** Applied state: the data of every applied normal entry, in order (rebuilt from snapshot + replay). */
  applied: string[];
  appliedIndex: number;
  snapshotAt: number;
  /** A hard state written without a sync (a lone commit index): on disk only once a synced write follows. */
  unsynced: HardState | null;
}

interface InFlight {
  at: number;
  m: Message;
}

export class SafetyViolation extends Error {}

const TICK_EVERY = 10;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class SimCluster {
  readonly rand: () => number;
  readonly nodes = new Map<NodeId, SimNode>();
  private network: InFlight[] = [];
  /** Connections that will be seen closing: at `at`, `to` learns its connection to `from` closed. */
  private closes: { at: number; to: NodeId; from: NodeId }[] = [];
  /** Unordered pairs "a|b" that cannot talk. */
  private cut = new Set<string>();
  now = 0;
  private leaderOfTerm = new Map<number, NodeId>();
  /** index -> "term:data" of every entry any node applied. */
  private appliedEver = new Map<number, string>();
  private proposalSeq = 0;
  /** Writes acknowledged to a client: value -> [index, time]. */
  readonly acked = new Map<string, { index: number; at: number }>();
  private pending = new Map<string, { node: NodeId; index: number; term: number }>();
  readonly reads: { invokedAt: number; node: NodeId; index: number; ctx: string; done: boolean }[] = [];
  private readSeq = 0;
  readonly stats = {
    delivered: 0,
    dropped: 0,
    crashes: 0,
    elections: 0,
    snapshots: 0,
    confChanges: 0,
    reads: 0,
  };

  constructor(readonly opts: SimOptions) {
    this.rand = prng(opts.seed);
    this.maxSizePerMsg = this.rand() < 0.5 ? 1 : 256;
    this.maxInflightMsgs = this.rand() < 0.5 ? 2 : 8;
    const voters = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
    const spares = Array.from({ length: opts.spares ?? 0 }, (_, i) => `n${opts.nodes + i + 1}`);
    const boot = bootstrapLog(voters);
    for (const id of voters) this.addNode(id, { ...boot, snapshot: null });
    for (const id of spares)
      this.addNode(id, { hardState: { term: 0, vote: null, commit: 0 }, snapshot: null, entries: [] });
  }

  private addNode(id: NodeId, disk: Disk): void {
    const node: SimNode = {
      id,
      raft: null,
      disk,
      applied: [],
      appliedIndex: 0,
      snapshotAt: 0,
      unsynced: null,
    };
    this.nodes.set(id, node);
    this.start(node);
  }

  /** Per-run flow-control settings: tiny messages (one entry each) open windows that batching would hide. */
  private readonly maxSizePerMsg: number;
  private readonly maxInflightMsgs: number;

  private start(node: SimNode): void {
    const seed = Math.floor(this.rand() * 2 ** 32);
    node.raft = new Raft(
      {
        id: node.id,
        electionTick: 10,
        heartbeatTick: 1,
        maxInflightMsgs: this.maxInflightMsgs,
        maxSizePerMsg: this.maxSizePerMsg,
        preVote: true,
        checkQuorum: true,
        random: prng(seed),
      },
      {
        hardState: { ...node.disk.hardState },
        snapshot: node.disk.snapshot,
        entries: [...node.disk.entries],
      },
    );
    const snap = node.disk.snapshot;
    node.applied = snap ? (JSON.parse(decoder.decode(snap.data)) as string[]) : [];
    node.appliedIndex = snap?.meta.index ?? 0;
    node.snapshotAt = node.appliedIndex;
  }

  live(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.raft !== null);
  }

  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.live()) {
      if (n.raft!.role === "leader" && (!best || n.raft!.term > best.raft!.term)) best = n;
    }
    return best;
  }

  // ---- Faults -------------------------------------------------------------------------------------------

  crash(id: NodeId): void {
    const node = this.nodes.get(id)!;
    if (!node.raft) return;
    node.raft = null;
    // As after a power loss: what was written without a sync is gone.
    node.unsynced = null;
    this.stats.crashes++;
    for (const [v, p] of this.pending) if (p.node === id) this.pending.delete(v);
    // A dead process's connections close at once (the kernel resets them); a partitioned peer sees nothing.
    for (const n of this.live()) if (!this.cut.has(pairKey(id, n.id))) this.closeConnection(id, n.id);
  }

  /**
   * `to` sees its connection to `from` close (a crash, or a reset link: `from` may live on), as TCP shows it: after
   * what `from` had already sent it.
   */
  closeConnection(from: NodeId, to: NodeId): void {
    let at = this.now;
    for (const f of this.network) if (f.m.from === from && f.m.to === to) at = Math.max(at, f.at);
    this.closes.push({ at: at + Math.floor(this.rand() * 3), to, from });
  }

  restart(id: NodeId): void {
    const node = this.nodes.get(id)!;
    if (!node.raft) this.start(node);
  }

  partition(groupA: NodeId[]): void {
    const a = new Set(groupA);
    for (const x of this.nodes.keys()) {
      for (const y of this.nodes.keys()) if (a.has(x) !== a.has(y)) this.cut.add(pairKey(x, y));
    }
  }

  heal(): void {
    this.cut.clear();
  }

  healAndRestartAll(): void {
    this.heal();
    // With every node down (a single voter crashed) there is nobody to ask: restart them all.
    const noneLive = this.live().length === 0;
    for (const n of this.nodes.values())
      if (!n.raft && (noneLive || this.isMemberSomewhere(n.id))) this.restart(n.id);
  }

  private isMemberSomewhere(id: NodeId): boolean {
    return this.live().some((n) => {
      const c = n.raft!.confState();
      return c.voters.includes(id) || c.learners.includes(id);
    });
  }

  private randomFault(): void {
    const ids = [...this.nodes.keys()];
    const r = this.rand();
    const liveVoters = this.live().filter((n) => n.raft!.confState().voters.includes(n.id));
    const leader = this.leader();
    if (r < 0.25 && leader) {
      // Leaders are the interesting victims: their uncommitted tails are what Raft's safety rules are about.
      const v = this.rand();
      if (v < 0.4) this.crash(leader.id);
      else if (v < 0.8) this.partition([leader.id]);
      else {
        // A follower's connection to the live leader resets: it must not depose it.
        const follower = pick(
          this.rand,
          this.live().filter((n) => n !== leader),
        );
        if (follower) this.closeConnection(leader.id, follower.id);
      }
    } else if (r < 0.4) {
      // Keep a majority of the original voters alive most of the time so progress is possible.
      if (liveVoters.length > Math.floor(this.opts.nodes / 2) + 1) this.crash(pick(this.rand, liveVoters).id);
    } else if (r < 0.7) {
      const down = [...this.nodes.values()].filter((n) => !n.raft);
      if (down.length > 0) this.restart(pick(this.rand, down).id);
    } else if (r < 0.85) {
      this.heal();
      const group = ids.filter(() => this.rand() < 0.4);
      if (group.length > 0 && group.length < ids.length) this.partition(group);
    } else {
      this.heal();
    }
  }

  // ---- Client operations --------------------------------------------------------------------------------

  proposeAnywhere(): void {
    const target = pick(this.rand, this.live());
    if (!target) return;
    const value = `v${++this.proposalSeq}`;
    try {
      const at = target.raft!.propose([encoder.encode(value)]);
      this.pending.set(value, { node: target.id, index: at.index, term: at.term });
    } catch (e) {
      if (!(e instanceof ProposalError)) throw e;
    }
    this.process(target);
  }

  readAnywhere(): void {
    const target = pick(this.rand, this.live());
    if (!target) return;
    this.readAt(target);
    this.process(target);
  }

  private readAt(node: SimNode): void {
    const ctx = `r${++this.readSeq}`;
    try {
      node.raft!.readIndex(encoder.encode(ctx));
      this.reads.push({ invokedAt: this.now, node: node.id, index: -1, ctx, done: false });
    } catch (e) {
      if (!(e instanceof ProposalError)) throw e;
    }
  }

  /** Proposes one membership change through the current leader, if there is one. */
  changeMembership(): void {
    const leader = this.leader();
    if (!leader) return;
    const conf = leader.raft!.confState();
    const outside = [...this.nodes.keys()].filter(
      (id) => !conf.voters.includes(id) && !conf.learners.includes(id),
    );
    const options: ConfChange[] = [];
    for (const id of outside) if (this.nodes.get(id)!.raft) options.push({ type: "addLearner", id });
    for (const id of conf.learners) options.push({ type: "promote", id });
    if (conf.voters.length > 3) for (const id of conf.voters) options.push({ type: "remove", id });
    if (options.length === 0) return;
    try {
      leader.raft!.proposeConfChange(pick(this.rand, options));
      this.stats.confChanges++;
    } catch (e) {
      if (!(e instanceof ProposalError)) throw e;
    }
    this.process(leader);
  }

  // ---- Time ---------------------------------------------------------------------------------------------

  /** Advances time by one unit: deliver what is due, tick nodes, and (optionally) inject faults. */
  step(withFaults: boolean): void {
    this.now++;
    if (withFaults && this.rand() < (this.opts.faultRate ?? 0.002)) this.randomFault();
    const due = this.network.filter((f) => f.at <= this.now);
    this.network = this.network.filter((f) => f.at > this.now);
    for (const { m } of due) this.deliver(m);
    const closed = this.closes.filter((c) => c.at <= this.now);
    this.closes = this.closes.filter((c) => c.at > this.now);
    for (const c of closed) {
      const node = this.nodes.get(c.to);
      if (!node?.raft) continue;
      node.raft.leaderConnectionLost(c.from);
      this.process(node);
    }
    if (this.now % TICK_EVERY === 0) {
      for (const n of this.live()) {
        n.raft!.tick();
        this.process(n);
      }
    }
  }

  run(units: number, withFaults: boolean, load: { proposeRate: number; readRate?: number }): void {
    for (let i = 0; i < units; i++) {
      this.step(withFaults);
      if (this.rand() < load.proposeRate) this.proposeAnywhere();
      if (this.rand() < (load.readRate ?? 0)) this.readAnywhere();
      if (this.opts.membershipChanges && withFaults && this.rand() < 0.002) this.changeMembership();
    }
  }

  private deliver(m: Message): void {
    const node = this.nodes.get(m.to);
    if (!node?.raft || this.cut.has(pairKey(m.from, m.to))) {
      this.stats.dropped++;
      // A real transport notices a failed snapshot stream and says so (most of the time).
      if (m.type === "snap" && this.rand() < 0.7) this.nodes.get(m.from)?.raft?.reportSnapshot(m.to, false);
      return;
    }
    this.stats.delivered++;
    node.raft.step(m);
    this.process(node);
  }

  private send(m: Message, lossy: boolean): void {
    if (lossy && this.rand() < (this.opts.dropRate ?? 0)) {
      this.stats.dropped++;
      return;
    }
    const delay = 1 + Math.floor(this.rand() * (this.rand() < 0.05 ? 40 : 6));
    this.network.push({ at: this.now + delay, m });
    if (lossy && this.rand() < (this.opts.duplicateRate ?? 0)) {
      this.network.push({ at: this.now + delay + Math.floor(this.rand() * 10), m });
    }
  }

  /** The driver loop of one node: send, persist, send, apply, advance — with crash points in between. */
  process(node: SimNode): void {
    while (node.raft?.hasReady()) {
      const raft = node.raft;
      const rd = raft.ready();
      if (rd.softState) this.onSoftState(node, rd);
      for (const m of rd.messages) this.send(m, true);
      // A crash here loses this Ready's unpersisted entries, although the leader already sent them.
      if (this.rand() < (this.opts.crashMidWriteRate ?? 0.0005) && rd.entries.length > 0) {
        this.crash(node.id);
        return;
      }
      // A client's read may arrive while the write is in flight (the driver steps inputs meanwhile).
      const readRate = this.opts.readDuringWriteRate ?? 0;
      if (readRate > 0 && rd.entries.length > 0 && this.rand() < readRate) this.readAt(node);
      this.persist(node, rd);
      for (const m of rd.messagesAfterPersist) this.send(m, true);
      this.apply(node, rd);
      for (const rs of rd.readStates) this.completeRead(node, rs.index, decoder.decode(rs.context));
      raft.advance(rd);
      this.maybeSnapshot(node);
    }
  }

  private onSoftState(node: SimNode, rd: Ready): void {
    const ss = rd.softState!;
    if (ss.role !== "leader") return;
    this.stats.elections++;
    const prior = this.leaderOfTerm.get(ss.term);
    if (prior && prior !== node.id) {
      throw new SafetyViolation(`election safety: ${prior} and ${node.id} both leaders of term ${ss.term}`);
    }
    this.leaderOfTerm.set(ss.term, node.id);
    // Leader completeness: the new leader holds every entry ever applied anywhere.
    const log = node.raft!.log;
    for (const [index, value] of this.appliedEver) {
      if (index <= log.snapshotIndex) continue;
      const e = log.term(index) === undefined ? undefined : log.slice(index, index + 1)[0];
      if (!e || entryKey(e) !== value) {
        throw new SafetyViolation(
          `leader completeness: ${node.id} (term ${ss.term}) lacks committed entry ${index}`,
        );
      }
    }
  }

  private persist(node: SimNode, rd: Ready): void {
    const disk = node.disk;
    if (rd.snapshot) {
      disk.snapshot = rd.snapshot;
      disk.entries = disk.entries.filter((e) => e.index > rd.snapshot!.meta.index);
      node.applied = JSON.parse(decoder.decode(rd.snapshot.data)) as string[];
      node.appliedIndex = rd.snapshot.meta.index;
      node.snapshotAt = node.appliedIndex;
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index;
      disk.entries = disk.entries.filter((e) => e.index < first).concat(rd.entries);
    }
    if (!rd.mustSync) {
      if (rd.hardState) node.unsynced = { ...rd.hardState };
      return;
    }
    const hs = rd.hardState ?? node.unsynced;
    if (hs) disk.hardState = { ...hs };
    node.unsynced = null;
  }

  private apply(node: SimNode, rd: Ready): void {
    for (const e of rd.committedEntries) {
      if (e.index !== node.appliedIndex + 1) {
        throw new SafetyViolation(`${node.id} applied ${e.index} after ${node.appliedIndex}`);
      }
      const key = entryKey(e);
      const seen = this.appliedEver.get(e.index);
      if (seen !== undefined && seen !== key) {
        throw new SafetyViolation(
          `state machine safety: index ${e.index} is ${seen} on one node, ${key} on ${node.id}`,
        );
      }
      this.appliedEver.set(e.index, key);
      node.appliedIndex = e.index;
      if (e.type === "normal" && e.data.length > 0) {
        const value = decoder.decode(e.data);
        node.applied.push(value);
        const p = this.pending.get(value);
        if (p && p.node === node.id && p.index === e.index && p.term === e.term) {
          this.acked.set(value, { index: e.index, at: this.now });
          this.pending.delete(value);
        }
      }
    }
  }

  private completeRead(node: SimNode, index: number, ctx: string): void {
    const read = this.reads.find((r) => r.ctx === ctx && r.node === node.id);
    if (!read || read.done) return;
    read.done = true;
    read.index = index;
    this.stats.reads++;
    // Linearizable reads: every write acknowledged before the read began must be visible at its read index.
    for (const [value, w] of this.acked) {
      if (w.at < read.invokedAt && w.index > index) {
        throw new SafetyViolation(
          `stale read ${ctx} on ${node.id}: index ${index} misses ${value} acked at ${w.index}`,
        );
      }
    }
  }

  private maybeSnapshot(node: SimNode): void {
    const every = this.opts.snapshotEvery ?? 0;
    const raft = node.raft;
    if (!raft || every === 0 || node.appliedIndex - node.snapshotAt < every) return;
    const index = node.appliedIndex;
    const snapshot: Snapshot = {
      meta: { index, term: raft.log.term(index)!, confState: raft.confState() },
      data: encoder.encode(JSON.stringify(node.applied)),
    };
    node.disk.snapshot = snapshot;
    raft.compact(snapshot, 5);
    node.disk.entries = node.disk.entries.filter((e) => e.index > raft.log.snapshotIndex);
    node.snapshotAt = index;
    this.stats.snapshots++;
  }

  // ---- Checks -------------------------------------------------------------------------------------------

  /** Log matching: where two logs hold an entry with the same index and term, they agree up to there. */
  checkLogMatching(): void {
    const logs = this.live().map((n) => ({ id: n.id, log: n.raft!.log }));
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const x = logs[a]!;
        const y = logs[b]!;
        const lo = Math.max(x.log.firstIndex(), y.log.firstIndex());
        const hi = Math.min(x.log.lastIndex(), y.log.lastIndex());
        let agreedFrom = -1;
        for (let i = hi; i >= lo; i--) {
          if (x.log.term(i) === y.log.term(i)) {
            agreedFrom = i;
            break;
          }
        }
        for (let i = lo; i <= agreedFrom; i++) {
          const ex = x.log.slice(i, i + 1)[0]!;
          const ey = y.log.slice(i, i + 1)[0]!;
          if (entryKey(ex) !== entryKey(ey)) {
            throw new SafetyViolation(
              `log matching: ${x.id} and ${y.id} differ at ${i} below agreed ${agreedFrom}`,
            );
          }
        }
      }
    }
  }

  /** After healing: a fresh write must commit and reach every live member. */
  checkProgress(maxUnits: number): void {
    let value = "";
    for (let i = 0; i < maxUnits; i++) {
      this.step(false);
      // (Re)try every 200 units: an attempt may be lost to a leader change, like any client write.
      if (i % 200 === 0 && !this.acked.has(value)) {
        const leader = this.leader();
        if (leader) {
          value = `final-${this.opts.seed}-${i}`;
          try {
            const at = leader.raft!.propose([encoder.encode(value)]);
            this.pending.set(value, { node: leader.id, index: at.index, term: at.term });
          } catch (e) {
            if (!(e instanceof ProposalError)) throw e;
          }
          this.process(leader);
        }
      }
      const leader = this.leader();
      if (this.acked.has(value) && leader) {
        // Members as the cluster sees them: a node removed while down may never learn of it.
        const conf = leader.raft!.confState();
        const members = this.live().filter((n) => conf.voters.includes(n.id) || conf.learners.includes(n.id));
        if (members.every((n) => n.applied.includes(value))) return;
      }
    }
    const state = this.live().map((n) => `${n.id}:${n.raft!.role}@${n.raft!.term} applied ${n.appliedIndex}`);
    throw new SafetyViolation(`no progress after healing: ${state.join(", ")}`);
  }
}

function pairKey(a: NodeId, b: NodeId): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

function entryKey(e: Entry): string {
  return `${e.term}:${e.type}:${decoder.decode(e.data)}`;
}
