// A node restarted from its data directory acts only on current state: its log still says it runs a unit that
// moved away while it was down, and it must not start that unit (a second copy) before the leader has confirmed
// what is current. The unit is an at-most-once probe (test/chaos/probes.ts): it holds an exclusive file lock while
// it runs, and a copy that finds the lock taken records a double run.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProbeKit } from "./chaos/probes.ts";
import { TestCluster, waitFor } from "./support/cluster.ts";

interface UnitRow {
  name: string;
  machine: string;
  active: string;
}

describe("a restarted node acts only after catching up", () => {
  let cluster: TestCluster;
  let probes: ProbeKit;
  const json = async <T>(args: string[]): Promise<T> => {
    const r = await cluster.cli([...args, "--output=json"]);
    if (r.code !== 0) throw new Error(`berth ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const probeRow = async () =>
    (await json<UnitRow[]>(["list-units"])).find((r) => r.name === "probe.service");
  const doubles = () => probes.doubles().join("\n");
  const logOf = (name: string) => readFileSync(cluster.node(name).logFile, "utf8");

  beforeAll(async () => {
    probes = new ProbeKit();
    writeFileSync(
      join(probes.dir, "probe.service"),
      `[Service]\nExecStart=${probes.execStart("probe", "-")}\n`,
    );
    // The survivors are paused below for less than the TTL: this test is about the returning node, not about what
    // a paused leader makes of the silence of others when it resumes.
    cluster = await TestCluster.start(3, { extraArgs: ["--agent-ttl=6s"] });
  }, 60_000);
  afterAll(async () => {
    for (const n of cluster?.nodes ?? []) n.proc?.kill("SIGCONT");
    await cluster?.stop();
    probes?.remove();
  });

  it("starts nothing while the leader is unreachable, then leaves the moved unit where it runs", async () => {
    expect(
      (await cluster.cli(["start", join(probes.dir, "probe.service")], cluster.endpoints(), 30_000)).code,
    ).toBe(0);
    const machines = await json<{ id: string; name: string }[]>(["list-machines"]);
    const first = (await waitFor("probe.service active", async () => {
      const r = await probeRow();
      return r?.active === "active" ? r : null;
    }))!;
    const victim = machines.find((m) => m.id === first.machine)!.name;

    // The victim's machine crashes (node and units); the probe moves to a survivor.
    await cluster.crash(victim);
    await waitFor(
      "probe.service active on a survivor",
      async () => {
        const r = await probeRow();
        return r && r.machine !== first.machine && r.active === "active";
      },
      30_000,
      200,
    );

    // The survivors stop answering (their unit keeps running); the victim returns with a log that still puts the
    // probe on its machine.
    const survivors = cluster.nodes.filter((n) => n.name !== victim);
    for (const n of survivors) n.proc!.kill("SIGSTOP");
    const logStart = logOf(victim).length;
    cluster.spawn(cluster.node(victim));
    await waitFor("the returning node serving", () => /serving clients/.test(logOf(victim).slice(logStart)));
    // Long enough for a node that acts on its replayed log to start the probe and for the probe to find the lock.
    await new Promise((r) => setTimeout(r, 2500));
    expect(doubles(), cluster.logs()).toBe("");
    expect(logOf(victim).slice(logStart)).toMatch(/waiting for the cluster to confirm/);

    for (const n of survivors) n.proc!.kill("SIGCONT");
    await waitFor(
      "the returning node caught up",
      () => /caught up with the cluster/.test(logOf(victim)),
      20_000,
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(doubles(), cluster.logs()).toBe("");
    const now = await probeRow();
    expect(now?.machine).not.toBe(first.machine);
    expect(now?.active).toBe("active");
  }, 90_000);
});
