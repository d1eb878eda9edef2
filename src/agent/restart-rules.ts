// When a unit may start again: systemd's Restart= table and its StartLimitIntervalSec=/StartLimitBurst= window.
import type { RestartPolicy } from "./service-config.ts";
import type { ServiceResult } from "./unit-types.ts";

/** systemd.service(5)'s Restart= table, by service result. */
export function shouldRestart(policy: RestartPolicy, r: ServiceResult): boolean {
  if (r === "start-limit-hit") return false;
  switch (policy) {
    case "always":
      return true;
    case "on-success":
      return r === "success";
    case "on-failure":
      return r !== "success";
    case "on-abnormal":
      return r === "signal" || r === "timeout" || r === "watchdog";
    case "on-watchdog":
      return r === "watchdog";
    case "on-abort":
      return r === "signal";
    default:
      return false;
  }
}

/** At most `burst` starts within any `intervalMs` (manual and automatic starts alike, as in systemd). */
export class StartLimit {
  private startTimes: number[] = [];

  constructor(
    private readonly intervalMs: number,
    private readonly burst: number,
  ) {}

  /** Records a start at `now` and returns true, or returns false (recording nothing) if the limit is hit. */
  admit(now: number): boolean {
    this.startTimes = this.startTimes.filter((t) => now - t < this.intervalMs);
    if (this.startTimes.length >= this.burst) return false;
    this.startTimes.push(now);
    return true;
  }
}
