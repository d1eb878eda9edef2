import { cloudConfigCommands } from "./cloud-config-command.ts";
import { clusterCommands } from "./cluster.ts";
import type { CommandEntry } from "./command.ts";
import { consoleCommand } from "./console-command.ts";
import { discoveryCommands } from "./discovery-command.ts";
import { journal } from "./journal.ts";
import { kvCommands } from "./kv.ts";
import { machineCommands } from "./machine.ts";
import { listMachines } from "./machines.ts";
import { nodeCommand } from "./node-command.ts";
import { backupCommand, snapshotCommands } from "./snapshot-command.ts";
import { ssh } from "./ssh.ts";
import { status } from "./status.ts";
import { superviseCommand } from "./supervise-command.ts";
import { unitCommands } from "./units.ts";

/** Every subcommand of `berth`, in the order help lists them. */
export const COMMANDS: CommandEntry[] = [
  nodeCommand,
  superviseCommand,
  kvCommands,
  clusterCommands,
  discoveryCommands,
  cloudConfigCommands,
  snapshotCommands,
  backupCommand,
  ...unitCommands,
  status,
  journal,
  listMachines,
  machineCommands,
  ssh,
  consoleCommand,
];
