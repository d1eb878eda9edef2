// How a connection to a node's HTTP port (etcd's API) becomes a Berth client connection, for `--endpoint http://...`:
//
//   client → GET /berth HTTP/1.1, Connection: Upgrade, Upgrade: berth-msgpack/<protocol> [, Authorization: Basic ...]
//   node   → HTTP/1.1 101 Switching Protocols, Connection: Upgrade, Upgrade: berth-msgpack/<its protocol>
//
// then the Berth handshake (handshake.ts) runs on the same bytes. Any other request, an Upgrade to anything else
// included, stays etcd's API (which answers 404 on /berth, as etcd does). The version in the token is not checked
// here: the handshake refuses another protocol generation with its own words.
import { PROTOCOL_VERSION } from "../version.ts";

export const UPGRADE_PATH = "/berth";
export const UPGRADE_TOKEN = "berth-msgpack";

/** Whether a request head asks to switch to Berth's client protocol. */
export function isBerthUpgrade(
  method: string,
  target: string,
  header: (name: string) => string | undefined,
): boolean {
  if (method !== "GET" || target !== UPGRADE_PATH) return false;
  const connection = (header("connection") ?? "").toLowerCase().split(",");
  if (!connection.some((t) => t.trim() === "upgrade")) return false;
  return new RegExp(`^${UPGRADE_TOKEN}/\\d+$`, "i").test((header("upgrade") ?? "").trim());
}

/** The node's answer that switches protocols; the handshake's bytes follow it. */
export const SWITCHING_PROTOCOLS =
  "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n" +
  `Upgrade: ${UPGRADE_TOKEN}/${PROTOCOL_VERSION}\r\n\r\n`;

/** The answer to an upgrade whose credentials are wrong (etcd's 401 for bad Basic credentials), then close. */
export const UPGRADE_UNAUTHORIZED = (() => {
  const body = '{"message":"Insufficient credentials"}';
  return (
    "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n" +
    `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`
  );
})();

/** The request a client sends; `basic` is "name:password" for an etcd user (HTTP Basic). */
export function upgradeRequest(host: string, basic: string | null): string {
  return (
    `GET ${UPGRADE_PATH} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\n` +
    `Upgrade: ${UPGRADE_TOKEN}/${PROTOCOL_VERSION}\r\n` +
    (basic === null ? "" : `Authorization: Basic ${Buffer.from(basic, "utf8").toString("base64")}\r\n`) +
    "\r\n"
  );
}

/** A request line: "METHOD SP target" (Go's server accepts any token as a method), as curl or etcdctl send it. */
export function looksLikeHttp(first: Buffer): boolean {
  const text = first.toString("latin1", 0, Math.min(first.length, 16));
  return /^[A-Z]{3,10} /.test(text) || (first.length < 11 && /^[A-Z]+$/.test(text));
}
