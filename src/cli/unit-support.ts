// Shared by the unit commands: fleetctl's unit-name mangling, reading and validating local unit files (with the
// instance → local template rule), globs over registry names, machine legends and --fields parsing.
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import { checkUnit } from "../agent/unit-check.ts";
import type { MachineInfo, UnitInfo } from "../client/protocol.ts";
import { globMatch } from "../unit/glob.ts";
import {
  parseUnitName,
  serializeUnitFile,
  templateOf,
  UNIT_TYPES,
  type UnitFile,
  UnitFileError,
  type UnitName,
  UnitNameError,
} from "../unit/unit-file.ts";
import { UsageError } from "./exit-codes.ts";
import type { Column } from "./output.ts";

/**
 * fleetctl's unitNameMangle + maybeAppendDefaultUnitType: the base name of the argument, with ".service"
 * appended when it has no known type suffix. Returns the unit name and the local path to look for.
 */
export function mangle(arg: string): { name: string; path: string } {
  if (arg === "") throw new UsageError("empty unit name");
  const known = UNIT_TYPES.some((t) => arg.endsWith(`.${t}`));
  const path = known ? arg : `${arg}.service`;
  return { name: basename(path), path };
}

/** Validates a unit name (usage error, exit 2, naming the argument). */
export function checkName(name: string): UnitName {
  try {
    return parseUnitName(name);
  } catch (err) {
    if (err instanceof UnitNameError) throw new UsageError(err.message);
    throw err;
  }
}

/** One verified unit file: the parse result and its warnings, or a message with file and line. */
export interface Verified {
  file: UnitFile;
  warnings: string[];
}

/**
 * Checks unit text with the agent's own code (agent/unit-check.ts): syntax, systemd's sections, keys and
 * specifiers, the settings the agent compiles and the [X-Fleet] options. Throws UsageError `DISPLAY:LINE: reason`
 * (or `DISPLAY: reason` when not tied to a line); warnings read `DISPLAY:LINE: warning: ...`.
 */
export function verifyText(text: string, unitName: string, display: string): Verified {
  const at = (line: number): string => (line > 0 ? `${display}:${line}` : display);
  try {
    // The machine is not known yet: a stand-in hostname and machine id only let %H and %m expand.
    const { file, warnings } = checkUnit(unitName, text, { hostname: hostname(), machineId: "0".repeat(32) });
    return { file, warnings: warnings.map((w) => `${at(w.line)}: warning: ${w.message}`) };
  } catch (err) {
    if (err instanceof UnitFileError) throw new UsageError(`${at(err.line)}: ${err.reason}`);
    if (err instanceof UnitNameError) throw new UsageError(`${display}: ${err.message}`);
    throw err;
  }
}

