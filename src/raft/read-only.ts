import type { NodeId } from "./types.ts";

interface PendingRead {
  from: NodeId;
  context: Uint8Array;
  key: string;
  /** Commit index at the time of the request: the read may be served once applied up to here. */
  index: number;
  acks: Set<NodeId>;
  /** False until the leader has committed an entry of its own term (its commit index is not trusted before). */
  ready: boolean;
}

/**
 * The leader's queue of ReadIndex requests waiting for a heartbeat round to confirm it is still leader.
 * A quorum acknowledging one request's heartbeat also confirms every request queued before it.
 */
export class ReadOnlyQueue {
  private queue: PendingRead[] = [];

  add(from: NodeId, context: Uint8Array, index: number, ready: boolean): void {
    this.queue.push({ from, context, key: keyOf(context), index, acks: new Set(), ready });
  }

  /** Context of the newest confirmable request, which heartbeats carry so that lost rounds are retried. */
  lastContext(): Uint8Array | undefined {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const r = this.queue[i]!;
      if (r.ready) return r.context;
    }
    return undefined;
  }

  /** The leader committed an entry of its term: waiting reads may now use `committed`. */
  startAwaiting(committed: number): Uint8Array | undefined {
    let any = false;
    for (const r of this.queue) {
      if (!r.ready) {
        r.ready = true;
        r.index = committed;
        any = true;
      }
    }
    return any ? this.lastContext() : undefined;
  }

  /** Records `from`'s acknowledgement; returns the requests now confirmed, oldest first. */
  ack(context: Uint8Array, from: NodeId, hasQuorum: (acks: Set<NodeId>) => boolean): PendingRead[] {
    const key = keyOf(context);
    const at = this.queue.findIndex((r) => r.key === key);
    if (at < 0) return [];
    const read = this.queue[at]!;
    if (!read.ready) return [];
    read.acks.add(from);
    if (!hasQuorum(read.acks)) return [];
    return this.queue.splice(0, at + 1).filter((r) => r.ready);
  }

  clear(): void {
    this.queue = [];
  }
}

function keyOf(context: Uint8Array): string {
  return Buffer.from(context.buffer, context.byteOffset, context.byteLength).toString("hex");
}
