// What every client subcommand shares: --endpoint, --output, --request-timeout, connecting, and turning a
// node's error into a one-line message with a meaningful exit code.
import { createInterface } from "node:readline";
import type { BerthClient } from "../client/client.ts";
import {
  type ClientTls,
  type ClusterConnector,
  clusterConnector as connectTo,
  readClientTls,
  TlsFileError,
} from "../client/connector.ts";
import { DEFAULT_ENDPOINTS } from "../client/endpoint.ts";
import { CliError, EXIT, type ExitCode, UsageError } from "./exit-codes.ts";
import type { FlagSpec, FlagValues } from "./flags.ts";
import type { OutputFormat } from "./output.ts";
import { openTunnel, TUNNEL_FLAGS } from "./tunnel-flags.ts";

export const CLIENT_FLAGS: FlagSpec[] = [
  {
    name: "endpoint",
    type: "list",
    description:
      "nodes to talk to, tried in turn: HOST:PORT (client port), unix:///PATH (a node's socket: admin), " +
      "http(s)://HOST:PORT (a node's HTTP port, etcd's API)",
    value: "ENDPOINT,...",
    env: "BERTH_ENDPOINT",
    default: DEFAULT_ENDPOINTS,
  },
  {
    name: "username",
    type: "string",
    description: "act as this etcd v2 user (asks for the password when it is left out)",
    value: "NAME[:PASSWORD]",
    env: "BERTH_USERNAME",
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
export function clientTls(flags: FlagValues): ClientTls | null {
  const ca = flags["ca-file"] ? String(flags["ca-file"]) : null;
  const cert = flags["cert-file"] ? String(flags["cert-file"]) : null;
  const key = flags["key-file"] ? String(flags["key-file"]) : null;
  if (!ca && !cert && !key) return null;
  if (cert && !key) throw new UsageError("--cert-file needs --key-file (the certificate's private key)");
  if (key && !cert) throw new UsageError("--key-file needs --cert-file (the certificate of that key)");
  const file = (option: string, path: string | null) => (path ? { option: `--${option}`, path } : undefined);
  try {
    return readClientTls({
      ca: file("ca-file", ca),
      cert: file("cert-file", cert),
      key: file("key-file", key),
    });
  } catch (e) {
    if (e instanceof TlsFileError) throw new UsageError(e.message);
    throw e;
  }
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
export async function clusterConnector(flags: FlagValues, name: string): Promise<ClusterConnector> {
  const timeoutMs = Number(flags["request-timeout"] ?? 5000);
  const endpoints = (flags.endpoint as string[] | undefined) ?? DEFAULT_ENDPOINTS;
  if (endpoints.length === 0) throw new UsageError("--endpoint needs at least one endpoint");
  const tls = clientTls(flags);
  const login = flags.username ? await credentials(String(flags.username)) : undefined;
  const tunnel = await openTunnel(flags);
  return connectTo({ endpoints, timeoutMs, name, tls, login, tunnel });
}

/** --username NAME[:PASSWORD]; without the password it is asked for on the terminal (as etcdctl does). */
async function credentials(spec: string): Promise<{ name: string; password: string }> {
  const i = spec.indexOf(":");
  if (i === 0 || spec === "") throw new UsageError("--username must be NAME[:PASSWORD]");
  if (i > 0) return { name: spec.slice(0, i), password: spec.slice(i + 1) };
  if (!process.stdin.isTTY)
    throw new UsageError(
      `--username ${spec}: no terminal to ask for the password on; give --username ${spec}:PASSWORD`,
    );
  return { name: spec, password: await askPassword() };
}

function askPassword(): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    // Nothing typed is echoed: only the prompt is written.
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s) => {
      if (s.startsWith("Password")) process.stderr.write(s);
    };
    rl.question("Password: ", (answer) => {
      rl.close();
      process.stderr.write("\n");
      resolve(answer);
    });
  });
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
    throw withSkipped(toCliError(err), client, err);
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
    case "bad_endpoint":
      return new CliError(message, EXIT.usage);
    case "permission_denied":
    case "auth_failed":
      return new CliError(message, EXIT.denied);
    case "not_found":
      return new CliError(message, EXIT.notFound);
    case "conflict":
      return new CliError(message, EXIT.conflict);
    default:
      return new CliError(message);
  }
}

/** A refusal on a fallback endpoint says why the ones before it (say the admin socket) were not used. */
export function withSkipped(e: CliError, client: BerthClient, cause: unknown): CliError {
  const code = (cause as { code?: string; data?: { errorCode?: number } })?.code;
  const denied = code === "permission_denied" || (code === "kv" && e.exitCode === EXIT.denied);
  if (!denied || client.skipped.length === 0) return e;
  const tried = client.skipped.map((s) => `${s.endpoint}: ${s.error}`).join("; ");
  return new CliError(`${e.message} (answered by ${client.endpoint} after ${tried})`, e.exitCode);
}

function exitForEtcdCode(code: number): ExitCode {
  if (code === 100) return EXIT.notFound;
  if (code === 101 || code === 105 || code === 108) return EXIT.conflict;
  if (code === 110) return EXIT.denied;
  if (code >= 200 && code < 300) return EXIT.usage;
  if (code >= 300 && code < 400) return EXIT.unavailable;
  return EXIT.error;
}
