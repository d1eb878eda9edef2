// `berth discovery new`: creates a discovery token (etcd's v2 discovery protocol) and prints the URL that
// `berth node --discovery` (or etcd's --discovery) takes. The token lives on an etcd v2 keys API (a Berth cluster's
// HTTP API, any etcd v2) or is asked of a discovery service (Debian's etcd-discovery, discovery.etcd.io).
import { randomBytes } from "node:crypto";
import type { Command, CommandGroup } from "./command.ts";
import { CliError, EXIT, UsageError } from "./exit-codes.ts";

/** Where a token directory lives on a bare etcd endpoint: discovery.etcd.io's own layout on its backend. */
const REGISTRY_PATH = "/v2/keys/_etcd/registry";

const newToken: Command = {
  name: "new",
  summary: "create a discovery token for a cluster of --size founding members and print its URL",
  usage: "",
  description: `
--endpoint is one of:
  http://HOST:PORT/v2/keys/DIR   an etcd v2 keys directory (etcd or Berth): the token is DIR/TOKEN
  http://HOST:PORT               an etcd v2 or Berth HTTP API (it answers /version): the token is
                                 ${REGISTRY_PATH}/TOKEN there, the layout the discovery service uses
  http://HOST:8087               a discovery service (etcd-discovery, discovery.etcd.io): asked for /new?size=N
Tokens are 32 hex digits. Anybody who can write keys on the endpoint can join or spoil the token: the cluster
secret still keeps strangers out of the cluster itself.

Example:
  berth discovery new --size 3 --endpoint http://127.0.0.1:2379
  http://127.0.0.1:2379${REGISTRY_PATH}/6c007a14875d53d9bf0ef5a6fc0257c8`,
  flags: [
    {
      name: "size",
      type: "number",
      description: "how many founding (voting) members the token waits for",
      default: 3,
    },
    {
      name: "endpoint",
      type: "string",
      description: "where the token is created (see above)",
      value: "URL",
      default: "http://127.0.0.1:2379",
      env: "BERTH_DISCOVERY_ENDPOINT",
    },
    { name: "request-timeout", type: "duration", description: "limit for each request", default: 5000 },
  ],
  async run(parsed) {
    if (parsed.positionals.length > 0) throw new UsageError("expected no arguments");
    const size = Number(parsed.flags.size);
    if (!Number.isInteger(size) || size < 1 || size > 99)
      throw new UsageError("--size must be a whole number from 1 to 99");
    const endpoint = String(parsed.flags.endpoint).replace(/\/+$/, "");
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new UsageError(`--endpoint must be an http:// or https:// URL, not "${endpoint}"`);
    }
    if (!/^https?:$/.test(url.protocol)) throw new UsageError(`--endpoint must be http:// or https://`);
    const timeoutMs = Number(parsed.flags["request-timeout"]);
    const tokenUrl = url.pathname.includes("/v2/keys")
      ? await createOnKeys(endpoint, size, timeoutMs)
      : (await answersVersion(endpoint, timeoutMs))
        ? await createOnKeys(`${endpoint}${REGISTRY_PATH}`, size, timeoutMs)
        : await askService(endpoint, size, timeoutMs);
    process.stdout.write(`${tokenUrl}\n`);
    return EXIT.ok;
  },
};

/** Creates DIR/TOKEN/_config/size (create-only) and answers the token's URL. */
async function createOnKeys(dir: string, size: number, timeoutMs: number): Promise<string> {
  const tokenUrl = `${dir}/${randomBytes(16).toString("hex")}`;
  const res = await request(`${tokenUrl}/_config/size?prevExist=false`, timeoutMs, {
    method: "PUT",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ value: String(size) }).toString(),
  });
  if (res.status !== 201)
    throw new CliError(
      `creating the token at ${tokenUrl} failed: HTTP ${res.status} ${res.text.slice(0, 200)}`,
    );
  return tokenUrl;
}

async function answersVersion(endpoint: string, timeoutMs: number): Promise<boolean> {
  const res = await request(`${endpoint}/version`, timeoutMs, {});
  try {
    return res.status === 200 && "etcdserver" in (JSON.parse(res.text) as object);
  } catch {
    return false;
  }
}

async function askService(endpoint: string, size: number, timeoutMs: number): Promise<string> {
  const res = await request(`${endpoint}/new?size=${size}`, timeoutMs, {});
  const body = res.text.trim();
  if (res.status !== 200 || !/^https?:\/\/\S+$/.test(body))
    throw new CliError(
      `${endpoint} answered neither /version (etcd, Berth) nor /new (a discovery service): HTTP ${res.status} ${body.slice(0, 200)}`,
    );
  return body;
}

async function request(
  url: string,
  timeoutMs: number,
  init: RequestInit,
): Promise<{ status: number; text: string }> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, text: await res.text() };
  } catch (err) {
    throw new CliError(`${url}: ${(err as Error).message}`, EXIT.unavailable);
  }
}

export const discoveryCommands: CommandGroup = {
  name: "discovery",
  summary: "discovery tokens for bootstrapping a cluster (etcd's v2 discovery protocol)",
  subcommands: [newToken],
};
