// The edge around the pure Raft core: a clock, durable storage, a network and the replicated state machine.
// Inputs (messages, proposals, reads, ticks) queue in an inbox that one processing pass drains; while a pass
// waits for the disk, new inputs accumulate, so proposals and acknowledgements are batched by load alone.
import { Packr } from "msgpackr";
import { type DriverClock, realClock } from "./clock.ts";
import { decodeConfChange } from "./conf-change.ts";
import { bootstrapLog, ProposalError, Raft, type RaftConfig, type Ready } from "./raft.ts";
import {
  type ConfChange,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type RaftStorage,
  type Snapshot,
  StorageFullError,
} from "./types.ts";

/** How often a write refused for lack of space is tried again (writes resume within this of space freeing). */
const NO_SPACE_RETRY_MS = 500;
/** Ticks to wait before trying again a snapshot that found the disk full. */
const SNAPSHOT_RETRY_TICKS = 50;

/** The application replicated by the log. apply() must be deterministic: every replica runs the same entries. */
export interface StateMachine {
  apply(entry: Entry): unknown;
  /**
   * The state as of the last applied entry: bytes, or parts whose concatenation is the bytes. The state must be
   * captured by the call itself; parts are taken one at a time between turns of the event loop, while entries go
   * on being applied, so encoding a large state never holds the loop for long.
   */
  snapshot(): Uint8Array | Iterable<Uint8Array>;
  restore(data: Uint8Array): void;
}

/** Where Raft messages go; the driver never waits on the network. */
export interface RaftTransport {
  send(messages: Message[]): void;
  /** Peer addresses as membership changes apply (context of conf entries). */
  setPeers(peers: Map<NodeId, string>): void;
}

export interface DriverOptions {
  id: NodeId;
  storage: RaftStorage;
  transport: RaftTransport;
  stateMachine: StateMachine;
  /** Founding members and their peer addresses, used only when the storage is empty and `join` is false. */
  initialCluster: Map<NodeId, string>;
  /** Start empty and wait to be added by the cluster (the leader sends the log or a snapshot). */
  join?: boolean;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  /** Take a state machine snapshot after this many applied entries. */
  snapshotEvery?: number;
  /** Entries kept behind a snapshot so slightly slow followers catch up without one. */
  snapshotCatchUpEntries?: number;
  maxInflightMsgs?: number;
  maxSizePerMsg?: number;
  logger?: (line: string) => void;
  random?: () => number;
  /** Time and the event loop (the real ones by default; a simulation passes virtual ones). */
  clock?: DriverClock;
  /**
   * Called once when the driver stops for good: storage failed (a StorageFailure) or the code is wrong (anything
   * else). The driver has already logged it as "fatal: ..."; without this option the error is rethrown.
   */
  onFatal?: (err: Error) => void;
  /** Told how long each snapshot of its own took to encode and make durable, in seconds (/metrics). */
  onSnapshotSaved?: (seconds: number) => void;
}

