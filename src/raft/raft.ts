import { decodeConfChange, encodeConfChange } from "./conf-change.ts";
import { RaftLog } from "./log.ts";
import { bestSuccessor, Progress } from "./progress.ts";
import { ReadOnlyQueue } from "./read-only.ts";
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  MessageType,
  NodeId,
  ReadState,
  Snapshot,
} from "./types.ts";

export type Role = "follower" | "preCandidate" | "candidate" | "leader";

export interface RaftConfig {
  id: NodeId;
  /** Ticks without hearing from a leader before campaigning (randomized in [n, 2n)). */
  electionTick: number;
  /** Ticks between leader heartbeats; must be well below electionTick. */
  heartbeatTick: number;
  /** Appends in flight per follower in replicate state (flow control). */
  maxInflightMsgs: number;
  /** Soft limit on entry bytes per append message. */
  maxSizePerMsg: number;
  /** Ask for votes without raising terms first, so a rejoining partitioned node cannot depose a healthy leader. */
  preVote: boolean;
  /** A leader that has not heard from a majority within an election timeout steps down. */
  checkQuorum: boolean;
  /** Source of randomness in [0, 1): injected so simulations are reproducible. */
  random: () => number;
  /** Receives one line per notable event (elections, membership changes); optional. */
  logger?: (line: string) => void;
}

/** What storage recovered. Membership comes from the snapshot and the conf entries of the log. */
export interface RaftInitialState {
  hardState: HardState;
  snapshot: Snapshot | null;
  entries: Entry[];
}

/**
 * The first log of a brand-new cluster: one committed conf entry per initial voter, identical on every initial
 * member (so logs match), and replayed by any node that joins later so it learns the founding membership.
 */
export function bootstrapLog(
  voters: NodeId[],
  addresses: ReadonlyMap<NodeId, string> = new Map(),
): { hardState: HardState; entries: Entry[] } {
  const entries: Entry[] = [...voters].sort().map((id, i) => ({
    term: 1,
    index: i + 1,
    type: "conf",
    data: encodeConfChange({ type: "addVoter", id, context: addresses.get(id) }),
  }));
  return { hardState: { term: 1, vote: null, commit: entries.length }, entries };
}

/** What the driver must do next: persist, send, apply. Obtained by ready(), then acknowledged with advance(). */
export interface Ready {
  /** Set when the leader or role changed since the last Ready. */
  softState: { lead: NodeId | null; role: Role; term: number } | null;
  /** Set when the hard state changed since the last Ready: hand it to storage (with `entries`, if any). */
  hardState: HardState | null;
  /**
   * Whether this Ready's hard state and entries must be synced before messagesAfterPersist go out (etcd's
   * MustSync): new entries, term or vote. A hard state whose only change is the commit index need not be: it is
   * written without a sync, and a node that lost it learns it again (a leader by committing an entry of its term).
   */
  mustSync: boolean;
  /** Entries to append durably (may replace a suffix of the stored log). */
  entries: Entry[];
  /** A snapshot from the leader to store durably and load into the state machine. */
  snapshot: Snapshot | null;
  committedEntries: Entry[];
  /** Leader messages that may go out while this Ready's entries are being persisted. */
  messages: Message[];
  /** Messages that must wait until this Ready's hard state and entries are durable (votes, acknowledgements). */
  messagesAfterPersist: Message[];
  readStates: ReadState[];
}

export class ProposalError extends Error {
  constructor(
    readonly code: "not_leader" | "transfer_in_progress" | "conf_change_pending" | "invalid_conf_change",
    message: string,
    readonly leader: NodeId | null = null,
  ) {
    super(message);
  }
}

const LEADER_MESSAGES = new Set<MessageType>(["app", "heartbeat", "snap", "timeoutNow", "readIndexResp"]);
/** What a follower may send while its write is in flight: messages that claim nothing about its log or vote. So a
 * write held up for long (a full disk) neither starves the leader's check-quorum and read confirmations, which would
 * start elections, nor this node's reads. */
const FOLLOWER_MESSAGES = new Set<MessageType>(["heartbeatResp", "readIndex"]);

