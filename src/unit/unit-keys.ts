// Which sections, keys and specifiers a unit file may use: what systemd itself knows (the generated table in
// systemd-keys.ts), and which of those Berth acts on. A section, key or specifier systemd does not know is an
// error (systemd would ignore it and the unit would run without it); a key systemd knows but Berth does not act on
// is accepted with a warning, so fleet users' ordinary unit files keep working. Pure: no I/O.
import { SYSTEMD_SECTION_KEYS, SYSTEMD_VERSION } from "./systemd-keys.ts";
import {
  KNOWN_SPECIFIERS,
  lineOf,
  type UnitFile,
  UnitFileError,
  type UnitFileWarning,
  type UnitType,
} from "./unit-file.ts";

/** The section of each unit type besides [Unit] and [Install] (a .target has none), as in systemd. */
const TYPE_SECTION: Record<UnitType, string | null> = {
  service: "Service",
  socket: "Socket",
  timer: "Timer",
  path: "Path",
  mount: "Mount",
  target: null,
  automount: "Automount",
  busname: null,
  device: null,
  scope: "Scope",
  slice: "Slice",
  snapshot: null,
  swap: "Swap",
};

/** Berth's own section for a container unit (Podman Quadlet's keys, checked by agent/container-config.ts). */
export const CONTAINER_SECTION = "Container";

/** The systemd keys Berth acts on (for a .service unit); README's units section lists them too. */
export const BERTH_KEYS: Readonly<Record<string, readonly string[]>> = {
  Unit: [
    "Description",
    "Documentation",
    "After",
    "Before",
    "Requires",
    "BindsTo",
    "PartOf",
    "Wants",
    "StartLimitIntervalSec",
    "StartLimitInterval",
    "StartLimitBurst",
  ],
  Service: [
    "Type",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecStop",
    "ExecStopPost",
    "RemainAfterExit",
    "Restart",
    "RestartSec",
    "TimeoutSec",
    "TimeoutStartSec",
    "TimeoutStopSec",
    "StartLimitInterval",
    "StartLimitBurst",
    "LogRateLimitIntervalSec",
    "LogRateLimitBurst",
    "Environment",
    "EnvironmentFile",
    "WorkingDirectory",
    "User",
    "Group",
    "KillMode",
    "KillSignal",
    "SendSIGKILL",
    "PIDFile",
    "GuessMainPID",
    "NotifyAccess",
    "WatchdogSec",
    "WatchdogSignal",
  ],
  Timer: [
    "OnCalendar",
    "OnActiveSec",
    "OnBootSec",
    "OnStartupSec",
    "OnUnitActiveSec",
    "OnUnitInactiveSec",
    "Persistent",
    "AccuracySec",
    "RandomizedDelaySec",
    "RemainAfterElapse",
    "Unit",
  ],
  Socket: [
    "ListenStream",
    "ListenDatagram",
    "Accept",
    "Service",
    "Backlog",
    "SocketMode",
    "DirectoryMode",
    "RemoveOnStop",
    "FileDescriptorName",
    "TriggerLimitIntervalSec",
    "TriggerLimitBurst",
  ],
  Path: [
    "PathExists",
    "PathExistsGlob",
    "PathChanged",
    "PathModified",
    "DirectoryNotEmpty",
    "Unit",
    "MakeDirectory",
    "DirectoryMode",
    "TriggerLimitIntervalSec",
    "TriggerLimitBurst",
  ],
  // Honoured among the units of one machine (agent/install.ts): WantedBy=T is T's Wants=, RequiredBy=T its Requires=.
  Install: ["WantedBy", "RequiredBy"],
};

/** The unit types the agent runs (the others are checked and accepted with a warning, not started). */
export const RUN_TYPES: ReadonlySet<UnitType> = new Set(["service", "timer", "target", "socket", "path"]);

