// Runtime options for node mode (JavaScriptCore's and the memory allocator's), read from the environment only when
// the process starts: so a node re-executes itself (execve: same PID, same file descriptors, systemd sees nothing)
// with them set.
//
// Why FTL is off: JSC's top tier compiles a hot function in 10-40 ms of a JIT thread's CPU, and keeps doing so for
// a minute or more of traffic. On a small machine that is a core taken from the members' event loops at random
// moments, which is where Berth's p99 at low concurrency came from (bench/etcd-compare.ts, PUT x1: 4.7 -> 2.9 ms,
// x16: 11.9 -> 9.6 ms, same throughput at every row). The DFG tier compiles in under a millisecond.
//
// Why mimalloc's hole purging is slowed to once per 10 s: by default Bun's allocator thread ("mi-scavenger") sweeps
// the event loop's heap for free holes to give back to the system as often as every 100 ms, and that thread was
// what most often held a core while a member's event loop waited for one (perf sched at PUT x1). Every 10 s took
// the share of x1 requests over 2 ms from 1.29% to 0.85% and p99 from 2.32 to 1.81 ms (A/B, 4 rounds), while a
// member's memory still goes back down after a burst (RSS 20 s after a minute of load: 115-121 MB, against 103-115
// MB; with hole purging off altogether it stayed at 142-167 MB).
import { readFileSync, readlinkSync } from "node:fs";

/** Set by the re-executed process, so it never loops; also tells the node to mention it in its log. */
const MARK = "BERTH_RUNTIME_OPTIONS";
const OPTIONS: Record<string, string> = {
  BUN_JSC_useFTLJIT: "false",
  MIMALLOC_PURGE_HOLES_MIN_INTERVAL: "10000",
};

/**
 * Re-executes this process with OPTIONS in its environment, unless they are already there (an operator's own
 * value wins: BUN_JSC_useFTLJIT=true turns FTL back on) or this is not Bun on Linux. Returns only when it did not.
 */
export async function reexecWithRuntimeOptions(): Promise<void> {
  if (process.env[MARK] !== undefined || process.platform !== "linux" || !process.versions.bun) return;
  const missing = Object.keys(OPTIONS).filter((k) => process.env[k] === undefined);
  if (missing.length === 0) return;
  let argv: string[];
  try {
    argv = readFileSync("/proc/self/cmdline", "latin1").split("\0").slice(0, -1);
  } catch {
    return;
  }
  const set = missing.map((k) => `${k}=${OPTIONS[k]}`);
  const env = [
    ...Object.entries(process.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`])),
    ...set,
    `${MARK}=${set.join(" ")}`,
  ];
  const { dlopen, ptr } = await import("bun:ffi");
  const libc = (() => {
    try {
      return dlopen("libc.so.6", { execve: { args: ["ptr", "ptr", "ptr"], returns: "i32" } });
    } catch {
      return null; // not glibc: run as is
    }
  })();
  if (!libc) return;
  const cstr = (s: string) => Buffer.from(`${s}\0`, "utf8");
  // The strings must stay referenced until execve: the pointer arrays hold only their addresses.
  const keep: Buffer[] = [];
  const table = (items: string[]) => {
    const t = new BigUint64Array(items.length + 1);
    items.forEach((s, i) => {
      const b = cstr(s);
      keep.push(b);
      t[i] = BigInt(ptr(b));
    });
    return t;
  };
  const argvTable = table(argv);
  const envTable = table(env);
  // By its path, not /proc/self/exe, so the process keeps its name ("berth" in ps, top and the journal).
  const path = readlinkSync("/proc/self/exe");
  const exe = cstr(path.endsWith(" (deleted)") ? "/proc/self/exe" : path);
  libc.symbols.execve(ptr(exe), ptr(argvTable), ptr(envTable));
  // Only reached when execve failed (e.g. /proc/self/exe unreadable): carry on without the options.
  libc.close();
  void keep;
}

/** What the re-execution set, for the node's start-up log line (null when nothing was set). */
export function runtimeOptionsNote(): string | null {
  return process.env[MARK] || null;
}
