import { clusterCommands } from "./cluster.ts";
import type { CommandEntry } from "./command.ts";
import { kvCommands } from "./kv.ts";
import { nodeCommand } from "./node-command.ts";

/** Every subcommand of `berth`, in the order help lists them. */
export const COMMANDS: CommandEntry[] = [nodeCommand, kvCommands, clusterCommands];
