// The console's `:` commands (as k9s): what each one is, how a typed line completes (Tab), and what a line means.
// The reducer applies what parseCommand returns; completion and parsing are pure.
import type { ViewName } from "./model.ts";

export interface CommandSpec {
  name: string;
  /** What follows the name, as help shows it ("" for none). */
  args: string;
  help: string;
}

export const COMMANDS: readonly CommandSpec[] = [
  { name: "machines", args: "", help: "the Machines view" },
  { name: "units", args: "", help: "the Units view" },
  { name: "keys", args: "[/path]", help: "the Keys view (at /path)" },
  { name: "members", args: "", help: "the Members view" },
  { name: "containers", args: "", help: "the Containers view (every machine's containers)" },
  { name: "ctx", args: "NAME", help: "switch to a cluster the console config names (contexts)" },
  { name: "sort", args: "COLUMN [asc|desc]", help: "sort the view by a column (again: the other way)" },
  { name: "help", args: "", help: "the keys" },
  { name: "q", args: "", help: "quit" },
  { name: "quit", args: "", help: "quit" },
];

export type Command =
  | { kind: "view"; view: ViewName; keyDir?: string }
  | { kind: "sort"; column: string; desc?: boolean }
  | { kind: "context"; name: string }
  | { kind: "help" }
  | { kind: "quit" }
  | { kind: "none" }
  | { kind: "error"; text: string };

/** What the line (without its ":") asks for. */
export function parseCommand(line: string): Command {
  const [word = "", ...args] = line.trim().split(/\s+/);
  if (word === "") return { kind: "none" };
  const matches = COMMANDS.filter((c) => c.name.startsWith(word));
  const spec = matches.find((c) => c.name === word) ?? (matches.length === 1 ? matches[0] : undefined);
  if (!spec)
    return {
      kind: "error",
      text: matches.length
        ? `:${word} is ambiguous (${matches.map((c) => c.name).join(", ")})`
        : `no command :${word} (Tab completes; :help lists the keys)`,
    };
  switch (spec.name) {
    case "machines":
    case "units":
    case "members":
    case "containers":
      return { kind: "view", view: spec.name };
    case "keys": {
      const dir = args[0];
      if (dir !== undefined && !dir.startsWith("/"))
        return { kind: "error", text: `:keys ${dir}: a path starts with /` };
      return dir === undefined ? { kind: "view", view: "keys" } : { kind: "view", view: "keys", keyDir: dir };
    }
    case "sort": {
      if (!args[0]) return { kind: "error", text: "usage: :sort COLUMN [asc|desc]" };
      const dir = args[1];
      if (dir !== undefined && dir !== "asc" && dir !== "desc")
        return { kind: "error", text: `:sort ${args[0]} ${dir}: asc or desc` };
      return dir === undefined
        ? { kind: "sort", column: args[0] }
        : { kind: "sort", column: args[0], desc: dir === "desc" };
    }
    case "ctx":
      return args[0] ? { kind: "context", name: args[0] } : { kind: "error", text: "usage: :ctx NAME" };
    case "help":
      return { kind: "help" };
    default:
      return { kind: "quit" };
  }
}

/**
 * The line completed as far as it is unambiguous: a command name, (after ":sort ") a column of the view, or (after
 * ":ctx ") a context's name. The line unchanged when nothing (or nothing more) can be added.
 */
export function complete(line: string, columns: string[], contexts: string[] = []): string {
  const ctxArg = /^\s*ctx\s+(\S*)$/.exec(line);
  if (ctxArg) {
    const part = ctxArg[1]!;
    const options = contexts.filter((c) => c.startsWith(part));
    const done = commonPrefix(options);
    return done.length > part.length || options.length === 1
      ? `ctx ${done}${options.length === 1 ? " " : ""}`
      : line;
  }
  const sortArg = /^(\s*s(?:o(?:r(?:t)?)?)?\s+)(\S*)$/.exec(line);
  if (sortArg && "sort".startsWith(line.trim().split(/\s+/)[0]!)) {
    const [, head, part] = sortArg;
    const options = columns.map((c) => c.toLowerCase()).filter((c) => c.startsWith(part!.toLowerCase()));
    const done = commonPrefix(options);
    return done.length > part!.length ? `sort ${done}${options.length === 1 ? " " : ""}` : `${head}${part}`;
  }
  if (/\s/.test(line.trim())) return line;
  const word = line.trim();
  const options = COMMANDS.map((c) => c.name).filter((n) => n.startsWith(word));
  const done = commonPrefix(options);
  if (options.length === 1) return `${done} `;
  return done.length > word.length ? done : line;
}

/** The commands a typed line could still become (shown under the prompt). */
export function candidates(line: string): string[] {
  const word = line.trim().split(/\s+/)[0] ?? "";
  return COMMANDS.filter((c) => c.name.startsWith(word)).map(
    (c) => `:${c.name}${c.args ? ` ${c.args}` : ""}`,
  );
}

function commonPrefix(words: string[]): string {
  if (words.length === 0) return "";
  let p = words[0]!;
  for (const w of words) while (!w.startsWith(p)) p = p.slice(0, -1);
  return p;
}
