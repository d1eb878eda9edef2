// Unix socket files shared by the node's client socket and the unit supervisor's socket: whether something still
// answers on one (a live process, not a stale file), and creating one that is its owner's alone from the start.
import { connect } from "node:net";

/** True when something accepts connections on `path`; false for no file, a stale socket or anything else. */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * Runs `listen` with a umask that leaves a new socket file to its owner alone from its first instant (the mode
 * the caller wants is set afterwards). The umask is process-wide: no other file may be created meanwhile, so
 * `listen` should do nothing else.
 */
export async function withOwnerOnlyUmask<T>(listen: () => Promise<T>): Promise<T> {
  const old = process.umask(0o177);
  try {
    return await listen();
  } finally {
    process.umask(old);
  }
}
