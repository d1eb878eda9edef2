// What the trigger units' configs (timer-config.ts, socket-config.ts, path-config.ts) read the same way: a reader
// of one section (booleans, time spans, octal modes, failing with the line) and the unit a trigger starts. Pure.

import { defaultTriggeredUnit } from "../sched/triggers.ts";
import {
  expandSpecifiers,
  get,
  lineOf,
  parseBoolean,
  parseUnitName,
  type SpecifierContext,
  type UnitFile,
  UnitFileError,
  UnitNameError,
  type UnitType,
} from "../unit/unit-file.ts";
import { parseTimespan } from "./exec-line.ts";

export interface SectionReader {
  fail(reason: string, key?: string): never;
  bool(key: string, dflt: boolean): boolean;
  span(key: string, dflt: number): number;
  /** An octal access mode (SocketMode=0666). */
  mode(key: string, dflt: number): number;
  uint(key: string, dflt: number): number;
}

export function sectionReader(file: UnitFile, section: string, name: string): SectionReader {
  const fail = (reason: string, key?: string): never => {
    throw new UnitFileError(reason, lineOf(file, section, key), name);
  };
  return {
    fail,
    bool(key, dflt) {
      const v = get(file, section, key);
      if (v === undefined) return dflt;
      const b = parseBoolean(v);
      if (b === undefined) fail(`${key}=${v} is not a boolean (yes/no, true/false, 1/0, on/off)`, key);
      return b!;
    },
    span(key, dflt) {
      const v = get(file, section, key);
      if (v === undefined) return dflt;
      try {
        return parseTimespan(v, key);
      } catch (e) {
        if (e instanceof UnitFileError) fail(e.reason, key);
        throw e;
      }
    },
    mode(key, dflt) {
      const v = get(file, section, key);
      if (v === undefined) return dflt;
      if (!/^0?[0-7]{1,4}$/.test(v)) fail(`${key}=${v} is not an access mode (octal, such as 0666)`, key);
      return Number.parseInt(v, 8);
    },
    uint(key, dflt) {
      const v = get(file, section, key);
      if (v === undefined) return dflt;
      if (!/^\d+$/.test(v)) fail(`${key}=${v} is not a number`, key);
      return Number(v);
    },
  };
}

/**
 * The unit a trigger starts: `section`'s `key` (specifiers expanded), else the trigger's name with .service. A
 * template, or a unit of one of `refused` types, fails.
 */
export function triggeredUnit(
  file: UnitFile,
  section: string,
  key: string,
  ctx: SpecifierContext,
  r: SectionReader,
  refused: { types: readonly UnitType[]; why: string },
): string {
  const u = get(file, section, key);
  if (u === undefined) return defaultTriggeredUnit(ctx.unitName);
  try {
    const unit = expandSpecifiers(u, ctx);
    const parsed = parseUnitName(unit);
    if (parsed.isTemplate) r.fail(`${key}=${unit}: a template cannot be started, only its instances`, key);
    if (refused.types.includes(parsed.type)) r.fail(`${key}=${unit}: ${refused.why}`, key);
    return unit;
  } catch (e) {
    if (e instanceof UnitNameError) r.fail(`${key}=${u}: ${e.message}`, key);
    if (e instanceof UnitFileError && e.line === 0) r.fail(`${key}=${u}: ${e.reason}`, key);
    throw e;
  }
}

/** TriggerLimitIntervalSec= / TriggerLimitBurst= (systemd's defaults for sockets and paths: 2 s, 200). */
export interface TriggerLimit {
  intervalMs: number;
  burst: number;
}

export function triggerLimitOf(r: SectionReader): TriggerLimit {
  return { intervalMs: r.span("TriggerLimitIntervalSec", 2000), burst: r.uint("TriggerLimitBurst", 200) };
}

/** Counts triggers in the current interval (systemd's RateLimit): false once more than `burst` came in it. */
export class TriggerCounter {
  private begin = 0;
  private count = 0;

  constructor(private readonly limit: TriggerLimit) {}

  allow(now: number): boolean {
    if (this.limit.intervalMs <= 0 || this.limit.burst <= 0) return true;
    if (now - this.begin >= this.limit.intervalMs) {
      this.begin = now;
      this.count = 0;
    }
    return ++this.count <= this.limit.burst;
  }

  reset(): void {
    this.count = 0;
    this.begin = 0;
  }
}
