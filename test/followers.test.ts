// The seed's data center: six machines, of which only three vote in Raft. The other three follow the log as
// learners, register as machines, run units, and have their units moved when they die — without ever voting.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, waitFor } from "./support/cluster.ts";

describe("a 6-machine cluster with 3 voters", () => {
  let cluster: TestCluster;
  let dir: string;
  const json = async <T>(args: string[]): Promise<T> => {
    const r = await cluster.cli([...args, "--output=json"]);
    if (r.code !== 0) throw new Error(`berth ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-followers-"));
    cluster = await TestCluster.start(3, { extraArgs: ["--agent-ttl=2s"] });
    for (const i of [4, 5, 6]) {
      const n = await cluster.define(`n${i}`, `127.0.0.${i}`, ["--agent-ttl=2s"]);
      cluster.spawn(n, ["--join"]);
      const add = await cluster.cli(["cluster", "add", n.name, `${n.host}:${n.peerPort}`, "--learner"]);
      if (add.code !== 0) throw new Error(`cluster add ${n.name}: ${add.stderr}`);
    }
  }, 90_000);
  afterAll(async () => {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("lists three voters and three learners, and all six machines", async () => {
    const members = await json<{ name: string; role: string }[]>(["cluster", "members"]);
    expect(members.map((m) => `${m.name}:${m.role}`).sort()).toEqual([
      "n1:voter",
      "n2:voter",
      "n3:voter",
      "n4:learner",
      "n5:learner",
      "n6:learner",
    ]);
    const machines = await waitFor(
      "six machines registered",
      async () => {
        const m = await json<{ name: string; state: string }[]>(["list-machines"]);
        return m.length === 6 && m.every((x) => x.state === "up") ? m : null;
      },
      30_000,
    );
    expect(machines.map((m) => m.name).sort()).toEqual(["n1", "n2", "n3", "n4", "n5", "n6"]);
  }, 40_000);

  it("runs units on the learners too, spread over all six machines", async () => {
    writeFileSync(
      join(dir, "web@.service"),
      "[Service]\nExecStart=/bin/sh -c 'while true; do sleep 1; done'\n\n[X-Fleet]\nConflicts=web@*.service\n",
    );
    const start = await cluster.cli(
      ["start", ...[1, 2, 3, 4, 5, 6].map((i) => join(dir, `web@${i}.service`))],
      cluster.endpoints(),
      60_000,
    );
    expect(start.code, start.stderr).toBe(0);
    const rows = await json<{ name: string; machine: string; active: string }[]>(["list-units"]);
    expect(new Set(rows.map((r) => r.machine)).size).toBe(6);
    expect(rows.every((r) => r.active === "active")).toBe(true);
  }, 70_000);

  it("takes every unit off a dead learner (moved, or waiting with a reason), and the voters keep their quorum", async () => {
    writeFileSync(
      join(dir, "solo.service"),
      "[Service]\nExecStart=/bin/sh -c 'while true; do sleep 1; done'\n",
    );
    expect((await cluster.cli(["start", join(dir, "solo.service")], cluster.endpoints(), 30_000)).code).toBe(
      0,
    );
    const machines = await json<{ id: string; name: string }[]>(["list-machines"]);
    const rows = await json<{ name: string; machine: string }[]>(["list-units"]);
    const learnerRow = rows.find(
      (r) =>
        r.name.startsWith("web@") &&
        ["n4", "n5", "n6"].includes(machines.find((m) => m.id === r.machine)!.name),
    )!;
    const victim = machines.find((m) => m.id === learnerRow.machine)!;
    await cluster.crash(victim.name);
    // solo.service is not in the way of anything; if it ran on the victim it moves, else it stays put.
    await waitFor(
      "no unit left on the dead learner",
      async () => {
        const now = await json<{ name: string; machine: string; note?: string }[]>(["list-units"]);
        return now.every((r) => r.machine !== victim.id) ? now : null;
      },
      20_000,
      200,
    );
    // Writes still commit: the three voters are all alive.
    expect((await cluster.cli(["kv", "set", "/still", "writable"])).code).toBe(0);
  }, 40_000);
});
