// A .timer unit's [Timer] section turned into what the timer runner needs (systemd.timer(5)). Pure: throws
// UnitFileError (with the line) for what systemd would refuse to load.

import { expandDescription } from "../unit/deps.ts";
import {
  get,
  getAll,
  lineOf,
  parseBoolean,
  type SpecifierContext,
  type UnitFile,
  UnitFileError,
} from "../unit/unit-file.ts";
import { type CalendarSpec, CalendarSpecError, parseCalendarSpec } from "./calendar.ts";
import { parseTimespan } from "./exec-line.ts";
import { sectionReader, triggeredUnit } from "./trigger-config.ts";

/** What a monotonic timer value counts from (systemd's TimerBase). */
export type MonotonicBase =
  | "OnActiveSec"
  | "OnBootSec"
  | "OnStartupSec"
  | "OnUnitActiveSec"
  | "OnUnitInactiveSec";
export const MONOTONIC_KEYS: readonly MonotonicBase[] = [
  "OnActiveSec",
  "OnBootSec",
  "OnStartupSec",
  "OnUnitActiveSec",
  "OnUnitInactiveSec",
];

export interface TimerConfig {
  name: string;
  description: string;
  /** The unit it starts: Unit=, else the timer's own name with .service. */
  unit: string;
  calendars: CalendarSpec[];
  monotonic: { base: MonotonicBase; ms: number }[];
  persistent: boolean;
  /** AccuracySec= (default 1 min): how late an elapse may be; Berth fires at the elapse itself. */
  accuracyMs: number;
  /** RandomizedDelaySec=: each elapse is delayed by a random time up to this. */
  randomizedDelayMs: number;
  /** RemainAfterElapse= (default yes): an elapsed timer with nothing left to wait for stays active ("elapsed"). */
  remainAfterElapse: boolean;
}

export function timerConfigOf(name: string, file: UnitFile, ctx: SpecifierContext): TimerConfig {
  const fail = (reason: string, key?: string): never => {
    throw new UnitFileError(reason, lineOf(file, "Timer", key), name);
  };
  const calendars: CalendarSpec[] = [];
  for (const v of getAll(file, "Timer", "OnCalendar")) {
    try {
      calendars.push(parseCalendarSpec(v));
    } catch (e) {
      if (e instanceof CalendarSpecError) fail(`OnCalendar=${v}: ${e.message}`, "OnCalendar");
      throw e;
    }
  }
  const monotonic: TimerConfig["monotonic"] = [];
  for (const base of MONOTONIC_KEYS) {
    for (const v of getAll(file, "Timer", base)) {
      let ms: number;
      try {
        ms = parseTimespan(v, base);
      } catch (e) {
        if (e instanceof UnitFileError) fail(e.reason, base);
        throw e;
      }
      if (!Number.isFinite(ms!)) fail(`${base}=${v}: a timer value must be finite`, base);
      monotonic.push({ base, ms: ms! });
    }
  }
  // systemd: "Timer unit lacks value setting. Refusing."
  if (calendars.length === 0 && monotonic.length === 0)
    fail(
      "a timer needs at least one of OnCalendar=, OnActiveSec=, OnBootSec=, OnStartupSec=, OnUnitActiveSec=, OnUnitInactiveSec=",
    );
  const span = (key: string, dflt: number): number => {
    const v = get(file, "Timer", key);
    if (v === undefined) return dflt;
    try {
      return parseTimespan(v, key);
    } catch (e) {
      if (e instanceof UnitFileError) fail(e.reason, key);
      throw e;
    }
  };
  const bool = (key: string, dflt: boolean): boolean => {
    const v = get(file, "Timer", key);
    if (v === undefined) return dflt;
    const b = parseBoolean(v);
    if (b === undefined) fail(`${key}=${v} is not a boolean (yes/no, true/false, 1/0, on/off)`, key);
    return b!;
  };
  const unit = triggeredUnit(file, "Timer", "Unit", ctx, sectionReader(file, "Timer", name), {
    types: ["timer"],
    why: "a timer cannot trigger another timer",
  });
  return {
    name,
    description: expandDescription(file, ctx) ?? name,
    unit,
    calendars,
    monotonic,
    persistent: bool("Persistent", false),
    accuracyMs: span("AccuracySec", 60_000),
    randomizedDelayMs: span("RandomizedDelaySec", 0),
    remainAfterElapse: bool("RemainAfterElapse", true),
  };
}
