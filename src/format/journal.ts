// Journal lines as journalctl prints them (-o short, cat, json, verbose), for `berth journal`, `berth status` and
// the console.
import type { JournalLine } from "../client/protocol.ts";
import { systemdTime } from "./time.ts";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad = (n: number) => String(n).padStart(2, "0");

/** journalctl's short timestamp, local time: `Nov 25 12:00:00`. */
export function shortTime(ms: number): string {
  const d = new Date(ms);
  return `${MONTHS[d.getMonth()]} ${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** journalctl's output modes `berth journal -o` takes ("table", every command's default, is short). */
export type JournalMode = "short" | "cat" | "json" | "verbose";
export const JOURNAL_MODES: JournalMode[] = ["short", "cat", "json", "verbose"];

/** journalctl's identifier: the program's (SYSLOG_IDENTIFIER), "berth" for the agent's own lines. */
function identifier(l: JournalLine): string {
  if (l.stream === "berth") return "berth";
  return l.ident ?? l.unit;
}

/**
 * The journal fields of a line, named as journalctl -o json names them (all values strings, timestamps in µs).
 * A unit's output is _TRANSPORT=stdout with _SYSTEMD_UNIT; the agent's lines about the unit are what systemd's own
 * lines are: _TRANSPORT=journal, UNIT=, SYSLOG_IDENTIFIER=berth and the pid of the process running the agent.
 */
export function journalFields(l: JournalLine, host = l.hostname): Record<string, string> {
  const f: Record<string, string> = {
    __REALTIME_TIMESTAMP: String(l.at * 1000),
    _HOSTNAME: host ?? "",
    PRIORITY: "6",
    SYSLOG_FACILITY: "3",
    SYSLOG_IDENTIFIER: identifier(l),
  };
  if (l.pid) f._PID = String(l.pid);
  if (l.stream === "berth") {
    f._TRANSPORT = "journal";
    f.UNIT = l.unit;
  } else {
    f._TRANSPORT = "stdout";
    f._SYSTEMD_UNIT = l.unit;
    f.BERTH_STREAM = l.stream;
  }
  f.MESSAGE = l.text;
  if (!host) delete f._HOSTNAME;
  return f;
}

/** journalctl -o verbose's timestamp: `Mon 2026-12-07 00:57:09.123000 UTC`. */
function verboseTime(ms: number): string {
  const base = systemdTime(ms);
  const frac = `.${String(ms % 1000).padStart(3, "0")}000`;
  // Insert the microseconds after the seconds, before the zone.
  return base.replace(/(\d{2}:\d{2}:\d{2})/, `$1${frac}`);
}

/** One journal line as `journalctl -o MODE` prints it (short: `Nov 25 12:00:00 core-01 sh[1240]: Hello`). */
export function formatJournalLine(l: JournalLine, mode: JournalMode = "short", host = l.hostname): string {
  switch (mode) {
    case "cat":
      return l.text;
    case "json":
      return JSON.stringify(journalFields(l, host));
    case "verbose": {
      const f = journalFields(l, host);
      return [verboseTime(l.at), ...Object.entries(f).map(([k, v]) => `    ${k}=${v}`)].join("\n");
    }
    case "short": {
      const who = l.pid ? `${identifier(l)}[${l.pid}]` : identifier(l);
      return `${shortTime(l.at)}${host ? ` ${host}` : ""} ${who}: ${l.text}`;
    }
  }
}
