// Exec*= command lines, Environment=/EnvironmentFile= values and time spans, as systemd reads them
// (systemd.service(5) "Command lines", systemd.exec(5) "Environment", systemd.time(7)). Pure: no I/O, no clock.
import { constants as osConstants } from "node:os";
import {
  type ExecCommand,
  expandSpecifiers,
  parsePrefixes,
  type SpecifierContext,
  splitCommandLine,
  UnitFileError,
} from "../unit/unit-file.ts";

// ---------------------------------------------------------------------------------------------------------------
// Command lines

/** An Exec*= line ready to run: prefixes decoded, specifiers expanded; `$VAR` expansion happens at spawn time. */
export interface CompiledExec extends ExecCommand {
  /** The line as written in the unit (what `systemctl status` shows after `ExecStart=`). */
  command: string;
}

/**
 * Splits an Exec*= value with systemd's quoting, decodes its prefixes and expands specifiers in the path and in
 * every word (systemd's config_parse_exec does the same: split first, then unit_full_printf per word, so a
 * specifier's value is never re-split). Throws UnitFileError.
 */
export function compileExec(value: string, ctx: SpecifierContext): CompiledExec {
  const cmd = parsePrefixes(splitCommandLine(value));
  const path = expandSpecifiers(cmd.path, ctx);
  if (path.includes("/") && !path.startsWith("/")) {
    throw new UnitFileError(`executable path ${JSON.stringify(path)} is neither absolute nor a plain name`);
  }
  const argv = cmd.argv.map((w, i) => (i === 0 && !cmd.separateArgv0 ? path : expandSpecifiers(w, ctx)));
  return { ...cmd, path, argv, command: value };
}

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * systemd's replace_env for one word: `${NAME}` (also `${NAME:-default}` and `${NAME:+alternate}`) is replaced
 * inside the word, `$$` is a literal `$`; any other `$` stays as it is. An unset variable expands to "".
 */
export function expandEnvInWord(word: string, env: Record<string, string>): string {
  let out = "";
  for (let i = 0; i < word.length; i++) {
    const c = word[i]!;
    if (c !== "$") {
      out += c;
      continue;
    }
    const next = word[i + 1];
    if (next === "$") {
      out += "$";
      i++;
      continue;
    }
    if (next === "{") {
      const close = word.indexOf("}", i + 2);
      if (close < 0) {
        out += word.slice(i);
        break;
      }
      const inner = word.slice(i + 2, close);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::([-+])(.*))?$/s.exec(inner);
      if (m === null) {
        out += word.slice(i, close + 1);
      } else {
        const value = env[m[1]!];
        if (m[2] === "-") out += value === undefined || value === "" ? m[3]! : value;
        else if (m[2] === "+") out += value === undefined || value === "" ? "" : m[3]!;
        else out += value ?? "";
      }
      i = close;
      continue;
    }
    out += c;
  }
  return out;
}

/** Splits a variable's value into words for a bare `$NAME` argument: whitespace-separated, quotes removed. */
function splitValueWords(value: string): string[] {
  try {
    return splitCommandLine(value);
  } catch {
    // systemd splits with EXTRACT_RELAX: a malformed value still splits on whitespace.
    return value.split(/[ \t\n\r]+/).filter((w) => w !== "");
  }
}

/**
 * systemd's replace_env_argv: an argument that is exactly `$NAME` becomes the variable's value split on
 * whitespace (zero words when unset or empty); any other argument gets `${NAME}` replaced inside it, unsplit.
 */
export function expandEnvArgv(argv: string[], env: Record<string, string>): string[] {
  const out: string[] = [];
  for (const word of argv) {
    if (word.length > 1 && word[0] === "$" && word[1] !== "{" && word[1] !== "$") {
      const name = word.slice(1);
      if (ENV_NAME_RE.test(name)) {
        out.push(...splitValueWords(env[name] ?? ""));
        continue;
      }
    }
    out.push(expandEnvInWord(word, env));
  }
  return out;
}

/** The argv to exec, with `$VAR` expansion unless the `:` prefix turned it off. argv[0] included. */
export function resolveArgv(cmd: CompiledExec, env: Record<string, string>): string[] {
  return cmd.noEnvExpansion ? [...cmd.argv] : expandEnvArgv(cmd.argv, env);
}

// ---------------------------------------------------------------------------------------------------------------
// Environment

/**
 * Environment= values (several lines accumulate, later assignments win): each value holds space-separated,
 * optionally quoted `KEY=VALUE` words; specifiers are expanded. Invalid assignments are skipped and reported,
 * as systemd logs and ignores them.
 */
export function parseEnvironment(
  values: string[],
  ctx: SpecifierContext,
): { env: Record<string, string>; warnings: string[] } {
  const env: Record<string, string> = {};
  const warnings: string[] = [];
  for (const v of values) {
    for (const word of splitCommandLine(v)) {
      const expanded = expandSpecifiers(word, ctx);
      const eq = expanded.indexOf("=");
      const key = eq < 0 ? "" : expanded.slice(0, eq);
      if (!ENV_NAME_RE.test(key)) {
        warnings.push(`invalid environment assignment ${JSON.stringify(expanded)}, ignoring`);
        continue;
      }
      env[key] = expanded.slice(eq + 1);
    }
  }
  return { env, warnings };
}

/** An EnvironmentFile= value: `-` in front means a missing file is not an error. */
export interface EnvFileRef {
  path: string;
  optional: boolean;
}

