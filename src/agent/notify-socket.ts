// The seam to a unit's notify socket (sd_notify(3)): the datagram socket a Type=notify or WatchdogSec= unit finds
// in NOTIFY_SOCKET, and the messages it sends there (READY=1, STATUS=, WATCHDOG=1, ...), each with the sender's
// PID from the kernel (SCM_CREDENTIALS), which NotifyAccess= is checked against.
//
// Neither Node nor Bun offers unix datagram sockets; Bun's FFI can call libc for one (notify-socket-ffi.ts), so the
// compiled binary, whose supervisor runs the units, has notify sockets. Under Node (the tests that load the agent
// in-process) there is none: a unit that needs one fails to start, saying so. This file imports nothing from
// `bun:`, so every module the tests load stays loadable under Node.

/** One datagram: its text and the sender's PID (null when the kernel gave no credentials). */
export interface NotifyMessage {
  pid: number | null;
  text: string;
}

export interface NotifySocket {
  /** NOTIFY_SOCKET's value: "@name" for a socket in the abstract namespace. */
  readonly address: string;
  /** Stops receiving; file descriptors sent with messages have been closed already. */
  close(): void;
}

/** Binds a fresh socket; `onMessage` gets each datagram. Throws when the socket cannot be made. */
export type NotifySocketOpener = (onMessage: (m: NotifyMessage) => void) => NotifySocket;

/** The opener of this runtime: Bun's FFI in the compiled binary, none under Node. */
export async function runtimeNotifySocket(log: (line: string) => void): Promise<NotifySocketOpener | null> {
  if (!process.versions.bun || process.platform !== "linux") return null;
  try {
    const ffi = await import("./notify-socket-ffi.ts");
    return ffi.openFfiNotifySocket;
  } catch (e) {
    log(
      `agent: no notify sockets (Type=notify and WatchdogSec= units cannot start): ${(e as Error).message}`,
    );
    return null;
  }
}

/** "KEY=VALUE" lines of a notify message, the last one of each key winning; lines without "=" are skipped. */
export function notifyFields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}
