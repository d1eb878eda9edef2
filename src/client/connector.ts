// How a client program reaches the cluster: the endpoints to try, the TLS it dials with (read from PEM files), a
// tunnel that may carry the connections (SSH, src/tunnel/), and connecting again to whichever endpoint answers.
// The CLI and the console build one from their flags (src/cli/client-command.ts).
import { readFileSync } from "node:fs";
import type { Duplex } from "node:stream";
import { certificateProblem } from "../wire/certificate-problem.ts";
import type { WireTls } from "../wire/client.ts";
import { BerthClient } from "./client.ts";

/** The TLS a client dials with: `ca` verifies the nodes, `cert`/`key` identify the client. */
export type ClientTls = WireTls;

/** A PEM file and the option that named it ("--ca-file"), so a refusal says which option to fix. */
export interface TlsFile {
  option: string;
  path: string;
}

/** A file the TLS settings name cannot be used; the message names the option, the file and why. */
export class TlsFileError extends Error {}

/** Reads the files. A certificate is refused here with what is wrong rather than by the TLS library with a
 * decoding error. */
export function readClientTls(files: { ca?: TlsFile; cert?: TlsFile; key?: TlsFile }): ClientTls {
  const read = (f: TlsFile) => {
    try {
      return readFileSync(f.path);
    } catch (e) {
      throw new TlsFileError(`${f.option} ${f.path}: ${(e as Error).message}`);
    }
  };
  const readCert = (f: TlsFile) => {
    const pem = read(f);
    const problem = certificateProblem(pem);
    if (problem) throw new TlsFileError(`${f.option} ${f.path} ${problem}`);
    return pem;
  };
  return {
    ca: files.ca ? readCert(files.ca) : undefined,
    cert: files.cert ? readCert(files.cert) : undefined,
    key: files.key ? read(files.key) : undefined,
  };
}

/** What carries the connections instead of the local network (SshTunnel). Endpoints are as its far end sees them. */
export interface Tunnel {
  dial(host: string, port: number): Promise<Duplex>;
  dialUnix(path: string): Promise<Duplex>;
  /** "user@host:port", for messages. */
  label: string;
  close(): void;
}

export interface ConnectorOptions {
  endpoints: string[];
  timeoutMs: number;
  /** Shown to the node in the handshake ("cli", "console"). */
  name: string;
  tls: ClientTls | null;
  /** An etcd v2 user to act as. */
  login?: { name: string; password: string };
  tunnel: Tunnel | null;
}

/** How to reach the cluster (endpoints, TLS, tunnel); the tunnel is already open. */
export interface ClusterConnector {
  /** Connects to the first endpoint that answers (again after a drop: the console reconnects). */
  connect(): Promise<BerthClient>;
  timeoutMs: number;
  /** " via user@host:port" through a tunnel, else "". */
  via: string;
  /** Closes the tunnel, if any. */
  close(): void;
}

export function clusterConnector(o: ConnectorOptions): ClusterConnector {
  const { tunnel } = o;
  return {
    connect: () =>
      BerthClient.connect({
        endpoints: o.endpoints,
        timeoutMs: o.timeoutMs,
        name: o.name,
        tls: o.tls,
        login: o.login,
        dial: tunnel?.dial.bind(tunnel),
        dialUnix: tunnel?.dialUnix.bind(tunnel),
      }),
    timeoutMs: o.timeoutMs,
    via: tunnel ? ` via ${tunnel.label}` : "",
    close: () => tunnel?.close(),
  };
}
