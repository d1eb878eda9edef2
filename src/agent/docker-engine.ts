// Talking to the node's Docker engine over its unix socket: a dockerode client once the engine answers, a wait
// for a container's exit that notices when the engine goes away, and waiting for an engine to answer again.
import { Agent, request } from "node:http";
import type Docker from "dockerode";
import { retry } from "../retry.ts";

const PING_TIMEOUT_MS = 5_000;
/** Reconnecting to an engine that went away: soon, then backing off to about every 2 s. */
const RECONNECT = { firstMs: 400, maxMs: 4_000 } as const;

export class EngineUnreachable extends Error {}

/** Why a Docker call failed, in words (dockerode errors carry statusCode and json.message). */
export function dockerErrorText(e: unknown): string {
  const err = e as { statusCode?: number; json?: { message?: string }; message?: string; code?: string };
  if (err?.json?.message) return err.json.message;
  return String(err?.message ?? e)
    .replace(/^\(HTTP code \d+\) [^-]*- /, "")
    .trim();
}

export const statusOf = (e: unknown): number | undefined => (e as { statusCode?: number })?.statusCode;

/** A failed call that never got an answer from the engine (every answer carries an HTTP status). */
export const engineGone = (e: unknown): boolean =>
  e instanceof EngineUnreachable || statusOf(e) === undefined;

const clients = new Map<string, Promise<Docker>>();
/** Sockets whose engine has answered this process. */
const answered = new Set<string>();

/**
 * Whether the engine at this socket has answered before: one that did and does not now is most likely being
 * restarted, and worth waiting for; one that never did is missing or misconfigured.
 */
export const engineAnswered = (socketPath: string): boolean => answered.has(socketPath);

/**
 * A dockerode client for a unix socket (dockerode is loaded on first use: it is big). It opens a connection per
 * request: an engine that is shutting down closes its listener but goes on answering on connections kept alive,
 * so a reused one would report a stopping engine as up, and a restart would create its container into it.
 */
function clientFor(socketPath: string): Promise<Docker> {
  let c = clients.get(socketPath);
  if (c === undefined) {
    // docker-modem passes `agent` on to its requests; dockerode's types do not list it.
    const opts = { socketPath, agent: new Agent({ keepAlive: false }) } as Docker.DockerOptions;
    c = import("dockerode").then((m) => new m.default(opts));
    clients.set(socketPath, c);
    c.catch(() => clients.delete(socketPath));
  }
  return c;
}

/** The client once the engine answers a ping; throws EngineUnreachable with the reason otherwise. */
export async function connectDocker(socketPath: string): Promise<Docker> {
  let docker: Docker;
  try {
    docker = await clientFor(socketPath);
  } catch (e) {
    throw new EngineUnreachable(`cannot load the Docker client (dockerode): ${(e as Error).message}`);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      docker.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${PING_TIMEOUT_MS} ms`)),
          PING_TIMEOUT_MS,
        );
      }),
    ]);
  } catch (e) {
    throw new EngineUnreachable(
      `Docker engine at unix://${socketPath} is unreachable: ${dockerErrorText(e)}`,
    );
  } finally {
    clearTimeout(timer);
  }
  answered.add(socketPath);
  return docker;
}

/**
 * The client once the engine answers again, retrying with backoff; null as soon as `wanted()` turns false.
 */
export async function reconnectDocker(socketPath: string, wanted: () => boolean): Promise<Docker | null> {
  if (!wanted()) return null;
  const docker = await retry(() => connectDocker(socketPath), {
    ...RECONNECT,
    stopped: () => !wanted(),
  }).catch(() => null);
  return docker !== null && wanted() ? docker : null;
}

/**
 * Resolves when the container is no longer running (with its exit status), rejects with EngineUnreachable when the
 * connection to the engine fails or closes first, and with the engine's error (statusCode 404: no such container)
 * otherwise. Its own request rather than dockerode's wait(): docker-modem never settles a request whose
 * connection closes once the answer's headers are in, and the engine sends those at once — a crashed engine
 * would leave the unit "running" for good.
 */
export function waitContainer(socketPath: string, id: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const lost = (why: string) =>
      reject(new EngineUnreachable(`Docker engine at unix://${socketPath} went away: ${why}`));
    const req = request(
      { socketPath, method: "POST", path: `/containers/${encodeURIComponent(id)}/wait`, agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("error", (e) => lost(e.message));
        res.on("close", () => {
          if (!res.complete) return lost("the connection closed");
          let json: { StatusCode?: number; message?: string } = {};
          try {
            json = JSON.parse(body);
          } catch {}
          if (res.statusCode === 200 && typeof json.StatusCode === "number") return resolve(json.StatusCode);
          const err = new Error(json.message ?? `HTTP ${res.statusCode}: ${body.trim()}`);
          reject(Object.assign(err, { statusCode: res.statusCode, json }));
        });
      },
    );
    req.on("error", (e) => lost(e.message));
    req.end();
  });
}
