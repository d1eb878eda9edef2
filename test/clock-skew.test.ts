// One member's clock a day ahead (libfaketime on the real binary): while it leads, no key expires early and a 5 s
// key it stamps lives about 5 s, also after the leadership moves on; `berth cluster health` names the member and
// exits 1.
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, waitFor } from "./support/cluster.ts";

const FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

describe("a member whose clock is a day ahead", () => {
  let cluster: TestCluster;
  const exists = async (key: string) => {
    const r = await cluster.cli(["kv", "get", key]);
    if (r.code !== 0 && r.code !== 4) throw new Error(`kv get ${key} exited ${r.code}: ${r.stderr}`);
    return r.code === 0;
  };
  const cli = async (args: string[]) => {
    const r = await cluster.cli(args);
    expect(r.code, `berth ${args.join(" ")}: ${r.stderr}`).toBe(0);
    return r;
  };

  beforeAll(async () => {
    if (!existsSync(FAKETIME))
      throw new Error(`${FAKETIME} is missing: run scripts/setup.sh (Debian's libfaketime)`);
    cluster = await TestCluster.start(3);
    await cluster.waitHealthy(30_000);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it("expires nothing early, stamps TTLs on the cluster's time, and is reported by cluster health", async () => {
    await cli(["kv", "set", "/keep", "v", "--ttl=600"]);
    const skewed = cluster.node("n1");
    skewed.env = { LD_PRELOAD: FAKETIME, FAKETIME: "+1d", FAKETIME_DONT_FAKE_MONOTONIC: "1" };
    await cluster.restart("n1");
    await waitFor(
      "n1 noticing its clock",
      () =>
        /this member's clock is 86\d\d\d\.\d s ahead of the cluster's/.test(
          readFileSync(skewed.logFile, "utf8"),
        ),
      20_000,
      100,
    );

    const health = await cluster.cli(["cluster", "health"]);
    expect(health.code, health.stdout + health.stderr).toBe(1);
    expect(health.stdout).toMatch(
      /member n1 is healthy: .*; its clock is 86\d\d\d\.\d s ahead of the cluster's/,
    );
    expect(health.stdout).toMatch(/cluster is healthy, but the clock of n1 is off/);

    await cli(["cluster", "move-leader", "n1"]);
    await cli(["kv", "set", "/short", "v", "--ttl=5"]);
    const written = Date.now();
    await new Promise((r) => setTimeout(r, 2000));
    expect(await exists("/keep"), cluster.logs()).toBe(true);
    // Leadership moves to a member with a right clock: the key n1 stamped must not live a day.
    await cli(["cluster", "move-leader", "n2"]);
    await waitFor("/short expired", async () => !(await exists("/short")), 20_000, 100);
    const lived = Date.now() - written;
    expect(lived).toBeGreaterThanOrEqual(4500);
    expect(lived).toBeLessThan(9000);
    expect(await exists("/keep")).toBe(true);
  }, 90_000);
});
