// What every client subcommand shares: --endpoint, --output, --request-timeout, connecting, and turning a
// node's error into a one-line message with a meaningful exit code.
import { readFileSync } from "node:fs";
import { BerthClient } from "../client/client.ts";
import { certificateProblem } from "../wire/certificate-problem.ts";
import type { WireTls } from "../wire/client.ts";
import { CliError, EXIT, type ExitCode, UsageError } from "./exit-codes.ts";
import type { FlagSpec, FlagValues } from "./flags.ts";
import type { OutputFormat } from "./output.ts";
import { openTunnel, TUNNEL_FLAGS } from "./tunnel-flags.ts";

export const CLIENT_FLAGS: FlagSpec[] = [
  {
    name: "endpoint",
    type: "list",
    description: "node client addresses, tried in turn",
    value: "HOST:PORT,...",
    env: "BERTH_ENDPOINT",
    default: ["127.0.0.1:4001"],
  },
  {
    name: "output",
    short: "o",
    type: "string",
    description: "table (for people) or json (one document per result, for scripts)",
    value: "FORMAT",
    env: "BERTH_OUTPUT",
    default: "table",
  },
  {
    name: "request-timeout",
    type: "duration",
    description: "how long to wait for the cluster",
    env: "BERTH_REQUEST_TIMEOUT",
    default: 5000,
  },
  {
    name: "ca-file",
    type: "string",
    description: "connect with TLS, verifying the nodes against this CA (PEM)",
    value: "FILE",
    env: "BERTH_CA_FILE",
  },
  {
    name: "cert-file",
    type: "string",
    description: "connect with TLS, presenting this client certificate (PEM)",
    value: "FILE",
    env: "BERTH_CERT_FILE",
  },
  {
    name: "key-file",
    type: "string",
    description: "the key of --cert-file",
    value: "FILE",
    env: "BERTH_KEY_FILE",
  },
  ...TUNNEL_FLAGS,
];

/** TLS settings from --ca-file/--cert-file/--key-file; null (plaintext) when none is given. */
export function clientTls(flags: FlagValues): WireTls | null {
  const ca = flags["ca-file"] ? String(flags["ca-file"]) : null;
  const cert = flags["cert-file"] ? String(flags["cert-file"]) : null;
  const key = flags["key-file"] ? String(flags["key-file"]) : null;
  if (!ca && !cert && !key) return null;
  if (cert && !key) throw new UsageError("--cert-file needs --key-file (the certificate's private key)");
  if (key && !cert) throw new UsageError("--key-file needs --cert-file (the certificate of that key)");
  const read = (flag: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new UsageError(`--${flag} ${path}: ${(e as Error).message}`);
    }
  };
  /** A certificate file, refused here with what is wrong rather than by the TLS library with a decoding error. */
  const readCert = (flag: string, path: string) => {
    const pem = read(flag, path);
    const problem = certificateProblem(pem);
    if (problem) throw new UsageError(`--${flag} ${path} ${problem}`);
    return pem;
  };
  return {
    ca: ca ? readCert("ca-file", ca) : undefined,
    cert: cert ? readCert("cert-file", cert) : undefined,
    key: key ? read("key-file", key) : undefined,
  };
}

export interface ClientContext {
  client: BerthClient;
  /** "extended" exists for `kv` commands only (etcdctl's -o extended). */
  output: OutputFormat | "extended";
  timeoutMs: number;
}

export function outputFormat(flags: FlagValues, extra: string[] = []): OutputFormat | "extended" {
  const o = String(flags.output ?? "table");
  if (o !== "table" && o !== "json" && !extra.includes(o))
    throw new UsageError(`--output must be ${["table", "json", ...extra].join(", ")}; not "${o}"`);
  return o as OutputFormat | "extended";
}

/** How to reach the cluster as the flags say (endpoints, TLS, --tunnel); the tunnel is opened here. */
export interface ClusterConnector {
  /** Connects to the first endpoint that answers (again after a drop: the console reconnects). */
  connect(): Promise<BerthClient>;
  timeoutMs: number;
  /** " via user@host:port" through a tunnel, else "". */
  via: string;
  /** Closes the tunnel, if any. */
  close(): void;
}

export async function clusterConnector(flags: FlagValues, name: string): Promise<ClusterConnector> {
  const timeoutMs = Number(flags["request-timeout"] ?? 5000);
  const endpoints = (flags.endpoint as string[] | undefined) ?? ["127.0.0.1:4001"];
  if (endpoints.length === 0) throw new UsageError("--endpoint needs at least one HOST:PORT");
  const tls = clientTls(flags);
  const tunnel = await openTunnel(flags);
  return {
    connect: () => BerthClient.connect({ endpoints, timeoutMs, name, tls, dial: tunnel?.dial.bind(tunnel) }),
    timeoutMs,
    via: tunnel ? ` via ${tunnel.label}` : "",
    close: () => tunnel?.close(),
  };
}

/** Connects, runs `fn`, maps failures to exit codes, and always closes the connection. */
export async function withClient<T = number>(
  flags: FlagValues,
  fn: (ctx: ClientContext) => Promise<T>,
): Promise<T> {
  const output = outputFormat(flags, ["extended"]);
  const cluster = await clusterConnector(flags, "cli");
  let client: BerthClient;
  try {
    client = await cluster.connect();
  } catch (err) {
    cluster.close();
    throw toCliError(err);
  }
  try {
    return await fn({ client, output, timeoutMs: cluster.timeoutMs });
  } catch (err) {
    throw toCliError(err);
  } finally {
    client.close();
    cluster.close();
  }
}

interface EtcdErrorDoc {
  errorCode: number;
  message: string;
  cause?: string;
  index: number;
}

/** A node's error → CliError. Store errors print as etcdctl prints them: `100: Key not found (/k) [12]`. */
export function toCliError(err: unknown): CliError {
  if (err instanceof CliError) return err;
  const e = err as { code?: string; message?: string; data?: unknown };
  const message = e?.message ?? String(err);
  switch (e?.code) {
    case "kv": {
      const doc = e.data as EtcdErrorDoc | undefined;
      if (!doc) return new CliError(message);
      const text = `${doc.errorCode}: ${doc.message}${doc.cause ? ` (${doc.cause})` : ""} [${doc.index}]`;
      return new CliError(text, exitForEtcdCode(doc.errorCode));
    }
    case "unavailable":
    case "timeout":
    case "version_mismatch":
      return new CliError(message, EXIT.unavailable);
    case "no_space":
      return new CliError(message, EXIT.noSpace);
    case "bad_request":
      return new CliError(message, EXIT.usage);
    case "not_found":
      return new CliError(message, EXIT.notFound);
    case "conflict":
      return new CliError(message, EXIT.conflict);
    default:
      return new CliError(message);
  }
}

function exitForEtcdCode(code: number): ExitCode {
  if (code === 100) return EXIT.notFound;
  if (code === 101 || code === 105 || code === 108) return EXIT.conflict;
  if (code >= 200 && code < 300) return EXIT.usage;
  if (code >= 300 && code < 400) return EXIT.unavailable;
  return EXIT.error;
}
