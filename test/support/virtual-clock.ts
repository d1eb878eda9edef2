// Virtual time for simulations: events run one at a time, in order of (due time, scheduling order), and every
// microtask an event starts settles before the next event runs. A run is then a function of its inputs alone (its
// seed), and as fast as the CPU allows: nothing waits for real time.
import type { DriverClock } from "../../src/raft/clock.ts";

interface Event {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class VirtualClock implements DriverClock {
  now = 0;
  /** Pending events, sorted by (at, seq). */
  private queue: Event[] = [];
  private seq = 0;
  private halted = false;
  private loop: Promise<void> | null = null;

  /** `onError` receives what an event threw; the run goes on. */
  constructor(private readonly onError: (err: unknown) => void) {}

  after(ms: number, fn: () => void): () => void {
    const ev: Event = { at: this.now + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const q = this.queue[mid]!;
      if (q.at < ev.at || (q.at === ev.at && q.seq < ev.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, ev);
    return () => {
      ev.cancelled = true;
    };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.after(ms, r));
  }

  every(ms: number, fn: () => void): () => void {
    let cancel = () => {};
    let stopped = false;
    const next = () => {
      cancel = this.after(ms, () => {
        if (stopped) return;
        fn();
        next();
      });
    };
    next();
    return () => {
      stopped = true;
      cancel();
    };
  }

  defer(fn: () => void): void {
    this.after(0, fn);
  }

  /** Starts running events; they run until halt(). */
  start(): void {
    this.loop ??= this.run();
  }

  async halt(): Promise<void> {
    this.halted = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.halted) {
      const ev = this.queue.shift();
      if (ev && !ev.cancelled) {
        this.now = ev.at;
        try {
          ev.fn();
        } catch (err) {
          this.onError(err);
        }
      }
      // One real turn of the event loop: every microtask the event started has settled when it ends.
      await new Promise((r) => setImmediate(r));
      // Nothing scheduled: whatever comes next starts outside the simulation (a test's own await).
      if (this.queue.length === 0) await new Promise((r) => setTimeout(r, 1));
    }
  }
}
