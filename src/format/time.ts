// Timestamps as systemd prints them (systemctl status, journalctl -o verbose), for the CLI and the console.

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const pad = (n: number) => String(n).padStart(2, "0");

/** systemd's timestamp: `Wed 2026-11-25 12:00:00 UTC` (local time and zone). */
export function systemdTime(ms: number): string {
  const d = new Date(ms);
  const zone =
    new Intl.DateTimeFormat("en-US", { timeZoneName: "short" })
      .formatToParts(d)
      .find((p) => p.type === "timeZoneName")?.value ?? "";
  return (
    `${DAYS[d.getDay()]} ${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${zone ? ` ${zone}` : ""}`
  );
}

/** systemd's format_timestamp_relative: `2min 3s ago`, `1h 5min ago`, `3 days ago`. */
export function relativeTime(ms: number, now = Date.now()): string {
  const d = Math.max(0, now - ms);
  const S = 1000;
  const MIN = 60 * S;
  const H = 60 * MIN;
  const DAY = 24 * H;
  const WEEK = 7 * DAY;
  const MONTH = 2_629_800 * S;
  const YEAR = 31_557_600 * S;
  const f = Math.floor;
  let t: string;
  if (d >= YEAR) t = `${f(d / YEAR)}y ${f((d % YEAR) / MONTH)} months`;
  else if (d >= MONTH) t = `${f(d / MONTH)} months ${f((d % MONTH) / DAY)} days`;
  else if (d >= WEEK) t = `${f(d / WEEK)} weeks ${f((d % WEEK) / DAY)} days`;
  else if (d >= 2 * DAY) t = `${f(d / DAY)} days`;
  else if (d >= 25 * H) t = `${f(d / DAY)} day ${f((d % DAY) / H)}h`;
  else if (d >= 6 * H) t = `${f(d / H)}h`;
  else if (d >= H) t = `${f(d / H)}h ${f((d % H) / MIN)}min`;
  else if (d >= 5 * MIN) t = `${f(d / MIN)}min`;
  else if (d >= MIN) t = `${f(d / MIN)}min ${f((d % MIN) / S)}s`;
  else if (d >= S) t = `${f(d / S)}s`;
  else if (d >= 1) t = `${d}ms`;
  else return "now";
  return `${t} ago`;
}

/** "1.5s", "200ms", "2m", "1h" or a bare number of seconds, in milliseconds; null when it is none of these. */
export function durationMs(raw: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!m) return null;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? "s"]!;
}
