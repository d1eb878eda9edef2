// How a main or control process ended, in systemd's words and results.
import { exitStatusText, signalText } from "./exec-line.ts";
import type { ExitInfo, ServiceResult } from "./unit-types.ts";

const CLEAN_SIGNALS = new Set(["HUP", "INT", "TERM", "PIPE"]);

export function exitText(e: ExitInfo): string {
  return e.code === "exited"
    ? `code=exited, status=${exitStatusText(e.status as number)}`
    : `code=killed, status=${signalText(String(e.status))}`;
}

/** systemd's is_clean_exit: a daemon's main process may also die of SIGHUP/SIGINT/SIGTERM/SIGPIPE cleanly. */
export function isClean(e: ExitInfo, daemon: boolean): boolean {
  if (e.code === "exited") return e.status === 0;
  return daemon && CLEAN_SIGNALS.has(String(e.status));
}

/** The result an unclean exit gives the unit. */
export function failureResult(e: ExitInfo): ServiceResult {
  return e.code === "exited" ? "exit-code" : "signal";
}
