import type { CommandEntry } from "./command.ts";

/** Every subcommand of `berth`, in the order help lists them. */
export const COMMANDS: CommandEntry[] = [];
