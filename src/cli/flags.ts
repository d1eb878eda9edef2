import { parseArgs as parseTokens } from "node:util";
import { durationMs } from "../format/time.ts";
import { UsageError } from "./exit-codes.ts";

export type FlagType = "string" | "number" | "boolean" | "duration" | "list";

export interface FlagSpec {
  name: string;
  short?: string;
  type: FlagType;
  description: string;
  default?: string | number | boolean | string[];
  /**
   * The default as help shows it, for a flag the command resolves itself (`berth node`: after --config and the
   * data directory's node.json, or from another flag), so the parser must not fill it in.
   */
  shownDefault?: string;
  /** Environment variable consulted when the flag is absent. */
  env?: string;
  /** Placeholder shown in help, e.g. HOST:PORT. */
  value?: string;
}

export type FlagValues = Record<string, string | number | boolean | string[] | undefined>;

export interface Parsed {
  flags: FlagValues;
  positionals: string[];
}

/**
 * Parses flags anywhere among the arguments (etcdctl accepts `set /k v --ttl 15`), `--name=value` or
 * `--name value`, `-x value`, grouped short booleans (`-lp`), `--no-name` for booleans, and `--` to end flags:
 * everything after it is an argument, `--help` included. A negative number or a lone `-` is an argument too.
 * Unknown flags and missing values are usage errors. Node's parseArgs splits the words; the flag types,
 * defaults and BERTH_* variables are ours.
 */
export function parseArgs(argv: string[], specs: FlagSpec[], command: string): Parsed {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const flags: FlagValues = {};
  const positionals: string[] = [];
  let argumentAt = -1;
  for (const token of tokenize(argv, specs)) {
    if (token.kind === "option-terminator") continue;
    if (token.kind === "positional") {
      positionals.push(token.value);
      continue;
    }
    const word = argv[token.index]!;
    if (/^-\d/.test(word)) {
      // `-5`: a value, not a flag (node splits it into flags "5", ... all from the same word).
      if (token.index !== argumentAt) positionals.push(word);
      argumentAt = token.index;
      continue;
    }
    let spec = byName.get(token.name);
    let raw = token.value;
    if (!spec && token.name.startsWith("no-") && byName.get(token.name.slice(3))?.type === "boolean") {
      if (raw !== undefined) throw new UsageError(`--${token.name}=${raw} takes no value`);
      spec = byName.get(token.name.slice(3))!;
      raw = "false";
    }
    if (!spec) {
      const group = word !== token.rawName && !word.startsWith(`${token.rawName}=`) ? ` (in ${word})` : "";
      throw new UsageError(
        `unknown flag ${token.rawName}${group} for \`${command}\` (see \`${command} --help\`)`,
      );
    }
    if (spec.type === "boolean") raw ??= "true";
    else if (raw === undefined) throw new UsageError(`flag --${spec.name} needs a value`);
    const value = convert(spec, raw);
    if (spec.type === "list")
      flags[spec.name] = [...((flags[spec.name] as string[]) ?? []), ...(value as string[])];
    else flags[spec.name] = value;
  }
  for (const s of specs) {
    if (flags[s.name] !== undefined) continue;
    const env = fromEnvironment(s);
    if (env !== null) flags[s.name] = convert(s, env.value, env.variable);
    else if (s.default !== undefined) flags[s.name] = s.default;
  }
  return { flags, positionals };
}

/** Whether the arguments ask for help (`--help` or `-h`, before any `--`), whatever else they hold. */
export function asksForHelp(argv: string[], specs: FlagSpec[]): boolean {
  return tokenize(argv, specs).some((t) => t.kind === "option" && t.name === HELP.name);
}

/**
 * The index of the first word that is neither a flag nor a flag's value, or is --help, --version or `--`:
 * where `berth --tunnel core@host list-machines` (fleetctl's order) names its command. -1 when there is none.
 */
export function firstWordAfterFlags(argv: string[], specs: FlagSpec[]): number {
  const stop = tokenize(argv, [...specs, VERSION]).find(
    (t) => t.kind !== "option" || t.name === HELP.name || t.name === VERSION.name,
  );
  return stop?.index ?? -1;
}

const HELP: FlagSpec = { name: "help", short: "h", type: "boolean", description: "show this help" };
const VERSION: FlagSpec = { name: "version", short: "v", type: "boolean", description: "show the version" };