/** Raft's pure state machine: ticks, messages and proposals in; a Ready of effects out. No I/O, clock or randomness. */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId | null = null;
  lead: NodeId | null = null;
  role: Role = "follower";
  readonly log: RaftLog;

  private voters = new Set<NodeId>();
  private learners = new Set<NodeId>();
  private progress = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private leadTransferee: NodeId | null = null;
  /** Index of the latest conf change appended by this leader; another may be proposed once it is applied. */
  private pendingConfIndex = 0;
  /** Set when new entries were appended and followers should be sent them at the next ready(). */
  private appendsPending = false;
  private readonly readOnly = new ReadOnlyQueue();
  /** The state machine's newest snapshot, sent to followers whose next entry was compacted away. */
  private latestSnapshot: Snapshot | null = null;

  private outbox: Message[] = [];
  private readStates: ReadState[] = [];
  private prevHardState: HardState;
  private prevSoftState: { lead: NodeId | null; role: Role; term: number };

  constructor(
    private readonly config: RaftConfig,
    initial: RaftInitialState,
  ) {
    if (config.heartbeatTick >= config.electionTick)
      throw new Error("heartbeatTick must be below electionTick");
    this.id = config.id;
    const snap = initial.snapshot;
    this.log = new RaftLog(snap?.meta ?? null, initial.entries, initial.hardState.commit);
    this.latestSnapshot = snap;
    this.setConf(snap?.meta.confState ?? { voters: [], learners: [] });
    this.term = initial.hardState.term;
    this.vote = initial.hardState.vote;
    this.prevHardState = this.hardState();
    this.becomeFollower(this.term, null);
    this.prevSoftState = this.softState();
  }

  // ---- Inputs -------------------------------------------------------------------------------------------

  /** Advances logical time by one tick. */
  tick(): void {
    if (this.role === "leader") this.tickLeader();
    else this.tickElection();
  }

  /** Proposes data for the log; only the leader accepts. Returns where it will be committed if it is. */
  propose(data: Uint8Array[]): { index: number; term: number } {
    this.assertCanPropose();
    const entries = data.map((d) => ({ type: "normal" as const, data: d }));
    return this.appendEntries(entries);
  }

  proposeConfChange(cc: ConfChange): { index: number; term: number } {
    this.assertCanPropose();
    if (this.pendingConfIndex > this.log.applied) {
      throw new ProposalError("conf_change_pending", "a membership change is already in progress");
    }
    const problem = this.validateConfChange(cc);
    if (problem) throw new ProposalError("invalid_conf_change", problem);
    const at = this.appendEntries([{ type: "conf", data: encodeConfChange(cc) }]);
    this.pendingConfIndex = at.index;
    return at;
  }

  /** Asks for a linearizable read point; the answer arrives as a ReadState carrying `context`. */
  readIndex(context: Uint8Array): void {
    if (this.role === "leader") {
      this.handleReadIndex(this.id, context);
    } else if (this.lead !== null) {
      this.send({ type: "readIndex", to: this.lead, context });
    } else {
      throw new ProposalError("not_leader", "no leader is known", null);
    }
  }

  /** Hands leadership to `to` (used on graceful shutdown). */
  transferLeadership(to: NodeId): void {
    if (this.role !== "leader")
      throw new ProposalError("not_leader", "only the leader can transfer", this.lead);
    if (to === this.id || !this.voters.has(to)) return;
    this.logLine(`transferring leadership to ${to}`);
    this.leadTransferee = to;
    this.electionElapsed = 0;
    const pr = this.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) this.send({ type: "timeoutNow", to });
    else this.sendAppend(to);
  }

  /** The transport could not deliver to `id`: stop streaming to it optimistically. */
  reportUnreachable(id: NodeId): void {
    const pr = this.progress.get(id);
    if (this.role === "leader" && pr?.state === "replicate") pr.becomeProbe();
  }

  /**
   * The transport saw a connection to `id` close (a closed socket, not silence: a process that dies has its
   * connections closed by the kernel at once). When `id` is our leader, stop trusting it and pre-vote now instead
   * of waiting out the election timeout. Harmless to a leader that is in fact alive: a pre-vote raises no term,
   * and voters that heard the leader within the election timeout ignore it (inLease), as the leader itself does;
   * its next heartbeat makes us its follower again.
   */
  leaderConnectionLost(id: NodeId): void {
    if (this.role !== "follower" || this.lead !== id || !this.config.preVote) return;
    this.logLine(`leader connection closed: pre-vote (leader ${id}, term ${this.term})`);
    this.electionElapsed = 0;
    this.campaign("pre");
  }

  /** The transport finished (or failed) sending a snapshot to `id`. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    const pr = this.progress.get(id);
    if (this.role !== "leader" || pr?.state !== "snapshot") return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's answer (or the next heartbeat) before probing again.
    pr.probeSent = true;
  }

  step(m: Message): void {
    if (m.term > this.term) {
      if ((m.type === "vote" || m.type === "preVote") && !m.force && this.inLease()) {
        // We heard from a live leader within the election timeout: ignore disruptive campaigns.
        return;
      }
      if (m.type === "preVote" || (m.type === "preVoteResp" && !m.reject)) {
        // Pre-votes do not change terms; a granted one answers our future term.
      } else if (m.type === "app" || m.type === "heartbeat" || m.type === "snap") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, null);
      }
    } else if (m.term < this.term) {
      if (m.type === "app" || m.type === "heartbeat") {
        // A deposed leader: tell it our term so it steps down (it would not learn it otherwise with pre-vote).
        this.send({ type: "appResp", to: m.from });
      } else if (m.type === "preVote") {
        this.send({ type: "preVoteResp", to: m.from, reject: true });
      }
      return;
    }

    if (m.type === "vote" || m.type === "preVote") {
      this.handleVoteRequest(m);
      return;
    }
    if (this.role === "leader") this.stepLeader(m);
    else if (this.role === "follower") this.stepFollower(m);
    else this.stepCandidate(m);
  }

  // ---- Outputs ------------------------------------------------------------------------------------------

  // Two ways to drive the core. Synchronously: ready(), persist, send, apply, advance(), with nothing stepped in
  // between. Or with the write asynchronous: ready() hands out the write; while it is in flight, inputs are stepped
  // and readyWhileWriting() gives what needs no write (applied() acknowledges it); persisted() reports the write
  // done, and only then is ready() called again. Storage writes are never more than one at a time.

  hasReady(): boolean {
    return (
      this.hasReadyWhileWriting() ||
      this.outbox.length > 0 ||
      this.log.unstableEntries().length > 0 ||
      this.log.pendingSnapshot !== null ||
      !sameHardState(this.hardState(), this.prevHardState)
    );
  }

  /** Everything to do next: the write (entries, hard state, snapshot) and what is sent and applied around it. */
  ready(): Ready {
    const rd = this.readyWhileWriting();
    const hs = this.hardState();
    const entries = this.log.unstableEntries();
    rd.hardState = sameHardState(hs, this.prevHardState) ? null : hs;
    rd.mustSync =
      entries.length > 0 || hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote;
    rd.entries = entries;
    rd.snapshot = this.log.pendingSnapshot;
    // What remains must wait for this write: votes, acknowledgements, a candidate's requests.
    rd.messagesAfterPersist = this.outbox;
    this.outbox = [];
    const last = entries[entries.length - 1];
    if (last) this.log.handedOut(last.index);
    if (rd.hardState) this.prevHardState = hs;
    return rd;
  }

  hasReadyWhileWriting(): boolean {
    return (
      this.appendsPending ||
      this.readStates.length > 0 ||
      this.log.hasNextCommitted() ||
      !sameSoftState(this.softState(), this.prevSoftState) ||
      this.outbox.some((m) => this.sendableWhileWriting(m))
    );
  }

  /**
   * What may be done while a write is in flight: the leader's messages (appends may run ahead of the leader's own
   * disk, Raft §10.2.1, and a quorum of followers commits without it), a follower's answers to heartbeats and its
   * read requests (FOLLOWER_MESSAGES), committed entries (durable on a quorum,
   * whether or not this node's copy is yet) and read states. Entries, hard state and every other message wait for
   * the next ready().
   */
  readyWhileWriting(): Ready {
    if (this.appendsPending) {
      this.appendsPending = false;
      this.broadcastAppend();
    }
    const ss = this.softState();
    const rd: Ready = {
      softState: sameSoftState(ss, this.prevSoftState) ? null : ss,
      hardState: null,
      mustSync: false,
      entries: [],
      snapshot: null,
      committedEntries: this.log.nextCommitted(),
      messages: [],
      messagesAfterPersist: [],
      readStates: this.readStates,
    };
    const rest: Message[] = [];
    for (const m of this.outbox) (this.sendableWhileWriting(m) ? rd.messages : rest).push(m);
    this.outbox = rest;
    this.readStates = [];
    this.prevSoftState = ss;
    return rd;
  }

  private sendableWhileWriting(m: Message): boolean {
    if (this.role === "leader") return LEADER_MESSAGES.has(m.type);
    return this.role === "follower" && FOLLOWER_MESSAGES.has(m.type);
  }

  /** The driver has persisted, sent and applied what `rd` asked for. */
  advance(rd: Ready): void {
    this.persisted(rd);
    this.applied(rd);
  }

  /** `rd`'s entries and hard state are durable (its messagesAfterPersist may go). */
  persisted(rd: Ready): void {
    const lastEntry = rd.entries[rd.entries.length - 1];
    // Ignored when a conflicting append replaced that entry while it was being written.
    if (lastEntry && this.log.stableTo(lastEntry.index, lastEntry.term)) {
      if (this.role === "leader") {
        // The leader's own log counts towards a quorum only once it is durable.
        this.progress.get(this.id)?.maybeUpdate(lastEntry.index);
        if (this.maybeCommit()) this.appendsPending = true;
      }
    }
  }

  /** The application has taken `rd`'s snapshot and applied its committed entries. */
  applied(rd: Ready): void {
    if (rd.snapshot) {
      this.log.pendingSnapshot = null;
      this.log.appliedTo(rd.snapshot.meta.index);
    }
    for (const e of rd.committedEntries) {
      this.log.appliedTo(e.index);
      if (e.type === "conf") this.applyConfChange(decodeConfChange(e.data));
    }
  }

  /** Makes the state machine's snapshot available for lagging followers and forgets log entries it covers. */
  compact(snapshot: Snapshot, keepEntries: number): void {
    this.latestSnapshot = snapshot;
    this.log.compact(Math.max(0, Math.min(snapshot.meta.index, this.log.applied) - keepEntries));
  }

  // ---- Introspection ------------------------------------------------------------------------------------

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): { lead: NodeId | null; role: Role; term: number } {
    return { lead: this.lead, role: this.role, term: this.term };
  }

  confState(): ConfState {
    return { voters: [...this.voters].sort(), learners: [...this.learners].sort() };
  }

  status() {
    return {
      id: this.id,
      term: this.term,
      role: this.role,
      lead: this.lead,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      conf: this.confState(),
      progress:
        this.role === "leader"
          ? [...this.progress.values()].map((p) => ({
              id: p.id,
              match: p.match,
              next: p.next,
              state: p.state,
              learner: p.learner,
              recentActive: p.recentActive,
            }))
          : [],
      leadTransferee: this.leadTransferee,
    };
  }

  isMember(): boolean {
    return this.voters.has(this.id) || this.learners.has(this.id);
  }

  // ---- Roles --------------------------------------------------------------------------------------------

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = null;
    }
    this.lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout =
      this.config.electionTick + Math.floor(this.config.random() * this.config.electionTick);
    this.leadTransferee = null;
    this.votes.clear();
    this.readOnly.clear();
    this.appendsPending = false;
    this.progress.clear();
    for (const id of [...this.voters, ...this.learners]) {
      this.progress.set(
        id,
        new Progress(id, this.log.lastIndex() + 1, this.learners.has(id), this.config.maxInflightMsgs),
      );
    }
  }

  private becomeFollower(term: number, lead: NodeId | null): void {
    this.reset(term);
    this.role = "follower";
    this.lead = lead;
  }

  private becomePreCandidate(): void {
    // Like a candidate, but neither the term nor the vote changes until a majority would vote for us.
    this.votes.clear();
    this.role = "preCandidate";
    this.lead = null;
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.role = "candidate";
    this.vote = this.id;
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.role = "leader";
    this.lead = this.id;
    const self = this.progress.get(this.id)!;
    self.becomeReplicate();
    self.maybeUpdate(this.log.persistedIndex());
    // No conf change until the no-op below (and everything before it) is committed.
    this.pendingConfIndex = this.log.lastIndex();
    this.logLine(`became leader at term ${this.term}`);
    // The no-op commits the previous terms' entries (Raft commits only entries of the current term by counting).
    this.appendEntries([{ type: "normal", data: new Uint8Array(0) }]);
  }

  private promotable(): boolean {
    return this.voters.has(this.id);
  }

  private campaign(kind: "pre" | "election" | "transfer"): void {
    if (!this.promotable()) return;
    if (kind === "pre") this.becomePreCandidate();
    else this.becomeCandidate();
    const voteType: MessageType = kind === "pre" ? "preVote" : "vote";
    const term = kind === "pre" ? this.term + 1 : this.term;
    if (this.recordVote(this.id, true) === "won") {
      // A single-voter cluster wins at once.
      if (kind === "pre") this.campaign("election");
      else this.becomeLeader();
      return;
    }
    for (const id of this.voters) {
      if (id === this.id) continue;
      this.send({
        type: voteType,
        to: id,
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        force: kind === "transfer" ? true : undefined,
      });
    }
  }

  private recordVote(id: NodeId, granted: boolean): "won" | "lost" | "pending" {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    let yes = 0;
    let no = 0;
    for (const [voter, v] of this.votes) {
      if (!this.voters.has(voter)) continue;
      if (v) yes++;
      else no++;
    }
    const q = this.quorum();
    if (yes >= q) return "won";
    if (no >= q) return "lost";
    return "pending";
  }

  private quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  // ---- Ticks --------------------------------------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaign(this.config.preVote ? "pre" : "election");
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    for (const pr of this.progress.values()) {
      if (pr.state === "snapshot" && ++pr.snapshotTicks > 3 * this.config.electionTick) {
        // Neither an answer nor a transport report came back: assume it was lost and probe again.
        pr.pendingSnapshot = 0;
        pr.becomeProbe();
      }
    }
    if (this.electionElapsed >= this.config.electionTick) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum && !this.quorumActive()) {
        this.logLine(`stepping down at term ${this.term}: no contact with a majority`);
        this.becomeFollower(this.term, null);
        return;
      }
      if (this.leadTransferee !== null) {
        this.logLine(`leadership transfer to ${this.leadTransferee} timed out`);
        this.leadTransferee = null;
      }
    }
    if (this.heartbeatElapsed >= this.config.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat(this.readOnly.lastContext());
    }
  }

  /** Counts voters heard from since the last check, and starts a new check period. */
  private quorumActive(): boolean {
    let active = 0;
    for (const pr of this.progress.values()) {
      if (pr.id === this.id) {
        active++;
        continue;
      }
      if (pr.recentActive && this.voters.has(pr.id)) active++;
      pr.recentActive = false;
    }
    return active >= this.quorum();
  }

  /** A voter that heard from a leader within the minimum election timeout rejects campaigns. */
  private inLease(): boolean {
    return this.config.checkQuorum && this.lead !== null && this.electionElapsed < this.config.electionTick;
  }

  // ---- Message handling ---------------------------------------------------------------------------------

  private handleVoteRequest(m: Message): void {
    const pre = m.type === "preVote";
    const respType: MessageType = pre ? "preVoteResp" : "voteResp";
    const canVote =
      this.vote === m.from ||
      (this.vote === null && this.lead === null) ||
      // A pre-vote for a future term may be granted even though we voted in this one.
      (pre && m.term > this.term);
    // Two pre-candidates with the same log would each win the other's pre-vote and split the real vote (both
    // followers of a dead leader start at once): the lower id goes first.
    const tieLost = pre && this.role === "preCandidate" && m.term === this.term + 1 && this.wins(m);
    if (canVote && !tieLost && this.log.isUpToDate(m.index ?? 0, m.logTerm ?? 0)) {
      // Answer pre-votes with the term they asked about, so the candidate does not mistake it for a rejection.
      this.send({ type: respType, to: m.from, term: m.term });
      if (!pre) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
      return;
    }
    this.send({ type: respType, to: m.from, reject: true });
    if (pre && this.role === "preCandidate" && m.term === this.term + 1) {
      // It campaigns for the same term, so it follows no leader now: it may have ignored our request while it
      // still did (in its lease). Ask again, or both would wait out an election timeout.
      this.send({
        type: "preVote",
        to: m.from,
        term: m.term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
      });
    }
  }

  /** Whether our pre-campaign goes before `m`'s: the same last entry, and the lower id. */
  private wins(m: Message): boolean {
    const sameLog = (m.index ?? 0) === this.log.lastIndex() && (m.logTerm ?? 0) === this.log.lastTerm();
    return sameLog && this.id < m.from;
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case "app":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        break;
      case "heartbeat":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.log.commitTo(Math.min(m.commit ?? 0, this.log.lastIndex()));
        this.send({ type: "heartbeatResp", to: m.from, context: m.context });
        break;
      case "snap":
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        break;
      case "timeoutNow":
        this.logLine(`campaigning at once: leadership handed over by ${m.from}`);
        this.campaign("transfer");
        break;
      case "readIndexResp":
        this.readStates.push({ index: m.index ?? 0, context: m.context ?? new Uint8Array(0) });
        break;
      default:
        break;
    }
  }

  private stepCandidate(m: Message): void {
    const myResp: MessageType = this.role === "preCandidate" ? "preVoteResp" : "voteResp";
    if (m.type === "app" || m.type === "heartbeat" || m.type === "snap") {
      this.becomeFollower(m.term, m.from);
      this.stepFollower(m);
      return;
    }
    if (m.type !== myResp) return;
    const result = this.recordVote(m.from, !m.reject);
    if (result === "won") {
      if (this.role === "preCandidate") this.campaign("election");
      else {
        this.becomeLeader();
      }
    } else if (result === "lost") {
      this.becomeFollower(this.term, null);
    }
  }

  private stepLeader(m: Message): void {
    const pr = this.progress.get(m.from);
    if (m.type === "readIndex") {
      if (pr) this.handleReadIndex(m.from, m.context ?? new Uint8Array(0));
      return;
    }
    if (!pr) return;
    pr.recentActive = true;
    switch (m.type) {
      case "appResp":
        this.handleAppendResponse(pr, m);
        break;
      case "heartbeatResp":
        pr.onHeartbeatResponse();
        if (pr.match < this.log.lastIndex()) this.sendAppend(pr.id);
        if (m.context && m.context.length > 0) this.ackRead(m.from, m.context);
        break;
      default:
        break;
    }
  }

  private handleAppend(m: Message): void {
    const prevIndex = m.index ?? 0;
    if (prevIndex < this.log.committed) {
      // Already committed here: tell the leader how far we are.
      this.send({ type: "appResp", to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(prevIndex, m.logTerm ?? 0, m.commit ?? 0, m.entries ?? []);
    if (lastNew !== null) {
      this.send({ type: "appResp", to: m.from, index: lastNew });
      return;
    }
    // Fast back-off: point the leader at the last index whose term can still match.
    const hintIndex = this.log.findConflictByTerm(Math.min(prevIndex, this.log.lastIndex()), m.logTerm ?? 0);
    this.send({
      type: "appResp",
      to: m.from,
      index: prevIndex,
      reject: true,
      rejectHint: hintIndex,
      rejectTerm: this.log.term(hintIndex) ?? 0,
    });
  }

  private handleAppendResponse(pr: Progress, m: Message): void {
    if (m.reject) {
      let hint = m.rejectHint ?? 0;
      if ((m.rejectTerm ?? 0) > 0) hint = this.log.findConflictByTerm(hint, m.rejectTerm ?? 0);
      if (pr.maybeDecrTo(m.index ?? 0, hint)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.sendAppend(pr.id);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    const index = m.index ?? 0;
    // An acknowledged probe at the known match point also ends probing (nothing new, but the follower is in sync).
    if (!pr.maybeUpdate(index) && !(pr.state === "probe" && pr.match === index)) return;
    if (pr.state === "probe") pr.becomeReplicate();
    else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) pr.becomeProbe();
    if (this.maybeCommit()) this.broadcastAppend();
    // A follower we were holding back hears the commit index now, even with nothing new to send.
    else if (wasPaused) this.sendAppend(pr.id);
    // The window may have opened for several size-limited appends.
    while (this.sendAppend(pr.id, false)) {}
    if (pr.id === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: "timeoutNow", to: pr.id });
    }
  }

  private handleSnapshot(m: Message): void {
    const snap = m.snapshot!;
    const { index, term } = snap.meta;
    if (index <= this.log.committed) {
      this.send({ type: "appResp", to: m.from, index: this.log.committed });
      return;
    }
    if (this.log.matchTerm(index, term)) {
      // We already hold the entries the snapshot covers: just fast-forward the commit index.
      this.log.commitTo(index);
      this.send({ type: "appResp", to: m.from, index: this.log.lastIndex() });
      return;
    }
    this.logLine(`restoring snapshot at index ${index} term ${term} from ${m.from}`);
    this.log.restore(snap);
    this.latestSnapshot = snap;
    this.setConf(snap.meta.confState);
    this.send({ type: "appResp", to: m.from, index: this.log.lastIndex() });
  }

  // ---- Replication --------------------------------------------------------------------------------------

  private assertCanPropose(): void {
    if (this.role !== "leader")
      throw new ProposalError("not_leader", "this node is not the leader", this.lead);
    if (this.leadTransferee !== null) {
      throw new ProposalError(
        "transfer_in_progress",
        `leadership is moving to ${this.leadTransferee}`,
        this.id,
      );
    }
  }

  private appendEntries(entries: { type: Entry["type"]; data: Uint8Array }[]): {
    index: number;
    term: number;
  } {
    let index = this.log.lastIndex();
    const full: Entry[] = entries.map((e) => ({
      term: this.term,
      index: ++index,
      type: e.type,
      data: e.data,
    }));
    this.log.append(full);
    this.appendsPending = true;
    return { index, term: this.term };
  }

  private broadcastAppend(): void {
    for (const id of this.progress.keys()) {
      if (id !== this.id) this.sendAppend(id, true);
    }
  }

  /** Sends `to` what it is missing (entries, or a snapshot when they are compacted). Returns whether it sent. */
  private sendAppend(to: NodeId, sendIfEmpty = true): boolean {
    const pr = this.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined || pr.next < this.log.firstIndex()) return this.sendSnapshot(pr);
    const entries = this.log.slice(pr.next, this.log.lastIndex() + 1, this.config.maxSizePerMsg);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({
      type: "app",
      to,
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.log.committed,
    });
    pr.sentEntries(prevIndex + entries.length, entries.length);
    return true;
  }

  private sendSnapshot(pr: Progress): boolean {
    const snap = this.latestSnapshot;
    if (!snap) return false;
    this.logLine(`sending snapshot at index ${snap.meta.index} to ${pr.id} (it needs ${pr.next})`);
    pr.becomeSnapshot(snap.meta.index);
    this.send({ type: "snap", to: pr.id, snapshot: snap });
    return true;
  }

  private broadcastHeartbeat(context: Uint8Array | undefined): void {
    for (const pr of this.progress.values()) {
      if (pr.id === this.id) continue;
      // Never tell a follower to commit beyond what it is known to hold.
      this.send({ type: "heartbeat", to: pr.id, commit: Math.min(pr.match, this.log.committed), context });
    }
  }

  /** Advances the commit index to the highest index a majority of voters hold, if it is of the current term. */
  private maybeCommit(): boolean {
    const matches = [...this.voters].map((id) => this.progress.get(id)?.match ?? 0).sort((a, b) => b - a);
    const candidate = matches[this.quorum() - 1] ?? 0;
    if (candidate > this.log.committed && this.log.term(candidate) === this.term) {
      this.log.commitTo(candidate);
      this.releaseReadsAwaitingCommit();
      return true;
    }
    return false;
  }

  // ---- Linearizable reads (ReadIndex) -------------------------------------------------------------------

  private handleReadIndex(from: NodeId, context: Uint8Array): void {
    // Until an entry of this term commits, the leader's commit index may lag what was committed before it: a
    // restarted single voter, too, may have lost the commit index of writes it acknowledged (it is not synced).
    const ready = this.log.term(this.log.committed) === this.term;
    this.readOnly.add(from, context, this.log.committed, ready);
    if (ready) this.confirmLeadership(context);
  }

  private releaseReadsAwaitingCommit(): void {
    const context = this.readOnly.startAwaiting(this.log.committed);
    if (context) this.confirmLeadership(context);
  }

  /** Asks a quorum to confirm this leader for the reads up to `context`; a single voter is its own quorum. */
  private confirmLeadership(context: Uint8Array): void {
    if (this.quorum() === 1 && this.voters.has(this.id)) this.ackRead(this.id, context);
    else this.broadcastHeartbeat(context);
  }

  private ackRead(from: NodeId, context: Uint8Array): void {
    const confirmed = this.readOnly.ack(context, from, (acks) => this.countVoters(acks) + 1 >= this.quorum());
    for (const r of confirmed) this.answerRead(r.from, r.index, r.context);
  }

  private countVoters(ids: Set<NodeId>): number {
    let n = 0;
    for (const id of ids) if (this.voters.has(id) && id !== this.id) n++;
    return n;
  }

  private answerRead(from: NodeId, index: number, context: Uint8Array): void {
    if (from === this.id) this.readStates.push({ index, context });
    else this.send({ type: "readIndexResp", to: from, index, context });
  }

  // ---- Membership ---------------------------------------------------------------------------------------

  private validateConfChange(cc: ConfChange): string | null {
    const isVoter = this.voters.has(cc.id);
    const isLearner = this.learners.has(cc.id);
    switch (cc.type) {
      case "addVoter":
      case "addLearner":
        return isVoter || isLearner ? `${cc.id} is already a member` : null;
      case "promote":
        return isLearner ? null : `${cc.id} is not a learner`;
      case "remove":
        if (!isVoter && !isLearner) return `${cc.id} is not a member`;
        if (isVoter && this.voters.size === 1) return "cannot remove the last voter";
        return null;
    }
  }

  private applyConfChange(cc: ConfChange | null): void {
    if (!cc) return;
    const voters = new Set(this.voters);
    const learners = new Set(this.learners);
    if (cc.type === "addVoter" || cc.type === "promote") {
      learners.delete(cc.id);
      voters.add(cc.id);
    } else if (cc.type === "addLearner") {
      if (!voters.has(cc.id)) learners.add(cc.id);
    } else {
      voters.delete(cc.id);
      learners.delete(cc.id);
    }
    this.logLine(
      `membership: ${cc.type} ${cc.id} -> voters [${[...voters].sort()}] learners [${[...learners].sort()}]`,
    );
    this.setConf({ voters: [...voters], learners: [...learners] });

    if (this.role !== "leader") return;
    if (cc.id === this.id && cc.type === "remove") {
      // Hand over to the most up-to-date voter so the cluster does not wait a whole election timeout.
      const successor = bestSuccessor(this.progress.values(), this.id);
      if (successor) this.send({ type: "timeoutNow", to: successor });
      this.logLine(`removed from the cluster: stepping down at term ${this.term}`);
      this.becomeFollower(this.term, null);
      return;
    }
    if (this.leadTransferee === cc.id && cc.type === "remove") this.leadTransferee = null;
    // A smaller quorum may commit at once; new members need their first append.
    if (this.maybeCommit()) this.broadcastAppend();
    else if (cc.type !== "remove") this.sendAppend(cc.id);
  }

  private setConf(conf: ConfState): void {
    this.voters = new Set(conf.voters);
    this.learners = new Set(conf.learners);
    for (const id of this.progress.keys()) {
      if (!this.voters.has(id) && !this.learners.has(id)) this.progress.delete(id);
    }
    for (const id of [...this.voters, ...this.learners]) {
      const existing = this.progress.get(id);
      if (existing) existing.learner = this.learners.has(id);
      else {
        const pr = new Progress(
          id,
          this.log.lastIndex() + 1,
          this.learners.has(id),
          this.config.maxInflightMsgs,
        );
        this.progress.set(id, pr);
      }
    }
  }

  // ---- Helpers ------------------------------------------------------------------------------------------

  private send(m: Omit<Message, "from" | "term"> & { term?: number }): void {
    this.outbox.push({ ...m, from: this.id, term: m.term ?? this.term } as Message);
  }

  private logLine(line: string): void {
    this.config.logger?.(`raft ${this.id}: ${line}`);
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(
  a: { lead: NodeId | null; role: Role; term: number },
  b: { lead: NodeId | null; role: Role; term: number },
): boolean {
  return a.lead === b.lead && a.role === b.role && a.term === b.term;
}
