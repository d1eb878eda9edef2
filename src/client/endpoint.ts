// The one endpoint grammar of every client flag and variable (--endpoint, BERTH_ENDPOINT, the console, --tunnel):
//   HOST:PORT            a node's msgpack client port (--client-addr): anonymous, or the etcd user of a client
//                        certificate or --username
//   unix:///PATH         a node's unix socket (--client-socket): admin, if you may open it
//   http(s)://HOST:PORT  a node's HTTP port (--http-addr, etcd's API): the connection switches to the msgpack
//                        protocol with an HTTP Upgrade (src/wire/http-upgrade.ts); as whom the request says (guest,
//                        Basic credentials of --username, a client certificate), never admin
import { HostPortError, splitHostPort } from "../host-port.ts";

export type Endpoint =
  | { kind: "tcp"; text: string; host: string; port: number }
  | { kind: "unix"; text: string; path: string }
  | { kind: "http"; text: string; host: string; port: number; secure: boolean };

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
  if (/^https?:\/\//i.test(t)) return parseHttpEndpoint(text, t);
  try {
    const { host, port } = splitHostPort(t);
    return { kind: "tcp", text: t, host, port };
  } catch (err) {
    if (!(err instanceof HostPortError)) throw err;
    throw new EndpointError(
      `endpoint "${text}" must be HOST:PORT, unix:///PATH or http(s)://HOST:PORT (${err.reason})`,
    );
  }
}

/** http(s)://HOST[:PORT][/]: the port defaults as in URLs (80, 443); a path or query has no meaning here. */
function parseHttpEndpoint(text: string, t: string): Endpoint {
  let url: URL;
  try {
    url = new URL(t);
  } catch {
    throw new EndpointError(`endpoint "${text}" is not a URL: http(s)://HOST:PORT`);
  }
  if (
    (url.pathname !== "/" && url.pathname !== "") ||
    url.search !== "" ||
    url.hash !== "" ||
    url.username !== ""
  )
    throw new EndpointError(`endpoint "${text}" must be http(s)://HOST:PORT, without a path, query or user`);
  const secure = url.protocol === "https:";
  const port = url.port === "" ? (secure ? 443 : 80) : Number(url.port);
  return { kind: "http", text: t, host: url.hostname.replace(/^\[|\]$/g, ""), port, secure };
}
