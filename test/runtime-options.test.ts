// Node mode re-executes itself with JavaScriptCore's FTL tier off and mimalloc's hole purging slowed
// (src/node/runtime-options.ts): the same process (PID) must come back serving, with the options in its environment,
// and an operator's own values must win.
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { TestCluster } from "./support/cluster.ts";

let c: TestCluster | null = null;

afterEach(async () => {
  await c?.stop();
  c = null;
});

function environOf(pid: number): Record<string, string> {
  const entries = readFileSync(`/proc/${pid}/environ`, "utf8")
    .split("\0")
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]);
  return Object.fromEntries(entries);
}

describe("node runtime options", () => {
  it("turns FTL off and slows hole purging by re-executing in place: same PID and name, serving, and says so in its log", async () => {
    c = await TestCluster.start(1);
    const n1 = c.node("n1");
    const env = environOf(n1.proc!.pid!);
    expect(env.BUN_JSC_useFTLJIT).toBe("false");
    expect(env.MIMALLOC_PURGE_HOLES_MIN_INTERVAL).toBe("10000");
    // Re-executed by its own path, so ps and top still call it berth.
    expect(readFileSync(`/proc/${n1.proc!.pid}/comm`, "utf8")).toBe("berth\n");
    expect(readFileSync(n1.logFile, "utf8")).toContain(
      "runtime options: BUN_JSC_useFTLJIT=false MIMALLOC_PURGE_HOLES_MIN_INTERVAL=10000",
    );
    expect(await c.cli(["kv", "set", "/k", "v"])).toMatchObject({ code: 0, stdout: "v\n" });
    expect(n1.proc!.exitCode).toBeNull();
  });

  it("is an option the allocator really takes: mimalloc itself reports the new hole purging interval", async () => {
    // MIMALLOC_VERBOSE makes mimalloc print its options at start: once before the re-execution, once after.
    c = await TestCluster.start(1, { launcher: ["env", "MIMALLOC_VERBOSE=1"] });
    const log = readFileSync(c.node("n1").logFile, "utf8");
    expect(log).toContain("option 'purge_holes_min_interval': 10000");
  });

  it("leaves an operator's own settings alone", async () => {
    c = await TestCluster.start(1, {
      launcher: ["env", "BUN_JSC_useFTLJIT=true", "MIMALLOC_PURGE_HOLES_MIN_INTERVAL=100"],
    });
    const n1 = c.node("n1");
    const env = environOf(n1.proc!.pid!);
    expect(env.BUN_JSC_useFTLJIT).toBe("true");
    expect(env.MIMALLOC_PURGE_HOLES_MIN_INTERVAL).toBe("100");
    expect(readFileSync(n1.logFile, "utf8")).not.toContain("runtime options:");
    expect(await c.cli(["kv", "get", "/nokey"])).toMatchObject({ code: 4 });
  });
});
