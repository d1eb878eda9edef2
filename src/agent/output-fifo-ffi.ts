// Output FIFOs through libc (Bun's FFI; loaded only under Bun, see output-fifo.ts). The reading end is opened
// non-blocking (an open without a writer must not hang the supervisor: a unit may have died meanwhile) and read by
// Bun's own poller through Bun.file(fd).stream(), which wakes on data rather than blocking a thread per FIFO.
import { dlopen } from "bun:ffi";
import { closeSync, constants, openSync, statSync, unlinkSync } from "node:fs";
import { Readable } from "node:stream";
import type { OutputFifos } from "./output-fifo.ts";

const libc = dlopen("libc.so.6", {
  mkfifo: { args: ["cstring", "u32"], returns: "i32" },
});

/** Reads the FIFO until every writer is gone, then closes it and removes its name (nobody reads it again). */
function reader(fd: number, path: string): Readable {
  const stream = Readable.fromWeb(Bun.file(fd).stream() as import("node:stream/web").ReadableStream);
  let closed = false;
  const done = (): void => {
    if (closed) return;
    closed = true;
    try {
      closeSync(fd);
    } catch {}
    try {
      unlinkSync(path);
    } catch {}
  };
  stream.once("end", done);
  stream.once("close", done);
  stream.once("error", done);
  return stream;
}

export const ffiOutputFifos: OutputFifos = {
  make(path) {
    try {
      unlinkSync(path);
    } catch {}
    if (libc.symbols.mkfifo(Buffer.from(`${path}\0`), 0o600) !== 0) throw new Error(`mkfifo ${path} failed`);
    const childFd = openSync(path, constants.O_RDWR);
    const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    return { childFd, stream: reader(fd, path) };
  },
  open(path) {
    try {
      if (!statSync(path).isFIFO()) return null;
      return reader(openSync(path, constants.O_RDONLY | constants.O_NONBLOCK), path);
    } catch {
      return null;
    }
  },
};
