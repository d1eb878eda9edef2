// `berth node`: run a cluster member in the foreground (under systemd on every machine).
import { NODE_FLAGS, resolveNodeConfig } from "../node/config.ts";
import { DataDirLockedError } from "../node/data-dir-lock.ts";
import { BerthNode } from "../node/node.ts";
import type { Command } from "./command.ts";
import { EXIT } from "./exit-codes.ts";

export const nodeCommand: Command = {
  name: "node",
  summary: "run a cluster member (Raft, the store, the scheduler and the agent)",
  usage: "[FLAGS]",
  description: `
Starts a member in the foreground and logs to stderr. The first start of a cluster names every founding
member in --initial-cluster and shares one --cluster-secret-file; later starts need only --data-dir.
SIGTERM or SIGINT stops it gracefully (a leader hands leadership over first). At start the process re-executes
itself once, in place, with BUN_JSC_useFTLJIT=false (JavaScriptCore's top JIT tier off, for steadier latency);
setting that variable yourself overrides it.

Example:
  berth node --name n1 --data-dir /var/lib/berth --peer-addr 127.0.0.1:7001 --client-addr 127.0.0.1:4001 \\
    --initial-cluster n1=127.0.0.1:7001,n2=127.0.0.2:7001,n3=127.0.0.3:7001 --cluster-secret-file /etc/berth/secret`,
  flags: NODE_FLAGS,
  async run(parsed) {
    const config = resolveNodeConfig(parsed.flags);
    const log = (line: string) =>
      process.stderr.write(`${new Date().toISOString()} ${config.name} ${line}\n`);
    const node = new BerthNode(config, log);
    const shutdown = (signal: string) => {
      log(`${signal} received, shutting down`);
      node.stop().then(
        () => process.exit(EXIT.ok),
        (err) => {
          log(`shutdown failed: ${(err as Error).message}`);
          process.exit(EXIT.error);
        },
      );
    };
    process.on("SIGTERM", () => shutdown("SIGTERM"));
    process.on("SIGINT", () => shutdown("SIGINT"));
    try {
      await node.start();
    } catch (err) {
      log(`cannot start: ${(err as Error).message}`);
      if (err instanceof DataDirLockedError) return EXIT.error; // nothing was started, nothing is touched
      await node.stop().catch(() => {});
      return EXIT.error;
    }
    return -1;
  },
};
