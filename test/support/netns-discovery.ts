// The discovery service of the multi-host test as an operator would run it: Debian's etcd-discovery with its etcd
// v2 backend, on a machine of its own on the bridge (test/support/netns.ts). On that machine the package's fixed
// config path and its default bind (:8087 on every interface) are the machine's own: its /etc is an overlay and its
// interfaces are its namespace's, so nothing listens outside 172.17.8.0/24. The backend listens on its loopback.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { waitFor } from "./cluster.ts";
import { DISCOVERY_BINARY, FIXED_CONFIG } from "./etcd-discovery.ts";
import { Machine, type Network } from "./netns.ts";

export const DISCOVERY_PORT = 8087;
const BACKEND = "http://127.0.0.1:2379";

/** Boots the discovery machine at `ip` and starts its services; resolves with the service's URL once it answers. */
export async function startDiscoveryMachine(
  network: Network,
  index: number,
  ip: string,
): Promise<{ machine: Machine; url: string }> {
  if (!existsSync(DISCOVERY_BINARY) || !existsSync("/usr/bin/etcd"))
    throw new Error(
      `${DISCOVERY_BINARY} or etcd is missing: scripts/setup.sh installs etcd-discovery and etcd-server`,
    );
  const machine = new Machine(network, index, "discovery", ip);
  const url = `http://${ip}:${DISCOVERY_PORT}`;
  const conf = join(machine.root, FIXED_CONFIG);
  mkdirSync(dirname(conf), { recursive: true });
  writeFileSync(
    conf,
    `[server]\nprefix_url=${url}\nweb_service_address=:${DISCOVERY_PORT}\n\n[etcd]\nendpoint_location=${BACKEND}\n`,
  );
  await machine.boot();
  machine.startService("etcd", [
    "--name=discovery",
    "--data-dir=/var/lib/etcd-discovery-backend",
    "--enable-v2=true",
    `--listen-client-urls=${BACKEND}`,
    `--advertise-client-urls=${BACKEND}`,
    "--listen-peer-urls=http://127.0.0.1:2380",
    "--initial-advertise-peer-urls=http://127.0.0.1:2380",
    "--initial-cluster=discovery=http://127.0.0.1:2380",
    "--log-level=warn",
  ]);
  machine.startService(DISCOVERY_BINARY, []);
  // Ready when a token can be made: the backend healthy, and the service answering on the bridge.
  try {
    await waitFor(
      "the discovery machine's etcd healthy",
      async () =>
        (await machine.run("curl", ["-sf", `${BACKEND}/health`])).stdout.includes('"health":"true"'),
      30_000,
      200,
    );
    await waitFor(
      "etcd-discovery answering on the bridge",
      async () => (await network.run("curl", ["-sf", "-o", "/dev/null", `${url}/robots.txt`])).code === 0,
      30_000,
      200,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${machine.journal().slice(-3000)}`);
  }
  return { machine, url };
}