/** fleet's hash: SHA-1 of the canonical serialization, 40 hex. */
export function unitHash(file: UnitFile): string {
  return createHash("sha1").update(serializeUnitFile(file)).digest("hex");
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`);
  }
}

export interface LocalUnit {
  name: string;
  /** The file the text came from (the unit's own file, or the template next to it). */
  path: string;
  text: string;
  fromTemplate: boolean;
}

/**
 * The local text for a unit argument: its own file (the path as given), else — for an instance web@1.service —
 * web@.service in the same directory, sent under the instance's name. null when neither exists.
 */
export async function findLocal(arg: string): Promise<LocalUnit | null> {
  const { name, path } = mangle(arg);
  const parsed = checkName(name);
  if (await isFile(path)) return { name, path, text: await readText(path), fromTemplate: false };
  if (parsed.isInstance) {
    const tpl = join(dirname(path), templateOf(name));
    if (await isFile(tpl)) return { name, path: tpl, text: await readText(tpl), fromTemplate: true };
  }
  return null;
}

/** Validates a local unit and returns its hash. Errors name the file (and the instance, for a template). */
export function verifyLocal(local: LocalUnit): { hash: string; warnings: string[] } {
  const display = local.fromTemplate ? `${local.path} (as ${local.name})` : local.path;
  const v = verifyText(local.text, local.name, display);
  return { hash: unitHash(v.file), warnings: v.warnings };
}

// ---- globs -------------------------------------------------------------------------------------------------
// Matched by src/unit/glob.ts (Go's path.Match, as fleetctl and placement); checked here first so that a malformed
// pattern is a usage error rather than matching nothing.

export function hasGlob(s: string): boolean {
  return /[*?[]/.test(s);
}

/** Go path.Match syntax check: a `[` class must close and not be empty, `\` must escape something. */
export function checkGlob(p: string): void {
  const bad = (why: string): never => {
    throw new UsageError(`bad pattern ${JSON.stringify(p)}: ${why}`);
  };
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === "\\") {
      if (i + 1 >= p.length) bad("trailing backslash");
      i++;
    } else if (c === "[") {
      let j = i + 1;
      if (p[j] === "^" || p[j] === "!") j++;
      let n = 0;
      for (;;) {
        if (j >= p.length) bad('unterminated "["');
        if (p[j] === "]" && n > 0) break;
        if (p[j] === "\\") j++;
        if (p[j] === "-" && n === 0) bad('"-" at the start of a class');
        j++;
        n++;
      }
      i = j;
    }
  }
}

/**
 * Resolves arguments (names, mangled as fleetctl does, or globs, taken as they are) against the registry: the units
 * they name, and the arguments that name none (fleetctl skips those; the commands report them and go on).
 */
export function resolveKnown(args: string[], units: UnitInfo[]): { units: UnitInfo[]; missing: string[] } {
  const byName = new Map(units.map((u) => [u.name, u]));
  const picked = new Map<string, UnitInfo>();
  const missing: string[] = [];
  for (const arg of args) {
    if (hasGlob(arg)) {
      checkGlob(arg);
      const hits = units.filter((u) => globMatch(arg, u.name));
      if (hits.length === 0) missing.push(arg);
      for (const u of hits) picked.set(u.name, u);
      continue;
    }
    const { name } = mangle(arg);
    checkName(name);
    const u = byName.get(name);
    if (u) picked.set(name, u);
    else missing.push(name);
  }
  return { units: [...picked.values()], missing };
}

/** Filters rows by optional glob/name arguments (list commands). */
export function filterByArgs<T>(rows: T[], args: string[], nameOf: (r: T) => string): T[] {
  if (args.length === 0) return rows;
  const matchers = args.map((a): ((name: string) => boolean) => {
    if (hasGlob(a)) {
      checkGlob(a);
      return (name) => globMatch(a, name);
    }
    const exact = mangle(a).name;
    return (name) => name === exact;
  });
  return rows.filter((r) => matchers.some((m) => m(nameOf(r))));
}

// ---- machines ----------------------------------------------------------------------------------------------

/** fleet's machineFullLegend: `113f16a7.../172.17.8.103`, the full id with --full, `/ip` only when known. */
export function machineLegend(id: string, machines: Map<string, MachineInfo>, full = false): string {
  const m = machines.get(id);
  const short = full ? id : `${id.slice(0, 8)}...`;
  return m?.publicIp ? `${short}/${m.publicIp}` : short;
}

// ---- --fields ----------------------------------------------------------------------------------------------

/** Picks columns for --fields as fleetctl does (empty: "Must define output format", unknown key: error). */
export function pickColumns<T>(
  fields: string | undefined,
  defaults: string,
  all: Record<string, Column<T>>,
): { keys: string[]; columns: Column<T>[] } {
  const spec = fields ?? defaults;
  const keys = spec
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (keys.length === 0) throw new UsageError("Must define output format");
  for (const k of keys) {
    if (!(k in all))
      throw new UsageError(
        `Invalid key in output format: ${JSON.stringify(k)} (valid: ${Object.keys(all).sort().join(",")})`,
      );
  }
  return { keys, columns: keys.map((k) => all[k]!) };
}
