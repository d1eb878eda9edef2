import type { FlagSpec, Parsed } from "./flags.ts";

/** A subcommand: its flags are parsed before run() is called; run() returns the exit code. */
export interface Command {
  name: string;
  summary: string;
  /** Argument synopsis after the command name, e.g. "KEY VALUE". */
  usage: string;
  /** Longer help text: what it does, examples. */
  description?: string;
  flags: FlagSpec[];
  run(parsed: Parsed): Promise<number>;
}

/** A command with subcommands (`berth kv set`, `berth cluster members`). */
export interface CommandGroup {
  name: string;
  summary: string;
  subcommands: Command[];
}

export type CommandEntry = Command | CommandGroup;

export function isGroup(c: CommandEntry): c is CommandGroup {
  return "subcommands" in c;
}
