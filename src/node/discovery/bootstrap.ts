// etcd's v2 discovery protocol (etcd 2 to 3.4, discovery.etcd.io): the token's _config/size says how many founding
// members there are; each starting member creates TOKEN/MEMBER-ID (create-only) holding "NAME=PEER-URL"; the first
// `size` registrations by creation index are the founding members, and every one of them waits until all have
// registered. A member that finds `size` others registered before it is too late to found the cluster ("full").
import { retry } from "../../retry.ts";
import {
  DiscoveryUnreachable,
  EVENT_INDEX_CLEARED,
  KEY_NOT_FOUND,
  KeysError,
  NODE_EXIST,
  TokenClient,
  type TokenNode,
} from "./token-client.ts";

export interface DiscoveryRequest {
  url: string;
  name: string;
  /** The key this member registers under (16 hex digits, stable for its name). */
  memberId: string;
  /** This member's peer URL as registered: http://HOST:PORT (https with peer TLS). */
  peerUrl: string;
  log: (line: string) => void;
  /** One request's limit (default 5 s). */
  requestTimeoutMs?: number;
  /** How long the service may stay unreachable before giving up (default 60 s). */
  unreachableForMs?: number;
}

/** founding: this member is one of the first `size`; full: the token already names `size` others. */
export interface DiscoveryOutcome {
  kind: "founding" | "full";
  /** The founding members, name -> HOST:PORT, in registration order. */
  members: Map<string, string>;
  size: number;
}

/** The token cannot bootstrap a cluster (no size, a bad size, a duplicate name or id). */
export class DiscoveryError extends Error {}

const CONFIG = "_config";
/** How long one watch waits before the registrations are read again (and progress is logged). */
const WAIT_SLICE_MS = 30_000;

export async function discover(req: DiscoveryRequest): Promise<DiscoveryOutcome> {
  const client = new TokenClient(req.url);
  const timeoutMs = req.requestTimeoutMs ?? 5000;
  const giveUpAfter = req.unreachableForMs ?? 60_000;
  // A service that does not answer is retried with backoff (as etcd does); anything else is final.
  const retrying = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await retry(fn, {
        firstMs: 1000,
        maxMs: 16_000,
        deadline: Date.now() + giveUpAfter,
        retriable: (err) => err instanceof DiscoveryUnreachable,
        onRetry: (err, wait) =>
          req.log(`[discovery] ${what}: ${(err as Error).message}; retrying in ${Math.round(wait)} ms`),
      });
    } catch (err) {
      if (!(err instanceof DiscoveryUnreachable)) throw err;
      throw new DiscoveryError(`discovery service unreachable for ${giveUpAfter / 1000} s: ${err.message}`);
    }
  };
  const check = () => retrying("reading the token", () => checkToken(client, req, timeoutMs));

  let state = await check();
  if (state.full) return outcome("full", state.nodes, state.size);
  if (state.self) checkOwnRegistration(req, state.self.value);
  else {
    await retrying("registering", () => register(client, req, timeoutMs));
    state = await check();
    if (state.full) return outcome("full", state.nodes, state.size);
  }
  req.log(`[discovery] registered as ${req.memberId} (${req.name}=${req.peerUrl}) at ${req.url}`);
  const all = state.nodes.slice(0, state.size);
  let index = state.index;
  while (all.length < state.size) {
    req.log(
      `[discovery] ${all.length} of ${state.size} members registered; waiting for ${state.size - all.length} more`,
    );
    let event: Awaited<ReturnType<TokenClient["waitAfter"]>>;
    try {
      event = await retrying("watching the token", () => client.waitAfter(index, WAIT_SLICE_MS));
    } catch (err) {
      if (!(err instanceof KeysError && err.errorCode === EVENT_INDEX_CLEARED)) throw err;
      event = null; // too far behind the service's event history: read the registrations again
    }
    if (event === null) {
      state = await check();
      all.splice(0, all.length, ...state.nodes.slice(0, state.size));
      index = state.index;
      continue;
    }
    index = Math.max(index, event.node.modifiedIndex ?? event.node.createdIndex);
    const base = lastSegment(event.node.key);
    if (base === CONFIG || event.node.dir || !/^(create|set)$/.test(event.action)) continue;
    if (!all.some((n) => lastSegment(n.key) === base)) all.push(event.node);
  }
  return outcome("founding", all, state.size);
}

