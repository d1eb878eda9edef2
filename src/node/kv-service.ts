// The key/value operations a node offers its clients (msgpack and HTTP alike): linearizable or local reads,
// writes routed to the leader, and watches served from this node's own replica.
import type { KvGetParams, KvResult, KvWatchParams, KvWriteRequest } from "../client/protocol.ts";
import { AUTH_PREFIX, isAuthKey } from "../etcdv2/auth/prefix.ts";
import { encodeCommand } from "../kv/commands.ts";
import { cleanKey, keyLimitError } from "../kv/path.ts";
import { commandFor } from "../kv/requests.ts";
import type { KvStore } from "../kv/store.ts";
import { KvError, type KvEvent, MAX_VALUE_BYTES } from "../kv/types.ts";
import { NotLeaderError, type RaftDriver } from "../raft/driver.ts";
import { retry } from "../retry.ts";
import { registryWriteProblem } from "../sched/registry-records.ts";
import { badRequest, isKvError, kvFailure, noSpace, unavailable, withTimeout } from "../service/errors.ts";
import type { KvWriter } from "../service/kv-writer.ts";
import type { LeaderRouter } from "../service/leader-router.ts";

export interface Watch {
  cancel(): void;
}

/** The wall clock TTLs are measured on: the cluster's (src/service/cluster-clock.ts), not this member's alone. */
export interface TtlClock {
  now(): number;
  /** Resolves once the cluster's time is known (or after `timeoutMs`, with the best estimate). */
  whenSettled(timeoutMs: number): Promise<void>;
}

const LOCAL_CLOCK: TtlClock = { now: Date.now, whenSettled: () => Promise.resolve() };

/** How long a write may wait for the cluster's time right after this member started leading. */
const CLOCK_SETTLE_MS = 2000;

export class KvService implements KvWriter {
  constructor(
    private readonly store: KvStore,
    private readonly driver: RaftDriver,
    private readonly router: LeaderRouter,
    private readonly timeoutMs: number,
    private readonly clock: TtlClock = LOCAL_CLOCK,
  ) {
    router.register("kv.write", (params) => this.writeAsLeader(params as KvWriteRequest));
  }

  async get(params: KvGetParams): Promise<KvResult> {
    this.refuseAuthKey(params.key);
    if (params.consistency !== "local") await this.readBarrier();
    const result = this.store.get(
      params.key,
      { recursive: !!params.recursive, sorted: !!params.sorted },
      this.clock.now(),
    );
    if (isKvError(result)) throw kvFailure(result);
    return this.wrap(result);
  }

  /** Waits until this replica has applied everything committed before the call (a linearizable read point). */
  sync(): Promise<void> {
    return this.readBarrier();
  }

  /** Any node accepts a write; the leader stamps it with its clock and appends it to the log. */
  async write(req: KvWriteRequest): Promise<KvResult> {
    validateWrite(req);
    this.refuseAuthKey(req.key);
    return this.submit(req);
  }

  /** A write of a v2 auth record (the one writer allowed under AUTH_PREFIX: src/etcdv2/auth/store.ts). */
  async writeAuthRecord(req: KvWriteRequest): Promise<KvResult> {
    validateWrite(req);
    if (!isAuthKey(req.key)) throw badRequest(`${req.key} is not under ${AUTH_PREFIX}`);
    return this.submit(req);
  }

  private async submit(req: KvWriteRequest): Promise<KvResult> {
    // Before anything is proposed, on the node the client asked (the store refuses the same keys when applying).
    const tooBig = req.method === "DELETE" ? null : keyLimitError(req.key);
    if (tooBig !== null) throw kvFailure(new KvError(209, tooBig, this.store.index));
    // The scheduler's own records (every writer passes here: clients, HTTP, the node's services): 106, as etcd
    // answers a write under its own /_etcd.
    const notARecord = registryWriteProblem(req);
    if (notARecord !== null) throw kvFailure(new KvError(106, notARecord, this.store.index));
    // A member whose disk is full refuses writes at once (the leader also refuses proposals then: see the driver).
    const full = this.driver.diskFull();
    if (full !== null) throw noSpace(full);
    const result = (await this.router.call("kv.write", req)) as KvResult;
    // Read-your-writes on this node (as etcd answers only once the member that took the write applied it):
    // a forwarded write is answered after this replica caught up, or after the timeout at worst.
    if (!this.driver.hasApplied(result.raftIndex))
      await withTimeout(this.driver.waitApplied(result.raftIndex), this.timeoutMs, "apply").catch(() => {});
    return result;
  }

