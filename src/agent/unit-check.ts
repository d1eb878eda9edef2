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
  type UnitFileWarning,
  xfleetOf,
} from "../unit/unit-file.ts";
import { RUN_TYPES } from "../unit/unit-keys.ts";
import { type ContainerConfig, containerConfigOf, loadContainerConfig } from "./container-config.ts";
import { hostSpecifierValues } from "./host-specifiers.ts";
import {
  loadServiceConfig,
  parseCheckedUnit,
  parseRunnableUnit,
  type ServiceConfig,
  serviceConfigOf,
  unitKindOf,
} from "./service-config.ts";
import { type TimerConfig, timerConfigOf } from "./timer-config.ts";

export type CompiledUnit =
  | { kind: "service"; config: ServiceConfig }
  | { kind: "container"; config: ContainerConfig }
  | { kind: "timer"; config: TimerConfig }
  | { kind: "target"; description: string };

/** The machine's values for the specifiers, unless the caller gave them. */
function withHost(ctx: Omit<SpecifierContext, "unitName">): Omit<SpecifierContext, "unitName"> {
  return ctx.host !== undefined ? ctx : { ...ctx, host: hostSpecifierValues(ctx.hostname ?? "") };
}

/** What the agent runs for a unit: throws UnitFileError / UnitNameError saying why it cannot. */
export function compileUnit(
  name: string,
  text: string,
  ctx: Omit<SpecifierContext, "unitName">,
): CompiledUnit {
  const hctx = withHost(ctx);
  const { type, isTemplate } = parseUnitName(name);
  if ((type === "timer" || type === "target") && !isTemplate) {
    const { file } = parseCheckedUnit(name, text);
    const sctx: SpecifierContext = { ...hctx, unitName: name };
    if (type === "timer") return { kind: "timer", config: timerConfigOf(name, file, sctx) };
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
 * keys, specifiers, the service, container or timer settings the agent compiles, and the [X-Fleet] options. Units
 * of the types the agent does not run (.socket, .path, .mount) are checked as far as Berth knows them and accepted
 * with a warning. `ctx` stands in for the machine
 * (hostname, machine id); the local machine's values are used for the other specifiers.
 */
export function checkUnit(name: string, text: string, ctx: Omit<SpecifierContext, "unitName">): UnitCheck {
  const { type, isTemplate } = parseUnitName(name);
  const { file, warnings } = parseCheckedUnit(name, text);
  // A template is checked as its instance "1" would be (fleet's MachineMetadata=hostname=%i needs an instance).
  const unitName = isTemplate ? instanceName(name, "1") : name;
  const sctx: SpecifierContext = { ...withHost(ctx), unitName };
  if (type === "timer") timerConfigOf(name, file, sctx);
  else if (!RUN_TYPES.has(type)) {
    warnings.push({
      line: 0,
      message: `Berth runs .service, .timer and .target units: the agent will not start a .${type} unit`,
    });
  } else if (type === "service") {
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
