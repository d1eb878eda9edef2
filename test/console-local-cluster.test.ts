// `npm start` (scripts/local-cluster.ts) in a real terminal (tmux): three real nodes on 127.0.9.1-3 and the console
// over them. A node that cannot start shows in the console (not printed behind its screen); when the cluster loses
// its quorum the header says UNREACHABLE and the data stale; q asks before it stops the local cluster, y stops it.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { killUnitProcesses } from "./support/processes.ts";
import { TestTerminal } from "./support/terminal.ts";

const ROOT = resolve(import.meta.dirname, "..");
const BUN = join(ROOT, "node_modules", ".bin", "bun");

/** The processes started for this local cluster (its nodes, their supervisors): their command lines name `dir`. */
function processesOf(dir: string, name = ""): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (
        argv.some(
          (a) => a === `--data-dir=${join(dir, name)}` || (!name && a.startsWith(`--data-dir=${dir}/`)),
        )
      )
        found.push(Number(entry));
    } catch {}
  }
  return found;
}

describe("npm start's console", () => {
  let dir = "";
  let term: TestTerminal | null = null;
  let blocker: Server | null = null;

  afterEach(() => {
    term?.stop();
    term = null;
    blocker?.close();
    blocker = null;
    for (const pid of processesOf(dir))
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    for (const n of ["n1", "n2", "n3"]) killUnitProcesses(join(dir, n));
    rmSync(dir, { recursive: true, force: true });
  });

  it("shows a node that failed to start, says UNREACHABLE when the quorum is gone, asks before stopping the cluster", async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-local-"));
    // n3's client port is taken: n3 exits at once.
    blocker = createServer();
    await new Promise<void>((ok) => blocker!.listen(4001, "127.0.9.3", ok));
    term = TestTerminal.start([BUN, join(ROOT, "scripts", "local-cluster.ts")], {
      env: { BERTH_LOCAL_NET: "127.0.9", BERTH_LOCAL_DIR: dir },
    });
    const t = term;
    await t.waitForScreen(/n1\s+127\.0\.9\.1\s+up/, 30_000);
    await t.waitForScreen(/1 NODE DOWN[\s\S]*n3 exited \(code \d+\): see \S+n3\.log: .*4001/, 15_000);
    expect(t.screen()).not.toContain("UNREACHABLE");

    // n2 goes too: n1 alone has no quorum and answers nothing; what shows is the last data, said to be stale.
    const [n2] = processesOf(dir, "n2");
    process.kill(n2!, "SIGKILL");
    await t.waitForScreen(/UNREACHABLE.*stale: data of \d\d:\d\d:\d\d/, 30_000);
    await t.waitForScreen("2 NODES DOWN", 10_000);
    expect(t.screen()).toMatch(/n1\s+127\.0\.9\.1/);

    t.keys("q");
    await t.waitForScreen("Quit and stop the local cluster? (y/n)");
    t.keys("n");
    await t.waitForScreen("cancelled");
    expect(processesOf(dir, "n1")).toHaveLength(1);
    t.keys("q", "y");
    expect(await t.exitCode(20_000)).toBe(0);
    expect(processesOf(dir)).toEqual([]);
  }, 90_000);
});