/** A storage operation failed: the node can no longer promise durability, so it stops rather than lie. */
export class StorageFailure extends Error {
  constructor(op: string, cause: unknown) {
    super(`${op}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export class NotLeaderError extends Error {
  readonly code = "not_leader";
  constructor(readonly leader: NodeId | null) {
    super(leader ? `not the leader (the leader is ${leader})` : "no leader is elected at the moment");
  }
}

/**
 * This node's disk is full (etcd's NOSPACE alarm): it refuses proposals at once, and serves reads and heartbeats,
 * until the write held up succeeds.
 */
export class NoSpaceError extends Error {
  readonly code = "no_space";
}

/** A proposal whose slot was taken by another leader's entry: it was not applied. */
export class ProposalDroppedError extends Error {
  readonly code = "proposal_dropped";
}

/**
 * A proposal this node can no longer follow: it installed a leader's snapshot covering the proposal's index, so
 * whether that index holds this proposal or another leader's entry is unknown here. Never retried automatically
 * (it may have been applied); clients see it as etcd's request timeout.
 */
export class ProposalOutcomeUnknownError extends Error {
  readonly code = "timeout";
}

interface PendingProposal {
  term: number;
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
}

type InboxItem =
  | { kind: "message"; m: Message }
  | { kind: "propose"; data: Uint8Array; resolve: (v: unknown) => void; reject: (e: Error) => void }
  | { kind: "confChange"; cc: ConfChange; resolve: (v: unknown) => void; reject: (e: Error) => void }
  | { kind: "read"; resolve: () => void; reject: (e: Error) => void }
  | { kind: "tick" }
  | { kind: "call"; fn: (raft: Raft) => void }
  | { kind: "persisted"; rd: Ready };

const packr = new Packr({ useRecords: false });

/** Snapshot data as stored: the application's bytes plus the peer address book (not part of Raft's ConfState). */
interface SnapshotEnvelope {
  peers: [NodeId, string][];
  app: Uint8Array;
}

export class RaftDriver {
  private raft!: Raft;
  private inbox: InboxItem[] = [];
  private processing = false;
  /** Waiting for the pass under way to end (stop()). */
  private passDone: (() => void)[] = [];
  private scheduled = false;
  /** The write of the last Ready, while it is in flight (one at a time; see process()). */
  private writing: Promise<void> | null = null;
  /** The latest lone commit index being written (see writeCommitIndex). */
  private commitWrite: Promise<void> | null = null;
  private stopped = false;
  private stopTicker: (() => void) | null = null;
  private readonly clock: DriverClock;
  private proposals = new Map<number, PendingProposal>();
  /** Reads whose context was handed to Raft, keyed by context; each context covers a batch of reads. */
  private readsAwaitingIndex = new Map<string, { resolve: () => void; reject: (e: Error) => void }[]>();
  /** Tick at which each read context was sent; a context unanswered for two election timeouts is failed. */
  private readSentAt = new Map<string, number>();
  private ticks = 0;
  /** Reads confirmed at an index, served once the state machine has applied it. */
  private readsAwaitingApply: {
    index: number;
    batch: { resolve: () => void; reject: (e: Error) => void }[];
  }[] = [];
  private readSeq = 0;
  private peers = new Map<NodeId, string>();
  private appliedIndex = 0;
  private snapshotIndex = 0;
  /** A snapshot being written in the background (see maybeSnapshot). */
  private snapshotWrite: Promise<void> | null = null;
  /** No snapshot is taken before this tick (one found the disk full). */
  private snapshotRetryTick = 0;
  /** Why the write under way is held up: the disk is full. Proposals are refused while it is set. */
  private noSpace: StorageFullError | null = null;
  private leaderListeners: ((lead: NodeId | null, term: number) => void)[] = [];
  /**
   * Proposals (commands and membership changes) that will not commit: refused (no leader here, disk full),
   * superseded by a new leader, or overtaken by a leader's snapshot. Those failed by a shutdown are not counted.
   */
  proposalsFailed = 0;
  private readonly opts: Required<
    Omit<DriverOptions, "logger" | "random" | "join" | "onFatal" | "clock" | "onSnapshotSaved">
  > &
    DriverOptions;

  constructor(opts: DriverOptions) {
    this.opts = {
      tickMs: 100,
      electionTicks: 10,
      heartbeatTicks: 1,
      snapshotEvery: 10_000,
      snapshotCatchUpEntries: 5_000,
      maxInflightMsgs: 256,
      maxSizePerMsg: 1024 * 1024,
      ...opts,
    };
    this.clock = opts.clock ?? realClock;
  }

  /** Loads durable state, replays it into the state machine and starts the clock. */
  async start(): Promise<{ notes: string[] }> {
    const o = this.opts;
    let { hardState, snapshot, entries, report } = await o.storage.load();
    const fresh = !snapshot && entries.length === 0 && hardState.term === 0;
    if (fresh && !o.join) {
      const boot = bootstrapLog([...o.initialCluster.keys()], o.initialCluster);
      await o.storage.save(boot.hardState, boot.entries);
      ({ hardState, entries } = boot);
    }
    if (snapshot) this.restoreSnapshot(snapshot);
    const config: RaftConfig = {
      id: o.id,
      electionTick: o.electionTicks,
      heartbeatTick: o.heartbeatTicks,
      maxInflightMsgs: o.maxInflightMsgs,
      maxSizePerMsg: o.maxSizePerMsg,
      preVote: true,
      checkQuorum: true,
      random: o.random ?? Math.random,
      logger: o.logger,
    };
    this.raft = new Raft(config, { hardState, snapshot, entries });
    this.stopTicker = this.clock.every(o.tickMs, () => this.enqueue({ kind: "tick" }));
    this.schedule();
    return { notes: report.notes };
  }

  // ---- Inputs -------------------------------------------------------------------------------------------

  step(m: Message): void {
    this.enqueue({ kind: "message", m }, true);
  }

  /** Proposes one state-machine command; resolves with apply()'s result once committed and applied here. */
  propose(data: Uint8Array): Promise<unknown> {
    if (this.noSpace) {
      this.proposalsFailed++;
      return Promise.reject(this.noSpaceError());
    }
    return new Promise((resolve, reject) => this.enqueue({ kind: "propose", data, resolve, reject }));
  }

  proposeConfChange(cc: ConfChange): Promise<unknown> {
    if (this.noSpace) {
      this.proposalsFailed++;
      return Promise.reject(this.noSpaceError());
    }
    return new Promise((resolve, reject) => this.enqueue({ kind: "confChange", cc, resolve, reject }));
  }

  /** Why this node refuses writes, while its disk is full; null otherwise. */
  diskFull(): string | null {
    return this.noSpace?.message ?? null;
  }

  private noSpaceError(): NoSpaceError {
    return new NoSpaceError(
      `no space left on member ${this.opts.id}'s disk (${this.noSpace?.message}): writes are refused until ` +
        "space frees; reads go on",
    );
  }

