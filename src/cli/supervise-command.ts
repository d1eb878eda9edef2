// `berth supervise`: the process that owns a node's units (src/agent/supervisor.ts). `berth node` starts it; an
// operator has no need to, but may stop it with SIGTERM (every unit is then stopped as by `berth stop`).
import { hostname } from "node:os";
import { runSupervisor } from "../agent/supervisor.ts";
import type { Command } from "./command.ts";
import { EXIT, UsageError } from "./exit-codes.ts";

export const superviseCommand: Command = {
  name: "supervise",
  summary: "run the process that owns a node's units (started by berth node)",
  usage: "--agent-dir DIR --machine-id ID --fence DURATION",
  description: `
Runs this machine's units for berth node, which starts it in its own session: the units outlive a node restart,
and the node adopts them when it returns. It kills every unit when the node has not renewed the machine's lease
for the fence time (the node gone, or cut off from a quorum), and exits once no node and no unit is left.`,
  flags: [
    {
      name: "agent-dir",
      type: "string",
      description: "the node's agent directory (DATA_DIR/agent)",
      value: "DIR",
    },
    { name: "machine-id", type: "string", description: "the node's machine id", value: "ID" },
    { name: "fence", type: "duration", description: "how long a lease renewal lets the units run" },
    { name: "docker-socket", type: "string", description: "the Docker engine's socket", value: "PATH" },
  ],
  async run(parsed) {
    const f = parsed.flags;
    const agentDir = f["agent-dir"];
    const machineId = f["machine-id"];
    const fenceMs = f.fence;
    if (typeof agentDir !== "string" || typeof machineId !== "string" || typeof fenceMs !== "number")
      throw new UsageError("berth supervise needs --agent-dir, --machine-id and --fence");
    await runSupervisor({
      agentDir,
      machineId,
      hostname: hostname(),
      fenceMs,
      dockerSocket: typeof f["docker-socket"] === "string" ? f["docker-socket"] : undefined,
    });
    // Done: whatever the agent still holds open (timers, engine connections) must not keep the process alive.
    process.exit(EXIT.ok);
  },
};
