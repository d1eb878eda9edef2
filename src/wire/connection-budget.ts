// How many client connections a listener (the msgpack client port, the HTTP port: each has its own) keeps open at
// once. Past the limit a new connection takes the place of the oldest idle one — a connection still in its
// handshake, or an HTTP connection with no request being answered (idle keep-alive, or a head still trickling in)
// — and is closed at once only when none is idle. So idle or trickling sockets cannot lock clients out, and a
// flood on one port leaves the other alone; the limit itself keeps a flood from taking the file descriptors the
// write-ahead log, snapshots, peers and units need (a WAL segment that cannot be opened stops the node), and the
// listener from reaching EMFILE, where accept(2) fails over and over and the event loop spins.
import { readFileSync } from "node:fs";
import type { ConnectionGate, ConnectionSlot } from "./server.ts";

/** Refusals and evictions are logged at most this often, with how many there were since the last line. */
const WARN_EVERY_MS = 10_000;

class Slot implements ConnectionSlot {
  released = false;
  constructor(
    private readonly budget: ConnectionBudget,
    readonly evict: () => void,
  ) {}
  idle(yes: boolean): void {
    this.budget.setIdle(this, yes);
  }
  release(): void {
    this.budget.free(this);
  }
}

export class ConnectionBudget implements ConnectionGate {
  private open = 0;
  /** Idle slots, the longest idle first (a Set keeps insertion order). */
  private readonly idleSlots = new Set<Slot>();
  private refused = 0;
  private evicted = 0;
  private lastWarn = Number.NEGATIVE_INFINITY;

  constructor(
    readonly limit: number,
    /** Which listener, for the log ("client", "HTTP"). */
    private readonly what: string,
    private readonly log: (line: string) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /** Connections holding a slot. */
  get count(): number {
    return this.open;
  }

  acquire(remote: string, evict: () => void): ConnectionSlot | null {
    if (this.open >= this.limit) {
      const oldest = this.idleSlots.values().next().value;
      if (oldest === undefined) {
        this.refused++;
        this.warn(remote);
        return null;
      }
      this.free(oldest);
      this.evicted++;
      this.warn(remote);
      try {
        oldest.evict();
      } catch {
        // it is gone either way
      }
    }
    this.open++;
    return new Slot(this, evict);
  }

  /** @internal */
  setIdle(slot: Slot, yes: boolean): void {
    this.idleSlots.delete(slot);
    if (yes && !slot.released) this.idleSlots.add(slot);
  }

  /** @internal */
  free(slot: Slot): void {
    if (slot.released) return;
    slot.released = true;
    this.idleSlots.delete(slot);
    this.open--;
  }

  private warn(remote: string): void {
    const t = this.now();
    if (t - this.lastWarn < WARN_EVERY_MS) return;
    const parts = [
      ...(this.refused > 0 ? [`refused ${this.refused} ${this.what} connection(s)`] : []),
      ...(this.evicted > 0 ? [`closed ${this.evicted} idle ${this.what} connection(s) to make room`] : []),
    ];
    this.log(
      `${parts.join(", ")} (latest from ${remote}): ${this.limit} are open, the --max-client-connections limit`,
    );
    this.lastWarn = t;
    this.refused = 0;
    this.evicted = 0;
  }
}

/** The soft RLIMIT_NOFILE of this process (Bun raises it to the hard limit at start), or null when unknown. */
export function openFileLimit(): number | null {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0];
    return soft && /^\d+$/.test(soft) ? Number(soft) : null;
  } catch {
    return null;
  }
}

/**
 * The limit per listener when none is configured: 10,000, but the two listeners together never take more than the
 * file descriptor limit minus a reserve for everything else the node opens (a quarter of the limit, at least 256);
 * never below 16.
 */
export function defaultClientConnectionLimit(fdLimit: number | null): number {
  if (fdLimit === null) return 10_000;
  return Math.max(16, Math.min(10_000, Math.floor((fdLimit - Math.max(256, Math.floor(fdLimit / 4))) / 2)));
}
