// Unit files: systemd.syntax(7) parsing, canonical serialization, unit names (systemd.unit(5)), specifiers, ExecStart
// command lines and fleet's [X-Fleet] options. Pure: no I/O, no clock.
//
// Parsing follows systemd's conf-parser.c: comment lines (`#`, `;`) are skipped even inside a continuation, a line
// ending in an odd number of backslashes continues onto the next one (the backslash becomes a space), a
// continuation still open at EOF is accepted (reported as a warning), repeated keys accumulate, `Key=` resets the
// list and repeated sections merge. Berth is stricter than systemd in one way: what systemd only logs and ignores
// (assignment outside a section, a line without `=`) is an error here, because a unit submitted to a cluster should
// not silently lose options.
import { globMatch } from "./glob.ts";
import type { XFleetOptions } from "./xfleet.ts";

// ---------------------------------------------------------------------------------------------------------------
// Errors

/** A unit file (or one of its values) is malformed. `line` is 1-based, or 0 when not tied to a line. */
export class UnitFileError extends Error {
  readonly line: number;
  readonly reason: string;
  readonly unitName: string | undefined;
  constructor(reason: string, line = 0, unitName?: string) {
    const where = [unitName, line > 0 ? String(line) : undefined].filter((p) => p !== undefined && p !== "");
    super(where.length > 0 ? `${where.join(":")}: ${reason}` : reason);
    this.name = "UnitFileError";
    this.line = line;
    this.reason = reason;
    this.unitName = unitName;
  }
}

