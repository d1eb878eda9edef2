// The seed's user-data for Berth: a `#cloud-config` file whose `berth:` section configures this machine's node (the
// keys are `berth node`'s flag names) and lists cluster units to submit and start once the cluster is up. Other
// top-level keys belong to cloud-init (hostname, users, write_files, coreos...) and are left to it. Berth checks
// its own section fully, every problem with its line, since `cloud-init schema` accepts anything under a key it
// does not know.
import { hostname } from "node:os";
import { checkUnit } from "../agent/unit-check.ts";
import { canonicalUnit } from "../sched/catalog.ts";
import { parseUnitName, UnitFileError, UnitNameError } from "../unit/unit-file.ts";
import { parseYaml, type YamlEntry, YamlError, type YamlNode } from "./yaml-lines.ts";

/** The node flags the berth section may set (their names and types), handed in by the caller. */
export interface FlagKinds {
  get(name: string): "string" | "number" | "boolean" | "duration" | "list" | undefined;
}

export type UnitCommand = "submit" | "load" | "start";

/** A cluster unit from the file: submitted when the cluster has none of its name, then brought to `command`. */
export interface CloudUnit {
  name: string;
  /** The unit file; absent for an instance of a template (the cluster's template is used). */
  text?: string;
  /** fleet's hash of `text`, to compare with the registry's copy. */
  hash?: string;
  command: UnitCommand;
  line: number;
}

export interface CloudConfig {
  /** Node flag values, as a --config file gives them (booleans as booleans, metadata as k=v,...). */
  node: Record<string, string | number | boolean>;
  units: CloudUnit[];
  warnings: string[];
}

/** Every problem of the file, each `FILE:LINE: reason`. */
export class CloudConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
  }
}

/** Not settable from the file: --config would nest files, --cloud-config itself. */
const NOT_IN_FILE = new Set(["config", "cloud-config"]);
const UNIT_KEYS = new Set(["name", "content", "command"]);
const COMMANDS: UnitCommand[] = ["submit", "load", "start"];

export function parseCloudConfig(text: string, file: string, flags: FlagKinds): CloudConfig {
  const problems: string[] = [];
  const at = (line: number, reason: string) => problems.push(`${file}:${line}: ${reason}`);
  const out: CloudConfig = { node: {}, units: [], warnings: [] };
  if (!/^#cloud-config[ \t]*(\r?\n|$)/.test(text)) {
    at(1, 'a cloud-config starts with the line "#cloud-config" (cloud-init ignores the file otherwise)');
    throw new CloudConfigError(problems);
  }
  let root: YamlNode;
  try {
    root = parseYaml(text);
  } catch (err) {
    if (!(err instanceof YamlError)) throw err;
    at(err.line, err.reason);
    throw new CloudConfigError(problems);
  }
  if (root.kind !== "map") {
    at(root.line, "the file must be a mapping of keys (berth:, hostname:, ...)");
    throw new CloudConfigError(problems);
  }
  const berth = root.entries.find((e) => e.key === "berth");
  if (!berth) {
    out.warnings.push(`${file}: no berth: section; nothing for Berth to do`);
    return out;
  }
  if (berth.value.kind !== "map") {
    at(berth.line, "berth: must be a mapping (name:, discovery:, units:, ...)");
    throw new CloudConfigError(problems);
  }
  for (const e of berth.value.entries) {
    if (e.key === "units") out.units = readUnits(e, at);
    else if (e.key === "metadata") {
      const v = metadataOf(e, at);
      if (v !== null) out.node.metadata = v;
    } else {
      const type = NOT_IN_FILE.has(e.key) ? undefined : flags.get(e.key);
      if (type === undefined) {
        at(
          e.line,
          `unknown key "${e.key}" in berth: (keys are \`berth node\` flag names, e.g. peer-addr, or units)`,
        );
        continue;
      }
      const v = flagValue(e, type, at);
      if (v !== null) out.node[e.key] = v;
    }
  }
  if (problems.length > 0) throw new CloudConfigError(problems);
  return out;
}

