// systemd's calendar events (systemd.time(7), OnCalendar=): parsing and the next elapse after a given time, as
// systemd 252's calendarspec.c computes them (test/calendar.test.ts compares with `systemd-analyze calendar`).
//
//   [WEEKDAYS] [[YEAR-]MONTH-DAY] [HOUR:MINUTE[:SECOND]] [TIMEZONE]
//
// Each of year, month, day, hour, minute and second is `*` or a comma-separated list of `N`, `A..B`, `N/STEP`,
// `A..B/STEP`; seconds may carry up to six decimals; `~` instead of the last `-` counts days from the month's end;
// weekdays are names (Mon or Monday, any case) in lists and `..`/`-` ranges. A missing date is `*-*-*`, a missing
// time 00:00:00, a missing second 00. `minutely`, `hourly`, `daily`, `weekly`, `monthly`, `yearly`/`annually`,
// `quarterly`, `semiannually` are shorthands; `@EPOCH` is one instant. The time zone is the machine's unless the
// expression ends in `UTC` or an IANA zone name. Pure: no clock.

/** A component value list: start, optional stop, step (0: the start only). Seconds are in microseconds. */
interface Component {
  start: number;
  stop: number;
  repeat: number;
}
type Chain = Component[] | null; // null: `*`

export interface CalendarSpec {
  /** Bit i set: weekday i (0 = Monday) matches; 0x7f = any. */
  weekdays: number;
  year: Chain;
  month: Chain;
  day: Chain;
  endOfMonth: boolean;
  hour: Chain;
  minute: Chain;
  /** Seconds in microseconds. */
  second: Chain;
  /** An IANA zone, "UTC", or undefined for the machine's zone. */
  timezone?: string;
  /** What was written, for messages. */
  text: string;
}

export class CalendarSpecError extends Error {
  constructor(text: string, why: string) {
    super(`invalid calendar specification ${JSON.stringify(text)}: ${why}`);
    this.name = "CalendarSpecError";
  }
}

const SHORTHANDS: Record<string, string> = {
  minutely: "*-*-* *:*:00",
  hourly: "*-*-* *:00:00",
  daily: "*-*-* 00:00:00",
  monthly: "*-*-01 00:00:00",
  weekly: "Mon *-*-* 00:00:00",
  yearly: "*-01-01 00:00:00",
  annually: "*-01-01 00:00:00",
  quarterly: "*-01,04,07,10-01 00:00:00",
  semiannually: "*-01,07-01 00:00:00",
};

// Longer names first, so "Monday" is not read as "Mon" followed by "day".
const WEEKDAYS: [string, number][] = [
  ["Monday", 0],
  ["Mon", 0],
  ["Tuesday", 1],
  ["Tue", 1],
  ["Wednesday", 2],
  ["Wed", 2],
  ["Thursday", 3],
  ["Thu", 3],
  ["Friday", 4],
  ["Fri", 4],
  ["Saturday", 5],
  ["Sat", 5],
  ["Sunday", 6],
  ["Sun", 6],
];

const USEC = 1_000_000;
const YEAR_MIN = 1970;
const YEAR_MAX = 2199;

