// Listening sockets, poll(2) and inotify through libc (Bun's FFI; loaded only under Bun, see activation.ts).
// Sockets are made without O_NONBLOCK (the service gets them as systemd gives them) and with FD_CLOEXEC: only the
// spawn that passes them on (in its stdio list) hands them to a child. Struct layouts are Linux's.

import { dlopen, ptr, read } from "bun:ffi";
import { constants } from "node:os";
import type { Activation, Inotify, InotifyEvent } from "./activation.ts";
import type { ListenAddress } from "./socket-config.ts";

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;
const POLLIN = 1;
const IN_NONBLOCK = 0o4000;
const IN_CLOEXEC = 0o2000000;

const libc = dlopen("libc.so.6", {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  listen: { args: ["i32", "i32"], returns: "i32" },
  poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  inotify_init1: { args: ["i32"], returns: "i32" },
  inotify_add_watch: { args: ["i32", "ptr", "u32"], returns: "i32" },
  read: { args: ["i32", "ptr", "u64"], returns: "i64" },
  __errno_location: { args: [], returns: "ptr" },
});

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([k, v]) => [v, k]));

function lastError(): string {
  const p = libc.symbols.__errno_location();
  const n = p === null ? 0 : read.i32(p, 0);
  const name = ERRNO_NAMES.get(n) ?? `errno ${n}`;
  return name === "EADDRINUSE" ? "Address already in use" : name === "EACCES" ? "Permission denied" : name;
}

function sockaddr(a: ListenAddress): Buffer {
  if (a.family === "unix") {
    const abstract = a.host.startsWith("@");
    const path = Buffer.from(abstract ? a.host.slice(1) : a.host, "utf8");
    const out = Buffer.alloc(2 + 1 + path.length + (abstract ? 0 : 1));
    out.writeUInt16LE(AF_UNIX, 0);
    path.copy(out, abstract ? 3 : 2);
    return out;
  }
  if (a.family === "inet") {
    const out = Buffer.alloc(16);
    out.writeUInt16LE(AF_INET, 0);
    out.writeUInt16BE(a.port, 2);
    a.host.split(".").forEach((b, i) => {
      out.writeUInt8(Number(b), 4 + i);
    });
    return out;
  }
  const out = Buffer.alloc(28);
  out.writeUInt16LE(AF_INET6, 0);
  out.writeUInt16BE(a.port, 2);
  ipv6Bytes(a.host).copy(out, 8);
  return out;
}

function ipv6Bytes(host: string): Buffer {
  const [head, tail] = host.includes("::") ? host.split("::") : [host, undefined];
  const words = (s: string | undefined): number[] =>
    s ? s.split(":").map((w) => Number.parseInt(w, 16)) : [];
  const h = words(head);
  const t = words(tail);
  const all = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  all.forEach((w, i) => {
    out.writeUInt16BE(w, i * 2);
  });
  return out;
}

function listen(a: ListenAddress, backlog: number): number {
  const family = a.family === "unix" ? AF_UNIX : a.family === "inet" ? AF_INET : AF_INET6;
  const type = a.kind === "stream" ? SOCK_STREAM : SOCK_DGRAM;
  const fd = libc.symbols.socket(family, type | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    // A bare port binds [::] (dual-stack) as in systemd; on a machine without IPv6, 0.0.0.0.
    if (family === AF_INET6 && a.host === "::")
      return listen({ ...a, family: "inet", host: "0.0.0.0" }, backlog);
    throw new Error(`socket() failed: ${lastError()}`);
  }
  const one = new Int32Array([1]);
  const zero = new Int32Array([0]);
  if (family !== AF_UNIX) libc.symbols.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4);
  if (family === AF_INET6) libc.symbols.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, zero, 4);
  const addr = sockaddr(a);
  if (libc.symbols.bind(fd, addr, addr.length) !== 0) {
    const why = lastError();
    libc.symbols.close(fd);
    throw new Error(`Failed to create listening socket (${a.text}): ${why}`);
  }
  if (a.kind === "stream" && libc.symbols.listen(fd, backlog) !== 0) {
    const why = lastError();
    libc.symbols.close(fd);
    throw new Error(`Failed to listen on ${a.text}: ${why}`);
  }
  return fd;
}

function waiting(fds: readonly number[]): boolean {
  if (fds.length === 0) return false;
  const pfd = Buffer.alloc(8 * fds.length);
  fds.forEach((fd, i) => {
    pfd.writeInt32LE(fd, i * 8);
    pfd.writeInt16LE(POLLIN, i * 8 + 4);
  });
  if (libc.symbols.poll(pfd, BigInt(fds.length), 0) <= 0) return false;
  return fds.some((_, i) => (pfd.readInt16LE(i * 8 + 6) & POLLIN) !== 0);
}

function inotify(): Inotify {
  const fd = libc.symbols.inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) throw new Error(`inotify_init1 failed: ${lastError()}`);
  const buf = Buffer.alloc(64 * 1024);
  let open = true;
  return {
    add: (path, mask) => (open ? libc.symbols.inotify_add_watch(fd, Buffer.from(`${path}\0`), mask) : -1),
    drain: () => {
      const out: InotifyEvent[] = [];
      while (open) {
        const n = Number(libc.symbols.read(fd, ptr(buf), BigInt(buf.length)));
        if (n <= 0) break;
        // struct inotify_event: wd, mask, cookie, len, then len bytes of name (NUL-padded).
        for (let at = 0; at + 16 <= n; at += 16 + buf.readUInt32LE(at + 12)) {
          const len = buf.readUInt32LE(at + 12);
          const event: InotifyEvent = { wd: buf.readInt32LE(at), mask: buf.readUInt32LE(at + 4) };
          if (len > 0) {
            const raw = buf.subarray(at + 16, at + 16 + len);
            const end = raw.indexOf(0);
            event.name = raw.subarray(0, end < 0 ? len : end).toString();
          }
          out.push(event);
        }
      }
      return out;
    },
    close: () => {
      if (!open) return;
      open = false;
      libc.symbols.close(fd);
    },
  };
}

export const ffiActivation: Activation = {
  listen,
  waiting,
  close: (fd) => void libc.symbols.close(fd),
  inotify,
};
