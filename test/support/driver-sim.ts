// A cluster of real RaftDrivers in one process: a faulty simulated network, storage whose writes take a random
// time and are lost when the node crashes before they complete, and state machines that check Raft's safety as
// entries are applied. Unlike raft-sim.ts (which drives the pure core itself) this exercises the driver's own
// pipeline: applying while the disk write is in flight, followers committing before the leader's write is done,
// lone commit indexes written without a sync, linearizable reads, background snapshots, compaction and snapshot
// install.
//
// Every random choice comes from the seeded PRNG and every timer (the drivers' clocks and passes included) runs on
// one virtual clock, so a seed names an exact execution: a failing seed replays identically.
import {
  NotLeaderError,
  ProposalDroppedError,
  RaftDriver,
  type RaftTransport,
  type StateMachine,
} from "../../src/raft/driver.ts";
import type {
  Entry,
  HardState,
  Message,
  NodeId,
  RaftStorage,
  Snapshot,
  StoredState,
} from "../../src/raft/types.ts";
import { EMPTY_HARD_STATE } from "../../src/raft/types.ts";
import { pick, prng } from "./prng.ts";
import { VirtualClock } from "./virtual-clock.ts";

export interface DriverSimOptions {
  seed: number;
  nodes: number;
  /** How long random faults are injected before everything is healed. */
  faultMs: number;
  clients?: number;
  snapshotEvery?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---- Storage --------------------------------------------------------------------------------------------

/** What survives a crash: only writes that completed. Entries are kept in place (no copy per save). */
export class Disk {
  hardState: HardState = { ...EMPTY_HARD_STATE };
  snapshot: Snapshot | null = null;
  /** log[k] has index start + k. */
  private log: Entry[] = [];
  private start = 1;

  lastIndex(): number {
    return this.start + this.log.length - 1;
  }

  append(entries: Entry[]): void {
    const first = entries[0];
    if (!first) return;
    if (first.index > this.lastIndex() + 1 && this.log.length > 0)
      throw new Error(`disk: entry ${first.index} leaves a gap after ${this.lastIndex()}`);
    if (this.log.length === 0 || first.index < this.start) {
      this.log = [];
      this.start = first.index;
    }
    // Last writer wins: the stored suffix from the first new index on is replaced.
    this.log.length = first.index - this.start;
    for (const e of entries) this.log.push(e);
  }

  saveSnapshot(s: Snapshot): void {
    if (this.snapshot && this.snapshot.meta.index >= s.meta.index) return;
    this.snapshot = s;
    // A snapshot past the log's end (installed from a leader) starts a new log after it (as MemoryRaftStorage).
    if (this.lastIndex() < s.meta.index) {
      this.log = [];
      this.start = s.meta.index + 1;
    }
  }

  compact(index: number): void {
    const n = Math.min(this.log.length, index - this.start + 1);
    if (n <= 0) return;
    this.log.splice(0, n);
    this.start += n;
  }

  entriesAfter(index: number): Entry[] {
    return this.log.slice(Math.max(0, index + 1 - this.start));
  }
}

/**
 * One incarnation's view of its disk. Writes complete after a random delay, in order; once the node crashed
 * (`dead`) nothing reaches the disk any more, entirely or not at all per write. Writes of a dead incarnation still
 * resolve (without writing) so its abandoned driver can wind down; its network endpoint and state machine are deaf.
 */
class SimStorage implements RaftStorage {
  dead = false;
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly disk: Disk,
    private readonly clock: VirtualClock,
    private readonly delay: () => number,
  ) {}

  async load(): Promise<StoredState> {
    const snap = this.disk.snapshot;
    return {
      hardState: { ...this.disk.hardState },
      snapshot: snap,
      entries: this.disk.entriesAfter(snap?.meta.index ?? 0),
      report: { notes: [], truncatedBytes: 0 },
    };
  }

  save(hardState: HardState | null, entries: Entry[]): Promise<void> {
    const hs = hardState ? { ...hardState } : null;
    const batch = entries.slice();
    return this.serial(this.delay(), () => {
      this.disk.append(batch);
      if (hs) this.disk.hardState = hs;
    });
  }

  saveSnapshot(snapshot: Snapshot): Promise<void> {
    // Like FileRaftStorage: the snapshot's own file is written beside the log appends, then recorded in order.
    return this.clock.sleep(this.delay()).then(() => this.serial(0, () => this.disk.saveSnapshot(snapshot)));
  }