  /**
   * Resolves once this node's state machine reflects every write committed before the call: a linearizable
   * read point obtained without writing to the log (ReadIndex).
   */
  readBarrier(): Promise<void> {
    return new Promise((resolve, reject) => this.enqueue({ kind: "read", resolve, reject }));
  }

  /** True once this replica's state machine has applied `index`. */
  hasApplied(index: number): boolean {
    return index <= this.appliedIndex;
  }

  /** The commit index and term as this node knows them (what every client answer carries). */
  commitAndTerm(): { commit: number; term: number } {
    return { commit: this.raft.log.committed, term: this.raft.term };
  }

  /** Resolves once this replica has applied `index` (a write answered by the leader, seen locally). */
  waitApplied(index: number): Promise<void> {
    if (index <= this.appliedIndex) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.readsAwaitingApply.push({ index, batch: [{ resolve, reject }] });
    });
  }

  transferLeadership(to: NodeId): void {
    this.enqueue({ kind: "call", fn: (r) => r.transferLeadership(to) });
  }

  reportUnreachable(id: NodeId): void {
    this.enqueue({ kind: "call", fn: (r) => r.reportUnreachable(id) });
  }

  /**
   * A connection to peer `id` closed (a socket that ended, not a timeout). If `id` leads, Raft pre-votes at once
   * rather than after the election timeout (Raft.leaderConnectionLost says why that is safe).
   */
  peerConnectionClosed(id: NodeId): void {
    this.enqueue({ kind: "call", fn: (r) => r.leaderConnectionLost(id) }, true);
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.enqueue({ kind: "call", fn: (r) => r.reportSnapshot(id, ok) });
  }

  onLeaderChange(listener: (lead: NodeId | null, term: number) => void): void {
    this.leaderListeners.push(listener);
  }

  /** Proposals waiting to be committed and applied here (etcd's proposals_pending). */
  pendingProposals(): number {
    return this.proposals.size;
  }

  status() {
    return { ...this.raft.status(), peers: Object.fromEntries(this.peers) };
  }

  // Both are asked before start() has built the Raft state too (restoring the snapshot notifies the state
  // machine's listeners, which ask whether this node leads): not yet started means no leader known.
  leader(): NodeId | null {
    return this.raft?.lead ?? null;
  }

  isLeader(): boolean {
    return this.raft?.role === "leader";
  }

  /** The current term (0 before start: a supervisor's keepalive may arrive while the node still starts). */
  term(): number {
    return this.raft?.term ?? 0;
  }

  peerAddress(id: NodeId): string | undefined {
    return this.peers.get(id);
  }

  /** Stops the clock and fails what is still waiting. The storage is closed by its owner. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopTicker?.();
    if (this.processing) await new Promise<void>((r) => this.passDone.push(r));
    await this.writing;
    await this.commitWrite;
    await this.snapshotWrite?.catch(() => {});
    const err = new Error("the node is shutting down");
    for (const p of this.proposals.values()) p.reject(err);
    this.proposals.clear();
    for (const item of this.inbox) if ("reject" in item) item.reject(err);
    this.inbox = [];
    this.failReads(err);
  }

  // ---- The processing pass ------------------------------------------------------------------------------

  private enqueue(item: InboxItem, soon = false): void {
    if (this.stopped) {
      if ("reject" in item) item.reject(new Error("the node is shutting down"));
      return;
    }
    this.inbox.push(item);
    this.schedule(soon);
  }

  /**
   * A pass normally starts on the next turn of the event loop (clock.defer), so inputs arriving together are
   * handled together and a busy node still lets timers and I/O run between passes. A message from a peer starts
   * it as soon as the I/O callback that delivered it returns (a microtask; every frame of that read is already in
   * the inbox): an acknowledgement or append waiting behind the rest of the loop's I/O callbacks costs latency
   * on every commit.
   */
  private schedule(soon = false): void {
    // Peers may send messages while start() is still loading the log: they wait in the inbox until the Raft
    // state exists (start() schedules the first pass), instead of crashing the node on `this.raft.step`.
    if (this.scheduled || this.processing || this.stopped || !this.raft) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      void this.process();
    };
    if (soon) queueMicrotask(run);
    else this.clock.defer(run);
  }

  /**
   * One pass: step what is in the inbox, then act on Raft's Readies until it has nothing more to do. A Ready's
   * write (entries, hard state) runs in the background; while it is in flight, passes go on stepping inputs and
   * act on what needs no write (readyWhileWriting: leader appends and commit updates, committed entries, reads),
   * and the next write starts once it is done. So a leader's followers, and its clients, do not wait for its own
   * disk (proposals stepped meanwhile go to followers at once), and the entries that arrive during a write are
   * written together by the next one.
   */
  private async process(): Promise<void> {
    if (this.processing || this.stopped) return;
    this.processing = true;
    try {
      this.drainInbox();
      for (;;) {
        if (this.stopped) break;
        if (this.writing) {
          if (!this.raft.hasReadyWhileWriting()) break;
          const rd = this.raft.readyWhileWriting();
          if (rd.softState) this.onSoftState(rd.softState);
          if (rd.messages.length > 0) this.opts.transport.send(rd.messages);
          this.applyReady(rd);
        } else {
          if (!this.raft.hasReady()) break;
          await this.handleReady(this.raft.ready());
        }
        this.maybeSnapshot();
        this.drainInbox();
      }
    } catch (err) {
      // A snapshot install held up by a full disk ends so when the node stops: nothing failed.
      if (!(this.stopped && isNoSpace(err))) this.fatal(err);
    } finally {
      this.processing = false;
      for (const done of this.passDone.splice(0)) done();
    }
    if (this.inbox.length > 0) this.schedule();
  }

  /**
   * Stops the node for good and says why: a storage failure, or an internal error (a bug, such as an exception
   * from the state machine), which is not a disk problem and must not be reported as one.
   */
  private fatal(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.stopped = true;
    const what =
      e instanceof StorageFailure
        ? "storage failed; stopping rather than promise durability it cannot give"
        : "internal error (a bug, not a storage failure); stopping";
    this.opts.logger?.(`fatal: ${what}: ${e.stack ?? e}`);
    if (!this.opts.onFatal) throw e;
    this.opts.onFatal(e);
  }

  private drainInbox(): void {
    const items = this.inbox;
    if (items.length === 0) return;
    this.inbox = [];
    const proposals: Extract<InboxItem, { kind: "propose" }>[] = [];
    const reads: Extract<InboxItem, { kind: "read" }>[] = [];
    for (const item of items) {
      switch (item.kind) {
        case "message":
          this.raft.step(item.m);
          break;
        case "tick":
          this.raft.tick();
          this.ticks++;
          this.expireReads();
          break;
        case "propose":
          proposals.push(item);
          break;
        case "read":
          reads.push(item);
          break;
        case "confChange":
          this.catchProposalError(this.countingFailure(item.reject, 1), () => {
            const at = this.raft.proposeConfChange(item.cc);
            this.proposals.set(at.index, { term: at.term, resolve: item.resolve, reject: item.reject });
          });
          break;
        case "call":
          this.catchProposalError(
            () => {},
            () => item.fn(this.raft),
          );
          break;
        case "persisted":
          this.writing = null;
          this.raft.persisted(item.rd);
          break;
      }
    }
    if (proposals.length > 0) this.proposeBatch(proposals);
    if (reads.length > 0) this.requestReadIndex(reads);
  }

  /** One append for every proposal that arrived since the last pass. */
  private proposeBatch(batch: Extract<InboxItem, { kind: "propose" }>[]): void {
    const rejectAll = (e: Error) => {
      this.proposalsFailed += batch.length;
      for (const p of batch) p.reject(e);
    };
    this.catchProposalError(rejectAll, () => {
      const at = this.raft.propose(batch.map((p) => p.data));
      let index = at.index - batch.length + 1;
      for (const p of batch)
        this.proposals.set(index++, { term: at.term, resolve: p.resolve, reject: p.reject });
    });
  }

  /** One ReadIndex round for every read that arrived since the last pass. */
  private requestReadIndex(batch: Extract<InboxItem, { kind: "read" }>[]): void {
    const context = new Uint8Array(8);
    new DataView(context.buffer).setFloat64(0, ++this.readSeq);
    const key = keyOf(context);
    const waiters = batch.map((r) => ({ resolve: r.resolve, reject: r.reject }));
    this.catchProposalError(
      (e) => {
        for (const w of waiters) w.reject(e);
      },
      () => {
        this.readsAwaitingIndex.set(key, waiters);
        this.readSentAt.set(key, this.ticks);
        this.raft.readIndex(context);
      },
    );
    // Without a leader the request went nowhere: fail the batch now so callers can retry or give up.
    if (this.raft.lead === null && this.readsAwaitingIndex.delete(key)) {
      for (const w of waiters) w.reject(new NotLeaderError(null));
    }
  }

  private countingFailure(reject: (e: Error) => void, n: number): (e: Error) => void {
    return (e) => {
      this.proposalsFailed += n;
      reject(e);
    };
  }

  /** Runs `fn`; a ProposalError it throws (this node cannot propose now) goes to `onError`, anything else on. */
  private catchProposalError(onError: (e: Error) => void, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof ProposalError) {
        onError(e.code === "not_leader" ? new NotLeaderError(e.leader) : e);
      } else {
        throw e;
      }
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    const o = this.opts;
    if (rd.softState) this.onSoftState(rd.softState);
    // Leader appends go out while the leader's own disk write is under way (Raft §10.2.1).
    if (rd.messages.length > 0) o.transport.send(rd.messages);
    if (rd.snapshot) {
      // Never two snapshot writes at once; the local one is superseded (its compaction is skipped).
      if (this.snapshotWrite) await this.snapshotWrite.catch(() => {});
      const snapshot = rd.snapshot;
      await this.untilStored("saveSnapshot", () => o.storage.saveSnapshot(snapshot));
      this.restoreSnapshot(rd.snapshot);
    }
    if (!rd.mustSync) {
      // Nothing here must be durable first (at most a new commit index, written in the background, in order).
      if (rd.hardState) this.writeCommitIndex(rd.hardState);
      this.raft.persisted(rd);
      if (rd.messagesAfterPersist.length > 0) o.transport.send(rd.messagesAfterPersist);
    } else {
      this.startWrite(rd);
      // The write(2) and fdatasync are issued a few microtasks into save(): let them leave before applying.
      if (rd.entries.length > 0 && rd.committedEntries.length > 0)
        await new Promise((r) => this.clock.defer(() => r(undefined)));
    }
    // Committed entries are durable on a majority already: apply them (and answer their clients) while this
    // Ready's new entries are being written, not after (etcd hands them to its applier before saving).
    this.applyReady(rd);
  }

  /**
   * Starts writing `rd`'s entries and hard state. Once they are durable, the messages that had to wait for them
   * (acknowledgements, votes) go out at once, and the next pass tells Raft (which may then commit, as a leader).
   */
  private startWrite(rd: Ready): void {
    const write = this.untilStored("save", () =>
      this.opts.storage.save(rd.hardState, rd.entries, rd.mustSync),
    );
    this.writing = write.then(
      () => {
        if (rd.messagesAfterPersist.length > 0) this.opts.transport.send(rd.messagesAfterPersist);
        this.enqueue({ kind: "persisted", rd }, true);
      },
      (err: unknown) => {
        if (!this.stopped) this.fatal(err);
      },
    );
  }

  /**
   * A hard state whose only change is the commit index needs no fdatasync and nothing waits for it: it is written
   * behind the writes before it (storage keeps them in order), so a lone commit costs no flush and no wait, yet a
   * restarted node (a single voter above all, which no leader can tell) replays what it committed before a
   * process crash.
   */
  private writeCommitIndex(hs: HardState): void {
    const write = onDisk("save", this.opts.storage.save(hs, [], false));
    this.commitWrite = write.catch((err: unknown) => {
      // Without room for it, the commit index goes with the next hard state written.
      if (!this.stopped && !isNoSpace(err)) this.fatal(err);
    });
  }

  /**
   * Runs a storage write until it succeeds. While the disk is full the write is held up (nothing else is written
   * meanwhile, so nothing is acknowledged that is not on disk), proposals are refused (NoSpaceError), everything
   * needing no write goes on (heartbeats, reads), and the write is tried again every NO_SPACE_RETRY_MS.
   */
  private async untilStored(op: string, write: () => Promise<void>): Promise<void> {
    for (;;) {
      try {
        await onDisk(op, write());
        if (this.noSpace) this.opts.logger?.("disk space available again: accepting writes");
        this.noSpace = null;
        return;
      } catch (err) {
        const cause = (err as Error).cause;
        if (this.stopped || !(cause instanceof StorageFullError)) throw err;
        if (!this.noSpace)
          this.opts.logger?.(
            `disk full (${cause.message}): refusing writes until space frees; reads and heartbeats go on`,
          );
        this.noSpace = cause;
        await new Promise<void>((r) => {
          const stop = this.clock.every(NO_SPACE_RETRY_MS, () => {
            stop();
            r();
          });
        });
      }
    }
  }

  /** Applies `rd`'s committed entries, serves the reads they unblock, and tells Raft. */
  private applyReady(rd: Ready): void {
    for (const e of rd.committedEntries) if (e.index > this.appliedIndex) this.applyEntry(e);
    for (const rs of rd.readStates) {
      const batch = this.readsAwaitingIndex.get(keyOf(rs.context));
      if (!batch) continue;
      this.readsAwaitingIndex.delete(keyOf(rs.context));
      this.readSentAt.delete(keyOf(rs.context));
      this.readsAwaitingApply.push({ index: rs.index, batch });
    }
    this.serveReads();
    this.raft.applied(rd);
  }

  private onSoftState(ss: NonNullable<Ready["softState"]>): void {
    if (ss.role !== "leader") {
      // Reads waiting for a leader's confirmation will not get it from a deposed one: let clients retry.
      if (this.readsAwaitingIndex.size > 0) this.failReads(new NotLeaderError(ss.lead), true);
    }
    for (const l of this.leaderListeners) l(ss.lead, ss.term);
  }

  private applyEntry(e: Entry): void {
    let result: unknown;
    if (e.type === "conf") {
      const cc = decodeConfChange(e.data);
      if (cc) this.applyPeerChange(cc);
      result = cc;
    } else if (e.data.length > 0) {
      result = this.opts.stateMachine.apply(e);
    }
    this.appliedIndex = e.index;
    const pending = this.proposals.get(e.index);
    if (!pending) return;
    this.proposals.delete(e.index);
    if (pending.term === e.term) pending.resolve(result);
    else {
      this.proposalsFailed++;
      pending.reject(
        new ProposalDroppedError("the proposal was superseded by a new leader; it was not applied"),
      );
    }
  }

  private applyPeerChange(cc: ConfChange): void {
    if (cc.type === "remove") this.peers.delete(cc.id);
    else if (cc.context) this.peers.set(cc.id, cc.context);
    this.opts.transport.setPeers(new Map(this.peers));
  }

  private serveReads(): void {
    if (this.readsAwaitingApply.length === 0) return;
    const still: typeof this.readsAwaitingApply = [];
    for (const r of this.readsAwaitingApply) {
      if (r.index <= this.appliedIndex) for (const w of r.batch) w.resolve();
      else still.push(r);
    }
    this.readsAwaitingApply = still;
  }

  /** A ReadIndex request or its answer can be lost on the network: fail it so the caller can retry. */
  private expireReads(): void {
    const limit = 2 * this.opts.electionTicks;
    for (const [key, sentAt] of this.readSentAt) {
      if (this.ticks - sentAt < limit) continue;
      this.readSentAt.delete(key);
      const batch = this.readsAwaitingIndex.get(key) ?? [];
      this.readsAwaitingIndex.delete(key);
      for (const w of batch) w.reject(new NotLeaderError(this.raft.lead));
    }
  }

  private failReads(err: Error, onlyUnconfirmed = false): void {
    for (const batch of this.readsAwaitingIndex.values()) for (const w of batch) w.reject(err);
    this.readsAwaitingIndex.clear();
    this.readSentAt.clear();
    if (onlyUnconfirmed) return;
    for (const r of this.readsAwaitingApply) for (const w of r.batch) w.reject(err);
    this.readsAwaitingApply = [];
  }

  // ---- Snapshots ----------------------------------------------------------------------------------------

  private restoreSnapshot(snapshot: Snapshot): void {
    const env = packr.unpack(snapshot.data) as SnapshotEnvelope;
    this.peers = new Map(env.peers);
    this.opts.transport.setPeers(new Map(this.peers));
    this.opts.stateMachine.restore(env.app);
    this.appliedIndex = snapshot.meta.index;
    this.snapshotIndex = snapshot.meta.index;
    // The entries up to the snapshot will never be applied here one by one: settle their proposals now rather
    // than leave them waiting forever.
    for (const [index, p] of this.proposals) {
      if (index > snapshot.meta.index) continue;
      this.proposals.delete(index);
      this.proposalsFailed++;
      p.reject(
        new ProposalOutcomeUnknownError(
          `a snapshot from the leader replaced entry ${index} before it was applied here; the write may or may not have taken effect`,
        ),
      );
    }
  }

  /**
   * Captures the state machine's snapshot here, in the pass, then encodes and writes it in the background: the
   * encoding in slices between turns of the event loop (heartbeats and appends go on meanwhile), the file while
   * the storage keeps log appends flowing. Once it is durable, a later pass hands it to Raft and compacts the
   * log. One snapshot is built at a time.
   */
  private maybeSnapshot(): void {
    const o = this.opts;
    if (this.snapshotWrite || this.appliedIndex - this.snapshotIndex < o.snapshotEvery) return;
    if (this.ticks < this.snapshotRetryTick) return;
    const index = this.appliedIndex;
    const started = performance.now();
    const meta = { index, term: this.raft.log.term(index)!, confState: this.raft.confState() };
    const captured = o.stateMachine.snapshot();
    const parts = captured instanceof Uint8Array ? [captured] : captured;
    const peers = [...this.peers];
    const fatal = (err: unknown) => {
      if (this.stopped) return;
      if (!isNoSpace(err)) return this.fatal(err);
      // The log keeps everything the snapshot would have covered: try again later.
      o.logger?.(`snapshot at index ${index} skipped: ${(err as Error).message}`);
      this.snapshotRetryTick = this.ticks + SNAPSHOT_RETRY_TICKS;
      if (this.snapshotWrite === done) this.snapshotWrite = null;
    };
    const write = this.encodeInSlices(peers, parts).then((data) => {
      const snapshot: Snapshot = { meta, data };
      return onDisk("saveSnapshot", o.storage.saveSnapshot(snapshot)).then(() => {
        o.onSnapshotSaved?.((performance.now() - started) / 1000);
        return snapshot;
      });
    });
    const done = write.then(() => {});
    this.snapshotWrite = done;
    write.then(
      (snapshot) =>
        // Raft's log is compacted inside a pass, like every other change to its state.
        this.enqueue({
          kind: "call",
          fn: (raft) => {
            if (this.snapshotWrite === done) this.snapshotWrite = null;
            if (index <= this.snapshotIndex) return;
            raft.compact(snapshot, o.snapshotCatchUpEntries);
            this.snapshotIndex = index;
            onDisk("compact", o.storage.compact(raft.log.snapshotIndex)).catch(fatal);
            o.logger?.(
              `snapshot at index ${index} (${snapshot.data.length} bytes); log compacted to ${raft.log.snapshotIndex}`,
            );
          },
        }),
      fatal,
    );
  }

  /** The envelope's bytes from the application's parts: taken, then copied together, yielding in between. */
  private async encodeInSlices(peers: [NodeId, string][], parts: Iterable<Uint8Array>): Promise<Uint8Array> {
    let sliceStart = Date.now();
    const pause = async () => {
      if (Date.now() - sliceStart < ENCODE_SLICE_MS) return;
      await new Promise((r) => this.clock.defer(() => r(undefined)));
      sliceStart = Date.now();
    };
    const app: Uint8Array[] = [];
    let size = 0;
    for (const part of parts) {
      app.push(part);
      size += part.length;
      await pause();
    }
    const head = envelopeHead(peers, size);
    const out = new Uint8Array(Buffer.allocUnsafeSlow(head.length + size).buffer, 0, head.length + size);
    out.set(head, 0);
    let at = head.length;
    for (let i = 0; i < app.length; i++) {
      out.set(app[i]!, at);
      at += app[i]!.length;
      app[i] = EMPTY; // copied: let it go
      await pause();
    }
    return out;
  }
}

