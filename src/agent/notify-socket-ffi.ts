// A unit's notify socket through libc (Bun's FFI; loaded only under Bun, see notify-socket.ts): an AF_UNIX
// SOCK_DGRAM socket in the abstract namespace (no file to clean up, reachable by a unit running as another user),
// SO_PASSCRED so every datagram carries its sender's PID, read without blocking by one poll timer for all sockets.
// File descriptors sent along (systemd-notify's BARRIER=1 waits until its descriptor is closed) are closed at once.
// Struct layouts are Linux LP64's (x86_64, aarch64).

import { dlopen, ptr } from "bun:ffi";
import { randomBytes } from "node:crypto";
import type { NotifyMessage, NotifySocket } from "./notify-socket.ts";

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_PASSCRED = 16;
const SCM_RIGHTS = 1;
const SCM_CREDENTIALS = 2;
const MSG_DONTWAIT = 0x40;
const MSG_TRUNC = 0x20;
const MSG_CMSG_CLOEXEC = 0x40000000;
/** systemd reads at most this much of a notify datagram (NOTIFY_BUFFER_MAX) and drops longer ones. */
const DATA_MAX = 4096;
/** Room for the credentials and up to 768 descriptors, as systemd allows. */
const CONTROL_MAX = 16 + 16 + 16 + 4 * 768;
const POLL_MS = 20;

const libc = dlopen("libc.so.6", {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  setsockopt: { args: ["i32", "i32", "i32", "ptr", "u32"], returns: "i32" },
  recvmsg: { args: ["i32", "ptr", "i32"], returns: "i64" },
  close: { args: ["i32"], returns: "i32" },
});

interface Open {
  fd: number;
  onMessage: (m: NotifyMessage) => void;
  data: Buffer;
  control: Buffer;
  iov: Buffer;
  msg: Buffer;
}

const open = new Set<Open>();
let timer: ReturnType<typeof setInterval> | null = null;

export function openFfiNotifySocket(onMessage: (m: NotifyMessage) => void): NotifySocket {
  const name = `berth-notify/${randomBytes(12).toString("hex")}`;
  const fd = libc.symbols.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error("socket(AF_UNIX, SOCK_DGRAM) failed");
  const one = new Int32Array([1]);
  // sockaddr_un: sun_family, then sun_path starting with a NUL byte (the abstract namespace).
  const addr = Buffer.alloc(2 + 1 + name.length);
  addr.writeUInt16LE(AF_UNIX, 0);
  addr.write(name, 3, "latin1");
  if (
    libc.symbols.setsockopt(fd, SOL_SOCKET, SO_PASSCRED, one, 4) !== 0 ||
    libc.symbols.bind(fd, addr, addr.length) !== 0
  ) {
    libc.symbols.close(fd);
    throw new Error(`cannot bind the notify socket @${name}`);
  }
  const data = Buffer.alloc(DATA_MAX);
  const control = Buffer.alloc(CONTROL_MAX);
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(BigInt(ptr(data)), 0);
  iov.writeBigUInt64LE(BigInt(DATA_MAX), 8);
  const msg = Buffer.alloc(56);
  const entry: Open = { fd, onMessage, data, control, iov, msg };
  open.add(entry);
  if (timer === null) timer = setInterval(pollAll, POLL_MS);
  timer.unref?.();
  return {
    address: `@${name}`,
    close: () => {
      if (!open.delete(entry)) return;
      drain(entry);
      libc.symbols.close(fd);
      if (open.size === 0 && timer !== null) {
        clearInterval(timer);
        timer = null;
      }
    },
  };
}

function pollAll(): void {
  for (const s of open) drain(s);
}

/** Reads every datagram waiting on the socket. */
function drain(s: Open): void {
  for (;;) {
    // struct msghdr: name, namelen, iov, iovlen, control, controllen, flags (filled in afresh for every call).
    s.msg.fill(0);
    s.msg.writeBigUInt64LE(BigInt(ptr(s.iov)), 16);
    s.msg.writeBigUInt64LE(1n, 24);
    s.msg.writeBigUInt64LE(BigInt(ptr(s.control)), 32);
    s.msg.writeBigUInt64LE(BigInt(CONTROL_MAX), 40);
    const n = Number(libc.symbols.recvmsg(s.fd, s.msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
    if (n < 0) return; // EAGAIN: nothing more (or the socket is gone)
    const flags = s.msg.readInt32LE(48);
    const controlLen = Number(s.msg.readBigUInt64LE(40));
    let pid: number | null = null;
    // struct cmsghdr: len (size_t), level, type, then the data, each header aligned to 8 bytes.
    for (let at = 0; at + 16 <= controlLen; ) {
      const len = Number(s.control.readBigUInt64LE(at));
      if (len < 16) break;
      const level = s.control.readInt32LE(at + 8);
      const type = s.control.readInt32LE(at + 12);
      if (level === SOL_SOCKET && type === SCM_CREDENTIALS && len >= 16 + 12)
        pid = s.control.readInt32LE(at + 16);
      if (level === SOL_SOCKET && type === SCM_RIGHTS) {
        for (let i = at + 16; i + 4 <= at + len; i += 4) libc.symbols.close(s.control.readInt32LE(i));
      }
      at += (len + 7) & ~7;
    }
    if ((flags & MSG_TRUNC) !== 0) continue; // over systemd's limit: dropped, as systemd does
    try {
      s.onMessage({ pid, text: s.data.toString("utf8", 0, n) });
    } catch {}
  }
}
