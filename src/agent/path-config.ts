// A .path unit's [Path] section turned into what the path runner needs (systemd.path(5)). Pure: throws
// UnitFileError (with the line) for what systemd would refuse to load.

import { isAbsolute, normalize } from "node:path";
import { expandDescription } from "../unit/deps.ts";
import { getAll, type SpecifierContext, type UnitFile } from "../unit/unit-file.ts";
import { sectionReader, type TriggerLimit, triggeredUnit, triggerLimitOf } from "./trigger-config.ts";

export type PathKind = "PathExists" | "PathExistsGlob" | "PathChanged" | "PathModified" | "DirectoryNotEmpty";
export const PATH_KINDS: readonly PathKind[] = [
  "PathExists",
  "PathExistsGlob",
  "PathChanged",
  "PathModified",
  "DirectoryNotEmpty",
];

export interface PathSpec {
  kind: PathKind;
  path: string;
}

export interface PathConfig {
  name: string;
  description: string;
  /** The unit it starts: Unit=, else the path unit's own name with .service. */
  unit: string;
  specs: PathSpec[];
  /** MakeDirectory=: the watched directories are made (DirectoryMode=) when the unit starts. */
  makeDirectory: boolean;
  directoryMode: number;
  triggerLimit: TriggerLimit;
}

export function pathConfigOf(name: string, file: UnitFile, ctx: SpecifierContext): PathConfig {
  const r = sectionReader(file, "Path", name);
  const specs: PathSpec[] = [];
  for (const kind of PATH_KINDS) {
    for (const v of getAll(file, "Path", kind)) {
      if (!isAbsolute(v)) r.fail(`${kind}=${v}: the path must be absolute`, kind);
      specs.push({ kind, path: normalize(v) });
    }
  }
  // systemd: "Path unit lacks path setting. Refusing."
  if (specs.length === 0)
    r.fail(
      "a path unit needs at least one of PathExists=, PathExistsGlob=, PathChanged=, PathModified=, DirectoryNotEmpty=",
    );
  const unit = triggeredUnit(file, "Path", "Unit", ctx, r, {
    types: ["path"],
    why: "a path unit cannot trigger another path unit",
  });
  return {
    name,
    description: expandDescription(file, ctx) ?? name,
    unit,
    specs,
    makeDirectory: r.bool("MakeDirectory", false),
    directoryMode: r.mode("DirectoryMode", 0o755),
    triggerLimit: triggerLimitOf(r),
  };
}