  /**
   * Watches `key` (and below it when recursive); `onEvent` gets each change in order. Returns an error document
   * when `sinceIndex` is older than the kept history.
   */
  watch(params: KvWatchParams, onEvent: (r: KvResult) => void): Watch {
    this.refuseAuthKey(params.key);
    const w = this.store.watch(
      params.key,
      { recursive: !!params.recursive, stream: !!params.forever, sinceIndex: params.sinceIndex },
      (e: KvEvent) => onEvent(this.wrap(e)),
    );
    if (isKvError(w)) throw kvFailure(w);
    return w;
  }

  /**
   * The v2 auth records are nobody's keys: refused to every kv caller, reads included (they hold password
   * hashes), with etcd's answer for a key under its own reserved prefix (106, as /_berth's records get).
   */
  private refuseAuthKey(key: unknown): void {
    if (typeof key === "string" && isAuthKey(key))
      throw kvFailure(
        new KvError(
          106,
          `${cleanKey(key)}: ${AUTH_PREFIX} holds the v2 auth users and roles; use /v2/auth (etcdctl user, role, auth)`,
          this.store.index,
        ),
      );
  }

  private async writeAsLeader(req: KvWriteRequest): Promise<KvResult> {
    await this.clock.whenSettled(CLOCK_SETTLE_MS);
    const result = await this.driver.propose(encodeCommand(commandFor(req, this.clock.now())));
    if (result instanceof KvError) throw kvFailure(result);
    if (result instanceof Error) throw result;
    return this.wrap(result as KvEvent);
  }

  /** A linearizable read point (ReadIndex), retried across elections until the request timeout. */
  private async readBarrier(): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    try {
      await retry(() => withTimeout(this.driver.readBarrier(), Math.max(1, deadline - Date.now()), "read"), {
        firstMs: 10,
        maxMs: 100,
        deadline,
        retriable: (err) => err instanceof NotLeaderError,
      });
    } catch (err) {
      if (err instanceof NotLeaderError)
        throw unavailable(`no leader confirmed the read within ${this.timeoutMs} ms (no quorum?)`);
      throw err;
    }
  }

  private wrap(event: KvEvent): KvResult {
    const { commit, term } = this.driver.commitAndTerm();
    return { event, etcdIndex: this.store.index, raftIndex: commit, raftTerm: term };
  }
}

/** Rejects malformed requests before they reach the log (a bad client must not cost a Raft write). */
function validateWrite(req: KvWriteRequest): void {
  if (!req || typeof req !== "object") throw badRequest("a write needs a request object");
  if (!["PUT", "POST", "DELETE"].includes(req.method))
    throw badRequest(`unknown write method "${req.method}"`);
  if (typeof req.key !== "string" || req.key.length === 0) throw badRequest("a write needs a key");
  if (req.value !== undefined && typeof req.value !== "string") throw badRequest("value must be a string");
  if (req.value !== undefined && Buffer.byteLength(req.value) > MAX_VALUE_BYTES)
    throw badRequest(`value is ${Buffer.byteLength(req.value)} bytes; the limit is ${MAX_VALUE_BYTES}`);
  if (req.ttl !== undefined && req.ttl !== null && !(Number.isInteger(req.ttl) && req.ttl >= 0))
    throw badRequest("ttl must be a whole number of seconds");
  if (req.prevIndex !== undefined && !(Number.isInteger(req.prevIndex) && req.prevIndex >= 0))
    throw badRequest("prevIndex must be a non-negative integer");
  // A wrongly typed flag must not silently change what the write means (prevExist: "false" is not false).
  const r = req as unknown as Record<string, unknown>;
  for (const name of ["dir", "refresh", "prevExist", "recursive"]) {
    const v = r[name];
    if (v !== undefined && v !== null && typeof v !== "boolean")
      throw badRequest(`"${name}" must be true or false`);
  }
  if (r.prevValue !== undefined && r.prevValue !== null && typeof r.prevValue !== "string")
    throw badRequest("prevValue must be a string");
}
