// A `[Container]` unit (the keys of Podman's Quadlet, podman-systemd.unit(5)) turned into what the ContainerRunner
// needs. The unit's [Unit]/[Service] sections keep their meaning: Restart=, RestartSec=, TimeoutStartSec=,
// TimeoutStopSec=, StartLimit*= and Description= apply to the container as to a service's main process.
// Pure: throws UnitFileError for what cannot be run.
import {
  expandSpecifiers,
  get,
  getAll,
  lineOf,
  type SpecifierContext,
  splitCommandLine,
  type UnitFile,
  UnitFileError,
} from "../unit/unit-file.ts";
import { parseEnvironment } from "./exec-line.ts";
import {
  parseRunnableUnit,
  type ServiceConfig,
  serviceConfigOf,
  unitKindOf,
  warningText,
} from "./service-config.ts";

export interface PortBinding {
  hostIp: string;
  /** "" = an ephemeral port chosen by the engine. */
  hostPort: string;
  containerPort: string;
  proto: "tcp" | "udp" | "sctp";
}

export interface ContainerConfig {
  /** Restart/timeout/start-limit rules and Description, as for a service (its Exec* lines are not used). */
  service: ServiceConfig;
  image: string;
  /** Exec=: the command given to the image's entrypoint; null = the image's default command. */
  exec: string[] | null;
  containerName: string;
  environment: Record<string, string>;
  publishPorts: PortBinding[];
  /** Volume= as Docker binds (`src:dst[:opts]`), or anonymous volumes (`dst`). */
  volumes: string[];
  /** Docker's NetworkMode: none, host, bridge, or a network name. */
  network: string | null;
  labels: Record<string, string>;
  /** Pull=: missing (default), never, always, newer (treated as always). */
  pull: "missing" | "never" | "always";
  user: string | null;
  workingDir: string | null;
  warnings: string[];
}

/** Labels the agent puts on every container it creates (and finds them again by). */
export const LABEL_UNIT = "berth.unit";
export const LABEL_HASH = "berth.hash";
export const LABEL_MACHINE = "berth.machine";

/** The [Container] keys the agent runs (the README's Docker section names each). */
export const CONTAINER_KEYS = [
  "Image",
  "Exec",
  "ContainerName",
  "Environment",
  "PublishPort",
  "Volume",
  "Network",
  "Label",
  "Pull",
  "User",
  "WorkingDir",
] as const;
const KNOWN_KEYS = new Set<string>(CONTAINER_KEYS);

/** Quadlet's default name is `systemd-%N`; Berth's is `berth-<unit name without suffix>` (@ → -). */
export function defaultContainerName(unitName: string): string {
  const base = unitName.replace(/\.service$/, "").replace(/@/g, "-");
  return `berth-${base}`.replace(/[^a-zA-Z0-9_.-]/g, "_");
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** `[[ip:][hostPort]:]containerPort[/proto]`; ip may be `[v6]`. */
export function parsePublishPort(value: string): PortBinding {
  const fail = (): never => {
    throw new UnitFileError(`PublishPort=${value}: expected [[ip:][hostPort]:]containerPort[/protocol]`);
  };
  let rest = value.trim();
  let proto: PortBinding["proto"] = "tcp";
  const slash = rest.lastIndexOf("/");
  if (slash >= 0) {
    const p = rest.slice(slash + 1);
    if (p !== "tcp" && p !== "udp" && p !== "sctp") fail();
    proto = p as PortBinding["proto"];
    rest = rest.slice(0, slash);
  }
  let hostIp = "";
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0 || rest[close + 1] !== ":") fail();
    hostIp = rest.slice(1, close);
    rest = rest.slice(close + 2);
  }
  const parts = rest.split(":");
  let hostPort = "";
  let containerPort = "";
  if (parts.length === 1) containerPort = parts[0]!;
  else if (parts.length === 2) [hostPort, containerPort] = parts as [string, string];
  else if (parts.length === 3 && hostIp === "")
    [hostIp, hostPort, containerPort] = parts as [string, string, string];
  else fail();
  const portRe = /^\d{1,5}(-\d{1,5})?$/;
  if (!portRe.test(containerPort) || (hostPort !== "" && !portRe.test(hostPort))) fail();
  return { hostIp, hostPort, containerPort, proto };
}