  compact(index: number): Promise<void> {
    return this.serial(0, () => this.disk.compact(index));
  }

  async close(): Promise<void> {}

  private serial(ms: number, write: () => void): Promise<void> {
    const done = this.tail.then(async () => {
      if (ms > 0) await this.clock.sleep(ms);
      if (!this.dead) write();
    });
    this.tail = done;
    return done;
  }
}

// ---- State machine and safety checks --------------------------------------------------------------------

type Applied = [index: number, term: number, cmd: string];

/** Safety facts across all nodes and incarnations of a run. */
class Checker {
  /** index -> "term:cmd" as first applied anywhere. */
  readonly appliedAt = new Map<number, string>();
  /** cmd -> index where it was applied. */
  private cmdIndex = new Map<string, number>();
  private leaderOfTerm = new Map<number, NodeId>();
  readonly violations: string[] = [];

  constructor(private readonly log: (line: string) => void) {}

  fail(msg: string): void {
    this.log(`VIOLATION ${msg}`);
    this.violations.push(msg);
  }

  onApply(node: NodeId, prev: number, [index, term, cmd]: Applied): void {
    if (index <= prev) this.fail(`${node} applied ${index} after ${prev}`);
    // Indexes without a command (no-ops, membership) are skipped by apply(); a known command is not.
    for (let i = prev + 1; i < index; i++) {
      if (this.appliedAt.has(i)) this.fail(`${node} skipped index ${i} (${this.appliedAt.get(i)})`);
    }
    const key = `${term}:${cmd}`;
    const seen = this.appliedAt.get(index);
    if (seen === undefined) this.appliedAt.set(index, key);
    else if (seen !== key)
      this.fail(`state machine safety: index ${index} is ${seen} elsewhere, ${key} on ${node}`);
    const at = this.cmdIndex.get(cmd);
    if (at === undefined) this.cmdIndex.set(cmd, index);
    else if (at !== index) this.fail(`${cmd} applied at ${at} and at ${index} (on ${node})`);
  }

  onLeader(node: NodeId, term: number): void {
    const prior = this.leaderOfTerm.get(term);
    if (prior && prior !== node) this.fail(`election safety: ${prior} and ${node} both led term ${term}`);
    this.leaderOfTerm.set(term, node);
  }
}

/** Records every applied command; its snapshot is the whole list (runs are short, so it stays small). */
export class SimStateMachine implements StateMachine {
  applied: Applied[] = [];
  dead = false;

  constructor(
    private readonly node: NodeId,
    private readonly checker: Checker,
    /** Called before each apply: lets the cluster count entries applied before they are durable locally. */
    private readonly onApply: (index: number) => void = () => {},
  ) {}

  lastIndex(): number {
    return this.applied.at(-1)?.[0] ?? 0;
  }

  apply(entry: Entry): unknown {
    if (this.dead) return null;
    const a: Applied = [entry.index, entry.term, decoder.decode(entry.data)];
    this.checker.onApply(this.node, this.lastIndex(), a);
    this.onApply(entry.index);
    this.applied.push(a);
    return entry.index;
  }

  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify(this.applied));
  }

  restore(data: Uint8Array): void {
    if (this.dead) return;
    const next = data.length > 0 ? (JSON.parse(decoder.decode(data)) as Applied[]) : [];
    // A live replica only moves forward: what it applied must be a prefix of any snapshot it installs.
    const old = this.applied;
    const newLast = next.at(-1)?.[0] ?? 0;
    for (const a of old) {
      if (a[0] > newLast) {
        this.checker.fail(`${this.node} restored a snapshot ending at ${newLast} after applying ${a[0]}`);
        break;
      }
    }
    for (let k = 0; k < Math.min(old.length, next.length); k++) {
      if (old[k]!.join() !== next[k]!.join()) {
        this.checker.fail(
          `${this.node} restored a snapshot that disagrees with its applied ${old[k]!.join()}`,
        );
        break;
      }
    }
    this.applied = next;
  }
}

// ---- Cluster --------------------------------------------------------------------------------------------

interface SimNode {
  id: NodeId;
  disk: Disk;
  /** Bumped on every (re)start; a reply from an older incarnation is not an acknowledgement. */
  incarnation: number;
  driver: RaftDriver | null;
  storage: SimStorage | null;
  sm: SimStateMachine | null;
  started: Promise<unknown> | null;
}