export function parseEnvironmentFileRef(value: string, ctx: SpecifierContext): EnvFileRef {
  const optional = value.startsWith("-");
  const path = expandSpecifiers(optional ? value.slice(1) : value, ctx);
  if (!path.startsWith("/"))
    throw new UnitFileError(`EnvironmentFile= path ${JSON.stringify(path)} is not absolute`);
  return { path, optional };
}

/**
 * The contents of an environment file, as systemd's load_env_file reads them: `KEY=VALUE` lines, `#`/`;`
 * comments, an optional `export `, single quotes literal, double quotes with backslash escapes, a trailing
 * backslash continuing the line, unquoted values with surrounding whitespace stripped.
 */
export function parseEnvironmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    while (/(^|[^\\])(\\\\)*\\$/.test(line) && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i]!;
    const l = line.replace(/^[ \t]+/, "");
    if (l === "" || l[0] === "#" || l[0] === ";") continue;
    const body = l.startsWith("export ") ? l.slice(7).replace(/^[ \t]+/, "") : l;
    const eq = body.indexOf("=");
    if (eq < 0) continue;
    const key = body.slice(0, eq).replace(/[ \t]+$/, "");
    if (!ENV_NAME_RE.test(key)) continue;
    env[key] = parseEnvFileValue(body.slice(eq + 1).replace(/^[ \t]+/, ""));
  }
  return env;
}

function parseEnvFileValue(raw: string): string {
  let out = "";
  let quote: '"' | "'" | null = null;
  let pendingSpace = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else out += c;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === "\\" && i + 1 < raw.length && '"\\`$'.includes(raw[i + 1]!)) out += raw[++i];
      else out += c;
      continue;
    }
    if (c === "'" || c === '"') {
      out += pendingSpace;
      pendingSpace = "";
      quote = c;
    } else if (c === " " || c === "\t") pendingSpace += c;
    else if (c === "#" && pendingSpace !== "" && out !== "") break;
    else {
      out += pendingSpace;
      pendingSpace = "";
      if (c === "\\" && i + 1 < raw.length) out += raw[++i];
      else out += c;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Time spans

const TIME_UNITS: Record<string, number> = {
  us: 0.001,
  usec: 0.001,
  µs: 0.001,
  ms: 1,
  msec: 1,
  s: 1000,
  sec: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
  M: 2_629_800_000,
  month: 2_629_800_000,
  months: 2_629_800_000,
  y: 31_557_600_000,
  year: 31_557_600_000,
  years: 31_557_600_000,
};

/**
 * systemd's parse_sec, in milliseconds: a bare number is seconds; otherwise a sum of number+unit parts
 * ("1min 30s", "2h30min", "500ms", "0.5s"); "infinity" is Infinity. Throws UnitFileError.
 */
export function parseTimespan(value: string, key?: string): number {
  const invalid = (): never => {
    const what = key === undefined ? JSON.stringify(value) : `${key}=${value}`;
    throw new UnitFileError(`${what} is not a time span (such as 30, 5s, 1min 30s, 500ms, infinity)`);
  };
  const v = value.trim();
  if (v === "infinity") return Number.POSITIVE_INFINITY;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const re = /\s*(\d+(?:\.\d+)?)\s*([a-zA-Zµ]+)/y;
  let total = 0;
  let pos = 0;
  let parts = 0;
  while (pos < v.length) {
    re.lastIndex = pos;
    const m = re.exec(v);
    const unit = m === null ? undefined : TIME_UNITS[m[2]!];
    if (m === null || unit === undefined) return invalid();
    total += Number(m[1]) * unit;
    pos = re.lastIndex;
    parts++;
  }
  if (parts === 0) return invalid();
  return total;
}

// ---------------------------------------------------------------------------------------------------------------
// Exit statuses

/** systemd's exit_status_to_string for the codes it names (LSB and systemd's own 200+ range). */
const EXIT_STATUS_NAMES: Record<number, string> = {
  0: "SUCCESS",
  1: "FAILURE",
  2: "INVALIDARGUMENT",
  3: "NOTIMPLEMENTED",
  4: "NOPERMISSION",
  5: "NOTINSTALLED",
  6: "NOTCONFIGURED",
  7: "NOTRUNNING",
  200: "CHDIR",
  201: "NICE",
  202: "FDS",
  203: "EXEC",
  204: "MEMORY",
  205: "LIMITS",
  206: "OOM_ADJUST",
  207: "SIGNAL_MASK",
  208: "STDIN",
  209: "STDOUT",
  214: "SETSCHEDULER",
  216: "GROUP",
  217: "USER",
  218: "CAPABILITIES",
};

/** "1/FAILURE", "203/EXEC", "42". */
export function exitStatusText(code: number): string {
  const name = EXIT_STATUS_NAMES[code];
  return name === undefined ? String(code) : `${code}/${name}`;
}

/** "SIGKILL" → "KILL". */
export function shortSignalName(signal: string): string {
  return signal.startsWith("SIG") ? signal.slice(3) : signal;
}

/** "KILL" → "9/KILL". */
export function signalText(signal: string): string {
  const full = signal.startsWith("SIG") ? signal : `SIG${signal}`;
  const num = (osConstants.signals as Record<string, number>)[full];
  return num === undefined ? shortSignalName(signal) : `${num}/${shortSignalName(signal)}`;
}
