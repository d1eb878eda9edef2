// `--endpoint http(s)://HOST:PORT`: reaches a node's HTTP port (etcd's API) and switches the connection to the
// msgpack client protocol with an HTTP/1.1 Upgrade (src/wire/http-upgrade.ts). The stream it returns is then used
// exactly as a client port's: the Berth handshake runs on it. https:// speaks TLS with the client's TLS settings
// (--ca-file, --cert-file/--key-file); the node knows the caller from the request: a client certificate, or the
// Basic credentials of --username, else guest.
import { connect as netConnect } from "node:net";
import type { Duplex } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import { describeConnectError, describeTlsError, type WireTls } from "../wire/client.ts";
import { AuthError, UnavailableError } from "../wire/errors.ts";
import { upgradeRequest } from "../wire/http-upgrade.ts";
import type { Endpoint } from "./endpoint.ts";

type HttpEndpoint = Extract<Endpoint, { kind: "http" }>;

/** The answer head is a status line and a few headers; more than this is not a node answering the upgrade. */
const MAX_ANSWER_HEAD = 16 * 1024;

export interface HttpDialOptions {
  tls: WireTls | null;
  /** Opens the TCP stream (a tunnel's channel) instead of connecting from here. */
  dial?: (host: string, port: number) => Promise<Duplex>;
  login?: { name: string; password: string };
}

/** A `dial` for wire/client.ts's connect: the upgraded stream to the endpoint. */
export function httpUpgradeDialer(ep: HttpEndpoint, opts: HttpDialOptions): () => Promise<Duplex> {
  return async () => {
    const raw = opts.dial ? await opts.dial(ep.host, ep.port) : await tcp(ep.host, ep.port);
    const stream = ep.secure ? await startTls(raw, ep.host, opts.tls ?? {}) : raw;
    const basic = opts.login ? `${opts.login.name}:${opts.login.password}` : null;
    return upgrade(stream, ep, basic, opts.login?.name ?? null);
  };
}

function tcp(host: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host, port, noDelay: true });
    s.once("connect", () => resolve(s));
    s.once("error", (err: NodeJS.ErrnoException) => {
      s.destroy();
      reject(new Error(describeConnectError(err)));
    });
  });
}

function startTls(raw: Duplex, host: string, tls: WireTls): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      socket: raw,
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      servername: tls.servername ?? (/^[\d.]+$/.test(host) || host.includes(":") ? undefined : host),
      rejectUnauthorized: true,
    });
    s.once("secureConnect", () => resolve(s));
    s.once("error", (err: NodeJS.ErrnoException) => {
      s.destroy();
      reject(new Error(describeTlsError(err)));
    });
  });
}

/** Sends the upgrade request and reads the answer's head: 101 gives the stream back, anything else an error. */
function upgrade(
  stream: Duplex,
  ep: HttpEndpoint,
  basic: string | null,
  user: string | null,
): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const done = (err: Error | null, rest?: Buffer) => {
      stream.off("data", onData);
      stream.off("close", onClose);
      stream.off("error", onError);
      if (err) {
        stream.destroy();
        return reject(err);
      }
      stream.pause();
      if (rest && rest.length > 0) stream.unshift(rest);
      resolve(stream);
    };
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > MAX_ANSWER_HEAD) done(new UnavailableError(notBerth(ep, "an endless answer")));
        return;
      }
      const status = head.toString("latin1", 0, head.indexOf("\r\n"));
      const code = Number(/^HTTP\/1\.[01] (\d{3})/.exec(status)?.[1] ?? 0);
      if (code === 101) return done(null, head.subarray(end + 4));
      if (code === 401)
        return done(
          new AuthError(
            user === null
              ? `${ep.text} refused the connection (401): give an etcd user with --username`
              : `authentication as etcd user ${user} failed (unknown user or wrong password)`,
          ),
        );
      done(new UnavailableError(notBerth(ep, `"${status}"`)));
    };
    const onClose = () => done(new UnavailableError(notBerth(ep, "no answer (the connection closed)")));
    const onError = (err: Error) => done(new UnavailableError(err.message));
    stream.on("data", onData);
    stream.once("close", onClose);
    stream.once("error", onError);
    stream.write(upgradeRequest(`${ep.host.includes(":") ? `[${ep.host}]` : ep.host}:${ep.port}`, basic));
  });
}

function notBerth(ep: HttpEndpoint, what: string): string {
  return (
    `${what} to the switch to Berth's client protocol: ${ep.text} is not a Berth node's HTTP port ` +
    "(an etcd's? berth needs a Berth node: its --http-addr, --client-addr or unix socket)"
  );
}
