// A unit file's [Service] section turned into what the runner needs (systemd.service(5), systemd.exec(5),
// systemd.unit(5) for the start rate limit). Pure: throws UnitFileError for what systemd would refuse to load.
import { constants } from "node:os";
import { expandDescription } from "../unit/deps.ts";
import {
  expandSpecifiers,
  get,
  getAll,
  lineOf,
  parseBoolean,
  parseUnitFileWithWarnings,
  parseUnitName,
  type SpecifierContext,
  type UnitFile,
  UnitFileError,
  type UnitFileWarning,
  UnitNameError,
} from "../unit/unit-file.ts";
import { checkKnownKeys } from "../unit/unit-keys.ts";
import {
  type CompiledExec,
  compileExec,
  type EnvFileRef,
  parseEnvironment,
  parseEnvironmentFileRef,
  parseTimespan,
} from "./exec-line.ts";
import { DEFAULT_LOG_RATE_LIMIT_BURST, DEFAULT_LOG_RATE_LIMIT_INTERVAL_MS } from "./log-rate-limit.ts";

export type ServiceType = "simple" | "exec" | "oneshot" | "forking" | "notify";
const SERVICE_TYPES: readonly ServiceType[] = ["simple", "exec", "oneshot", "forking", "notify"];
/** NotifyAccess= (systemd.service(5)): whose sd_notify messages count; the sender is the datagram's credentials. */
export type NotifyAccess = "none" | "main" | "exec" | "all";
const NOTIFY_ACCESS: readonly NotifyAccess[] = ["none", "main", "exec", "all"];
/** systemd.kill(5): which processes a stop signals. */
export type KillMode = "control-group" | "mixed" | "process" | "none";
const KILL_MODES: readonly KillMode[] = ["control-group", "mixed", "process", "none"];
export type RestartPolicy =
  | "no"
  | "on-success"
  | "on-failure"
  | "on-abnormal"
  | "on-watchdog"
  | "on-abort"
  | "always";
const RESTART_POLICIES: readonly RestartPolicy[] = [
  "no",
  "on-success",
  "on-failure",
  "on-abnormal",
  "on-watchdog",
  "on-abort",
  "always",
];

export interface ServiceConfig {
  name: string;
  /** Description= or the unit name: what "Starting …" / "Stopped …" messages say. */
  description: string;
  type: ServiceType;
  remainAfterExit: boolean;
  execStartPre: CompiledExec[];
  execStart: CompiledExec[];
  execStartPost: CompiledExec[];
  execStop: CompiledExec[];
  execStopPost: CompiledExec[];
  restart: RestartPolicy;
  restartMs: number;
  /** Infinity = no timeout. */
  timeoutStartMs: number;
  timeoutStopMs: number;
  startLimitIntervalMs: number;
  startLimitBurst: number;
  /** LogRateLimitIntervalSec=/LogRateLimitBurst= (systemd.exec(5)): the journal's rate limit; 0 turns it off. */
  logRateLimitIntervalMs: number;
  logRateLimitBurst: number;
  environment: Record<string, string>;
  environmentFiles: EnvFileRef[];
  workingDirectory: { path: string; optional: boolean } | null;
  user: string | null;
  group: string | null;
  /** KillMode=, KillSignal= and SendSIGKILL= (systemd.kill(5)). */
  killMode: KillMode;
  killSignal: NodeJS.Signals;
  sendSigkill: boolean;
  /** Type=forking: PIDFile= (absolute; a relative path is under /run, as in systemd) and GuessMainPID=. */
  pidFile: string | null;
  guessMainPid: boolean;
  /** NotifyAccess= (default main for Type=notify or with WatchdogSec=, else none). */
  notifyAccess: NotifyAccess;
  /** WatchdogSec=: 0 = off. WatchdogSignal= is sent when no WATCHDOG=1 came for that long (default SIGABRT). */
  watchdogMs: number;
  watchdogSignal: NodeJS.Signals;
  warnings: string[];
}

