// The key/value store as the state machine Raft replicates: log entries carry encoded store commands. "State
// machine" in Raft's sense; a "machine" elsewhere in Berth is a host in the data centre (src/sched/machine.ts).

import { decodeCommand } from "../kv/commands.ts";
import type { KvStore } from "../kv/store.ts";
import type { StateMachine } from "../raft/driver.ts";
import type { Entry } from "../raft/types.ts";

export class KvStateMachine implements StateMachine {
  private listeners: (() => void)[] = [];

  constructor(
    readonly store: KvStore,
    private readonly logger?: (line: string) => void,
  ) {}

  apply(entry: Entry): unknown {
    let result: unknown;
    try {
      result = this.store.apply(decodeCommand(entry.data));
    } catch (err) {
      // Only a bug or a foreign entry gets here: every replica fails the same way, so skip it everywhere.
      this.logger?.(`entry ${entry.index} could not be applied: ${(err as Error).message}`);
      result = err;
    }
    for (const l of this.listeners) l();
    return result;
  }

  /** Captured now, encoded part by part as the driver takes the parts (see RaftDriver.buildSnapshot). */
  snapshot(): Iterable<Uint8Array> {
    return this.store.snapshotParts();
  }

  restore(data: Uint8Array): void {
    this.store.restore(data);
    for (const l of this.listeners) l();
  }

  /** Called after every applied entry or restore (the leader re-plans TTL expiry then). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }
}
