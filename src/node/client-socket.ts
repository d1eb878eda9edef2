// The node's unix socket for clients (`--client-socket`, default DATA_DIR/berth.sock): whoever can open it is
// admin, as with Docker's socket, so its mode is the grant: 0660 owned by the node's user and the group `berth`
// when that group exists (and the node may hand the socket to it), else 0600.
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { socketAnswers } from "../wire/unix-socket.ts";

/** The group whose members are admin through the socket. */
export const ADMIN_GROUP = "berth";

/** The gid of `name` in /etc/group, or null when there is no such group. */
export function groupId(name: string, groupFile = "/etc/group"): number | null {
  let text: string;
  try {
    text = readFileSync(groupFile, "utf8");
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    const [group, , gid] = line.split(":");
    if (group === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return null;
}

/**
 * Makes `path` free for a new listener: creates its directory, and removes a socket left by a node that is gone.
 * A socket something still answers on, or a file that is not a socket, is refused (nothing is removed).
 */
export async function prepareSocketPath(path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket: remove it or choose --client-socket`);
  if (await socketAnswers(path))
    throw new Error(
      `${path} is in use by another process (another berth node?): choose another --client-socket`,
    );
  unlinkSync(path);
}

/** Gives the socket its final mode; says what it is ("0660, group berth" or "0600"). */
export function restrictSocket(path: string, gid = groupId(ADMIN_GROUP)): string {
  if (gid !== null) {
    try {
      chownSync(path, process.getuid?.() ?? -1, gid);
      chmodSync(path, 0o660);
      return `mode 0660, group ${ADMIN_GROUP}`;
    } catch {
      // Not root and not in the group: the socket stays the node's user's alone.
    }
  }
  chmodSync(path, 0o600);
  return gid === null
    ? `mode 0600 (no ${ADMIN_GROUP} group)`
    : `mode 0600 (cannot give it to group ${ADMIN_GROUP})`;
}