export const DEFAULT_TIMEOUT_MS = 90_000;
export const DEFAULT_RESTART_MS = 100;
export const DEFAULT_START_LIMIT_INTERVAL_MS = 10_000;
export const DEFAULT_START_LIMIT_BURST = 5;

/** The kind of unit a unit file describes; the agent picks a runner by it. */
export type UnitKind = "service" | "container";

/** Which runner a unit file needs: `[Container]` units are run by the ContainerRunner (container-config.ts). */
export function unitKindOf(file: UnitFile): UnitKind {
  return file.sections.has("Container") ? "container" : "service";
}

const timeout = (v: string, key: string): number => {
  const ms = parseTimespan(v, key);
  return ms === 0 ? Number.POSITIVE_INFINITY : ms;
};

/** Parses and validates a service unit. Throws UnitFileError / UnitNameError with a human-readable reason. */
export function loadServiceConfig(
  name: string,
  text: string,
  ctx: Omit<SpecifierContext, "unitName">,
): ServiceConfig {
  const { file, warnings } = parseRunnableUnit(name, text);
  const cfg = serviceConfigOf(name, file, { ...ctx, unitName: name });
  return { ...cfg, warnings: [...warnings.map(warningText), ...cfg.warnings] };
}

/** A parsed unit file whose sections, keys and specifiers are known to systemd, with what to warn about. */
export interface CheckedUnitFile {
  file: UnitFile;
  warnings: UnitFileWarning[];
}

/** Parses a unit file and checks its sections, keys and specifiers against systemd's (unit/unit-keys.ts). */
export function parseCheckedUnit(name: string, text: string): CheckedUnitFile {
  const { type } = parseUnitName(name);
  const { file, warnings } = parseUnitFileWithWarnings(text, name);
  return { file, warnings: [...warnings, ...checkKnownKeys(file, type, name)] };
}

/** Parses a unit file the agent could run: a .service unit, and an instance rather than a template. */
export function parseRunnableUnit(name: string, text: string): CheckedUnitFile {
  const unitName = parseUnitName(name);
  if (unitName.type !== "service")
    throw new UnitFileError(`only .service units can be run here, not .${unitName.type}`, 0, name);
  if (unitName.isTemplate) throw new UnitNameError(name, "a template cannot be run, only its instances");
  return parseCheckedUnit(name, text);
}

/** A warning as the agent logs it after the unit's name. */
export function warningText(w: UnitFileWarning): string {
  return w.line > 0 ? `line ${w.line}: ${w.message}` : w.message;
}

/**
 * `opts.container`: the [Service] part of a [Container] unit (container-config.ts): [Service] may be missing and
 * needs no ExecStart= (the container is the main process); Restart=, RestartSec=, Timeout*Sec= etc. still apply.
 */
