// Which process holds the client end of a TCP connection on this host, through /proc (Linux). A proxy uses it to
// tell callers apart that all dial from the same address (etcd's peers dial from 127.0.0.1 whatever they listen on).
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** HOST:PORT as /proc/net/tcp writes it: the 32-bit address in host (little-endian) order, the port, both hex. */
function procAddress(hostPort: string): string {
  const [host, port] = hostPort.split(":") as [string, string];
  const ip = Buffer.from(host.split(".").map(Number)).readUInt32LE(0);
  return `${ip.toString(16).toUpperCase().padStart(8, "0")}:${Number(port).toString(16).toUpperCase().padStart(4, "0")}`;
}

/** The inode of the IPv4 socket from `local` to `remote` (both HOST:PORT), or null. */
function socketInode(local: string, remote: string): string | null {
  const [l, r] = [procAddress(local), procAddress(remote)];
  for (const line of readFileSync("/proc/net/tcp", "latin1").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === l && f[2] === r) return f[9] ?? null;
  }
  return null;
}

/**
 * The name of the process (among `pids`: pid -> name) holding the socket that dialled `remote` from `local` (both
 * HOST:PORT), or undefined when none of them does (or it is gone already).
 */
export function socketOwner(local: string, remote: string, pids: Map<number, string>): string | undefined {
  let inode: string | null;
  try {
    inode = socketInode(local, remote);
  } catch {
    return undefined;
  }
  if (inode === null) return undefined;
  const link = `socket:[${inode}]`;
  for (const [pid, name] of pids) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {}
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === link) return name;
      } catch {}
    }
  }
  return undefined;
}
