// Process and port helpers shared by the tests, the chaos harness and the benchmarks.
import type { ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { processStartTime } from "../../src/agent/proc.ts";
import { supervisorPid } from "../../src/agent/supervisor.ts";
import { detectPlacement } from "../../src/agent/unit-cgroup.ts";
import { REAL_CLOCK, type RetryClock } from "../../src/retry.ts";
import { sweepAgentCgroups } from "./cgroups.ts";

/** Signals a child this test process spawned (by its own handle) and waits for it to exit; a no-op once it has. */
export async function signalAndWait(p: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once("exit", r));
  p.kill(signal);
  await exited;
}

/** Ports handed out by this process, never handed out twice. */
const handedOut = new Set<number>();

/** The kernel's ephemeral range starts here: outgoing connections (and port-0 listeners) take ports above it. */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 11_000) return low;
  } catch {}
  return 32_768;
}

/**
 * A free TCP port on `host` for a process started later. It is picked below the ephemeral range: a port the
 * kernel chose for us would be free to hand to any outgoing connection (a node's, a proxy's) between this
 * check and the node's listen, and the node would fail with EADDRINUSE.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const low = 10_000;
  const high = ephemeralLow();
  for (let attempt = 0; ; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (handedOut.has(port)) continue;
    const free = await new Promise<boolean>((resolveFree) => {
      const srv = createServer();
      srv.once("error", () => resolveFree(false));
      srv.listen(port, host, () => srv.close(() => resolveFree(true)));
    });
    if (free) {
      handedOut.add(port);
      return port;
    }
    if (attempt > 1000) throw new Error(`no free port on ${host} between ${low} and ${high}`);
  }
}

/**
 * Unit processes outlive a SIGKILLed node (own process groups, own cgroups); the agent records the groups for this
 * cleanup, and its cgroups are emptied and removed (the node's are under this process's own cgroup).
 */
export function killUnitProcesses(dataDir: string): void {
  // The supervisor first, so it starts nothing again; its units are then orphans in their groups. One started
  // just before its node was killed may not have written its pid file yet: found by its command line then.
  const agentDir = join(dataDir, "agent");
  for (const pid of new Set([supervisorPid(agentDir), ...supervisorsByCommandLine(agentDir)])) {
    if (pid === null) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  sweepAgentCgroups(detectPlacement(), join(dataDir, "agent"));
  const file = join(dataDir, "agent", "process-groups.json");
  if (!existsSync(file)) return;
  try {
    for (const pgid of Object.keys(JSON.parse(readFileSync(file, "utf8")) as object)) {
      try {
        process.kill(-Number(pgid), "SIGKILL");
      } catch {}
    }
  } catch {}
}

/** Processes running `berth supervise --agent-dir=<agentDir>`, whether or not they wrote their pid file yet. */
function supervisorsByCommandLine(agentDir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (argv.includes("supervise") && argv.includes(`--agent-dir=${agentDir}`)) found.push(Number(entry));
    } catch {}
  }
  return found;
}

/**
 * Signals the unit supervisor of the node with this data directory and waits until it is gone: SIGTERM stops its
 * units as `berth stop` would (the whole machine shut down cleanly), SIGKILL leaves them as orphans.
 */
export async function stopSupervisor(
  dataDir: string,
  signal: NodeJS.Signals = "SIGTERM",
  timeoutMs = 30_000,
) {
  const agentDir = join(dataDir, "agent");
  const pid = supervisorPid(agentDir);
  if (pid === null) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  // Gone once it is no longer a running supervisor: a zombie (its node, the parent, may be stopped and cannot reap
  // it) has no command line any more.
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && supervisorPid(agentDir) === pid)
    await new Promise((r) => setTimeout(r, 20));
  if (supervisorPid(agentDir) === pid) process.kill(pid, "SIGKILL");
}

/**
 * Polls `fn` every `intervalMs` until it returns a truthy value (or stops throwing); fails with the last problem
 * after `timeoutMs`. The tests' one wait: `clock` is a simulation's virtual time where a test runs on one.
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  timeoutMs = 15_000,
  intervalMs = 100,
  clock: RetryClock = REAL_CLOCK,
): Promise<T> {
  const deadline = clock.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as T;
      last = v;
    } catch (err) {
      last = err;
    }
    if (clock.now() >= deadline) break;
    await clock.sleep(intervalMs);
  }
  throw new Error(
    `${what}: not done after ${timeoutMs} ms (last: ${last instanceof Error ? last.message : String(last)})`,
  );
}

/**
 * The live process groups of unit processes the agent of this data directory recorded (src/agent/leftovers.ts):
 * only those whose leader is still the recorded process, as the record outlives the groups and pids are reused.
 */
export function recordedGroups(dataDir: string): number[] {
  const file = join(dataDir, "agent", "process-groups.json");
  if (!existsSync(file)) return [];
  try {
    const recorded = JSON.parse(readFileSync(file, "utf8")) as Record<string, { startTime?: string | null }>;
    return Object.entries(recorded)
      .filter(([pgid, e]) => e?.startTime != null && processStartTime(Number(pgid)) === e.startTime)
      .map(([pgid]) => Number(pgid));
  } catch {
    return [];
  }
}