/** Why the other [Install] keys do nothing in a cluster (said in a warning, never ignored silently). */
const INSTALL_IGNORED: Record<string, string> = {
  Alias: "a unit has only the name it was submitted under",
  Also: "units are enabled one by one, by starting them",
  DefaultInstance: "a template is started by naming its instances",
};

/** A typo's likely meaning: the known name equal but for case, or one edit away. */
function suggestion(name: string, known: readonly string[], show = (k: string) => `${k}=`): string {
  const lower = name.toLowerCase();
  const hit =
    known.find((k) => k.toLowerCase() === lower) ??
    known.find((k) => Math.abs(k.length - name.length) <= 1 && editDistance(k, name) <= 1) ??
    known.find((k) => name.length >= 6 && editDistance(k, name) <= 2);
  return hit === undefined ? "" : ` (did you mean ${show(hit)}?)`;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours cost 1. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** `X-` sections and keys are the user's own: systemd ignores them, and so does this check. */
const isExtension = (name: string): boolean => name.startsWith("X-");

/**
 * Checks the sections, keys and specifiers of a unit of the given type against systemd's tables. Throws
 * UnitFileError (with the line) for what systemd does not know; returns a warning per key Berth ignores. `unitName`
 * only names the unit in errors.
 */
export function checkKnownKeys(file: UnitFile, type: UnitType, unitName?: string): UnitFileWarning[] {
  const fail = (reason: string, line: number): never => {
    throw new UnitFileError(reason, line, unitName);
  };
  if (file.options.length === 0 && file.sections.size === 0) fail("the unit file is empty", 0);
  const own = TYPE_SECTION[type];
  const allowed = ["Unit", ...(own === null ? [] : [own]), "Install"];
  const systemdSections = Object.keys(SYSTEMD_SECTION_KEYS);
  for (const section of file.sections.keys()) {
    if (isExtension(section) || allowed.includes(section)) continue;
    if (section === CONTAINER_SECTION && type === "service") continue;
    const line = lineOf(file, section);
    if (systemdSections.includes(section))
      fail(`section [${section}] does not belong in a .${type} unit`, line);
    fail(`unknown section [${section}]${suggestion(section, allowed, (k) => `[${k}]`)}`, line);
  }
  const warnings: UnitFileWarning[] = [];
  const warned = new Set<string>();
  file.options.forEach(({ section, key, value }, i) => {
    if (isExtension(section)) return;
    const line = file.lines?.[i] ?? 0;
    checkSpecifiers(value, line, fail);
    if (section === CONTAINER_SECTION || isExtension(key)) return;
    const known = SYSTEMD_SECTION_KEYS[section] ?? [];
    if (!known.includes(key)) {
      fail(`unknown key ${key}= in [${section}] (systemd ${SYSTEMD_VERSION})${suggestion(key, known)}`, line);
    }
    if (!RUN_TYPES.has(type) || BERTH_KEYS[section]?.includes(key)) return;
    if (warned.has(`${section}.${key}`)) return;
    warned.add(`${section}.${key}`);
    const why = section === "Install" ? INSTALL_IGNORED[key] : undefined;
    warnings.push({
      line,
      message:
        why === undefined
          ? `${key}= is a systemd option Berth does not implement, ignoring it`
          : `${key}= in [Install] does not apply in a cluster (${why}), ignoring it`,
    });
  });
  return warnings;
}

/** A `%` followed by a letter systemd does not know (systemd: "Failed to resolve specifiers ... Invalid slot"). */
function checkSpecifiers(value: string, line: number, fail: (reason: string, line: number) => never): void {
  for (let i = 0; i < value.length - 1; i++) {
    if (value[i] !== "%") continue;
    const spec = value[++i]!;
    if (!KNOWN_SPECIFIERS.includes(spec)) {
      fail(`unknown specifier "%${spec}" in ${JSON.stringify(value)} (write "%%" for a literal "%")`, line);
    }
  }
}