/** A unit name breaks systemd's naming rules. */
export class UnitNameError extends Error {
  readonly unitName: string;
  readonly reason: string;
  constructor(unitName: string, reason: string) {
    super(`invalid unit name ${JSON.stringify(unitName)}: ${reason}`);
    this.name = "UnitNameError";
    this.unitName = unitName;
    this.reason = reason;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Model

/** One `Key=Value` assignment of a section, as written (an empty value is a reset). */
export interface UnitOption {
  section: string;
  key: string;
  value: string;
}

export interface UnitFile {
  /** Every assignment in file order, resets included: what `cat` prints and the hash covers (as fleet keeps it). */
  readonly options: readonly UnitOption[];
  /**
   * The effective values, derived from `options`: sections in first-seen order (a header without keys included),
   * each key's values in order after resets (a single-valued key uses the last one).
   */
  readonly sections: Map<string, Map<string, string[]>>;
  /** Where each assignment of `options` was written (1-based, parallel to it), when parsed from text. */
  readonly lines?: readonly number[];
  /** Where each section's first header was written, when parsed from text. */
  readonly sectionLines?: ReadonlyMap<string, number>;
}

export interface UnitFileWarning {
  line: number;
  message: string;
}

/**
 * A unit file from its assignments in order; `sectionNames` adds sections that have no assignment. `where` keeps
 * the source lines (of each option, of each section header) for messages.
 */
export function unitFile(
  options: UnitOption[],
  sectionNames: string[] = [],
  where: { lines?: readonly number[]; sectionLines?: ReadonlyMap<string, number> } = {},
): UnitFile {
  const sections = new Map<string, Map<string, string[]>>();
  for (const s of sectionNames) if (!sections.has(s)) sections.set(s, new Map());
  for (const { section, key, value } of options) {
    let keys = sections.get(section);
    if (!keys) {
      keys = new Map();
      sections.set(section, keys);
    }
    addValue(keys, key, value);
  }
  return { options, sections, ...where };
}

/**
 * The source line of a key's effective (last) assignment (with `value`: the last one with that value), else of
 * the section's header; 0 when the file was not parsed from text or has neither.
 */
export function lineOf(file: UnitFile, section: string, key?: string, value?: string): number {
  if (key !== undefined && file.lines !== undefined) {
    for (let i = file.options.length - 1; i >= 0; i--) {
      const o = file.options[i]!;
      if (o.section === section && o.key === key && (value === undefined || o.value === value))
        return file.lines[i] ?? 0;
    }
  }
  return file.sectionLines?.get(section) ?? 0;
}

/** The effective value of a single-valued key: the last assignment, as systemd does. */
export function get(file: UnitFile, section: string, key: string): string | undefined {
  const values = file.sections.get(section)?.get(key);
  return values === undefined ? undefined : values[values.length - 1];
}

export function getAll(file: UnitFile, section: string, key: string): string[] {
  return [...(file.sections.get(section)?.get(key) ?? [])];
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing

// Section and key names: systemd has no formal grammar; this keeps to what real unit files use and keeps
// brackets, `=`, whitespace and control characters out so the canonical form always parses back.
const NAME_RE = /^[A-Za-z0-9_.:-]+$/;
const COMMENT_CHARS = "#;";

/** systemd's WHITESPACE for strstrip is " \t\n\r"; JS trim() would also eat NBSP and friends. */
function strip(s: string): string {
  return s.replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, "");
}

function isCommentLine(raw: string): boolean {
  const l = raw.replace(/^[ \t\n\r]+/, "");
  return l.length > 0 && COMMENT_CHARS.includes(l[0]!);
}

/** True when the line ends in an unescaped backslash (an odd run of trailing backslashes). */
function endsInContinuation(s: string): boolean {
  let n = 0;
  for (let i = s.length - 1; i >= 0 && s[i] === "\\"; i--) n++;
  return n % 2 === 1;
}

interface LogicalLine {
  text: string;
  line: number;
}

/** Joins continuations; comment lines inside a continuation are dropped, as systemd does. */
function logicalLines(text: string, warnings: UnitFileWarning[]): LogicalLine[] {
  const raw = text.replace(/^\uFEFF/, "").split(/\r\n|\r|\n/);
  // A final line break ends the last line; it does not start an empty one (which would close a continuation).
  if (raw.length > 1 && raw[raw.length - 1] === "") raw.pop();
  const out: LogicalLine[] = [];
  let pending: LogicalLine | null = null;
  raw.forEach((l, i) => {
    if (isCommentLine(l)) return;
    const joined: LogicalLine = pending
      ? { text: pending.text + l, line: pending.line }
      : { text: l, line: i + 1 };
    if (endsInContinuation(joined.text)) {
      pending = { text: `${joined.text.slice(0, -1)} `, line: joined.line };
      return;
    }
    pending = null;
    out.push(joined);
  });
  if (pending !== null) {
    const p: LogicalLine = pending;
    warnings.push({ line: p.line, message: "line continuation still open at end of file" });
    out.push(p);
  }
  return out;
}

function addValue(section: Map<string, string[]>, key: string, value: string): void {
  const values = section.get(key) ?? [];
  // An empty assignment resets the list (ExecStartPre=, Conflicts=, ...), as systemd does.
  if (value === "") values.length = 0;
  else values.push(value);
  section.set(key, values);
}

function parseSectionHeader(l: string, fail: (reason: string) => never): string {
  if (!l.endsWith("]") || l.length < 2) fail(`malformed section header ${JSON.stringify(l)}`);
  const name = l.slice(1, -1);
  if (name === "") fail("empty section name");
  if (!NAME_RE.test(name)) fail(`invalid character in section name ${JSON.stringify(name)}`);
  return name;
}

/** Parses a unit file, returning warnings (systemd-tolerated oddities) alongside it. */
export function parseUnitFileWithWarnings(
  text: string,
  name?: string,
): { file: UnitFile; warnings: UnitFileWarning[] } {
  const warnings: UnitFileWarning[] = [];
  const options: UnitOption[] = [];
  const lines: number[] = [];
  const sectionNames: string[] = [];
  const sectionLines = new Map<string, number>();
  let current: string | null = null;
  for (const { text: rawLine, line } of logicalLines(text, warnings)) {
    const fail = (reason: string): never => {
      throw new UnitFileError(reason, line, name);
    };
    const l = strip(rawLine);
    if (l === "" || COMMENT_CHARS.includes(l[0]!)) continue;
    if (l.startsWith("[")) {
      current = parseSectionHeader(l, fail);
      sectionNames.push(current);
      if (!sectionLines.has(current)) sectionLines.set(current, line);
      continue;
    }
    const eq = l.indexOf("=");
    if (eq < 0) fail(`missing "=" in ${JSON.stringify(l)}`);
    const key = strip(l.slice(0, eq));
    if (key === "") fail('empty key before "="');
    if (!NAME_RE.test(key)) fail(`invalid character in key ${JSON.stringify(key)}`);
    if (current === null) fail(`key ${JSON.stringify(key)} outside of any section`);
    options.push({ section: current!, key, value: strip(l.slice(eq + 1)) });
    lines.push(line);
  }
  return { file: unitFile(options, sectionNames, { lines, sectionLines }), warnings };
}

export function parseUnitFile(text: string, name?: string): UnitFile {
  return parseUnitFileWithWarnings(text, name).file;
}

// ---------------------------------------------------------------------------------------------------------------
// Serialization

function checkSerializable(section: string, key: string, value: string): void {
  const bad = (why: string): never => {
    throw new UnitFileError(`cannot serialize ${section}.${key}=${JSON.stringify(value)}: ${why}`);
  };
  if (/[\r\n]/.test(value)) bad("value contains a line break");
  if (strip(value) !== value) bad("value has leading or trailing whitespace");
  // A trailing odd backslash would turn into a continuation; systemd's syntax has no way to escape it.
  if (endsInContinuation(value)) bad("value ends in a backslash");
}

/**
 * Canonical form, after the go-systemd unit.Serialize fleet uses (what it hashes and `fleetctl cat` prints): the
 * assignments in file order, `Key=Value` each (a reset as `Key=`), a `[Section]` header wherever the section
 * changes and a blank line before each header but the first. Comments, blank lines, continuations and sections
 * without assignments do not survive.
 */
export function serializeUnitFile(file: UnitFile): string {
  const lines: string[] = [];
  let current: string | null = null;
  for (const { section, key, value } of file.options) {
    if (section !== current) {
      if (!NAME_RE.test(section))
        throw new UnitFileError(`cannot serialize section name ${JSON.stringify(section)}`);
      if (current !== null) lines.push("");
      lines.push(`[${section}]`);
      current = section;
    }
    if (!NAME_RE.test(key)) throw new UnitFileError(`cannot serialize key ${JSON.stringify(key)}`);
    if (value !== "") checkSerializable(section, key, value);
    lines.push(`${key}=${value}`);
  }
  return lines.length > 0 ? `${lines.join("\n")}\n` : "";
}

// ---------------------------------------------------------------------------------------------------------------
// Command lines (ExecStart= and friends)

const SIMPLE_ESCAPES: Record<string, string> = {
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  s: " ",
  "\\": "\\",
  '"': '"',
  "'": "'",
};

/** One C-style escape after a backslash at s[i] (systemd's cunescape_one); returns the text and the next index. */
function unescapeAt(s: string, i: number, fail: (reason: string) => never): [string, number] {
  const c = s[i + 1];
  if (c === undefined) fail("trailing backslash");
  const simple = SIMPLE_ESCAPES[c!];
  if (simple !== undefined) return [simple, i + 2];
  const hexOf = (len: number, base: number, re: RegExp): [string, number] => {
    const digits = s.slice(i + 2, i + 2 + len);
    if (digits.length !== len || !re.test(digits)) fail(`invalid escape "\\${c}${digits}"`);
    const code = Number.parseInt(digits, base);
    if (code === 0 || code > 0x10ffff) fail(`escape "\\${c}${digits}" out of range`);
    return [String.fromCodePoint(code), i + 2 + len];
  };
  if (c === "x") return hexOf(2, 16, /^[0-9a-fA-F]+$/);
  if (c === "u") return hexOf(4, 16, /^[0-9a-fA-F]+$/);
  if (c === "U") return hexOf(8, 16, /^[0-9a-fA-F]+$/);
  if (c !== undefined && c >= "0" && c <= "7") {
    const digits = s.slice(i + 1, i + 4);
    if (!/^[0-7]{3}$/.test(digits)) fail(`invalid octal escape "\\${digits}"`);
    const code = Number.parseInt(digits, 8);
    if (code === 0) fail('escape "\\000" is not allowed');
    return [String.fromCodePoint(code), i + 4];
  }
  return fail(`unknown escape "\\${c}"`);
}

/**
 * Splits a command line into words with systemd's rules (extract_first_word with UNQUOTE|CUNESCAPE): words are
 * separated by whitespace; double or single quotes group, may sit inside a word (`a"b c"` → `ab c`) and may be
 * empty (`""` is an empty word); backslash escapes (\" \\ \n \t \s \xNN \NNN \uXXXX ...) apply inside and outside
 * quotes. Unbalanced quotes, unknown escapes and a trailing backslash throw a UnitFileError.
 */
export function splitCommandLine(value: string): string[] {
  const fail = (reason: string): never => {
    throw new UnitFileError(`${reason} in command line ${JSON.stringify(value)}`);
  };
  const words: string[] = [];
  let word: string | null = null; // null = between words
  let quote: '"' | "'" | null = null;
  let i = 0;
  while (i < value.length) {
    const c = value[i]!;
    if (c === "\\") {
      const [text, next] = unescapeAt(value, i, fail);
      word = (word ?? "") + text;
      i = next;
      continue;
    }
    if (quote !== null) {
      if (c === quote) quote = null;
      else word = (word ?? "") + c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word = word ?? "";
    } else if (" \t\n\r".includes(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? "") + c;
    }
    i++;
  }
  if (quote !== null) fail(`unbalanced ${quote === '"' ? "double" : "single"} quote`);
  if (word !== null) words.push(word);
  return words;
}

/** An Exec*= line with its systemd prefixes decoded (systemd.service(5), "Command lines"). */
export interface ExecCommand {
  /** `-`: a non-zero exit (or failure to start) is not a failure. */
  ignoreFailure: boolean;
  /** `@`: the second word is passed as argv[0] instead of the path. */
  separateArgv0: boolean;
  /** `+`: run with full privileges (User=, sandboxing, ... not applied). */
  fullPrivileges: boolean;
  /** `!`: run with elevated privileges, without User=/Group= credential changes. */
  noCredentialChange: boolean;
  /** `!!`: like `!` but only on systems without ambient capabilities. */
  ambientFallback: boolean;
  /** `:`: no environment variable substitution. */
  noEnvExpansion: boolean;
  /** The executable. */
  path: string;
  /** The argument vector, argv[0] included. */
  argv: string[];
}

/** Decodes the prefixes of an Exec*= value (raw string, or words already split with splitCommandLine). */
export function parsePrefixes(cmd: string | string[]): ExecCommand {
  const words = typeof cmd === "string" ? splitCommandLine(cmd) : [...cmd];
  const fail = (reason: string): never => {
    throw new UnitFileError(`${reason} in command ${JSON.stringify(words.join(" "))}`);
  };
  const first = words[0];
  if (first === undefined) return fail("empty command");
  const out: ExecCommand = {
    ignoreFailure: false,
    separateArgv0: false,
    fullPrivileges: false,
    noCredentialChange: false,
    ambientFallback: false,
    noEnvExpansion: false,
    path: "",
    argv: [],
  };
  // Each prefix may appear once; "!!" is one prefix, not two "!".
  const set = (
    flag:
      | "ignoreFailure"
      | "separateArgv0"
      | "noEnvExpansion"
      | "fullPrivileges"
      | "noCredentialChange"
      | "ambientFallback",
    p: string,
  ): void => {
    if (out[flag]) fail(`prefix "${p}" given twice`);
    out[flag] = true;
  };
  const PREFIX_FLAGS = {
    "-": "ignoreFailure",
    "@": "separateArgv0",
    ":": "noEnvExpansion",
    "+": "fullPrivileges",
  } as const;
  let i = 0;
  for (; i < first.length; i++) {
    const c = first[i]!;
    if (c in PREFIX_FLAGS) set(PREFIX_FLAGS[c as keyof typeof PREFIX_FLAGS], c);
    else if (c === "!" && first[i + 1] === "!") {
      set("ambientFallback", "!!");
      i++;
    } else if (c === "!") set("noCredentialChange", c);
    else break;
  }
  const privileged = [out.fullPrivileges, out.noCredentialChange, out.ambientFallback].filter(Boolean).length;
  if (privileged > 1) fail('prefixes "+", "!" and "!!" exclude each other');
  out.path = first.slice(i);
  if (out.path === "") fail("missing executable after prefixes");
  const rest = words.slice(1);
  if (out.separateArgv0) {
    if (rest.length === 0) fail('prefix "@" needs an argv[0] after the executable');
    out.argv = rest;
  } else {
    out.argv = [out.path, ...rest];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Unit names

/** Every type fleet accepts by name; unit-check.ts refuses at submit the ones Berth cannot run (REFUSED_TYPES). */
export const UNIT_TYPES = [
  "service",
  "socket",
  "timer",
  "target",
  "path",
  "mount",
  "automount",
  "busname",
  "device",
  "scope",
  "slice",
  "snapshot",
  "swap",
] as const;
export type UnitType = (typeof UNIT_TYPES)[number];
/** Types that may be templated (fleet and systemd: not mount). */
const TEMPLATABLE: ReadonlySet<UnitType> = new Set(["service", "socket", "timer", "target", "path"]);
export const UNIT_NAME_MAX = 255;
const VALID_CHARS_RE = /^[A-Za-z0-9:_.\\-]+$/;
const INSTANCE_CHARS_RE = /^[A-Za-z0-9:_.\\@-]*$/;

export interface UnitName {
  /** Text before `@` (or before the suffix when there is no `@`). */
  prefix: string;
  /** Text between the first `@` and the suffix: "" for a template, null for a plain unit. */
  instance: string | null;
  type: UnitType;
  isTemplate: boolean;
  isInstance: boolean;
}

function isUnitType(s: string): s is UnitType {
  return (UNIT_TYPES as readonly string[]).includes(s);
}

/** Validates a unit name as systemd's unit_name_is_valid does (restricted to Berth's unit types). */
export function parseUnitName(name: string): UnitName {
  const fail = (reason: string): never => {
    throw new UnitNameError(name, reason);
  };
  if (name === "") fail("empty name");
  if (name.length > UNIT_NAME_MAX) fail(`longer than ${UNIT_NAME_MAX} characters`);
  const dot = name.lastIndexOf(".");
  if (dot <= 0) fail(`missing type suffix (one of .${UNIT_TYPES.join(", .")})`);
  const suffix = name.slice(dot + 1);
  if (!isUnitType(suffix)) fail(`unknown type suffix ".${suffix}" (known: .${UNIT_TYPES.join(", .")})`);
  const type = suffix as UnitType;
  const stem = name.slice(0, dot);
  const at = stem.indexOf("@");
  const prefix = at < 0 ? stem : stem.slice(0, at);
  if (prefix === "") fail('empty prefix before "@"');
  if (!VALID_CHARS_RE.test(prefix))
    fail(`invalid character in ${JSON.stringify(prefix)} (allowed: A-Z a-z 0-9 : _ . \\ -)`);
  if (at < 0) return { prefix, instance: null, type, isTemplate: false, isInstance: false };
  const instance = stem.slice(at + 1);
  if (!INSTANCE_CHARS_RE.test(instance)) {
    fail(`invalid character in instance ${JSON.stringify(instance)} (allowed: A-Z a-z 0-9 : _ . \\ - @)`);
  }
  if (!TEMPLATABLE.has(type)) fail(`.${type} units cannot be templates or instances`);
  return { prefix, instance, type, isTemplate: instance === "", isInstance: instance !== "" };
}

export function isValidUnitName(name: string): boolean {
  try {
    parseUnitName(name);
    return true;
  } catch {
    return false;
  }
}

/** "web@1.service" → "web@.service"; a template is returned as is; a plain unit has no template (throws). */
export function templateOf(name: string): string {
  const u = parseUnitName(name);
  if (u.instance === null) throw new UnitNameError(name, 'not a template instance (no "@")');
  return `${u.prefix}@.${u.type}`;
}

/** ("web@.service", "1") → "web@1.service". */
export function instanceName(template: string, instance: string): string {
  const u = parseUnitName(template);
  if (!u.isTemplate) throw new UnitNameError(template, "not a template (expected prefix@.type)");
  if (instance === "") throw new UnitNameError(template, "empty instance");
  const name = `${u.prefix}@${instance}.${u.type}`;
  parseUnitName(name);
  return name;
}

// ---------------------------------------------------------------------------------------------------------------
// Specifiers

export interface SpecifierContext {
  unitName: string;
  hostname?: string;
  machineId?: string;
  /**
   * The other values systemd takes from the machine and its service manager, by specifier letter (%s the
   * manager's user's shell, %b the boot id, %t /run, ...: HOST_SPECIFIERS). The agent fills them from the machine
   * it runs on; a specifier whose value is missing is an error.
   */
  host?: Readonly<Record<string, string>>;
}

/** Specifiers systemd takes from the machine or the service manager rather than from the unit's name. */
export const HOST_SPECIFIERS = "abghlmoqstuvwABCEGHLMSTUVW";
/** Specifiers systemd knows that Berth cannot give a value: the unit file's path, the deprecated cgroup paths. */
const UNSUPPORTED_SPECIFIERS: Record<string, string> = {
  y: "the unit file's path",
  Y: "the unit file's directory",
  c: "the unit's cgroup path (deprecated in systemd)",
  r: "the slice's cgroup path (deprecated in systemd)",
  R: "the root cgroup path (deprecated in systemd)",
};
const NAME_SPECIFIERS = "nNpPiIjJfd";
/** Every specifier letter Berth knows: systemd's (src/unit/systemd-keys.ts, checked by a test), `%` included. */
export const KNOWN_SPECIFIERS = `${NAME_SPECIFIERS}${HOST_SPECIFIERS}${Object.keys(UNSUPPORTED_SPECIFIERS).join("")}%`;

/** systemd's unit_name_unescape: `-` → `/`, `\xNN` → byte (bytes decoded as UTF-8). */
export function unescapeUnitNamePart(s: string): string {
  const bytes: number[] = [];
  const enc = new TextEncoder();
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "-") bytes.push(0x2f);
    else if (c === "\\") {
      const hex = s.slice(i + 1, i + 4);
      if (!/^x[0-9a-fA-F]{2}$/.test(hex))
        throw new UnitNameError(s, `invalid escape at ${JSON.stringify(s.slice(i))}`);
      bytes.push(Number.parseInt(hex.slice(1), 16));
      i += 3;
    } else bytes.push(...enc.encode(c));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** The text of one specifier, or undefined when systemd does not know the letter (systemd.unit(5), "Specifiers"). */
function specifierValue(spec: string, ctx: SpecifierContext): string | undefined {
  const name = ctx.unitName;
  const prefix = (): string => parseUnitName(name).prefix;
  // %j: the prefix's last dash-separated component, as systemd's specifier_last_component.
  const lastComponent = (): string => prefix().slice(prefix().lastIndexOf("-") + 1);
  switch (spec) {
    case "n":
      return parseUnitName(name) && name;
    case "N":
      return parseUnitName(name) && name.slice(0, name.lastIndexOf("."));
    case "p":
      return prefix();
    case "P":
      return unescapeUnitNamePart(prefix());
    case "i":
      return parseUnitName(name).instance ?? "";
    case "I":
      return unescapeUnitNamePart(parseUnitName(name).instance ?? "");
    case "j":
      return lastComponent();
    case "J":
      return unescapeUnitNamePart(lastComponent());
    case "f": {
      // systemd's specifier_filename: the unescaped instance (or prefix), as an absolute path.
      const u = parseUnitName(name);
      const p = unescapeUnitNamePart(u.instance || u.prefix);
      return p.startsWith("/") ? p : `/${p}`;
    }
    case "d":
      return `/run/credentials/${name}`;
    case "%":
      return "%";
  }
  const unsupported = UNSUPPORTED_SPECIFIERS[spec];
  if (unsupported !== undefined)
    throw new UnitFileError(`specifier "%${spec}" (${unsupported}) is not supported`);
  if (!HOST_SPECIFIERS.includes(spec)) return undefined;
  const value = spec === "H" ? ctx.hostname : spec === "m" ? ctx.machineId : ctx.host?.[spec];
  if (value === undefined) throw new UnitFileError(`specifier "%${spec}" needs a value not known here`);
  return value;
}

/**
 * Expands systemd's specifiers (%n %i %H %s %t ... %%) in a value. An unknown specifier throws; a lone `%` at the
 * very end stays literal, as systemd's specifier_printf leaves it.
 */
export function expandSpecifiers(value: string, ctx: SpecifierContext): string {
  if (!value.includes("%")) return value;
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c !== "%" || i === value.length - 1) {
      out += c;
      continue;
    }
    const spec = value[++i]!;
    let text: string | undefined;
    try {
      text = specifierValue(spec, ctx);
    } catch (e) {
      if (e instanceof UnitNameError) throw new UnitFileError(e.message);
      if (e instanceof UnitFileError) throw new UnitFileError(`${e.reason} in ${JSON.stringify(value)}`);
      throw e;
    }
    if (text === undefined) {
      throw new UnitFileError(
        `unknown specifier "%${spec}" in ${JSON.stringify(value)} (write "%%" for a literal "%")`,
      );
    }
    out += text;
  }
  return out;
}

/** A copy of the file with specifiers expanded in every value (for an instance of a template). */
export function expandUnitFile(file: UnitFile, ctx: SpecifierContext): UnitFile {
  return unitFile(
    file.options.map((o) => ({ ...o, value: expandSpecifiers(o.value, ctx) })),
    [...file.sections.keys()],
    { lines: file.lines, sectionLines: file.sectionLines },
  );
}

// ---------------------------------------------------------------------------------------------------------------
// [X-Fleet]

export const XFLEET_SECTION = "X-Fleet";
export const XFLEET_KEYS = [
  "MachineID",
  "MachineOf",
  "MachineMetadata",
  "Conflicts",
  "Global",
  "Replaces",
] as const;
type XFleetKey = (typeof XFLEET_KEYS)[number];
/** fleet ≤0.8 spellings, still accepted by fleet 1.0. */
const XFLEET_ALIASES: Record<string, XFleetKey> = {
  "X-ConditionMachineID": "MachineID",
  "X-ConditionMachineOf": "MachineOf",
  "X-ConditionMachineMetadata": "MachineMetadata",
  "X-Conflicts": "Conflicts",
};

/**
 * fleet's unit.parseMultivalueLine: a value that starts and ends with `"` holds several space-separated values,
 * each possibly quoted (`"region=us-east" "disk=ssd"`); any other value is one value.
 */
export function splitFleetMultivalue(value: string): string[] {
  if (!(value.length >= 2 && value.startsWith('"') && value.endsWith('"'))) return [value];
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  for (const c of value) {
    if (c === '"') quoted = !quoted;
    else if (c === " " && !quoted) {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out.filter((v) => v !== "");
}

const TRUE_WORDS = new Set(["1", "yes", "y", "true", "t", "on"]);
const FALSE_WORDS = new Set(["0", "no", "n", "false", "f", "off"]);

/** systemd's parse_boolean (case-insensitive). */
export function parseBoolean(value: string): boolean | undefined {
  const v = value.toLowerCase();
  if (TRUE_WORDS.has(v)) return true;
  if (FALSE_WORDS.has(v)) return false;
  return undefined;
}

/** Collects the X-Fleet values per canonical key, aliases folded in, specifiers expanded. */
function collectXFleet(
  file: UnitFile,
  ctx: SpecifierContext,
  fail: (r: string, key?: string) => never,
): Map<XFleetKey, string[]> {
  const out = new Map<XFleetKey, string[]>(XFLEET_KEYS.map((k) => [k, []]));
  for (const [rawKey, values] of file.sections.get(XFLEET_SECTION) ?? []) {
    const key = (XFLEET_KEYS as readonly string[]).includes(rawKey)
      ? (rawKey as XFleetKey)
      : XFLEET_ALIASES[rawKey];
    if (key === undefined) fail(`unknown key "${rawKey}" (known: ${XFLEET_KEYS.join(", ")})`, rawKey);
    const list = out.get(key!)!;
    for (const v of values) {
      for (const part of splitFleetMultivalue(v)) {
        try {
          list.push(expandSpecifiers(part, ctx));
        } catch (e) {
          if (e instanceof UnitFileError) fail(`${rawKey}=: ${e.reason}`, rawKey);
          throw e;
        }
      }
    }
  }
  return out;
}

/** Whitespace-separated lists (Conflicts=, Replaces=), as fleet's splitCombine; duplicates dropped. */
function splitWords(values: string[]): string[] {
  return [...new Set(values.flatMap((v) => v.split(/\s+/)).filter((v) => v !== ""))];
}

function parseMetadata(values: string[], fail: (r: string, key?: string) => never): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const pair of values) {
    const eq = pair.indexOf("=");
    const k = eq < 0 ? "" : pair.slice(0, eq);
    const v = eq < 0 ? "" : pair.slice(eq + 1);
    if (k === "" || v === "")
      fail(`MachineMetadata value ${JSON.stringify(pair)} is not key=value`, "MachineMetadata");
    const list = out[k] ?? [];
    if (!list.includes(v)) list.push(v);
    out[k] = list;
  }
  return out;
}

function parseGlobal(values: string[], fail: (r: string, key?: string) => never): boolean {
  const last = values[values.length - 1];
  if (last === undefined) return false;
  const b = parseBoolean(last);
  if (b === undefined)
    fail(`Global=${JSON.stringify(last)} is not a boolean (yes/no, true/false, 1/0, on/off)`, "Global");
  return b!;
}

/** fleet's ValidateOptions: combinations the scheduler cannot honour. */
function validateXFleet(x: XFleetOptions, fail: (r: string, key?: string) => never): void {
  const has = {
    MachineID: x.machineId !== undefined,
    MachineOf: x.machineOf.length > 0,
    MachineMetadata: Object.keys(x.machineMetadata).length > 0,
    Conflicts: x.conflicts.length > 0,
    Replaces: x.replaces.length > 0,
  };
  for (const other of ["MachineOf", "MachineMetadata", "Conflicts", "Replaces"] as const) {
    if (has.MachineID && has[other]) fail(`MachineID cannot be combined with ${other}`, other);
  }
  if (x.global) {
    for (const other of ["MachineID", "MachineOf", "Replaces"] as const) {
      if (has[other])
        fail(`Global=true can only be combined with MachineMetadata and Conflicts, not ${other}`, other);
    }
  }
  if (has.Conflicts && has.Replaces) fail("Conflicts cannot be combined with Replaces", "Replaces");
  for (const peer of x.machineOf) {
    const glob = [...x.conflicts, ...x.replaces].find((g) => globMatch(g, peer));
    if (glob !== undefined) {
      fail(
        `unresolvable requirements: MachineOf=${peer} matches the unit's own Conflicts/Replaces "${glob}"`,
        "MachineOf",
      );
    }
  }
}

/**
 * The unit's placement options from its [X-Fleet] section, with specifiers expanded against ctx (so an
 * instance web@2.service with MachineOf=db@%i.service gets db@2.service). Throws UnitFileError on unknown keys,
 * malformed values and combinations fleet refuses.
 */
export function xfleetOf(file: UnitFile, ctx: SpecifierContext): XFleetOptions {
  // The line of the key named (an alias's spelling included), else of the [X-Fleet] header.
  const fail = (reason: string, key?: string): never => {
    const spellings = Object.entries(XFLEET_ALIASES)
      .filter(([, k]) => k === key)
      .map(([alias]) => alias);
    const line = Math.max(...[key, ...spellings].map((k) => lineOf(file, XFLEET_SECTION, k)));
    throw new UnitFileError(`[X-Fleet] ${reason}`, line, ctx.unitName);
  };
  const raw = collectXFleet(file, ctx, fail);
  const machineIds = [
    ...new Set(
      raw
        .get("MachineID")!
        .map(strip)
        .filter((v) => v !== ""),
    ),
  ];
  if (machineIds.length > 1)
    fail(`MachineID given several different values (${machineIds.join(", ")})`, "MachineID");
  const x: XFleetOptions = {
    machineOf: [
      ...new Set(
        raw
          .get("MachineOf")!
          .map(strip)
          .filter((v) => v !== ""),
      ),
    ],
    machineMetadata: parseMetadata(raw.get("MachineMetadata")!, fail),
    conflicts: splitWords(raw.get("Conflicts")!),
    global: parseGlobal(raw.get("Global")!, fail),
    replaces: splitWords(raw.get("Replaces")!),
  };
  if (machineIds[0] !== undefined) x.machineId = machineIds[0];
  validateXFleet(x, fail);
  return x;
}
