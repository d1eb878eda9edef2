// Runs leader-only operations (writes, membership changes) from any node: locally when this node leads,
// otherwise forwarded to the leader over the authenticated peer connections. Retries only where the operation
// certainly did not happen (no leader yet, a deposed leader refused it, a proposal dropped by a new leader).
// Where it may have happened (the leader's connection closed with the request on it, or the leader it was sent to
// stopped being the leader before answering: a leader cut off without a FIN), it fails at once rather than wait
// out the timeout, and says so: the caller decides, as with etcd's "request timed out". A request for a leader
// already silent is not sent at all: it waits for the next leader.
import { NotLeaderError, ProposalDroppedError } from "../raft/driver.ts";
import { ConnectionClosedError } from "../wire/errors.ts";
import { ServiceError, unavailable, withTimeout } from "./errors.ts";

export interface PeerRequester {
  /** Sends a request to a peer over the peer network; rejects with an error carrying a `code`. */
  request(peer: string, method: string, params: unknown, timeoutMs: number): Promise<unknown>;
}

export interface RouterDeps {
  selfId: string;
  leader(): string | null;
  peers: PeerRequester;
  timeoutMs: number;
  /** Registers a listener called whenever the known leader changes (a waiting request is retried at once). */
  onLeaderChange?(listener: () => void): void;
  /**
   * True when nothing came from `peer` for longer than a live leader stays quiet (half an election timeout): a
   * request forwarded to a leader that was deposed while silent gets no answer. Without it, a forwarded request
   * waits for its answer or its timeout.
   */
  peerSilent?(peer: string): boolean;
}

const RETRY_MS = 50;

export class LeaderRouter {
  private readonly local = new Map<string, (params: unknown) => Promise<unknown>>();
  /** Requests waiting to retry: woken early when a leader is elected. */
  private waiting = new Set<() => void>();
  /** Requests forwarded and unanswered: each told of a leader change, to stop waiting for a deposed leader. */
  private forwarded = new Set<() => void>();

  constructor(private readonly deps: RouterDeps) {
    deps.onLeaderChange?.(() => {
      const wake = [...this.waiting];
      this.waiting.clear();
      for (const w of wake) w();
      for (const f of [...this.forwarded]) f();
    });
  }

  /** Registers the leader-side implementation of `method` (also what forwarded requests run). */
  register(method: string, fn: (params: unknown) => Promise<unknown>): void {
    this.local.set(method, fn);
  }

  /** Serves a request forwarded by a peer: only the leader runs it. */
  async serveForwarded(method: string, params: unknown): Promise<unknown> {
    const fn = this.local.get(method);
    if (!fn) throw new ServiceError("unknown_method", `no leader operation "${method}"`);
    if (this.deps.leader() !== this.deps.selfId)
      throw new ServiceError("not_leader", `${this.deps.selfId} is not the leader`);
    return fn(params);
  }

  async call(method: string, params: unknown): Promise<unknown> {
    const fn = this.local.get(method);
    if (!fn) throw new ServiceError("unknown_method", `no leader operation "${method}"`);
    const deadline = Date.now() + this.deps.timeoutMs;
    let lastProblem = "no leader is elected (the cluster may have lost its majority)";
    while (Date.now() < deadline) {
      const remaining = deadline - Date.now();
      const lead = this.deps.leader();
      try {
        if (lead === this.deps.selfId) return await withTimeout(fn(params), remaining, method);
        if (lead !== null && this.deps.peerSilent?.(lead)) {
          // Nothing heard from the leader for half an election timeout: it is likely cut off, and a request sent to
          // it now would only wait until another leader is known, then fail as possibly applied. Held back, it
          // certainly did not happen: it goes to the next leader as soon as one is elected (or to this one again).
          lastProblem = `the leader ${lead} has not been heard from lately (it may be cut off)`;
        } else if (lead !== null) return await this.forward(lead, method, params, remaining);
      } catch (err) {
        if (!retriable(err)) throw err;
        lastProblem = (err as Error).message;
      }
      await this.untilRetry();
    }
    throw unavailable(`${method} failed: ${lastProblem} (gave up after ${this.deps.timeoutMs} ms)`);
  }

  /** RETRY_MS, or less when the leader changes meanwhile. */
  private untilRetry(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, RETRY_MS);
      this.waiting.add(done);
    });
  }

  private async forward(lead: string, method: string, params: unknown, timeoutMs: number): Promise<unknown> {
    // A leader that went silent (its machine cut off) answers nothing until the timeout, while the others elect a
    // new one: once this node knows another leader, or none, and has not heard from the old one meanwhile, the
    // answer is not worth waiting for. A deposed leader that still talks (a leadership transfer) is waited for: it
    // answers, and its answer says what happened.
    let deposed = () => {};
    const leaderChanged = new Promise<never>((_, reject) => {
      deposed = () => {
        if (this.deps.leader() === lead || !this.deps.peerSilent?.(lead)) return;
        reject(
          new ServiceError(
            "timeout",
            `${method}: ${lead} stopped being the leader before it answered (it may be cut off); ` +
              "the request may or may not have taken effect",
          ),
        );
      };
    });
    this.forwarded.add(deposed);
    try {
      return await Promise.race([
        this.deps.peers.request(lead, `leader.${method}`, params, timeoutMs),
        leaderChanged,
      ]);
    } catch (err) {
      if (!(err instanceof ConnectionClosedError)) throw err;
      // Sent, then the connection closed (a leader that died closes its sockets at once): it may have committed.
      throw new ServiceError(
        "timeout",
        `${method}: the connection to the leader ${lead} closed before it answered (the leader may have failed); ` +
          "the request may or may not have taken effect",
      );
    } finally {
      this.forwarded.delete(deposed);
    }
  }
}

/** True when the operation is known not to have taken effect, so trying again cannot apply it twice. */
function retriable(err: unknown): boolean {
  if (err instanceof NotLeaderError || err instanceof ProposalDroppedError) return true;
  const code = (err as { code?: unknown })?.code;
  // "not_leader": the peer was deposed before proposing. "unreachable": the request never left this node.
  return code === "not_leader" || code === "proposal_dropped" || code === "unreachable";
}
