// The one place that decides whether a unit file can run, and why not: the agent loads units with compileUnit,
// `berth verify` and `submit` check them with checkUnit, and both go through the same parsing, the same check of
// sections, keys and specifiers against systemd's (unit/unit-keys.ts) and the same service/container compilation,
// so a file verify accepts is never refused by the agent on its machine. Errors are UnitFileError with the line.

import { expandDescription } from "../unit/deps.ts";
import {
  instanceName,
  parseUnitName,
  type SpecifierContext,
  type UnitFile,
  UnitFileError,
  type UnitFileWarning,
  type UnitType,
  xfleetOf,
} from "../unit/unit-file.ts";
import { type ContainerConfig, containerConfigOf, loadContainerConfig } from "./container-config.ts";
import { hostSpecifierValues } from "./host-specifiers.ts";
import { type PathConfig, pathConfigOf } from "./path-config.ts";
import {
  loadServiceConfig,
  parseCheckedUnit,
  parseRunnableUnit,
  type ServiceConfig,
  serviceConfigOf,
  unitKindOf,
} from "./service-config.ts";
import { type SocketConfig, socketConfigOf } from "./socket-config.ts";
import { type TimerConfig, timerConfigOf } from "./timer-config.ts";

export type CompiledUnit =
  | { kind: "service"; config: ServiceConfig }
  | { kind: "container"; config: ContainerConfig }
  | { kind: "timer"; config: TimerConfig }
  | { kind: "socket"; config: SocketConfig }
  | { kind: "path"; config: PathConfig }
  | { kind: "target"; description: string };

/** The machine's values for the specifiers, unless the caller gave them. */
function withHost(ctx: Omit<SpecifierContext, "unitName">): Omit<SpecifierContext, "unitName"> {
  return ctx.host !== undefined ? ctx : { ...ctx, host: hostSpecifierValues(ctx.hostname ?? "") };
}

/** The unit types fleet accepts by name that Berth cannot run, and why (refused at submit and by the agent). */
export const REFUSED_TYPES: Readonly<Partial<Record<UnitType, string>>> = {
  mount: "a mount belongs to one machine's file systems: mount from a .service (ExecStart=mount ...) instead",
  automount: "an automount needs the machine's kernel autofs under a system manager, which Berth is not",
  swap: "swap space belongs to one machine: enable it from a .service (ExecStart=swapon ...) instead",
  device: "devices appear from the kernel (udev) on one machine; there is nothing to submit or start",
  scope:
    "a scope groups processes a manager did not start (systemd-run --scope); it has no unit file to submit",
  slice: "Berth gives each unit its own cgroup and has no slice hierarchy to place units in",
  snapshot:
    "snapshots were made at run time by systemctl snapshot (removed in systemd 228), not from a unit file",
  busname: "bus names were kdbus's (removed in systemd 230); Berth has no D-Bus activation",
};

function refuseType(name: string, type: UnitType): void {
  const why = REFUSED_TYPES[type];
  if (why !== undefined) throw new UnitFileError(`.${type} units cannot run on Berth: ${why}`, 0, name);
}

/** What the agent runs for a unit: throws UnitFileError / UnitNameError saying why it cannot. */
export function compileUnit(
  name: string,
  text: string,
  ctx: Omit<SpecifierContext, "unitName">,
): CompiledUnit {
  const hctx = withHost(ctx);
  const { type, isTemplate } = parseUnitName(name);
  refuseType(name, type);
  if (type !== "service" && !isTemplate) {
    const { file } = parseCheckedUnit(name, text);
    const sctx: SpecifierContext = { ...hctx, unitName: name };
    if (type === "timer") return { kind: "timer", config: timerConfigOf(name, file, sctx) };
    if (type === "socket") return { kind: "socket", config: socketConfigOf(name, file, sctx) };
    if (type === "path") return { kind: "path", config: pathConfigOf(name, file, sctx) };
    return { kind: "target", description: expandDescription(file, sctx) ?? name };
  }
  if (unitKindOf(parseRunnableUnit(name, text).file) === "container")
    return { kind: "container", config: loadContainerConfig(name, text, hctx) };
  return { kind: "service", config: loadServiceConfig(name, text, hctx) };
}

export interface UnitCheck {
  file: UnitFile;
  warnings: UnitFileWarning[];
}

/**
 * Everything the cluster and the agent would refuse in a unit file, checked before it is sent: syntax, sections,
 * keys, specifiers, the service, container, timer, socket or path settings the agent compiles, and the [X-Fleet]
 * options. Units of the types Berth cannot run (REFUSED_TYPES) are refused first, saying why. `ctx` stands in for the machine
 * (hostname, machine id); the local machine's values are used for the other specifiers.
 */
export function checkUnit(name: string, text: string, ctx: Omit<SpecifierContext, "unitName">): UnitCheck {
  const { type, isTemplate } = parseUnitName(name);
  refuseType(name, type);
  const { file, warnings } = parseCheckedUnit(name, text);
  // A template is checked as its instance "1" would be (fleet's MachineMetadata=hostname=%i needs an instance).
  const unitName = isTemplate ? instanceName(name, "1") : name;
  const sctx: SpecifierContext = { ...withHost(ctx), unitName };
  if (type === "timer") timerConfigOf(name, file, sctx);
  else if (type === "socket") socketConfigOf(name, file, sctx);
  else if (type === "path") pathConfigOf(name, file, sctx);
  else if (type === "service") {
    const cfg =
      unitKindOf(file) === "container"
        ? containerConfigOf(name, file, sctx)
        : serviceConfigOf(name, file, sctx);
    warnings.push(...cfg.warnings.map((message) => ({ line: 0, message })));
  }
  // As the scheduler reads them: only the unit's name is known there (see sched/catalog.ts).
  xfleetOf(file, { unitName });
  return { file, warnings };
}
