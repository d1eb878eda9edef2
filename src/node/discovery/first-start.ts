// What `berth node --discovery URL` does before the node starts, on a first start only: learn the founding members
// from the token (this member among them), or, when the token is full, join the cluster as a learner (or refuse,
// with --discovery-fallback=exit). The result is written into the configuration as --initial-cluster or --join
// would have set it, and kept in the data directory like them: a restart never asks the token again.
import { memberId } from "../cluster-service.ts";
import { dialSource } from "../node.ts";
import { fmt, type NodeConfig } from "../node-config.ts";
import { discover } from "./bootstrap.ts";
import { joinAsLearner } from "./join-as-learner.ts";

/** The token is full and --discovery-fallback=exit: the process exits with this message. */
export class DiscoveryFullError extends Error {}

export async function bootstrapFromDiscovery(config: NodeConfig, log: (line: string) => void): Promise<void> {
  const url = config.discovery;
  if (!url) return;
  const self = fmt(config.peerAddr);
  const found = await discover({
    url,
    name: config.name,
    memberId: memberId(config.name),
    peerUrl: `${config.peerTls ? "https" : "http"}://${self}`,
    log,
  });
  const list = [...found.members].map(([n, a]) => `${n}=${a}`).join(",");
  if (found.kind === "founding") {
    if (found.members.get(config.name) !== self)
      throw new Error(
        `the discovery token gives ${config.name} the address ${found.members.get(config.name)}, not ${self}`,
      );
    log(`[discovery] founding members: ${list}`);
    config.initialCluster = found.members;
    config.join = false;
    return;
  }
  if (config.discoveryFallback === "exit")
    throw new DiscoveryFullError(
      `discovery token ${url} is full (${found.size} members: ${list}); --discovery-fallback=exit refuses to join it`,
    );
  log(`[discovery] the token is full (${found.size} members: ${list}); joining as a learner`);
  await joinAsLearner({
    name: config.name,
    peerAddr: self,
    members: found.members,
    secret: config.clusterSecret,
    tls: config.peerTls
      ? { cert: config.peerTls.cert, key: config.peerTls.key, ca: config.peerTls.ca ?? undefined }
      : null,
    dialFrom: dialSource(config.peerListenAddr.host),
    log,
  });
  config.initialCluster = new Map();
  config.join = true;
}
