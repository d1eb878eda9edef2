// Units that start another unit on their own machine (a .timer starts its Unit=): the unit they start must run
// where they run, so placement gives it an implicit MachineOf= of each of its triggers, as fleet users wrote by
// hand (`MachineOf=%p.timer`). The trigger is placed first and the unit follows it; when the trigger moves (a lost
// or drained machine), the unit moves with it through the same handoff. Pure.

import { expandSpecifiers, get, parseUnitName, type UnitFile } from "../unit/unit-file.ts";
import type { UnitView } from "./placement.ts";

/** The unit a timer triggers by default: its own name with .service (web@1.timer → web@1.service). */
export function defaultTriggeredUnit(timer: string): string {
  return `${timer.slice(0, timer.lastIndexOf("."))}.service`;
}

/**
 * The unit a trigger unit's file starts (a .timer's Unit=, specifiers expanded, else its own name with .service);
 * undefined for other unit types and for a Unit= that names no valid unit (the file's check refuses that).
 */
export function triggeredUnitOf(name: string, file: UnitFile): string | undefined {
  if (parseUnitName(name).type !== "timer") return undefined;
  const u = get(file, "Timer", "Unit");
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
