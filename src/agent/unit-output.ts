// A unit's stdout and stderr into its journal, through the unit's rate limit (one limit for every process and
// both streams of the unit, as journald keeps one per service): dropped lines are counted and reported with
// journald's "Suppressed N messages from <unit>" line once the window is over, whether or not the unit writes on.
import type { Readable } from "node:stream";
import { pipeLines } from "./lines.ts";
import { LogRateLimit } from "./log-rate-limit.ts";

export interface OutputLine {
  stream: "stdout" | "stderr" | "berth";
  text: string;
  pid?: number;
}

export class UnitOutput {
  private readonly limit: LogRateLimit;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Lines dropped in every window that is over (what the "Suppressed N messages" lines added up to). */
  suppressed = 0;

  constructor(
    private readonly unit: string,
    limits: { intervalMs: number; burst: number },
    private readonly write: (line: OutputLine) => void,
    private readonly now: () => number,
    /** Called after each "Suppressed" line, once `suppressed` has grown. */
    private readonly onSuppressed: () => void = () => {},
  ) {
    this.limit = new LogRateLimit(limits.intervalMs, limits.burst);
  }

  /** Reads a process's (or container's) stream into the journal until it ends. */
  read(stream: Readable, kind: "stdout" | "stderr", pid?: number | null): void {
    pipeLines(stream, {
      line: (text) => this.line(kind, text, pid ?? undefined),
      dropping: () => {
        this.report();
        return this.limit.suppressing(this.now());
      },
      dropped: (n) => {
        this.limit.drop(n);
        this.reportAtWindowEnd();
      },
    });
  }

  line(stream: "stdout" | "stderr", text: string, pid?: number): void {
    this.report();
    if (this.limit.admit(this.now())) this.write({ stream, text, ...(pid ? { pid } : {}) });
    else this.reportAtWindowEnd();
  }

  private report(): void {
    const n = this.limit.takeSuppressed(this.now());
    if (n === 0) return;
    this.suppressed += n;
    this.write({ stream: "berth", text: `Suppressed ${n} messages from ${this.unit}` });
    this.onSuppressed();
  }

  private reportAtWindowEnd(): void {
    const end = this.limit.windowEnd();
    if (this.timer !== null || end === null) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.report();
        if (this.limit.suppressing(this.now())) this.reportAtWindowEnd();
      },
      Math.max(0, end - this.now()) + 1,
    );
    this.timer.unref?.();
  }
}
