import { clusterCommands } from "./cluster.ts";
import type { CommandEntry } from "./command.ts";
import { kvCommands } from "./kv.ts";
import { listMachines } from "./machines.ts";
import { nodeCommand } from "./node-command.ts";
import { unitCommands } from "./units.ts";

/** Every subcommand of `berth`, in the order help lists them. */
export const COMMANDS: CommandEntry[] = [
  nodeCommand,
  kvCommands,
  clusterCommands,
  ...unitCommands,
  listMachines,
];
