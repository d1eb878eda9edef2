// Units that start another unit on their own machine (a .timer or .path starts its Unit=, a .socket its Service=):
// the unit they start must run where they run, so placement gives it an implicit MachineOf= of each of its
// triggers, as fleet users wrote by hand (`MachineOf=%p.timer`, `MachineOf=%p.socket`). The trigger is placed first and the unit follows it; when the trigger moves (a lost
// or drained machine), the unit moves with it through the same handoff. Pure.

import { expandSpecifiers, get, parseUnitName, type UnitFile } from "../unit/unit-file.ts";
import type { UnitView } from "./placement.ts";

/** The unit a trigger starts by default: its own name with .service (web@1.timer → web@1.service). */
export function defaultTriggeredUnit(trigger: string): string {
  return `${trigger.slice(0, trigger.lastIndexOf("."))}.service`;
}

/** The section and key naming the unit each trigger type starts. */
const TRIGGER_KEY: Readonly<Record<string, [section: string, key: string]>> = {
  timer: ["Timer", "Unit"],
  path: ["Path", "Unit"],
  socket: ["Socket", "Service"],
};

/**
 * The unit a trigger unit's file starts (a .timer's or .path's Unit=, a .socket's Service=, specifiers expanded,
 * else its own name with .service); undefined for other unit types and for a name that is no valid unit (the
 * file's check refuses that).
 */
export function triggeredUnitOf(name: string, file: UnitFile): string | undefined {
  const key = TRIGGER_KEY[parseUnitName(name).type];
  if (key === undefined) return undefined;
  const u = get(file, key[0], key[1]);
  if (u === undefined) return defaultTriggeredUnit(name);
  try {
    const unit = expandSpecifiers(u, { unitName: name });
    parseUnitName(unit);
    return unit;
  } catch {
    return undefined;
  }
}

/**
 * The units with each triggered unit's implicit MachineOf= of the triggers that want to be scheduled (not
 * inactive). A global unit, or one pinned with MachineID=, keeps its own placement (fleet refuses MachineOf= with
 * either).
 */
export function withTriggerPlacement(units: UnitView[], triggered: ReadonlyMap<string, string>): UnitView[] {
  const triggersOf = new Map<string, string[]>();
  for (const u of units) {
    const target = triggered.get(u.name);
    if (target === undefined || target === u.name || u.desired === "inactive" || u.xfleet.global) continue;
    triggersOf.set(target, [...(triggersOf.get(target) ?? []), u.name]);
  }
  if (triggersOf.size === 0) return units;
  return units.map((u) => {
    const by = triggersOf.get(u.name);
    if (by === undefined || u.xfleet.global || u.xfleet.machineId !== undefined) return u;
    const machineOf = [...new Set([...u.xfleet.machineOf, ...by])];
    return { ...u, xfleet: { ...u.xfleet, machineOf } };
  });
}
