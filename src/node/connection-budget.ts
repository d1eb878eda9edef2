// How many client connections (msgpack and HTTP together) a node keeps open at once. Past the limit a new
// connection is closed as soon as it is accepted: a flood of connections cannot take the file descriptors the
// write-ahead log, snapshots, peers and units need (a WAL segment that cannot be opened stops the node), and the
// listener never reaches EMFILE, where accept(2) fails over and over and the event loop spins.
import { readFileSync } from "node:fs";

/** Refusals are logged at most this often, with how many there were since the last line. */
const WARN_EVERY_MS = 10_000;

export class ConnectionBudget {
  private open = 0;
  private refused = 0;
  private lastWarn = Number.NEGATIVE_INFINITY;

  constructor(
    readonly limit: number,
    private readonly log: (line: string) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes a slot for a new connection; false (and a rate-limited log line) when none is left. */
  tryAcquire(remote: string): boolean {
    if (this.open < this.limit) {
      this.open++;
      return true;
    }
    this.refused++;
    const t = this.now();
    if (t - this.lastWarn >= WARN_EVERY_MS) {
      this.log(
        `refused ${this.refused} client connection(s) (latest from ${remote}): ${this.limit} are open, the --max-client-connections limit`,
      );
      this.lastWarn = t;
      this.refused = 0;
    }
    return false;
  }

  release(): void {
    if (this.open > 0) this.open--;
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
 * The limit when none is configured: 10,000, but never more than the file descriptor limit minus a reserve for
 * everything else the node opens (a quarter of the limit, at least 256), and never below 16.
 */
export function defaultClientConnectionLimit(fdLimit: number | null): number {
  if (fdLimit === null) return 10_000;
  return Math.max(16, Math.min(10_000, fdLimit - Math.max(256, Math.floor(fdLimit / 4))));
}
