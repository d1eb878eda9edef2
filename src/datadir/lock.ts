// One node per data directory. A second `berth node` on a directory in use deleted WAL segments and rewrote
// node.json under the first. Bun has no flock, so the lock is a listening unix socket in Linux's abstract
// namespace, named after the directory's device and inode (the same directory by any path or bind mount): the
// kernel removes it when the process ends, however it ends (SIGKILL too), it leaves no file behind, and it is not
// inherited (sockets are close-on-exec), so `berth supervise`, which the node starts and which outlives it, never
// holds it. Abstract names are per network namespace: two nodes in different namespaces are not kept apart.
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { createServer, type Server } from "node:net";

export class DataDirLockedError extends Error {
  readonly code = "data_dir_locked";
}

export interface DataDirLock {
  /** The socket's name (without the leading NUL), as /proc/net/unix shows it after an "@". */
  readonly name: string;
  release(): Promise<void>;
}

/** Takes the lock of `dir` (which must exist), or throws DataDirLockedError naming the process holding it. */
export async function lockDataDir(dir: string): Promise<DataDirLock> {
  const name = lockName(dir);
  const server = createServer((socket) => socket.destroy());
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(`\0${name}`, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    server.close();
    if ((err as { code?: string }).code !== "EADDRINUSE") throw err;
    const holders = lockHolders(name);
    const who = holders.length > 0 ? `pid ${holders.join(", ")}` : "a process this user cannot see";
    throw new DataDirLockedError(
      `data directory ${dir} is in use by another berth node (${who}); stop it first, or give this one its own --data-dir`,
    );
  }
  server.unref(); // the lock never keeps the process alive by itself
  return { name, release: () => close(server) };
}

/** The abstract socket name for `dir`. */
export function lockName(dir: string): string {
  const { dev, ino } = statSync(dir);
  return `berth-data-dir-${dev}-${ino}`;
}

/** Processes with the listening socket `name` open: its inode from /proc/net/unix, then every process's fds. */
export function lockHolders(name: string): number[] {
  let inode: string | undefined;
  try {
    for (const line of readFileSync("/proc/net/unix", "utf8").split("\n")) {
      const cols = line.trim().split(/\s+/);
      if (cols[7] === `@${name}`) inode = cols[6];
    }
  } catch {
    return [];
  }
  if (!inode) return [];
  const target = `socket:[${inode}]`;
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      for (const fd of readdirSync(`/proc/${entry}/fd`)) {
        if (readlinkSync(`/proc/${entry}/fd/${fd}`) === target) {
          pids.push(Number(entry));
          break;
        }
      }
    } catch {
      // gone meanwhile, or not ours to look at
    }
  }
  return pids;
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
