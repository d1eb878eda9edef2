// A cluster whose members can go silent (issue 24, goal 2): a machine cut off the network without a FIN. Every
// member's peer listener sits behind the chaos harness's fault proxy (test/chaos/proxy.ts), so members know each
// other by their proxies' addresses, and so does every client's HTTP connection; silencing a member black-holes
// all of its links (peers dialling it, it dialling peers, clients dialling it): connections stay open, bytes vanish,
// requests time out. Berth dials its peers from its own address, so the proxies tell callers apart by IP; etcd dials
// from 127.0.0.1 whatever it listens on, so they ask /proc which member holds the calling socket.
import { NodeProxy, PeerNetwork } from "../test/chaos/proxy.ts";
import type { Cluster, ClusterPlacement } from "./etcd-compare.ts";
import { socketOwner } from "./socket-owner.ts";

/** The proxies' one caller on the client side: every request of the bench's writers. */
const CLIENT = "client";

export interface SilenceableCluster {
  /** The cluster, with `httpUrls` pointing at the client proxies. */
  cluster: Cluster;
  /** Black-holes every link of member `i`: its peer links both ways and its clients. */
  silence(i: number): void;
  /** Peer connections no member could be found for (forwarded unblocked; should stay 0). */
  strangers(): number;
  close(): Promise<void>;
}

/**
 * Starts a cluster (`start` is startBerth or startEtcd with its arguments bound) on `hosts` behind proxies.
 * `byProcess`: tell peer callers apart by the process holding the socket (etcd) rather than by IP (Berth).
 */
export async function startSilenceable(
  start: (placement: ClusterPlacement) => Promise<Cluster>,
  hosts: string[],
  byProcess: boolean,
): Promise<SilenceableCluster> {
  let net: PeerNetwork | null = null;
  let names: string[] = [];
  const pids = new Map<number, string>();
  let strangers = 0;
  const callerOf = byProcess
    ? (ip: string, port: number, proxy: string) => {
        const name = socketOwner(`${ip}:${port}`, proxy, pids);
        if (name === undefined) strangers++;
        return name;
      }
    : undefined;
  const clientProxies: NodeProxy[] = [];
  const closeAll = async () => {
    await net?.close();
    await Promise.all(clientProxies.map((p) => p.close()));
  };
  try {
    const real = await start({
      hosts,
      peerProxy: async (members) => {
        names = members.map((m) => m.name);
        net = await PeerNetwork.create(members, callerOf);
        const n = net;
        return (name) => n.addressOf(name);
      },
    });
    for (const [i, p] of real.procs.entries()) if (p.pid) pids.set(p.pid, names[i]!);
    for (const [i, url] of real.httpUrls.entries()) {
      const u = new URL(url);
      const p = new NodeProxy(
        names[i]!,
        u.hostname,
        { host: u.hostname, port: Number(u.port) },
        () => CLIENT,
      );
      await p.start();
      clientProxies.push(p);
    }
    const cluster = { ...real, httpUrls: clientProxies.map((p) => `http://${p.address}`) };
    return {
      cluster,
      silence: (i) => {
        const victim = names[i]!;
        net!.partition([[victim], names.filter((n) => n !== victim)], "blackhole");
        clientProxies[i]!.block(CLIENT, "blackhole");
      },
      strangers: () => strangers,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