/**
 * Splits the words with node:util's parseArgs (in Node and Bun alike), told which flags take a value so
 * `--ttl 5` is one flag and `-lp` two. Not strict: unknown flags come back as tokens, and parseArgs above
 * reports them in our words (and reads `--no-x`, which Node 20's parseArgs does not know).
 */
function tokenize(argv: string[], specs: FlagSpec[]) {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const s of [...specs, HELP]) {
    // A command's own flag wins over help's name or -h.
    if (s.name in options) continue;
    const short = s.short && !Object.values(options).some((o) => o.short === s.short) ? s.short : undefined;
    options[s.name] = { type: s.type === "boolean" ? "boolean" : "string", ...(short ? { short } : {}) };
  }
  return parseTokens({ args: argv, options, strict: false, allowPositionals: true, tokens: true }).tokens;
}

/** The settings fleetctl read from FLEETCTL_<X>: Berth reads them too, as aliases of BERTH_<X> (which wins). */
const FLEETCTL_ALIASES = new Set([
  "ENDPOINT",
  "TUNNEL",
  "SSH_USERNAME",
  "STRICT_HOST_KEY_CHECKING",
  "KNOWN_HOSTS_FILE",
  "SSH_TIMEOUT",
  "REQUEST_TIMEOUT",
  "CA_FILE",
  "CERT_FILE",
  "KEY_FILE",
]);

/** The variables a flag is read from, in order: its BERTH_<X>, then fleetctl's FLEETCTL_<X> where fleetctl had one. */
export function envNames(spec: FlagSpec): string[] {
  if (!spec.env) return [];
  const rest = spec.env.startsWith("BERTH_") ? spec.env.slice("BERTH_".length) : "";
  return FLEETCTL_ALIASES.has(rest) ? [spec.env, `FLEETCTL_${rest}`] : [spec.env];
}

function fromEnvironment(spec: FlagSpec): { value: string; variable: string } | null {
  for (const variable of envNames(spec)) {
    const value = process.env[variable];
    if (value !== undefined && value !== "") return { value, variable };
  }
  return null;
}

/** Converts one raw value; `source` names where it came from (a flag, a variable, a config key) in errors. */
export function convert(
  spec: FlagSpec,
  raw: string,
  source = `--${spec.name}`,
): string | number | boolean | string[] {
  switch (spec.type) {
    case "string":
      return raw;
    case "list":
      return raw
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    case "boolean": {
      const v = raw.toLowerCase();
      if (["true", "1", "yes", "on"].includes(v)) return true;
      if (["false", "0", "no", "off"].includes(v)) return false;
      throw new UsageError(`${source} must be true or false, not "${raw}"`);
    }
    case "number": {
      const n = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(n))
        throw new UsageError(`${source} must be a number, not "${raw}"`);
      return n;
    }
    case "duration":
      return parseDuration(raw, source);
  }
}

/** "1.5s", "200ms", "2m", or a bare number of seconds; returns milliseconds. */
export function parseDuration(raw: string, source: string): number {
  const ms = durationMs(raw);
  if (ms === null) throw new UsageError(`${source} must be a duration like 5s, 250ms or 2m, not "${raw}"`);
  return ms;
}

export function flagHelp(specs: FlagSpec[]): string {
  const rows = specs.map((s) => {
    const names =
      (s.short ? `-${s.short}, ` : "    ") +
      `--${s.name}` +
      (s.type === "boolean" ? "" : ` ${s.value ?? s.type.toUpperCase()}`);
    const extra = [
      s.shownDefault !== undefined
        ? `default ${s.shownDefault}`
        : s.default !== undefined && s.default !== false
          ? `default ${defaultText(s)}`
          : "",
      s.env ? `env ${envNames(s).join(" or ")}` : "",
    ]
      .filter(Boolean)
      .join(", ");
    return [names, s.description + (extra ? ` (${extra})` : "")];
  });
  const width = Math.max(0, ...rows.map((r) => r[0]!.length));
  return rows.map(([a, b]) => `  ${a!.padEnd(width)}  ${b}`).join("\n");
}

/** A default as the user would type it: durations as durations (5s, not 5000), lists comma-joined. */
export function defaultText(s: FlagSpec, value = s.default): string {
  if (s.type === "duration" && typeof value === "number") return formatDuration(value);
  return Array.isArray(value) ? value.join(",") : String(value);
}

/** Milliseconds as the largest unit parseDuration reads back exactly: 5000 → 5s, 250 → 250ms, 120000 → 2m. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const)
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
