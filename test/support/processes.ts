// Process and port helpers shared by the tests, the chaos harness and the benchmarks.
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

/** A free TCP port on `host` (bound and released; good enough with per-test hosts and random ports). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolvePort(port));
    });
  });
}

/** Unit processes outlive a SIGKILLed node (own process groups); the agent records them for this cleanup. */
export function killUnitProcesses(dataDir: string): void {
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

/** Polls `fn` until it returns a truthy value (or stops throwing); fails with the last problem after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  timeoutMs = 15_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v as T;
      last = v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(
    `${what}: not done after ${timeoutMs} ms (last: ${last instanceof Error ? last.message : String(last)})`,
  );
}
