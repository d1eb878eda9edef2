// `berth node`: run a cluster member in the foreground (under systemd on every machine).
import { applyWhenUp } from "../cloud-config/apply.ts";
import { DataDirLockedError } from "../datadir/lock.ts";
import { bootstrapFromDiscovery, DiscoveryFullError } from "../node/discovery/first-start.ts";
import { BerthNode } from "../node/node.ts";
import { readCloudConfig } from "./cloud-config-command.ts";
import type { Command } from "./command.ts";
import { EXIT } from "./exit-codes.ts";
import { NODE_FLAGS, resolveNodeConfig } from "./node-config.ts";

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

With --discovery URL instead of --initial-cluster, a first start learns the founding members from an etcd v2
discovery token (\`berth discovery new\`): it registers NAME=PEER-URL and waits until the token's size of members
have. A node that finds the token full joins the cluster as a learner (a non-voting member running units), or
exits with status 5 under --discovery-fallback=exit. Every member needs the same --cluster-secret-file.

With --cloud-config FILE (user-data), the file's berth: section sets flags (those given on the command line win,
the section wins over --config), and its units are applied at every start once the cluster is up, as
\`berth cloud-config apply\` does: each unit submitted once whichever machines apply the file.

Example:
  berth node --name n1 --data-dir /var/lib/berth --peer-addr 127.0.0.1:7001 --client-addr 127.0.0.1:4001 \\
    --initial-cluster n1=127.0.0.1:7001,n2=127.0.0.2:7001,n3=127.0.0.3:7001 --cluster-secret-file /etc/berth/secret`,
  flags: NODE_FLAGS,
  async run(parsed) {
    const cloud = parsed.flags["cloud-config"] ? readCloudConfig(String(parsed.flags["cloud-config"])) : null;
    const config = resolveNodeConfig(parsed.flags, cloud?.node);
    const log = (line: string) =>
      process.stderr.write(`${new Date().toISOString()} ${config.name} ${line}\n`);
    try {
      await bootstrapFromDiscovery(config, log);
    } catch (err) {
      log(`cannot start: ${(err as Error).message}`);
      return err instanceof DiscoveryFullError ? EXIT.conflict : EXIT.error;
    }
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
    if (cloud && cloud.units.length > 0)
      void applyWhenUp(node.unitsApi(), cloud.units, log, () => node.isStopping());
    return -1;
  },
};
