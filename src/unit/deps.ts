// A unit's [Unit] dependencies (systemd.unit(5)) as the agent uses them between the units of one machine.
//
// Pure and forgiving: a unit that cannot be parsed has no dependencies (its runner reports the load error), and a
// value whose specifiers cannot be expanded is skipped with a warning, as systemd's config_parse_unit_deps does.
import {
  expandSpecifiers,
  get,
  getAll,
  parseBoolean,
  parseUnitFile,
  type SpecifierContext,
  type UnitFile,
} from "./unit-file.ts";

export interface UnitDeps {
  /** After=: this unit starts after these (and stops before them). */
  after: string[];
  /** Before=: these start after this unit. */
  before: string[];
  /** Requires= and BindsTo=: pulled in; their failure fails this unit, their stop stops it. */
  requires: string[];
  /** Wants=: pulled in, nothing more. */
  wants: string[];
  /** [Install] WantedBy=: these units want this one (agent/install.ts turns it around). */
  wantedBy: string[];
  /** [Install] RequiredBy=: these units require this one. */
  requiredBy: string[];
  /** PartOf=: an explicit stop of these stops this unit too (the cluster sets its desired state,
   * src/sched/unit-service.ts). */
  partOf: string[];
  /** Description= with specifiers expanded (the unit name when there is none). */
  description: string;
  /** Type=oneshot without RemainAfterExit=: "inactive" after a successful run is its finished state. */
  oneshot: boolean;
  warnings: string[];
}

export function noDeps(name: string): UnitDeps {
  return {
    after: [],
    before: [],
    requires: [],
    wants: [],
    wantedBy: [],
    requiredBy: [],
    partOf: [],
    description: name,
    oneshot: false,
    warnings: [],
  };
}

/** Description= with %i, %n, %p… expanded; the raw text when a specifier cannot be expanded. */
export function expandDescription(file: UnitFile, ctx: SpecifierContext): string | undefined {
  const d = get(file, "Unit", "Description");
  if (d === undefined) return undefined;
  try {
    return expandSpecifiers(d, ctx);
  } catch {
    return d;
  }
}

export function unitDepsOf(name: string, text: string, ctx: Omit<SpecifierContext, "unitName">): UnitDeps {
  let file: UnitFile;
  try {
    file = parseUnitFile(text, name);
  } catch {
    return noDeps(name);
  }
  const sctx: SpecifierContext = { ...ctx, unitName: name };
  const warnings: string[] = [];
  const list = (...keys: string[]): string[] => {
    const out: string[] = [];
    for (const key of keys) {
      const section = key === "WantedBy" || key === "RequiredBy" ? "Install" : "Unit";
      for (const value of getAll(file, section, key)) {
        // An empty assignment resets the list, as in systemd.
        if (value.trim() === "") {
          out.length = 0;
          continue;
        }
        for (const word of value.split(/\s+/)) {
          if (word === "") continue;
          let unit: string;
          try {
            unit = expandSpecifiers(word, sctx);
          } catch (e) {
            warnings.push(`${key}=${word}: ${(e as Error).message}, ignoring`);
            continue;
          }
          if (unit === name) {
            warnings.push(`${key}=${unit}: a dependency on the unit itself, ignoring`);
            continue;
          }
          if (!out.includes(unit)) out.push(unit);
        }
      }
    }
    return out;
  };
  const type = get(file, "Service", "Type") ?? "simple";
  const rae = parseBoolean(get(file, "Service", "RemainAfterExit") ?? "no") ?? false;
  const requires = list("Requires", "BindsTo");
  const wants = list("Wants");
  const after = list("After");
  // A target starts after what it wants or requires (systemd.target(5), DefaultDependencies=yes): it is active
  // once they are.
  if (name.endsWith(".target") && (parseBoolean(get(file, "Unit", "DefaultDependencies") ?? "yes") ?? true))
    for (const u of [...requires, ...wants]) if (!after.includes(u)) after.push(u);
  return {
    after,
    before: list("Before"),
    requires,
    wants,
    wantedBy: list("WantedBy"),
    requiredBy: list("RequiredBy"),
    partOf: list("PartOf"),
    description: expandDescription(file, sctx) ?? name,
    oneshot: !file.sections.has("Container") && type === "oneshot" && !rae,
    warnings,
  };
}
