// A .path unit on its machine (systemd.path(5), as systemd's path.c): while `waiting` it watches its paths with
// inotify and starts its unit on this machine (state `running` while that runs) when
//   PathExists=         the path exists                      (checked at start too: fires at once if it does)
//   PathExistsGlob=     a file matching the glob exists      (likewise)
//   DirectoryNotEmpty=  the directory has an entry           (likewise)
//   PathChanged=        the file was closed after a write (IN_CLOSE_WRITE), its attributes changed, it was created,
//                       removed or moved (an entry of it, for a directory) — not on each write
//   PathModified=       as PathChanged=, and on each write (IN_MODIFY)
// Each path's parent directories are watched too, so a path that appears later is seen. While the unit runs the
// paths are not watched; when it is inactive again they are checked and watched afresh. MakeDirectory=yes makes
// the directories of PathChanged=, PathModified= and DirectoryNotEmpty= (DirectoryMode=) when the unit starts.
import { accessSync, mkdirSync, readdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import {
  type Activation,
  IN_ATTRIB,
  IN_CLOSE_WRITE,
  IN_CREATE,
  IN_DELETE,
  IN_DELETE_SELF,
  IN_MODIFY,
  IN_MOVE_SELF,
  IN_MOVED_FROM,
  IN_MOVED_TO,
  type Inotify,
} from "./activation.ts";
import { Activator, type ActivatorHooks } from "./activator.ts";
import type { PathConfig, PathKind, PathSpec } from "./path-config.ts";
import type { RunnerContext, TriggerInfo } from "./unit-types.ts";

const SELF = IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB;
const CHANGED = SELF | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO;
/** What is watched on the path itself (systemd's flags_table); its parents are watched for entries coming and going. */
const FLAGS: Record<PathKind, number> = {
  PathExists: SELF,
  PathExistsGlob: SELF,
  PathChanged: CHANGED,
  PathModified: CHANGED | IN_MODIFY,
  DirectoryNotEmpty: SELF | IN_CREATE | IN_MOVED_TO,
};
const PARENT_FLAGS = SELF | IN_CREATE | IN_MOVED_TO;

interface Watch {
  spec: PathSpec;
  inotify: Inotify | null;
  /** The watch of the path itself, or -1 while it does not exist. */
  primary: number;
  /** Each parent directory's watch, with the name of its entry on the way to the path. */
  towards: Map<number, string>;
  /** PathChanged=/PathModified=: whether the path existed at the last check (its coming and going fires too). */
  existed: boolean;
}

export class PathRunner extends Activator {
  protected readonly waitingSub = "waiting";
  private watches: Watch[] = [];
  private act: Activation | null = null;

  constructor(
    hash: string,
    readonly config: PathConfig,
    ctx: RunnerContext,
    hooks: ActivatorHooks,
    activation: Activation | null,
  ) {
    super(config.name, hash, config.unit, config.triggerLimit, ctx, hooks, activation);
  }

  protected open(activation: Activation): void {
    this.act = activation;
    if (this.config.makeDirectory) {
      for (const s of this.config.specs)
        if (s.kind !== "PathExists" && s.kind !== "PathExistsGlob")
          mkdirSync(s.path, { recursive: true, mode: this.config.directoryMode });
    }
    this.watches = this.config.specs.map((spec) => ({
      spec,
      inotify: null,
      primary: -1,
      towards: new Map(),
      existed: exists(spec.path),
    }));
  }

  protected close(): void {
    this.disarm();
  }

  protected override disarm(): void {
    for (const w of this.watches) {
      w.inotify?.close();
      w.inotify = null;
    }
  }

  /** systemd's path_enter_waiting: check, watch, and check again (a change between the two is not lost). */
  protected arm(initial: boolean): boolean {
    if (this.good(initial)) return true;
    for (const w of this.watches) this.watch(w);
    return this.good(false);
  }

  protected poll(): boolean {
    let events = false;
    for (const w of this.watches) {
      for (const e of w.inotify?.drain() ?? []) {
        const kind = w.spec.kind;
        if ((kind === "PathChanged" || kind === "PathModified") && e.wd === w.primary) return true;
        // Another entry of a parent (a busy /tmp): not on the way to the path. Watching afresh for it would open
        // a new inotify, and an event on the path arriving meanwhile would be lost.
        const next = w.towards.get(e.wd);
        if (e.name !== undefined && next !== undefined && e.name !== next) continue;
        events = true;
      }
    }
    // Something moved along the way (a parent made, the path created or removed): check, and watch afresh.
    return events && this.arm(false);
  }

  protected info(): TriggerInfo {
    return { unit: this.config.unit };
  }

  private watch(w: Watch): void {
    w.inotify?.close();
    const ino = this.act!.inotify();
    w.inotify = ino;
    w.primary = -1;
    w.towards.clear();
    const path = w.spec.path;
    for (let child = path, p = dirname(path); child !== p; child = p, p = dirname(p)) {
      const wd = ino.add(p, PARENT_FLAGS);
      if (wd >= 0) w.towards.set(wd, basename(child));
    }
    w.primary = ino.add(path, FLAGS[w.spec.kind]);
  }

  /** Whether a condition holds now (systemd's path_check_good). */
  private good(initial: boolean): boolean {
    let any = false;
    for (const w of this.watches) {
      const { kind, path } = w.spec;
      switch (kind) {
        case "PathExists":
          any ||= exists(path);
          break;
        case "PathExistsGlob":
          any ||= globExists(path);
          break;
        case "DirectoryNotEmpty":
          any ||= dirNotEmpty(path);
          break;
        default: {
          const now = exists(path);
          if (!initial && now !== w.existed) any = true;
          w.existed = now;
        }
      }
    }
    return any;
  }
}

function exists(path: string): boolean {
  try {
    accessSync(path);
    return true;
  } catch {
    return false;
  }
}

function dirNotEmpty(path: string): boolean {
  try {
    return readdirSync(path).length > 0;
  } catch {
    return false;
  }
}

/** Whether a path matches the glob (`*`, `?`, `[...]` in any component, as glob(3)). */
export function globExists(pattern: string): boolean {
  const parts = pattern.split("/").filter((p) => p !== "");
  const walk = (dir: string, i: number): boolean => {
    if (i === parts.length) return true;
    const part = parts[i]!;
    if (!/[*?[]/.test(part)) {
      const next = join(dir, part);
      return exists(next) && walk(next, i + 1);
    }
    const re = globRegExp(part);
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return false;
    }
    return entries.some(
      (e) => re.test(e) && !(e.startsWith(".") && !part.startsWith(".")) && walk(join(dir, e), i + 1),
    );
  };
  return walk("/", 0);
}

function globRegExp(part: string): RegExp {
  let re = "";
  for (let i = 0; i < part.length; i++) {
    const c = part[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = part.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        const body = part
          .slice(i + 1, end)
          .replace(/^!/, "^")
          .replace(/\\/g, "\\\\");
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}
