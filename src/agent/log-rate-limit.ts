// journald's per-service rate limit (journald.conf(5) RateLimitIntervalSec=/RateLimitBurst=, a unit's own
// LogRateLimitIntervalSec=/LogRateLimitBurst= in systemd.exec(5)): a window opens at the first line, at most
// `burst` lines of it are kept, the rest are dropped and counted, and once the window is over the count is handed
// out once, for the "Suppressed N messages from <unit>" line. An interval or burst of 0 turns the limit off.

export const DEFAULT_LOG_RATE_LIMIT_INTERVAL_MS = 30_000;
export const DEFAULT_LOG_RATE_LIMIT_BURST = 10_000;

export class LogRateLimit {
  /** Start of the open window, or null while none is open. */
  private windowStart: number | null = null;
  private kept = 0;
  private dropped = 0;
  /** Dropped in windows that are over, not yet handed out. */
  private toReport = 0;

  constructor(
    readonly intervalMs: number,
    readonly burst: number,
  ) {}

  private get enabled(): boolean {
    return this.intervalMs > 0 && this.burst > 0;
  }

  /** One line at `now`: true when it may be journaled, false when it is dropped (and counted). */
  admit(now: number): boolean {
    if (!this.enabled) return true;
    this.expire(now);
    if (this.windowStart === null) {
      this.windowStart = now;
      this.kept = 0;
    }
    if (this.kept < this.burst) {
      this.kept++;
      return true;
    }
    this.dropped++;
    return false;
  }

  /** Whether a line at `now` would be dropped: the open window's burst is spent. */
  suppressing(now: number): boolean {
    if (!this.enabled) return false;
    this.expire(now);
    return this.windowStart !== null && this.kept >= this.burst;
  }

  /** Counts `lines` dropped without being looked at one by one (read while suppressing). */
  drop(lines: number): void {
    this.dropped += lines;
  }

  /** Lines dropped in windows that are over, handed out once (0 when none). */
  takeSuppressed(now: number): number {
    this.expire(now);
    const n = this.toReport;
    this.toReport = 0;
    return n;
  }

  /** When the open window ends (null when none is open). */
  windowEnd(): number | null {
    return this.windowStart === null ? null : this.windowStart + this.intervalMs;
  }

  private expire(now: number): void {
    if (this.windowStart === null || now < this.windowStart + this.intervalMs) return;
    this.toReport += this.dropped;
    this.dropped = 0;
    this.kept = 0;
    this.windowStart = null;
  }
}
