// The seam to what socket and path units need from the kernel beyond what Node and Bun offer: a listening socket
// as a bare file descriptor (passed on to the service as LISTEN_FDS, never accepted on here), a way to see that a
// connection or datagram waits on it without taking it, and inotify with the events systemd's path units use
// (IN_CLOSE_WRITE for PathChanged=, which fs.watch does not report).
//
// Bun's FFI calls libc for them (activation-ffi.ts), so the compiled binary, whose supervisor runs the units, has
// them. Under Node (the tests that load the agent in-process) there is none: a socket or path unit fails to start,
// saying so. This file imports nothing from `bun:`, so every module the tests load stays loadable under Node.
import type { ListenAddress } from "./socket-config.ts";

/** How often a socket or path unit looks at its descriptors (poll(2) with no wait, a non-blocking inotify read). */
export const ACTIVATION_POLL_MS = 20;

export interface Activation {
  /** Binds and (for a stream) listens; the descriptor, or throws saying why ("Address already in use"). */
  listen(a: ListenAddress, backlog: number): number;
  /** Whether a connection or datagram waits on any of the descriptors (nothing is taken from them). */
  waiting(fds: readonly number[]): boolean;
  close(fd: number): void;
  /** A fresh inotify instance. */
  inotify(): Inotify;
}

export interface InotifyEvent {
  wd: number;
  mask: number;
  name?: string;
}

export interface Inotify {
  /** Watches `path` for `mask`; the watch descriptor, or -1 (the path does not exist, or cannot be watched). */
  add(path: string, mask: number): number;
  /** The events read since the last call (without waiting); `name` is the entry's, for an event in a watched directory. */
  drain(): InotifyEvent[];
  close(): void;
}

// inotify(7)
export const IN_MODIFY = 0x2;
export const IN_ATTRIB = 0x4;
export const IN_CLOSE_WRITE = 0x8;
export const IN_MOVED_FROM = 0x40;
export const IN_MOVED_TO = 0x80;
export const IN_CREATE = 0x100;
export const IN_DELETE = 0x200;
export const IN_DELETE_SELF = 0x400;
export const IN_MOVE_SELF = 0x800;

/** This runtime's: Bun's FFI in the compiled binary, none under Node. */
export async function runtimeActivation(log: (line: string) => void): Promise<Activation | null> {
  if (!process.versions.bun || process.platform !== "linux") return null;
  try {
    const ffi = await import("./activation-ffi.ts");
    return ffi.ffiActivation;
  } catch (e) {
    log(
      `agent: no socket activation or path watching (.socket and .path units cannot start): ${(e as Error).message}`,
    );
    return null;
  }
}