/** Parses and validates a container unit. Throws UnitFileError / UnitNameError with a human-readable reason. */
export function loadContainerConfig(
  name: string,
  text: string,
  ctx: Omit<SpecifierContext, "unitName">,
): ContainerConfig {
  const { file, warnings } = parseRunnableUnit(name, text);
  const cfg = containerConfigOf(name, file, { ...ctx, unitName: name });
  return { ...cfg, warnings: [...warnings.map(warningText), ...cfg.warnings] };
}

/** The container unit of a parsed file (its keys already checked): throws UnitFileError with the line. */
export function containerConfigOf(name: string, file: UnitFile, sctx: SpecifierContext): ContainerConfig {
  const C = "Container";
  // Errors point at the key's assignment (the one with `value` when given), else at the [Container] header.
  const fail = (reason: string, key?: string, value?: string): never => {
    throw new UnitFileError(reason, lineOf(file, C, key, value), name);
  };
  if (unitKindOf(file) !== "container") fail("no [Container] section");
  const service = serviceConfigOf(name, file, sctx, { container: true });
  const wrap = <T>(key: string, f: () => T, value?: string): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof UnitFileError)
        return fail(e.reason.startsWith(`${key}=`) ? e.reason : `${key}=: ${e.reason}`, key, value);
      throw e;
    }
  };
  const one = (key: string): string | undefined => {
    const v = get(file, C, key);
    return v === undefined ? undefined : wrap(key, () => expandSpecifiers(v, sctx));
  };
  const all = (key: string): string[] =>
    getAll(file, C, key).map((v) => wrap(key, () => expandSpecifiers(v, sctx), v));
  const warnings = [...service.warnings];
  for (const key of file.sections.get(C)?.keys() ?? []) {
    if (!KNOWN_KEYS.has(key)) warnings.push(`[Container] ${key}= is not supported, ignoring`);
  }
  for (const key of ["ExecStartPre", "ExecStart", "ExecStartPost", "ExecStop", "ExecStopPost"]) {
    if (getAll(file, "Service", key).length > 0)
      warnings.push(`[Service] ${key}= is ignored for a container unit`);
  }

  const image = one("Image");
  if (image === undefined || image === "") fail("[Container] has no Image=", "Image");
  const execRaw = one("Exec");
  const exec = execRaw === undefined ? null : wrap("Exec", () => splitCommandLine(execRaw));
  const containerName = one("ContainerName") || defaultContainerName(name);
  if (!NAME_RE.test(containerName))
    fail(`ContainerName=${containerName} is not a valid container name`, "ContainerName");
  // Environment= in [Container] is the container's environment (not the [Service] one).
  const env = wrap("Environment", () => parseEnvironment(getAll(file, C, "Environment"), sctx));
  warnings.push(...env.warnings);
  const publishPorts = all("PublishPort").map((v) => wrap("PublishPort", () => parsePublishPort(v)));
  const volumes = all("Volume").map((v) => {
    const parts = v.split(":");
    if (v === "" || parts.length > 3 || parts.some((p) => p === ""))
      fail(`Volume=${v}: expected [src:]dst[:options]`, "Volume");
    if (parts.length === 1 && !v.startsWith("/"))
      fail(`Volume=${v}: a container path must be absolute`, "Volume");
    return v;
  });
  const networkRaw = one("Network");
  const network = networkRaw === undefined || networkRaw === "" ? null : networkRaw.replace(/\.network$/, "");
  const labels: Record<string, string> = {};
  for (const v of getAll(file, C, "Label")) {
    for (const word of wrap("Label", () => splitCommandLine(v))) {
      const expanded = wrap("Label", () => expandSpecifiers(word, sctx));
      const eq = expanded.indexOf("=");
      if (eq <= 0) {
        warnings.push(`invalid label ${JSON.stringify(expanded)}, ignoring`);
        continue;
      }
      const key = expanded.slice(0, eq);
      if (key.startsWith("berth.")) {
        warnings.push(`label ${key} is reserved for the agent, ignoring`);
        continue;
      }
      labels[key] = expanded.slice(eq + 1);
    }
  }
  const pullRaw = one("Pull") ?? "missing";
  if (!["missing", "never", "always", "newer"].includes(pullRaw)) {
    fail(`Pull=${pullRaw} is not one of missing, never, always, newer`, "Pull");
  }
  const pull = (pullRaw === "newer" ? "always" : pullRaw) as ContainerConfig["pull"];
  return {
    service,
    image: image!,
    exec,
    containerName,
    environment: env.env,
    publishPorts,
    volumes,
    network,
    labels,
    pull,
    user: one("User") || null,
    workingDir: one("WorkingDir") || null,
    warnings,
  };
}