export class DriverCluster {
  readonly rand: () => number;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly checker: Checker;
  readonly acked = new Set<string>();
  readonly stats = {
    proposed: 0,
    acked: 0,
    crashes: 0,
    snapshotsInstalled: 0,
    snapshotsTaken: 0,
    dropped: 0,
    /** Entries applied before this node's own copy was durable (the driver's pipelining paths). */
    leaderEarlyApplies: 0,
    followerEarlyApplies: 0,
    /** Linearizable reads (readBarrier) that completed, each checked against the writes acknowledged before it. */
    reads: 0,
    /** Proposals answered NotLeader / dropped / timed out. */
    notLeader: 0,
    droppedProposals: 0,
    timedOut: 0,
  };
  /** Virtual time: every timer of the run, the drivers' included, so a seed replays the run exactly. */
  readonly clock: VirtualClock;
  private readonly events: string[] = [];
  /** Every event, message delivery and apply of the run, folded into one number (FNV-1a), and their count. */
  readonly trace = { hash: 0x811c9dc5, lines: 0 };
  private cut = new Set<string>();
  /** When the last message sent on each directed link ("a>b") arrives: a closed connection is seen after it. */
  private linkBusyUntil = new Map<string, number>();
  private dropRate = 0;
  private slowLeaderDisk = false;
  private stopping: Promise<void>[] = [];
  private clientsRunning = false;
  private clientLoops: Promise<void>[] = [];
  private readonly initialCluster: Map<NodeId, string>;
  private readonly maxSizePerMsg: number;
  private readonly maxInflightMsgs: number;

  constructor(readonly opts: DriverSimOptions) {
    this.rand = prng(opts.seed);
    this.clock = new VirtualClock((err) =>
      this.checker.fail(`a simulated event threw: ${(err as Error).stack}`),
    );
    this.clock.start();
    this.checker = new Checker((l) => this.event(l));
    // Tiny messages (one entry each) and short windows make replication take many round trips.
    this.maxSizePerMsg = this.rand() < 0.5 ? 1 : 64 * 1024;
    this.maxInflightMsgs = this.rand() < 0.5 ? 2 : 16;
    const ids = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
    this.initialCluster = new Map(ids.map((id) => [id, `sim://${id}`]));
    for (const id of ids) {
      this.nodes.set(id, {
        id,
        disk: new Disk(),
        incarnation: 0,
        driver: null,
        storage: null,
        sm: null,
        started: null,
      });
    }
  }

  event(line: string): void {
    const stamped = `${String(this.clock.now.toFixed(3)).padStart(9)}ms ${line}`;
    this.traced(stamped);
    this.events.push(stamped);
    if (this.events.length > 400) this.events.splice(0, 200);
  }

  private traced(line: string): void {
    let h = this.trace.hash;
    for (let i = 0; i < line.length; i++) h = Math.imul(h ^ line.charCodeAt(i), 0x01000193) >>> 0;
    this.trace.hash = h;
    this.trace.lines++;
  }

  tail(n = 40): string {
    return this.events.slice(-n).join("\n");
  }

