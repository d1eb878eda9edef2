// Raft traffic as etcd's v2 stats report it (/v2/stats/self and /v2/stats/leader): append requests sent and
// received with their recent rates, and per follower the leader's append round-trip latency and success/failure
// counts. Fed with the messages that cross this node's transport; the clock is injected.
import type { Message, NodeId } from "../raft/types.ts";

/** etcd's statsQueue keeps the last 200 requests; a rate is 0 once the newest is more than a second old. */
const RATE_WINDOW = 200;
const RATE_STALE_MS = 1000;
/** Appends awaiting an answer, per follower, beyond which the oldest are forgotten (they count neither way). */
const MAX_OUTSTANDING = 1024;

/** The bytes an append carries on the wire, as etcd counts a message's size: entry data plus framing. */
export function appendBytes(m: Message): number {
  let n = 32;
  for (const e of m.entries ?? []) n += e.data.length + 16;
  return n;
}

/** The last RATE_WINDOW requests (time, size) in a ring: every append sent or received passes here. */
class RateQueue {
  private readonly times = new Float64Array(RATE_WINDOW);
  private readonly sizes = new Float64Array(RATE_WINDOW);
  /** Next slot to write; the oldest entry once the ring is full. */
  private next = 0;
  private count = 0;
  private bytes = 0;

  add(at: number, size: number): void {
    if (this.count === RATE_WINDOW) this.bytes -= this.sizes[this.next]!;
    else this.count++;
    this.times[this.next] = at;
    this.sizes[this.next] = size;
    this.bytes += size;
    this.next = (this.next + 1) % RATE_WINDOW;
  }

  /** [requests per second, bytes per second] over the window, as etcd's statsQueue.Rate. */
  rate(now: number): [number, number] {
    if (this.count === 0) return [0, 0];
    const last = this.times[(this.next + RATE_WINDOW - 1) % RATE_WINDOW]!;
    const first = this.times[(this.next + RATE_WINDOW - this.count) % RATE_WINDOW]!;
    if (now - last > RATE_STALE_MS) return [0, 0];
    const seconds = (last - first) / 1000;
    if (seconds <= 0) return [0, 0];
    return [this.count / seconds, this.bytes / seconds];
  }
}

export interface FollowerStats {
  /** Seconds: the latest, mean, standard deviation, smallest and largest append round trip. */
  latency: { current: number; average: number; standardDeviation: number; minimum: number; maximum: number };
  counts: { fail: number; success: number };
}

class Follower {
  readonly stats: FollowerStats = {
    latency: { current: 0, average: 0, standardDeviation: 0, minimum: 0, maximum: 0 },
    counts: { fail: 0, success: 0 },
  };
  private averageSquare = 0;
  /** Appends sent and not yet answered: the last index each carried, and when it left. */
  outstanding: { last: number; at: number }[] = [];

  /** etcd's FollowerStats.Succ: running mean and standard deviation of the round trip. */
  succeeded(seconds: number): void {
    const { latency: l, counts: c } = this.stats;
    const total = c.success * l.average;
    const totalSquare = c.success * this.averageSquare;
    c.success++;
    l.current = seconds;
    l.maximum = c.success === 1 ? seconds : Math.max(l.maximum, seconds);
    l.minimum = c.success === 1 ? seconds : Math.min(l.minimum, seconds);
    l.average = (total + seconds) / c.success;
    this.averageSquare = (totalSquare + seconds * seconds) / c.success;
    l.standardDeviation = Math.sqrt(Math.max(0, this.averageSquare - l.average * l.average));
  }
}

export class RaftTrafficStats {
  sendAppendCount = 0;
  recvAppendCount = 0;
  private readonly sendRate = new RateQueue();
  private readonly recvRate = new RateQueue();
  private readonly followers = new Map<NodeId, Follower>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Messages this node sends: appends count as sent requests and start a round trip to their follower. */
  sent(messages: Message[]): void {
    const at = this.now();
    for (const m of messages) {
      if (m.type !== "app") continue;
      this.sendAppendCount++;
      this.sendRate.add(at, appendBytes(m));
      const f = this.follower(m.to);
      f.outstanding.push({ last: (m.index ?? 0) + (m.entries?.length ?? 0), at });
      if (f.outstanding.length > MAX_OUTSTANDING) f.outstanding.shift();
    }
  }

  /** A message that arrived: appends from the leader are received requests; answers close round trips. */
  received(m: Message): void {
    if (m.type === "app") {
      this.recvAppendCount++;
      this.recvRate.add(this.now(), appendBytes(m));
      return;
    }
    if (m.type !== "appResp") return;
    const f = this.followers.get(m.from);
    if (!f) return;
    if (m.reject) {
      f.stats.counts.fail++;
      return;
    }
    // The answer acknowledges everything up to its index: the newest append it covers gives the round trip.
    const acked = m.index ?? 0;
    let sentAt: number | null = null;
    while (f.outstanding.length > 0 && f.outstanding[0]!.last <= acked) sentAt = f.outstanding.shift()!.at;
    if (sentAt !== null) f.succeeded((this.now() - sentAt) / 1000);
  }

  /** The transport could not reach a follower: the appends on their way to it failed. */
  unreachable(id: NodeId): void {
    const f = this.followers.get(id);
    if (!f || f.outstanding.length === 0) return;
    f.outstanding = [];
    f.stats.counts.fail++;
  }

  rates(): { send: [number, number]; recv: [number, number] } {
    const now = this.now();
    return { send: this.sendRate.rate(now), recv: this.recvRate.rate(now) };
  }

  followerStats(id: NodeId): FollowerStats {
    return this.follower(id).stats;
  }

  private follower(id: NodeId): Follower {
    let f = this.followers.get(id);
    if (!f) {
      f = new Follower();
      this.followers.set(id, f);
    }
    return f;
  }
}