export function serviceConfigOf(
  name: string,
  file: UnitFile,
  ctx: SpecifierContext,
  opts: { container?: boolean } = {},
): ServiceConfig {
  const S = "Service";
  // Errors point at the key's (last) assignment, else at the section's header.
  const fail = (reason: string, key?: string, section = S, value?: string): never => {
    throw new UnitFileError(reason, lineOf(file, section, key, value), name);
  };
  const one = (key: string): string | undefined => get(file, S, key);
  const wrap = <T>(key: string, f: () => T, section = S, value?: string): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof UnitFileError) {
        const reason = e.reason.startsWith(`${key}=`) ? e.reason : `${key}=: ${e.reason}`;
        return fail(reason, key, section, value);
      }
      throw e;
    }
  };
  const execs = (key: string): CompiledExec[] =>
    getAll(file, S, key).map((v) => wrap(key, () => compileExec(v, ctx), S, v));

  const container = opts.container === true;
  if (!container && unitKindOf(file) === "container") {
    fail("[Container] units are run by the container runner, not as a service");
  }
  if (!container && !file.sections.has(S)) fail("no [Service] section");

  // Quadlet's generated services are Type=notify; for a container the type says nothing the runner uses.
  const typeRaw = container ? "simple" : (one("Type") ?? "simple");
  if (typeRaw === "dbus") {
    fail("Type=dbus is not supported: Berth runs no D-Bus to watch for BusName= (use Type=notify)", "Type");
  }
  if (!(SERVICE_TYPES as readonly string[]).includes(typeRaw)) {
    fail(`Type=${typeRaw} is not supported (supported: ${SERVICE_TYPES.join(", ")})`, "Type");
  }
  const type = typeRaw as ServiceType;
  const execStart = execs("ExecStart");
  const execStop = execs("ExecStop");
  if (!container && type !== "oneshot" && execStart.length === 0) {
    fail("Service has no ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.");
  }
  if (type !== "oneshot" && execStart.length > 1) {
    fail(
      "Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.",
      "ExecStart",
    );
  }
  if (type === "oneshot" && execStart.length === 0 && execStop.length === 0) {
    fail("Service has no ExecStart= and no ExecStop= setting. Refusing.");
  }

  const bool = (key: string, dflt: boolean): boolean => {
    const v = one(key);
    if (v === undefined) return dflt;
    const b = parseBoolean(v);
    if (b === undefined) fail(`${key}=${v} is not a boolean`, key);
    return b!;
  };
  const restartRaw = one("Restart") ?? "no";
  if (!(RESTART_POLICIES as readonly string[]).includes(restartRaw)) {
    fail(`Restart=${restartRaw} is not one of ${RESTART_POLICIES.join(", ")}`, "Restart");
  }
  const span = (
    key: string,
    v: string | undefined,
    dflt: number,
    zeroIsInfinite: boolean,
    section = S,
  ): number => {
    if (v === undefined) return dflt;
    return wrap(key, () => (zeroIsInfinite ? timeout(v, key) : parseTimespan(v, key)), section);
  };
  const timeoutSec = one("TimeoutSec");
  const both = span("TimeoutSec", timeoutSec, DEFAULT_TIMEOUT_MS, true);
  // [Unit] is where systemd reads the start limit now; [Service] (and StartLimitInterval=) are older spellings.
  const limitKey = (...keys: [string, string][]): [string, string] | undefined =>
    keys.find(([section, key]) => get(file, section, key) !== undefined);
  const intervalAt = limitKey(
    ["Unit", "StartLimitIntervalSec"],
    ["Unit", "StartLimitInterval"],
    [S, "StartLimitInterval"],
  );
  const burstAt = limitKey(["Unit", "StartLimitBurst"], [S, "StartLimitBurst"]);
  const count = (at: [string, string] | undefined, dflt: number): number => {
    if (at === undefined) return dflt;
    const [section, key] = at;
    const v = get(file, section, key)!;
    if (!/^\d+$/.test(v)) fail(`${key}=${v} is not a number`, key, section);
    return Number(v);
  };
  const env = { env: {} as Record<string, string>, warnings: [] as string[] };
  for (const v of getAll(file, S, "Environment")) {
    const one = wrap("Environment", () => parseEnvironment([v], ctx), S, v);
    Object.assign(env.env, one.env);
    env.warnings.push(...one.warnings);
  }
  const wd = one("WorkingDirectory");
  let workingDirectory: ServiceConfig["workingDirectory"] = null;
  if (wd !== undefined) {
    const optional = wd.startsWith("-");
    const path = wrap("WorkingDirectory", () => {
      const p = optional ? wd.slice(1) : wd;
      return p === "~" ? p : expandSpecifiers(p, ctx);
    });
    if (path !== "~" && !path.startsWith("/"))
      fail(`WorkingDirectory=${wd} is not an absolute path`, "WorkingDirectory");
    workingDirectory = { path, optional };
  }
  const user = one("User");
  const group = one("Group");
  const killMode = one("KillMode") ?? "control-group";
  if (!(KILL_MODES as readonly string[]).includes(killMode)) {
    fail(`KillMode=${killMode} is not one of ${KILL_MODES.join(", ")}`, "KillMode");
  }
  const signal = (key: string, dflt: string): NodeJS.Signals => {
    const raw = one(key) ?? dflt;
    const sig = raw.startsWith("SIG") ? raw : `SIG${raw}`;
    if (!(sig in constants.signals)) fail(`${key}=${raw} is not a signal name`, key);
    return sig as NodeJS.Signals;
  };
  const killSignal = signal("KillSignal", "SIGTERM");
  const watchdogMs = span("WatchdogSec", one("WatchdogSec"), 0, false);
  const notifyRaw = one("NotifyAccess");
  if (notifyRaw !== undefined && !(NOTIFY_ACCESS as readonly string[]).includes(notifyRaw)) {
    fail(`NotifyAccess=${notifyRaw} is not one of ${NOTIFY_ACCESS.join(", ")}`, "NotifyAccess");
  }
  // systemd: main by default when the unit is told to notify (Type=notify) or to ping (WatchdogSec=).
  const notifyAccess = (notifyRaw ??
    (type === "notify" || (watchdogMs > 0 && Number.isFinite(watchdogMs)) ? "main" : "none")) as NotifyAccess;
  if (type === "notify" && notifyAccess === "none") {
    fail("Type=notify with NotifyAccess=none can never become ready", "NotifyAccess");
  }
  const pidFileRaw = one("PIDFile");
  const pidFile =
    pidFileRaw === undefined || pidFileRaw === ""
      ? null
      : wrap("PIDFile", () => {
          const p = expandSpecifiers(pidFileRaw, ctx);
          return p.startsWith("/") ? p : `/run/${p}`;
        });
  return {
    name,
    description: expandDescription(file, ctx) ?? name,
    type,
    remainAfterExit: bool("RemainAfterExit", false),
    execStartPre: execs("ExecStartPre"),
    execStart,
    execStartPost: execs("ExecStartPost"),
    execStop,
    execStopPost: execs("ExecStopPost"),
    restart: restartRaw as RestartPolicy,
    restartMs: span("RestartSec", one("RestartSec"), DEFAULT_RESTART_MS, false),
    timeoutStartMs: span("TimeoutStartSec", one("TimeoutStartSec"), both, true),
    timeoutStopMs: span("TimeoutStopSec", one("TimeoutStopSec"), both, true),
    startLimitIntervalMs: span(
      intervalAt?.[1] ?? "StartLimitIntervalSec",
      intervalAt === undefined ? undefined : get(file, ...intervalAt),
      DEFAULT_START_LIMIT_INTERVAL_MS,
      false,
      intervalAt?.[0],
    ),
    startLimitBurst: count(burstAt, DEFAULT_START_LIMIT_BURST),
    logRateLimitIntervalMs: span(
      "LogRateLimitIntervalSec",
      one("LogRateLimitIntervalSec"),
      DEFAULT_LOG_RATE_LIMIT_INTERVAL_MS,
      false,
    ),
    logRateLimitBurst: count(
      one("LogRateLimitBurst") === undefined ? undefined : [S, "LogRateLimitBurst"],
      DEFAULT_LOG_RATE_LIMIT_BURST,
    ),
    environment: env.env,
    environmentFiles: getAll(file, S, "EnvironmentFile").map((v) =>
      wrap("EnvironmentFile", () => parseEnvironmentFileRef(v, ctx), S, v),
    ),
    workingDirectory,
    user: user === undefined || user === "" ? null : wrap("User", () => expandSpecifiers(user, ctx)),
    group: group === undefined || group === "" ? null : wrap("Group", () => expandSpecifiers(group, ctx)),
    killMode: killMode as KillMode,
    killSignal,
    sendSigkill: bool("SendSIGKILL", true),
    pidFile,
    guessMainPid: bool("GuessMainPID", true),
    notifyAccess,
    watchdogMs: Number.isFinite(watchdogMs) ? watchdogMs : 0,
    watchdogSignal: signal("WatchdogSignal", "SIGABRT"),
    warnings: env.warnings,
  };
}