  live(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.driver !== null);
  }

  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.live()) {
      if (!n.driver!.isLeader()) continue;
      if (!best || n.driver!.commitAndTerm().term > best.driver!.commitAndTerm().term) best = n;
    }
    return best;
  }

  // ---- Nodes ----------------------------------------------------------------------------------------------

  start(id: NodeId): void {
    const node = this.nodes.get(id)!;
    if (node.driver) return;
    const inc = ++node.incarnation;
    const storage = new SimStorage(node.disk, this.clock, () => this.diskDelay(node));
    const sm = new SimStateMachine(id, this.checker, (index) => {
      this.traced(`${this.clock.now} ${id} applies ${index}`);
      this.countEarly(node, index);
    });
    const transport: RaftTransport = {
      send: (ms) => {
        if (node.incarnation === inc && node.driver) this.send(ms);
      },
      setPeers: () => {},
    };
    const driver = new RaftDriver({
      id,
      storage,
      transport,
      stateMachine: sm,
      initialCluster: this.initialCluster,
      tickMs: 5,
      electionTicks: 10,
      heartbeatTicks: 1,
      snapshotEvery: this.opts.snapshotEvery ?? 30,
      snapshotCatchUpEntries: 10,
      maxSizePerMsg: this.maxSizePerMsg,
      maxInflightMsgs: this.maxInflightMsgs,
      random: prng(Math.floor(this.rand() * 2 ** 32)),
      clock: this.clock,
      logger: (l) => this.onDriverLog(id, l),
    });
    driver.onLeaderChange((lead, term) => {
      if (node.incarnation !== inc) return;
      if (lead === id) this.checker.onLeader(id, term);
      this.event(`${id}: leader ${lead ?? "-"} term ${term}`);
    });
    Object.assign(node, { driver, storage, sm });
    node.started = driver
      .start()
      .catch((e: Error) => this.checker.fail(`${id} failed to start: ${e.message}`));
    this.event(
      `${id}: start #${inc} (disk: snap ${node.disk.snapshot?.meta.index ?? 0}, last ${node.disk.lastIndex()}, commit ${node.disk.hardState.commit})`,
    );
  }

  private countEarly(node: SimNode, index: number): void {
    if (index <= node.disk.lastIndex()) return;
    if (node.driver?.isLeader()) this.stats.leaderEarlyApplies++;
    else this.stats.followerEarlyApplies++;
  }

  /** Loses the process: nothing more reaches its disk, network or state machine. */
  crash(id: NodeId): void {
    const node = this.nodes.get(id)!;
    if (!node.driver) return;
    this.event(`${id}: CRASH${node.driver.isLeader() ? " (leader)" : ""}`);
    this.stats.crashes++;
    node.storage!.dead = true;
    node.sm!.dead = true;
    const driver = node.driver;
    Object.assign(node, { driver: null, storage: null, sm: null });
    // stop() only clears the abandoned driver's clock here: its storage writes no more and its messages are lost.
    this.stopping.push(node.started!.then(() => driver.stop()).catch(() => {}));
    // A dead process's connections close at once (the kernel resets them); a partitioned peer sees nothing.
    for (const n of this.live()) if (!this.cut.has(pairKey(id, n.id))) this.closeConnection(id, n.id);
  }

  /**
   * `to` sees its connection to `from` close (a crash, or a reset link: `from` may live on), as TCP shows it: after
   * what `from` had already sent it.
   */
  closeConnection(from: NodeId, to: NodeId): void {
    const node = this.nodes.get(to)!;
    const inc = node.incarnation;
    const at = Math.max(this.clock.now, this.linkBusyUntil.get(`${from}>${to}`) ?? 0) + this.rand() * 2;
    this.clock.after(at - this.clock.now, () => {
      if (node.incarnation !== inc || !node.driver) return;
      this.event(`${to}: connection to ${from} closed`);
      node.driver.peerConnectionClosed(from);
    });
  }

  private onDriverLog(id: NodeId, line: string): void {
    if (line.startsWith("fatal")) this.checker.fail(`${id} ${line.split("\n")[0]}`);
    if (line.includes("restoring snapshot")) this.stats.snapshotsInstalled++;
    if (line.startsWith("snapshot at")) this.stats.snapshotsTaken++;
    if (line.startsWith("became") || line.includes("snapshot") || line.includes("leader connection closed"))
      this.event(`${id}: ${line}`);
  }

  /** Usually quick; a leader's writes are slow while that fault is on, so followers commit before it is durable. */
  private diskDelay(node: SimNode): number {
    if (this.slowLeaderDisk && node.driver?.isLeader()) return 20 + this.rand() * 30;
    return this.rand() < 0.05 ? 5 + this.rand() * 10 : this.rand() * 2;
  }

  // ---- Network --------------------------------------------------------------------------------------------

  private send(messages: Message[]): void {
    for (const m of messages) {
      if (this.rand() < this.dropRate && m.type !== "snap") {
        this.stats.dropped++;
        continue;
      }
      const copies = this.rand() < 0.02 ? 2 : 1;
      for (let c = 0; c < copies; c++) {
        const delay = this.rand() < 0.05 ? 5 + this.rand() * 15 : this.rand() * 3;
        const link = `${m.from}>${m.to}`;
        this.linkBusyUntil.set(link, Math.max(this.linkBusyUntil.get(link) ?? 0, this.clock.now + delay));
        this.clock.after(delay, () => this.deliver(m));
      }
    }
  }

  private deliver(m: Message): void {
    const to = this.nodes.get(m.to)?.driver;
    const from = this.nodes.get(m.from)?.driver;
    if (!to || this.cut.has(pairKey(m.from, m.to))) {
      this.stats.dropped++;
      // A real transport notices a failed snapshot stream (and, now and then, an unreachable peer).
      if (m.type === "snap") from?.reportSnapshot(m.to, false);
      else if (this.rand() < 0.2) from?.reportUnreachable(m.to);
      return;
    }
    this.traced(
      `${this.clock.now} ${m.type} ${m.from}>${m.to} t${m.term} i${m.index} c${m.commit} n${m.entries?.length}`,
    );
    // A copy, as if it crossed the wire: no node shares objects with another.
    to.step(structuredClone(m));
    if (m.type === "snap") from?.reportSnapshot(m.to, true);
  }

  partition(group: NodeId[]): void {
    const a = new Set(group);
    this.cut.clear();
    for (const x of this.nodes.keys())
      for (const y of this.nodes.keys()) if (a.has(x) !== a.has(y)) this.cut.add(pairKey(x, y));
    this.event(`partition [${group.join(",")}] | rest`);
  }

  // ---- Faults ---------------------------------------------------------------------------------------------

  private randomFault(): void {
    const ids = [...this.nodes.keys()];
    const down = ids.filter((id) => !this.nodes.get(id)!.driver);
    const maxDown = Math.floor((this.opts.nodes - 1) / 2);
    const leader = this.leader();
    const r = this.rand();
    if (r < 0.18 && leader) {
      // Leaders are the interesting victims: their in-flight writes and early applies are what is under test.
      if (down.length < maxDown || this.rand() < 0.2) this.crash(leader.id);
      else if (this.rand() < 0.7) this.partition([leader.id]);
      else {
        // A follower's connection to the live leader resets: it must not depose it.
        const follower = pick(
          this.rand,
          this.live().filter((n) => n !== leader),
        );
        if (follower) this.closeConnection(leader.id, follower.id);
      }
    } else if (r < 0.3) {
      if (down.length < maxDown || this.rand() < 0.1) this.crash(pick(this.rand, ids));
    } else if (r < 0.55) {
      if (down.length > 0) this.start(pick(this.rand, down));
    } else if (r < 0.68) {
      const group = ids.filter(() => this.rand() < 0.4);
      if (group.length > 0 && group.length < ids.length) this.partition(group);
    } else if (r < 0.8) {
      this.cut.clear();
      this.event("heal partitions");
    } else if (r < 0.9) {
      this.slowLeaderDisk = !this.slowLeaderDisk;
      this.event(`slow leader disk ${this.slowLeaderDisk ? "on" : "off"}`);
    } else {
      this.dropRate = pick(this.rand, [0, 0, 0.05, 0.2]);
      this.event(`drop rate ${this.dropRate}`);
    }
  }

  // ---- Clients --------------------------------------------------------------------------------------------

  /** One proposal through `node`; true when its driver (still the same incarnation) acknowledged it. */
  private async proposeVia(node: SimNode, cmd: string, timeoutMs: number): Promise<boolean> {
    const driver = node.driver;
    if (!driver) return false;
    const inc = node.incarnation;
    this.stats.proposed++;
    const answer = driver.propose(encoder.encode(cmd)).then(
      () => {
        // A crashed process answers nobody, even if its abandoned driver object resolves later.
        if (node.incarnation !== inc || node.driver !== driver) return false;
        this.acked.add(cmd);
        this.stats.acked++;
        return true;
      },
      (e: Error) => {
        if (e instanceof NotLeaderError) this.stats.notLeader++;
        else if (e instanceof ProposalDroppedError) this.stats.droppedProposals++;
        else if (!e.message.includes("shutting down")) this.event(`${cmd} failed: ${e.message}`);
        return false;
      },
    );
    let answered = false;
    void answer.then(() => {
      answered = true;
    });
    const timeout = this.clock.sleep(timeoutMs).then(() => {
      if (!answered) this.stats.timedOut++;
      return false;
    });
    return Promise.race([answer, timeout]);
  }

  /**
   * A linearizable read through `node`: once its readBarrier resolves, its state machine must hold every write
   * acknowledged before the read began. True when it completed on the same incarnation.
   */
  async readVia(node: SimNode, timeoutMs: number): Promise<boolean> {
    const driver = node.driver;
    if (!driver) return false;
    const inc = node.incarnation;
    const before = [...this.acked];
    const answer = driver.readBarrier().then(
      () => {
        if (node.incarnation !== inc || node.driver !== driver) return false;
        this.stats.reads++;
        const have = new Set(node.sm!.applied.map((a) => a[2]));
        const missing = before.filter((cmd) => !have.has(cmd));
        if (missing.length > 0)
          this.checker.fail(
            `stale read on ${node.id}: misses ${missing.join(",")}, acknowledged before it began`,
          );
        return true;
      },
      () => false,
    );
    return Promise.race([answer, this.clock.sleep(timeoutMs).then(() => false)]);
  }

  private async client(c: number): Promise<void> {
    let seq = 0;
    while (this.clientsRunning) {
      const target = this.leader() ?? pick(this.rand, this.live());
      // Every attempt is a new command: a retried one could be applied twice, which the checks forbid.
      const ok = target ? await this.proposeVia(target, `c${c}-${++seq}`, 150) : false;
      // Without an answer, wait a little (as a client would) rather than spin while there is no leader.
      await this.clock.sleep(ok ? this.rand() * 3 : 5 + this.rand() * 10);
    }
  }

  /** Reads in a loop, retrying at once after a failure (as right after a restart); its own PRNG keeps the writers'. */
  private async reader(): Promise<void> {
    const rand = prng(this.opts.seed ^ 0x5eed);
    while (this.clientsRunning) {
      const target = this.leader() ?? pick(rand, this.live());
      const ok = target ? await this.readVia(target, 150) : false;
      await this.clock.sleep(ok ? 1 + rand() * 5 : rand());
    }
  }

  // ---- Scenario -------------------------------------------------------------------------------------------

  /** Starts the cluster, then clients and random faults for `faultMs`. */
  async runFaults(): Promise<void> {
    for (const id of this.nodes.keys()) this.start(id);
    this.clientsRunning = true;
    for (let c = 0; c < (this.opts.clients ?? 5); c++) this.clientLoops.push(this.client(c));
    this.clientLoops.push(this.reader());
    const end = this.clock.now + this.opts.faultMs;
    while (this.clock.now < end && this.checker.violations.length === 0) {
      await this.clock.sleep(10 + this.rand() * 50);
      this.randomFault();
    }
    this.clientsRunning = false;
    await Promise.all(this.clientLoops);
  }

  /** Heals every fault and restarts every node. */
  heal(): void {
    this.event("HEAL: restart all, reconnect, fast disks, no loss");
    this.cut.clear();
    this.dropRate = 0;
    this.slowLeaderDisk = false;
    for (const id of this.nodes.keys()) this.start(id);
  }

  /** Liveness: within `ms`, a leader commits a fresh write. */
  async checkProgress(seed: number, ms: number): Promise<void> {
    const end = this.clock.now + ms;
    let n = 0;
    while (this.clock.now < end) {
      const leader = this.leader();
      if (leader && (await this.proposeVia(leader, `final-${seed}-${++n}`, 300))) return;
      await this.clock.sleep(20);
    }
    throw new Error(`no progress after healing: ${this.describe()}`);
  }

  /** Waits until every node has applied the same last index, then checks they agree and kept every ack. */
  async checkConverged(ms: number): Promise<void> {
    const end = this.clock.now + ms;
    for (;;) {
      const leader = this.leader();
      const commit = leader?.driver?.commitAndTerm().commit ?? -1;
      const nodes = this.live();
      const last = new Set(nodes.map((n) => n.sm!.lastIndex()));
      if (leader && last.size === 1 && nodes.every((n) => n.driver!.hasApplied(commit))) break;
      if (this.clock.now > end) throw new Error(`replicas did not converge: ${this.describe()}`);
      await this.clock.sleep(20);
    }
    const [first, ...rest] = this.live();
    const ref = JSON.stringify(first!.sm!.applied);
    for (const n of rest) {
      if (JSON.stringify(n.sm!.applied) !== ref)
        this.checker.fail(`${n.id} and ${first!.id} applied different sequences`);
    }
    for (const n of this.live()) {
      const cmds = new Set(n.sm!.applied.map((a) => a[2]));
      for (const cmd of this.acked)
        if (!cmds.has(cmd)) this.checker.fail(`acknowledged ${cmd} is missing on ${n.id}`);
    }
  }

  describe(): string {
    return this.live()
      .map((n) => {
        const s = n.driver!.status();
        return `${n.id}:${s.role}@${s.term} commit ${s.commit} last ${s.lastIndex} sm ${n.sm!.lastIndex()}`;
      })
      .join(", ");
  }

  /** Stops every driver and timer so the test process can exit. */
  async dispose(): Promise<void> {
    this.clientsRunning = false;
    for (const n of this.nodes.values()) {
      const driver = n.driver;
      if (!driver) continue;
      n.storage!.dead = true;
      n.sm!.dead = true;
      n.driver = null;
      this.stopping.push(n.started!.then(() => driver.stop()).catch(() => {}));
    }
    await Promise.all([...this.stopping, ...this.clientLoops]);
    await this.clock.halt();
  }
}

function pairKey(a: NodeId, b: NodeId): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}
