// The one endpoint grammar of every client flag and variable (--endpoint, BERTH_ENDPOINT, the console, --tunnel):
//   HOST:PORT            a node's msgpack client port (--client-addr): anonymous, or the etcd user of a client
//                        certificate or --username
//   unix:///PATH         a node's unix socket (--client-socket): admin, if you may open it
//   http(s)://HOST:PORT  etcd's HTTP API (--http-addr), for etcdctl and curl: berth does not speak it, and says
//                        which endpoint to use instead
export type Endpoint =
  | { kind: "tcp"; text: string; host: string; port: number }
  | { kind: "unix"; text: string; path: string }
  | { kind: "http"; text: string };

/** The unix socket of a node installed with deploy/install.sh (its systemd unit sets --client-socket). */
export const DEPLOYED_SOCKET = "/run/berth/berth.sock";

/** Where the CLI looks when no endpoint is given: the deployed node's socket (admin), then its loopback port. */
export const DEFAULT_ENDPOINTS = [`unix://${DEPLOYED_SOCKET}`, "127.0.0.1:4001"];

export class EndpointError extends Error {}

export function parseEndpoint(text: string): Endpoint {
  const t = text.trim();
  if (t.startsWith("unix://")) {
    const path = t.slice("unix://".length);
    if (!path.startsWith("/"))
      throw new EndpointError(`endpoint "${text}": a unix socket is unix:///ABSOLUTE/PATH (three slashes)`);
    return { kind: "unix", text: t, path };
  }
  if (/^https?:\/\//i.test(t)) return { kind: "http", text: t };
  const m = /^(?:\[([^\]]+)\]|([^:/]+)):(\d{1,5})$/.exec(t);
  if (!m)
    throw new EndpointError(`endpoint "${text}" must be HOST:PORT, unix:///PATH or http(s)://HOST:PORT`);
  return { kind: "tcp", text: t, host: m[1] ?? m[2]!, port: Number(m[3]) };
}

/** Why berth cannot use an http(s):// endpoint, and what to give instead. */
export function httpEndpointRefusal(text: string): string {
  return (
    `${text} is etcd's HTTP API (for etcdctl and curl); berth talks to a node's msgpack client port or its unix ` +
    "socket instead: --endpoint HOST:PORT (the node's --client-addr, default 127.0.0.1:4001) or " +
    `unix:///PATH (its --client-socket, ${DEPLOYED_SOCKET} when installed with deploy/install.sh)`
  );
}
