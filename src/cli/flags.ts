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
 * `--name value`, `--no-name` for booleans, and `--` to end flags. Unknown flags are errors.
 */
export function parseArgs(argv: string[], specs: FlagSpec[], command: string): Parsed {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) {
    byName.set(s.name, s);
    if (s.short) byName.set(s.short, s);
  }
  const flags: FlagValues = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-" || /^-\d/.test(arg)) {
      positionals.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    let name = eq >= 0 ? body.slice(0, eq) : body;
    let inline: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
    let spec = byName.get(name);
    if (!spec && name.startsWith("no-") && byName.get(name.slice(3))?.type === "boolean") {
      spec = byName.get(name.slice(3));
      name = spec!.name;
      if (inline !== undefined) throw new UsageError(`--${body} takes no value`);
      inline = "false";
    }
    if (!spec) throw new UsageError(`unknown flag ${arg} for \`${command}\` (see \`${command} --help\`)`);
    let raw: string;
    if (spec.type === "boolean") {
      raw = inline ?? "true";
    } else if (inline !== undefined) {
      raw = inline;
    } else {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`flag --${spec.name} needs a value`);
      raw = next;
      i++;
    }
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
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!m) throw new UsageError(`${source} must be a duration like 5s, 250ms or 2m, not "${raw}"`);
  const n = Number(m[1]);
  const unit = m[2] ?? "s";
  return n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit]!;
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