interface TokenState {
  size: number;
  /** Registrations sorted by creation index. */
  nodes: TokenNode[];
  index: number;
  /** This member's registration, when the token has it. */
  self: TokenNode | null;
  full: boolean;
}

async function checkToken(
  client: TokenClient,
  req: DiscoveryRequest,
  timeoutMs: number,
): Promise<TokenState> {
  let sizeNode: TokenNode;
  try {
    sizeNode = (await client.get(`${CONFIG}/size`, timeoutMs)).node;
  } catch (err) {
    if (err instanceof KeysError && err.errorCode === KEY_NOT_FOUND)
      throw new DiscoveryError(
        `discovery token ${req.url} has no ${CONFIG}/size: create the token with \`berth discovery new --size N\``,
      );
    throw err;
  }
  const size = Number(sizeNode.value);
  if (!Number.isInteger(size) || size < 1)
    throw new DiscoveryError(
      `discovery token ${req.url}: ${CONFIG}/size is "${sizeNode.value}", not a positive whole number`,
    );
  const dir = await client.get("", timeoutMs);
  const nodes = (dir.node.nodes ?? [])
    .filter((n) => lastSegment(n.key) !== CONFIG && !n.dir)
    .sort((a, b) => a.createdIndex - b.createdIndex);
  const position = nodes.findIndex((n) => lastSegment(n.key) === req.memberId);
  const full = position >= size || (position < 0 && nodes.length >= size);
  return { size, nodes, index: dir.index, self: position >= 0 ? nodes[position]! : null, full };
}

/** Creates TOKEN/MEMBER-ID (create-only, etcd's createSelf). */
async function register(client: TokenClient, req: DiscoveryRequest, timeoutMs: number): Promise<void> {
  try {
    await client.create(req.memberId, registration(req), timeoutMs);
  } catch (err) {
    if (!(err instanceof KeysError && err.errorCode === NODE_EXIST)) throw err;
    checkOwnRegistration(req, (await client.get(req.memberId, timeoutMs)).node.value);
  }
}

/**
 * The token already has this member's id: with its own value it is this member registered before (a restart before
 * the data directory was written), and it goes on; with another value another machine has its name (etcd's
 * ErrDuplicateID).
 */
function checkOwnRegistration(req: DiscoveryRequest, current: string | undefined): void {
  if (current !== registration(req))
    throw new DiscoveryError(
      `discovery token ${req.url}: member id ${req.memberId} is already registered as "${current}", not ` +
        `"${registration(req)}" (another machine uses --name ${req.name})`,
    );
}

function registration(req: DiscoveryRequest): string {
  return `${req.name}=${req.peerUrl}`;
}

function outcome(kind: "founding" | "full", nodes: TokenNode[], size: number): DiscoveryOutcome {
  const members = new Map<string, string>();
  for (const n of nodes.slice(0, size)) {
    const [name, addr] = parseRegistration(n.value ?? "");
    if (members.has(name))
      throw new DiscoveryError(
        `the discovery token lists the name ${name} twice (${members.get(name)} and ${addr}); each member needs its own --name`,
      );
    members.set(name, addr);
  }
  return { kind, members, size };
}

/** "NAME=URL[,NAME=URL2...]" (etcd registers every peer URL of a member) -> [NAME, HOST:PORT of the first URL]. */
export function parseRegistration(value: string): [string, string] {
  const first = value.split(",")[0]!.trim();
  const eq = first.indexOf("=");
  if (eq <= 0) throw new DiscoveryError(`discovery registration "${value}" is not NAME=PEER-URL`);
  const raw = first.slice(eq + 1);
  let url: URL;
  try {
    url = new URL(raw.includes("://") ? raw : `http://${raw}`);
  } catch {
    throw new DiscoveryError(`discovery registration "${value}": "${raw}" is not a peer URL`);
  }
  if (!url.port) throw new DiscoveryError(`discovery registration "${value}": the peer URL has no port`);
  return [first.slice(0, eq), `${url.hostname}:${url.port}`];
}

function lastSegment(key: string): string {
  return key.slice(key.lastIndexOf("/") + 1);
}
