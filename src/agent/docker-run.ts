// The container a process unit's own `docker run` started (the seed's units: ExecStart=/usr/bin/docker run
// --name busybox1 ...). Killing the `docker` client does not stop its container — dockerd runs it — so the fence
// kills it through the engine, found by the name the command line gives it and the engine the client talks to.
import { basename } from "node:path";
import { connectDocker, statusOf } from "./docker-engine.ts";

export interface DockerRunTarget {
  /** The container's name (`--name`). */
  name: string;
  /** The engine's unix socket (`-H`/`--host`, else DOCKER_HOST, else Docker's default). */
  socket: string;
}

const DEFAULT_SOCKET = "/var/run/docker.sock";
/** Global docker flags that take a value (`docker -H unix:///x run ...`). */
const GLOBAL_WITH_VALUE = new Set(["-H", "--host", "--config", "-c", "--context", "-l", "--log-level"]);

/** The `docker run --name NAME` in `argv` (or `docker container run`), or null when it is not one. */
export function dockerRunTarget(
  argv: readonly string[],
  env: Record<string, string>,
): DockerRunTarget | null {
  if (basename(argv[0] ?? "") !== "docker") return null;
  let host = env.DOCKER_HOST ?? null;
  let i = 1;
  for (; i < argv.length && argv[i]!.startsWith("-"); i++) {
    const [flag, inline] = splitFlag(argv[i]!);
    if (!GLOBAL_WITH_VALUE.has(flag)) continue;
    const value = inline ?? argv[++i];
    if ((flag === "-H" || flag === "--host") && value !== undefined) host = value;
  }
  if (argv[i] === "container") i++;
  if (argv[i] !== "run") return null;
  // The first --name after `run`: without docker's table of which run options take a value, the image cannot be
  // told from an option's value, and a container command of its own with a --name is rare.
  for (let j = i + 1; j < argv.length; j++) {
    const [flag, inline] = splitFlag(argv[j]!);
    if (flag !== "--name") continue;
    const name = inline ?? argv[j + 1];
    if (!name) return null;
    const socket = host === null ? DEFAULT_SOCKET : host.startsWith("unix://") ? host.slice(7) : null;
    return socket === null ? null : { name, socket };
  }
  return null;
}

function splitFlag(arg: string): [string, string | undefined] {
  const eq = arg.indexOf("=");
  return eq > 0 && arg.startsWith("--") ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
}

/** `docker kill NAME` through the engine; a container already gone (or never made) is fine. */
export async function killDockerRunContainer(t: DockerRunTarget, log: (line: string) => void): Promise<void> {
  try {
    const docker = await connectDocker(t.socket);
    await docker.getContainer(t.name).kill();
    log(`killed container ${t.name} through the engine at ${t.socket}`);
  } catch (e) {
    const s = statusOf(e);
    // 404: no such container; 409: not running.
    if (s !== 404 && s !== 409) log(`killing container ${t.name} failed: ${(e as Error).message}`);
  }
}
