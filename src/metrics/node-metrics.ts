// What a node reports on /metrics (Prometheus text format), named as etcd names the same things, with `berth_`
// for `etcd_` (and without etcd's `debugging_` tier). Values the node already keeps (Raft status, store sizes,
// unit states, open connections) are read when the page is rendered; only the histograms and a few counters are
// fed as things happen, through children kept here, so observing allocates nothing.
import type { UnitState } from "../agent/unit-types.ts";
import type { KvStore } from "../kv/store.ts";
import type { RaftDriver } from "../raft/driver.ts";
import {
  type CounterChild,
  DISK_SECONDS_BUCKETS,
  type Histogram,
  type HistogramChild,
  REQUEST_SECONDS_BUCKETS,
  Registry,
} from "./registry.ts";

/** HTTP methods labelled as themselves; anything else is "other", so clients cannot grow the label set. */
const HTTP_METHODS = new Set(["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]);
const UNIT_STATES = ["active", "activating", "deactivating", "inactive", "failed"] as const;
/** Store counters (KvStore.stats()) as etcd v2's reads_total/writes_total{action} and their failures. */
const STORE_ACTIONS: [action: string, success: string, fail: string, write: boolean][] = [
  ["get", "getsSuccess", "getsFail", false],
  ["set", "setsSuccess", "setsFail", true],
  ["create", "createSuccess", "createFail", true],
  ["update", "updateSuccess", "updateFail", true],
  ["delete", "deleteSuccess", "deleteFail", true],
  ["compareAndSwap", "compareAndSwapSuccess", "compareAndSwapFail", true],
  ["compareAndDelete", "compareAndDeleteSuccess", "compareAndDeleteFail", true],
];

/** Request latencies by method and outcome, with the children cached per (method, code): no string is built per request. */
export class RequestMetrics {
  private readonly children = new Map<string, Map<string | number, HistogramChild>>();

  constructor(
    private readonly histogram: Histogram,
    /** Methods labelled as themselves; others are "other". */
    private readonly methods: ReadonlySet<string>,
  ) {}

  observe(method: string, code: string | number, seconds: number): void {
    const m = this.methods.has(method) ? method : "other";
    let codes = this.children.get(m);
    if (!codes) {
      codes = new Map();
      this.children.set(m, codes);
    }
    let child = codes.get(code);
    if (!child) {
      child = this.histogram.child(m, String(code));
      codes.set(code, child);
    }
    child.observe(seconds);
  }
}

/** What the node hands over once it has built these. */
export interface MetricSources {
  driver: RaftDriver;
  store: KvStore;
  /** Open connections per client listener ("client": the msgpack port, "http": the etcd v2 API, "socket": the admin socket). */
  connections: () => { listener: string; count: number }[];
  /** The node's mirror of its supervisor's units, and whether it is connected (null before the link exists). */
  units: () => { connected: boolean; states: UnitState[] } | null;
}

export class NodeMetrics {
  readonly registry = new Registry();
  /** Each WAL append's fdatasync (etcd_disk_wal_fsync_duration_seconds). */
  readonly walFsync: HistogramChild;
  /** Each snapshot of the node's own, encoded and durable (etcd_debugging_snap_save_total_duration_seconds). */
  readonly snapshotSave: HistogramChild;
  readonly http: RequestMetrics;
  readonly client: RequestMetrics;
  private readonly leaderChanges: CounterChild;
  private readonly unitRestarts: CounterChild;
  private readonly journalSuppressed: CounterChild;
  private lastLeader: string | null = null;
  /** Per unit, the restart and suppressed-line counts last seen in its mirrored state. */
  private readonly unitCounts = new Map<string, { restarts: number; suppressed: number }>();

  constructor(clientMethods: readonly string[]) {
    const r = this.registry;
    this.leaderChanges = r
      .counter("berth_server_leader_changes_seen_total", "The number of leader changes seen.")
      .child();
    this.walFsync = r
      .histogram(
        "berth_disk_wal_fsync_duration_seconds",
        "The latency distributions of fsync called by WAL.",
        DISK_SECONDS_BUCKETS,
      )
      .child();
    this.snapshotSave = r
      .histogram(
        "berth_snap_save_total_duration_seconds",
        "The total latency distributions of save called by snapshot.",
        DISK_SECONDS_BUCKETS,
      )
      .child();
    this.http = new RequestMetrics(
      r.histogram(
        "berth_http_request_duration_seconds",
        "HTTP API (etcd v2) requests by method and status code, from the request to the end of the answer " +
          "(long polls included); _count is the number of requests.",
        REQUEST_SECONDS_BUCKETS,
        ["method", "code"],
      ),
      HTTP_METHODS,
    );
    this.client = new RequestMetrics(
      r.histogram(
        "berth_client_request_duration_seconds",
        'Client protocol requests by method and outcome ("ok" or the error code); _count is the number of requests.',
        REQUEST_SECONDS_BUCKETS,
        ["method", "code"],
      ),
      new Set(clientMethods),
    );
    this.unitRestarts = r
      .counter(
        "berth_unit_restarts_total",
        "Automatic restarts (Restart=) of this machine's units, as its supervisor reported them.",
      )
      .child();
    this.journalSuppressed = r
      .counter(
        "berth_journal_suppressed_lines_total",
        "Unit output lines dropped by the journal rate limit (LogRateLimitIntervalSec=/LogRateLimitBurst=).",
      )
      .child();
  }

  /** Every soft-state change of Raft: counts a leader change as etcd does (a new leader, not its loss). */
  leaderChanged(lead: string | null): void {
    if (lead !== null && lead !== this.lastLeader) this.leaderChanges.inc();
    this.lastLeader = lead;
  }

  /** A unit's state as mirrored from the supervisor: the growth of its counts since last seen is counted. */
  unitState(s: UnitState): void {
    const seen = this.unitCounts.get(s.name) ?? { restarts: 0, suppressed: 0 };
    const suppressed = s.journalSuppressed ?? 0;
    // A count that went down belongs to a new runner (the unit was reloaded): all of it is new.
    this.unitRestarts.inc(s.restarts >= seen.restarts ? s.restarts - seen.restarts : s.restarts);
    this.journalSuppressed.inc(suppressed >= seen.suppressed ? suppressed - seen.suppressed : suppressed);
    this.unitCounts.set(s.name, { restarts: s.restarts, suppressed });
  }

  unitForgotten(name: string): void {
    this.unitCounts.delete(name);
  }

  /** The values read at scrape time. Call once, when the node's parts exist. */
  attach(src: MetricSources): void {
    const r = this.registry;
    const hasLeader = r.gauge(
      "berth_server_has_leader",
      "Whether or not a leader exists. 1 is existence, 0 is not.",
    );
    const isLeader = r.gauge(
      "berth_server_is_leader",
      "Whether or not this member is a leader. 1 if is, 0 otherwise.",
    );
    const term = r.gauge("berth_server_term", "The Raft term this member is in.");
    const committed = r.gauge(
      "berth_server_proposals_committed_total",
      "The total number of consensus proposals committed (the commit index).",
    );
    const applied = r.gauge(
      "berth_server_proposals_applied_total",
      "The total number of consensus proposals applied (the applied index).",
    );
    const lag = r.gauge(
      "berth_server_apply_lag_entries",
      "Committed entries not yet applied by this member's store (commit index minus applied index).",
    );
    const pending = r.gauge(
      "berth_server_proposals_pending",
      "The current number of pending proposals to commit.",
    );
    const failed = r.counter(
      "berth_server_proposals_failed_total",
      "The total number of failed proposals seen (refused, superseded by a new leader, or overtaken by a snapshot).",
    );
    const keys = r.gauge("berth_store_keys", "Keys and directories in the store, hidden ones included.");
    const watchers = r.gauge("berth_store_watchers", "Count of currently active watchers.");
    const expires = r.counter("berth_store_expires_total", "Total number of expired keys.");
    const reads = r.counter(
      "berth_store_reads_total",
      "Total number of reads action by (get/getRecursive), local to this member.",
      ["action"],
    );
    const writes = r.counter(
      "berth_store_writes_total",
      "Total number of writes (e.g. set/compareAndDelete) seen by this member.",
      ["action"],
    );
    const readFails = r.counter(
      "berth_store_reads_failed_total",
      "Failed read actions by (get/getRecursive), local to this member.",
      ["action"],
    );
    const writeFails = r.counter(
      "berth_store_writes_failed_total",
      "Failed write actions (e.g. set/compareAndDelete), seen by this member.",
      ["action"],
    );
    const connections = r.gauge("berth_client_connections", "Open client connections per listener.", [
      "listener",
    ]);
    const units = r.gauge(
      "berth_units",
      "Units on this machine by active state, as its supervisor reports them.",
      ["state"],
    );
    const supervisor = r.gauge(
      "berth_supervisor_connected",
      "Whether this node is connected to its machine's unit supervisor (1) or not (0).",
    );

    r.onCollect(() => {
      const s = src.driver.status();
      hasLeader.set(s.lead === null ? 0 : 1);
      isLeader.set(s.role === "leader" ? 1 : 0);
      term.set(s.term);
      committed.set(s.commit);
      applied.set(s.applied);
      lag.set(Math.max(0, s.commit - s.applied));
      pending.set(src.driver.pendingProposals());
      failed.child().value = src.driver.proposalsFailed;
    });
    r.onCollect(() => {
      keys.set(src.store.keyCount);
      const stats = src.store.stats();
      watchers.set(stats.watchers ?? 0);
      expires.child().value = stats.expireCount ?? 0;
      for (const [action, ok, fail, write] of STORE_ACTIONS) {
        const okN = stats[ok] ?? 0;
        const failN = stats[fail] ?? 0;
        (write ? writes : reads).child(action).value = okN + failN;
        (write ? writeFails : readFails).child(action).value = failN;
      }
    });
    r.onCollect(() => {
      for (const c of src.connections()) connections.child(c.listener).set(c.count);
    });
    r.onCollect(() => {
      const mirror = src.units();
      supervisor.set(mirror?.connected ? 1 : 0);
      const counts = new Map<string, number>(UNIT_STATES.map((st) => [st, 0]));
      for (const u of mirror?.states ?? []) counts.set(u.active, (counts.get(u.active) ?? 0) + 1);
      for (const [st, n] of counts) units.child(st).set(n);
    });
  }
}