/** Encoding work done per turn of the event loop while a snapshot is built (a heartbeat interval is 100 ms). */
const ENCODE_SLICE_MS = 20;
const EMPTY = new Uint8Array(0);

/**
 * The start of the msgpack of a SnapshotEnvelope { peers, app } whose app is `appSize` bytes: what packr.pack
 * would write before app's bytes (a map header, peers, then app as a bin 32), so the app's parts can follow it
 * without first being joined into one array.
 */
function envelopeHead(peers: [NodeId, string][], appSize: number): Uint8Array {
  const pack = (v: unknown) => new Uint8Array(packr.pack(v)); // a packer's bytes live until its next call
  const n = appSize;
  if (n > 0xffffffff) throw new Error(`a snapshot of ${n} bytes is over msgpack's 4 GiB limit for one value`);
  return Buffer.concat([
    Buffer.from([0x82]),
    pack("peers"),
    pack(peers),
    pack("app"),
    Buffer.from([0xc6, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]),
  ]);
}

/** A snapshot's data as the driver stores it: the peer address book, then the application's bytes. */
export function encodeSnapshotEnvelope(peers: Map<NodeId, string>, app: Uint8Array): Uint8Array {
  return Buffer.concat([envelopeHead([...peers], app.length), app]);
}

/** The peer address book and the application's bytes of a stored snapshot (see encodeSnapshotEnvelope). */
export function decodeSnapshotEnvelope(data: Uint8Array): { peers: Map<NodeId, string>; app: Uint8Array } {
  const env = packr.unpack(data) as SnapshotEnvelope;
  return { peers: new Map(env.peers), app: env.app };
}

/** Marks a storage operation's failure as such (see fatal()). */
function onDisk<T>(op: string, p: Promise<T>): Promise<T> {
  return p.catch((err: unknown) => {
    throw new StorageFailure(op, err);
  });
}

/** A storage failure caused by a full disk (see StorageFullError). */
function isNoSpace(err: unknown): boolean {
  return (err as Error | null)?.cause instanceof StorageFullError;
}

function keyOf(context: Uint8Array): string {
  return Buffer.from(context.buffer, context.byteOffset, context.byteLength).toString("hex");
}