/** Whether `tz` names a time zone this runtime knows. */
function validTimezone(tz: string): boolean {
  if (!/^[A-Za-z0-9_+/-]+$/.test(tz) || !/[A-Za-z]/.test(tz)) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** The machine's zone abbreviations (systemd accepts `tzname[0|1]` as a suffix, e.g. "UTC", "CET"). */
function localZoneNames(): string[] {
  const names = new Set<string>();
  for (const month of [0, 6]) {
    const parts = new Intl.DateTimeFormat("en-US", { timeZoneName: "short" }).formatToParts(
      new Date(Date.UTC(2026, month, 1)),
    );
    const n = parts.find((p) => p.type === "timeZoneName")?.value;
    if (n !== undefined && /^[A-Za-z]+$/.test(n)) names.add(n);
  }
  return [...names];
}

export function parseCalendarSpec(text: string): CalendarSpec {
  const fail = (why: string): never => {
    throw new CalendarSpecError(text, why);
  };
  let p = text.trim();
  let timezone: string | undefined;
  if (/ UTC$/i.test(p)) {
    timezone = "UTC";
    p = p.slice(0, -4);
  } else {
    const local = localZoneNames().find(
      (n) => p.length > n.length && p.toLowerCase().endsWith(` ${n.toLowerCase()}`),
    );
    if (local !== undefined) p = p.slice(0, -(local.length + 1));
    else {
      const sp = p.lastIndexOf(" ");
      if (sp >= 0 && validTimezone(p.slice(sp + 1))) {
        timezone = p.slice(sp + 1);
        p = p.slice(0, sp);
      }
    }
  }
  p = p.trim();
  const short = SHORTHANDS[p.toLowerCase()];
  if (short !== undefined) p = short;
  const spec: CalendarSpec = {
    weekdays: 0x7f,
    year: null,
    month: null,
    day: null,
    endOfMonth: false,
    hour: null,
    minute: null,
    second: null,
    text,
    ...(timezone !== undefined ? { timezone } : {}),
  };
  if (p.startsWith("@")) {
    if (!/^@\d+$/.test(p)) fail("malformed @EPOCH");
    const d = new Date(Number(p.slice(1)) * 1000);
    const c = (v: number): Component[] => [{ start: v, stop: -1, repeat: 0 }];
    spec.timezone = "UTC";
    spec.year = c(d.getUTCFullYear());
    spec.month = c(d.getUTCMonth() + 1);
    spec.day = c(d.getUTCDate());
    spec.hour = c(d.getUTCHours());
    spec.minute = c(d.getUTCMinutes());
    spec.second = c(d.getUTCSeconds() * USEC);
    return spec;
  }
  const cur = { s: p, i: 0 };
  parseWeekdays(cur, spec, fail);
  parseDate(cur, spec, fail);
  parseTime(cur, spec, fail);
  if (cur.i < cur.s.length) fail(`unexpected ${JSON.stringify(cur.s.slice(cur.i))}`);
  validate(spec, fail);
  return spec;
}

interface Cursor {
  s: string;
  i: number;
}

function skipSpaces(c: Cursor): void {
  while (c.s[c.i] === " ") c.i++;
}

function parseWeekdays(c: Cursor, spec: CalendarSpec, fail: (w: string) => never): void {
  let bits = 0;
  let rangeFrom = -1;
  let first = true;
  for (;;) {
    const rest = c.s.slice(c.i).toLowerCase();
    const hit = WEEKDAYS.find(([name]) => rest.startsWith(name.toLowerCase()));
    if (hit === undefined) {
      if (first) return;
      fail("malformed weekday list");
    }
    const [name, nr] = hit!;
    const after = c.s[c.i + name.length];
    if (after !== undefined && !"-.,' ".includes(after)) fail("malformed weekday");
    bits |= 1 << nr;
    if (rangeFrom >= 0) {
      if (rangeFrom > nr) fail("a weekday range cannot wrap around");
      for (let j = rangeFrom + 1; j < nr; j++) bits |= 1 << j;
    }
    c.i += name.length;
    spec.weekdays = bits;
    const ch = c.s[c.i];
    if (ch === undefined) return;
    if (ch === " ") {
      skipSpaces(c);
      return;
    }
    if (ch === ".") {
      if (rangeFrom >= 0 || c.s[c.i + 1] !== ".") fail("malformed weekday range");
      rangeFrom = nr;
      c.i += 2;
    } else if (ch === "-") {
      if (rangeFrom >= 0) fail("malformed weekday range");
      rangeFrom = nr;
      c.i += 1;
    } else if (ch === ",") {
      rangeFrom = -1;
      c.i += 1;
    }
    if (c.s[c.i] === undefined || c.s[c.i] === " ") {
      skipSpaces(c);
      if (rangeFrom >= 0) fail("open weekday range");
      return;
    }
    first = false;
  }
}

function parseDecimal(c: Cursor, usec: boolean, fail: (w: string) => never): number {
  const m = (usec ? /^(\d+)(?:\.(\d{1,6}))?/ : /^(\d+)/).exec(c.s.slice(c.i));
  if (m === null) fail(`expected a number at ${JSON.stringify(c.s.slice(c.i))}`);
  c.i += m![0].length;
  const whole = Number(m![1]);
  if (!usec) return whole;
  return whole * USEC + Number((m![2] ?? "").padEnd(6, "0"));
}

/** `*` or a comma list of components; stops before `-`, `~`, `:`, a space or the end. */
function parseChain(c: Cursor, usec: boolean, fail: (w: string) => never): Chain {
  if (c.s[c.i] === "*") {
    c.i++;
    // A `*` second is every whole second, not every microsecond (systemd's parse_chain).
    return usec ? [{ start: 0, stop: -1, repeat: USEC }] : null;
  }
  const out: Component[] = [];
  for (;;) {
    const start = parseDecimal(c, usec, fail);
    let stop = -1;
    let repeat = 0;
    if (c.s.startsWith("..", c.i)) {
      c.i += 2;
      stop = parseDecimal(c, usec, fail);
      repeat = usec ? USEC : 1;
    }
    if (c.s[c.i] === "/") {
      c.i++;
      repeat = parseDecimal(c, usec, fail);
      if (repeat === 0) fail("a repetition of 0");
    } else if (usec && stop >= 0 && start + repeat > stop) fail("a range of seconds below 1 s");
    const ch = c.s[c.i];
    if (ch !== undefined && !" ,-~:".includes(ch)) fail(`unexpected ${JSON.stringify(ch)}`);
    out.push({ start, stop, repeat });
    if (ch !== ",") return out;
    c.i++;
  }
}

function parseDate(c: Cursor, spec: CalendarSpec, fail: (w: string) => never): void {
  if (c.i >= c.s.length) return;
  const save = c.i;
  const first = parseChain(c, false, fail);
  if (c.s[c.i] === undefined || c.s[c.i] === ":") {
    c.i = save; // a time, not a date
    return;
  }
  if (c.s[c.i] === "~") spec.endOfMonth = true;
  else if (c.s[c.i] !== "-") fail("malformed date");
  c.i++;
  const second = parseChain(c, false, fail);
  if (c.s[c.i] === undefined || c.s[c.i] === " ") {
    spec.month = first;
    spec.day = second;
    skipSpaces(c);
    return;
  }
  if (c.s[c.i] === "~") {
    if (spec.endOfMonth) fail("two ~ in a date");
    spec.endOfMonth = true;
  } else if (c.s[c.i] !== "-") fail("malformed date");
  c.i++;
  const third = parseChain(c, false, fail);
  if (c.s[c.i] !== undefined && c.s[c.i] !== " ") fail("malformed date");
  // Two-digit years: 70..99 are 19xx, 00..69 are 20xx, as systemd's fix_year.
  spec.year =
    first?.map((x) => ({ ...x, start: fixYear(x.start), stop: x.stop < 0 ? x.stop : fixYear(x.stop) })) ??
    null;
  spec.month = second;
  spec.day = third;
  skipSpaces(c);
}

function fixYear(y: number): number {
  return y < 70 ? y + 2000 : y < 100 ? y + 1900 : y;
}

function parseTime(c: Cursor, spec: CalendarSpec, fail: (w: string) => never): void {
  const zero = (): Component[] => [{ start: 0, stop: -1, repeat: 0 }];
  if (c.i >= c.s.length) {
    spec.hour = zero();
    spec.minute = zero();
    spec.second = zero();
    return;
  }
  spec.hour = parseChain(c, false, fail);
  if (c.s[c.i] !== ":") fail("malformed time");
  c.i++;
  spec.minute = parseChain(c, false, fail);
  if (c.i >= c.s.length) {
    spec.second = zero();
    return;
  }
  if (c.s[c.i] !== ":") fail("malformed time");
  c.i++;
  spec.second = parseChain(c, true, fail);
}

function validate(spec: CalendarSpec, fail: (w: string) => never): void {
  const check = (chain: Chain, name: string, lo: number, hi: number): void => {
    for (const x of chain ?? []) {
      if (x.start < lo || x.start > hi || (x.stop >= 0 && (x.stop < lo || x.stop > hi)))
        fail(`${name} out of range`);
      if (x.stop >= 0 && x.stop < x.start) fail(`${name} range runs backwards`);
    }
  };
  check(spec.year, "year", YEAR_MIN, YEAR_MAX);
  check(spec.month, "month", 1, 12);
  check(spec.day, "day", 1, 31);
  check(spec.hour, "hour", 0, 23);
  check(spec.minute, "minute", 0, 59);
  check(spec.second, "second", 0, 60 * USEC - 1);
}

// ---------------------------------------------------------------------------------------------------------------
// Next elapse

/** Wall-clock fields in a zone (month 1-12, weekday 0 = Monday). */
interface Wall {
  y: number;
  mo: number;
  d: number;
  h: number;
  mi: number;
  s: number;
  /** Microseconds within the second. */
  us: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function wallOf(ms: number, tz: string | undefined): Wall {
  const key = tz ?? "";
  let f = formatters.get(key);
  if (f === undefined) {
    f = new Intl.DateTimeFormat("en-US", {
      ...(tz !== undefined ? { timeZone: tz } : {}),
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(key, f);
  }
  const v: Record<string, number> = {};
  for (const part of f.formatToParts(new Date(ms))) v[part.type] = Number(part.value);
  const msPart = ((ms % 1000) + 1000) % 1000;
  return { y: v.year!, mo: v.month!, d: v.day!, h: v.hour!, mi: v.minute!, s: v.second!, us: msPart * 1000 };
}

const HOUR_MS = 3_600_000;

/** The wall time read as if it were UTC, in ms (fields may overflow: Date.UTC carries them). */
function naiveMs(w: Wall): number {
  return Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, w.s) + Math.floor(w.us / 1000);
}

/**
 * mktime(3) in a zone with tm_isdst = -1, as systemd calls it: the instant of a wall time (overflowing fields
 * carried over). Of two instants (the hour repeated when DST ends) the earlier; a time the zone skips (DST
 * begins) is read with the offset before the change, so it lands after the gap, as glibc does.
 */
function mktime(w: Wall, tz: string | undefined): number {
  const naive = naiveMs(w);
  const offsetAt = (t: number): number => naiveMs(wallOf(t, tz)) - t;
  const before = offsetAt(naive - 24 * HOUR_MS);
  const after = offsetAt(naive + 24 * HOUR_MS);
  const valid = [naive - before, naive - after].filter((t) => naiveMs(wallOf(t, tz)) === naive);
  return valid.length > 0 ? Math.min(...valid) : naive - before;
}

/**
 * systemd's tm_within_bounds: -1 past the last year or when normalising would go backwards; 0 when the fields
 * needed carrying over (c then holds the normalised time, the unit below the first changed one reset); 1 when
 * they are a real time as they are.
 */
function withinBounds(c: Wall, tz: string | undefined): -1 | 0 | 1 {
  if (c.y > YEAR_MAX) return -1;
  const t = wallOf(mktime(c, tz), tz);
  t.us = c.us;
  // The first field normalising changed decides; the one below it restarts (3-33 is 4-2: 4-1 must not be skipped).
  const order = [
    ["y", "mo", 1],
    ["mo", "d", 1],
    ["d", "h", 0],
    ["h", "mi", 0],
    ["mi", "s", 0],
    ["s", null, 0],
  ] as const;
  let cmp = 0;
  for (const [field, below, reset] of order) {
    cmp = Math.sign(t[field] - c[field]);
    if (cmp === 0) continue;
    if (below !== null) t[below] = reset;
    break;
  }
  if (cmp < 0) return -1;
  if (cmp > 0) Object.assign(c, t);
  return cmp === 0 ? 1 : 0;
}

function daysInMonth(y: number, mo: number): number {
  return new Date(Date.UTC(y, mo, 0)).getUTCDate();
}

/** The smallest value of the chain at or after `val`: [value, changed], or null when none (find_matching_component). */
function matchChain(
  chain: Chain,
  val: number,
  endOfMonth: { y: number; mo: number } | null,
): [number, boolean] | null {
  if (chain === null) return [val, false];
  let best: number | null = null;
  for (const x of chain) {
    let { start, stop } = x;
    if (endOfMonth !== null) {
      // systemd's find_end_of_month: the n-th last day, -1 when there is none in this month.
      const dim = daysInMonth(endOfMonth.y, endOfMonth.mo);
      const fromEnd = (n: number): number => (n < 0 || dim + 1 - n < 1 ? -1 : dim + 1 - n);
      start = fromEnd(start);
      stop = fromEnd(stop);
      if (stop > 0) [start, stop] = [stop, start];
    }
    if (start >= val) {
      if (best === null || start < best) best = start;
    } else if (x.repeat > 0) {
      const k = start + x.repeat * Math.ceil((val - start) / x.repeat);
      if ((best === null || k < best) && (stop < 0 || k <= stop)) best = k;
    }
  }
  return best === null ? null : [best, best !== val];
}

function weekdayOf(w: Wall): number {
  return (new Date(Date.UTC(w.y, w.mo - 1, w.d)).getUTCDay() + 6) % 7;
}

const BELOW = { mo: "d", d: "h", h: "mi", mi: "s" } as const;

/** systemd gives up after this many steps (MAX_CALENDAR_ITERATIONS): the expression never elapses. */
const MAX_STEPS = 1000;

/** The first time strictly after `afterMs` (ms since the epoch) that the spec matches, or null when none. */
export function nextElapse(spec: CalendarSpec, afterMs: number): number | null {
  const tz = spec.timezone;
  let c = wallOf(afterMs + 1, tz);
  const zero = (from: "mo" | "d" | "h" | "mi" | "s"): void => {
    const order = ["mo", "d", "h", "mi", "s"] as const;
    for (const f of order.slice(order.indexOf(from))) c[f] = f === "mo" || f === "d" ? 1 : 0;
    c.us = 0;
  };
  // One field: its next matching value (the fields below restart when it changed); "next" to carry on, "retry"
  // to start over from the normalised time, "carry" when the field has no match left (the one above moves on).
  const advance = (
    chain: Chain,
    field: "mo" | "d" | "h" | "mi",
    eom: boolean,
  ): "next" | "retry" | "carry" => {
    const r = matchChain(chain, c[field], eom ? { y: c.y, mo: c.mo } : null);
    if (r === null) return "carry";
    if (r[1]) {
      c[field] = r[0];
      zero(BELOW[field]);
    }
    const b = withinBounds(c, tz);
    return b < 0 ? "carry" : b === 0 ? "retry" : "next";
  };
  for (let step = 0; step < MAX_STEPS; step++) {
    // Normalise (mktime works in whole milliseconds: the microseconds below are carried by hand).
    const subMs = c.us % 1000;
    c = wallOf(mktime(c, tz), tz);
    c.us += subMs;
    const y = matchChain(spec.year, c.y, null);
    if (y === null) return null;
    if (y[1]) {
      c.y = y[0];
      zero("mo");
    }
    if (withinBounds(c, tz) <= 0) return null;
    let a = advance(spec.month, "mo", false);
    if (a === "carry") {
      c.y++;
      zero("mo");
    }
    if (a !== "next") continue;
    a = advance(spec.day, "d", spec.endOfMonth);
    if (a === "carry") {
      c.mo++;
      zero("d");
    }
    if (a !== "next") continue;
    if ((spec.weekdays & (1 << weekdayOf(c))) === 0) {
      c.d++;
      zero("h");
      continue;
    }
    a = advance(spec.hour, "h", false);
    if (a === "carry") {
      c.d++;
      zero("h");
    }
    if (a !== "next") continue;
    a = advance(spec.minute, "mi", false);
    if (a === "carry") {
      c.h++;
      zero("mi");
    }
    if (a !== "next") continue;
    const sec = matchChain(spec.second, c.s * USEC + c.us, null);
    if (sec !== null) {
      c.s = Math.floor(sec[0] / USEC);
      c.us = sec[0] % USEC;
    }
    const b = sec === null ? -1 : withinBounds(c, tz);
    if (b < 0) {
      c.mi++;
      zero("s");
    }
    if (b <= 0) continue;
    return mktime(c, tz);
  }
  return null;
}