function flagValue(
  e: YamlEntry,
  type: string,
  at: (line: number, reason: string) => void,
): string | number | boolean | null {
  if (e.value.kind !== "scalar") {
    at(e.line, `${e.key}: must be a single value, not a ${e.value.kind === "map" ? "mapping" : "list"}`);
    return null;
  }
  const raw = e.value.value;
  if (type === "boolean") {
    if (e.value.quoted || !/^(true|false)$/.test(raw)) {
      at(e.line, `${e.key}: must be true or false, not "${raw}"`);
      return null;
    }
    return raw === "true";
  }
  if (raw === "") {
    at(e.line, `${e.key}: has no value`);
    return null;
  }
  if (type === "number") {
    const n = Number(raw);
    if (!Number.isFinite(n)) {
      at(e.line, `${e.key}: must be a number, not "${raw}"`);
      return null;
    }
    return n;
  }
  return raw;
}

/** metadata: a mapping (role: web) or the flag's own k=v,k=v form. */
function metadataOf(e: YamlEntry, at: (line: number, reason: string) => void): string | null {
  if (e.value.kind === "scalar") return e.value.value;
  if (e.value.kind !== "map") {
    at(e.line, "metadata: must be a mapping (role: web) or k=v,k=v");
    return null;
  }
  const parts: string[] = [];
  for (const m of e.value.entries) {
    if (m.value.kind !== "scalar" || m.value.value === "" || /[,=]/.test(m.value.value) || /[,=]/.test(m.key))
      at(m.line, `metadata ${m.key}: must be one value without "," or "="`);
    else parts.push(`${m.key}=${m.value.value}`);
  }
  return parts.join(",");
}

function readUnits(e: YamlEntry, at: (line: number, reason: string) => void): CloudUnit[] {
  if (e.value.kind !== "seq") {
    at(e.line, "units: must be a list of units (- name: ..., content: |, command: start)");
    return [];
  }
  const units: CloudUnit[] = [];
  for (const item of e.value.items) {
    if (item.kind !== "map") {
      at(item.line, "each unit must be a mapping with name:, content: and command:");
      continue;
    }
    const get = (k: string) => item.entries.find((x) => x.key === k);
    for (const x of item.entries)
      if (!UNIT_KEYS.has(x.key))
        at(
          x.line,
          `unknown unit key "${x.key}" (Berth's units are cluster units: name, content, command; ` +
            "a machine's own systemd units go under cloud-init's keys)",
        );
    const nameEntry = get("name");
    if (nameEntry?.value.kind !== "scalar" || nameEntry.value.value === "") {
      at(item.line, "a unit needs name:");
      continue;
    }
    const name = nameEntry.value.value;
    let parsedName: ReturnType<typeof parseUnitName>;
    try {
      parsedName = parseUnitName(name);
    } catch (err) {
      if (!(err instanceof UnitNameError)) throw err;
      at(nameEntry.line, err.message);
      continue;
    }
    if (units.some((u) => u.name === name)) {
      at(nameEntry.line, `unit ${name} is listed twice`);
      continue;
    }
    const cmdEntry = get("command");
    const command = (cmdEntry?.value.kind === "scalar" ? cmdEntry.value.value : "start") as UnitCommand;
    if (cmdEntry && !COMMANDS.includes(command)) {
      at(cmdEntry.line, `command: must be one of ${COMMANDS.join(", ")}`);
      continue;
    }
    if (parsedName.isTemplate && command !== "submit") {
      at(
        (cmdEntry ?? nameEntry).line,
        `${name} is a template: its command can only be submit (start an instance)`,
      );
      continue;
    }
    const content = get("content");
    if (!content) {
      if (!parsedName.isInstance)
        at(item.line, `unit ${name} needs content: (only a template's instance may omit it)`);
      else units.push({ name, command, line: nameEntry.line });
      continue;
    }
    if (content.value.kind !== "scalar") {
      at(content.line, "content: must be the unit file, e.g. as a | block");
      continue;
    }
    const text = content.value.value;
    // A unit file's line k is the file's line first+k-1 (a | block starts on the line after content:).
    const first = content.value.block ?? content.line;
    try {
      checkUnit(name, text, { hostname: hostname(), machineId: "0".repeat(32) });
      units.push({ name, text, hash: canonicalUnit(name, text).hash, command, line: nameEntry.line });
    } catch (err) {
      if (err instanceof UnitFileError)
        at(err.line > 0 ? first + err.line - 1 : content.line, `${name}: ${err.reason}`);
      else if (err instanceof UnitNameError) at(nameEntry.line, err.message);
      else throw err;
    }
  }
  return units;
}
