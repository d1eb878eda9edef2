// One node per data directory (a real dist/berth): a second `berth node` on a directory in use exits at once,
// naming the holder's pid, and changes no byte there; the lock goes with the node when it is SIGKILLed, and the
// unit supervisor the node started (which outlives it) does not keep it.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { supervisorPid } from "../src/agent/supervisor.ts";
import { lockHolders, lockName } from "../src/datadir/lock.ts";
import { berth, freePort, TestCluster, waitFor } from "./support/cluster.ts";

/** Every entry under `dir`: a regular file's bytes (base64), anything else (a socket, a directory) by its kind. */
function contents(dir: string, root = dir, out: Record<string, string> = {}): Record<string, string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) {
      out[`${relative(root, p)}/`] = "dir";
      contents(p, root, out);
    } else out[relative(root, p)] = st.isFile() ? readFileSync(p).toString("base64") : "other";
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("the data directory lock", () => {
  it("sends a second node on the directory away untouched, and goes with its node on SIGKILL, not with the supervisor", async () => {
    const c = await TestCluster.start(1);
    try {
      const n = c.node("n1");
      const nodePid = n.proc!.pid!;
      const supervisor = await waitFor(
        "the unit supervisor",
        () => supervisorPid(join(n.dataDir, "agent")),
        15_000,
      );
      expect(lockHolders(lockName(n.dataDir))).toEqual([nodePid]);

      // Both frozen, so that only the second node could change a byte of the directory meanwhile.
      process.kill(nodePid, "SIGSTOP");
      process.kill(supervisor, "SIGSTOP");
      try {
        const before = contents(n.dataDir);
        // Other client addresses than the first node's: let in, it would rewrite node.json and open the log.
        const t0 = performance.now();
        const second = await berth(
          [
            "node",
            `--data-dir=${n.dataDir}`,
            `--client-addr=127.0.0.1:${await freePort("127.0.0.1")}`,
            `--http-addr=127.0.0.1:${await freePort("127.0.0.1")}`,
          ],
          { timeoutMs: 15_000 },
        );
        console.log(
          `the second node exited with ${second.code} after ${(performance.now() - t0).toFixed(0)} ms`,
        );
        expect(second.code).toBe(1);
        expect(second.stderr).toContain(`is in use by another berth node (pid ${nodePid})`);
        expect(contents(n.dataDir)).toEqual(before);
      } finally {
        process.kill(supervisor, "SIGCONT");
        process.kill(nodePid, "SIGCONT");
      }

      await c.kill("n1");
      expect(alive(supervisor)).toBe(true);
      expect(lockHolders(lockName(n.dataDir))).toEqual([]);
      c.spawn(n);
      await c.waitHealthy();
      expect(lockHolders(lockName(n.dataDir))).toEqual([n.proc!.pid]);
    } finally {
      await c.stop();
    }
  }, 60_000);
});
