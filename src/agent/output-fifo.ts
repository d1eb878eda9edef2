// The seam to output that outlives the supervisor. A unit's main process writes its stdout and stderr into named
// FIFOs (one each, in the agent's directory) that it holds open read-write itself: were the supervisor to crash,
// the unit's writes never meet a closed pipe (no SIGPIPE), they only wait once the pipe's buffer is full, and the
// next supervisor opens the same FIFOs by name and reads on, losing nothing. With plain pipes the read end died with
// the supervisor, so the next one could only kill the unit and start it again.
//
// Node and Bun have no mkfifo(3); Bun's FFI calls libc for it (output-fifo-ffi.ts), so the compiled binary, whose
// supervisor runs the units, has FIFOs. Under Node (the tests that load the agent in-process) there are none: units
// write into pipes, as before, and cannot be adopted by another process. This file imports nothing from `bun:`.
import type { Readable } from "node:stream";

export interface OutputFifos {
  /**
   * Makes a FIFO at `path`: `childFd` is it opened read-write, for the child's stdout or stderr (close it once the
   * child is spawned), `stream` its reading end. Throws when the FIFO cannot be made.
   */
  make(path: string): { childFd: number; stream: Readable };
  /** Reads on an existing FIFO (a unit adopted from a previous supervisor); null when there is none at `path`. */
  open(path: string): Readable | null;
}

/** This runtime's: Bun's FFI in the compiled binary, none under Node. */
export async function runtimeOutputFifos(log: (line: string) => void): Promise<OutputFifos | null> {
  if (!process.versions.bun || process.platform !== "linux") return null;
  try {
    const ffi = await import("./output-fifo-ffi.ts");
    return ffi.ffiOutputFifos;
  } catch (e) {
    log(`agent: no output FIFOs (a supervisor's crash restarts its units): ${(e as Error).message}`);
    return null;
  }
}
