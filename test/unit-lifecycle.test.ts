// The unit verbs' lifecycle on a real node with real unit processes (issue 19, "Lifecycle"): start returns with the
// reason when a unit fails, exits or hits its start limit; a wait that runs out says how far it got; stop propagates
// to the units bound to the stopped one (Requires=/BindsTo=/PartOf=) as systemd does and keeps them stopped; restart;
// destroy of a present and a missing unit, and a destroyed unit listed until it has stopped.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { UnitInfo, UnitStateRow } from "../src/client/protocol.ts";
import { TestCluster, waitFor } from "./support/cluster.ts";

const LOOP = `/bin/sh -c "while :; do sleep 0.2; done"`;

const UNITS: Record<string, string> = {
  "crash.service": "[Service]\nExecStart=/bin/sh -c 'exit 3'\n",
  "quick.service": "[Service]\nExecStart=/bin/true\n",
  "flap.service": "[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=50ms\n",
  "setup.service": "[Service]\nType=oneshot\nExecStart=/bin/true\n",
  "slow@.service": `[Service]\nExecStartPre=/bin/sleep 30\nExecStart=${LOOP}\n`,
  "idle@.service": `[Service]\nExecStart=${LOOP}\n`,
  "x.service": `[Service]\nExecStart=${LOOP}\n`,
  "req.service": `[Unit]\nRequires=x.service\nAfter=x.service\n[Service]\nExecStart=${LOOP}\n[X-Fleet]\nMachineOf=x.service\n`,
  "bind.service": `[Unit]\nBindsTo=x.service\n[Service]\nExecStart=${LOOP}\n[X-Fleet]\nMachineOf=x.service\n`,
  "part.service": `[Unit]\nPartOf=x.service\n[Service]\nExecStart=${LOOP}\n[X-Fleet]\nMachineOf=x.service\n`,
  "wants.service": `[Unit]\nWants=x.service\n[Service]\nExecStart=${LOOP}\n[X-Fleet]\nMachineOf=x.service\n`,
  "slowstop.service": `[Service]\nExecStart=${LOOP}\nExecStop=/bin/sleep 2\n`,
  "slowstop2.service": `[Service]\nExecStart=${LOOP}\nExecStop=/bin/sleep 1\n`,
};

describe("unit lifecycle through the CLI (one real node)", () => {
  let cluster: TestCluster;
  let dir: string;
  const path = (name: string) => join(dir, name);
  const json = async <T>(args: string[]): Promise<T> => {
    const r = await cluster.cli([...args, "--output=json"]);
    if (r.code !== 0) throw new Error(`berth ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const rows = () => json<UnitStateRow[]>(["list-units"]);
  const row = async (name: string) => (await rows()).find((r) => r.name === name);
  const files = async () => new Map((await json<UnitInfo[]>(["list-unit-files"])).map((u) => [u.name, u]));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-lifecycle-"));
    for (const [name, text] of Object.entries(UNITS)) writeFileSync(path(name), text);
    cluster = await TestCluster.start(1, { extraArgs: ["--agent-ttl=2s"] });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("start reports a unit that fails, exits or hits its start limit, with the reason and exit 1", async () => {
    const crash = await cluster.cli(["start", path("crash.service")]);
    expect(crash.stdout).toMatch(/^Unit crash\.service launched on [0-9a-f]{8}\.\.\./);
    expect(crash.stderr).toMatch(/Unit crash\.service failed on .+: failed \(Result: exit-code\)/);
    expect(crash.code).toBe(1);
    // The agent issued the start: list-unit-files says launched, list-units says failed.
    expect((await files()).get("crash.service")?.current).toBe("launched");
    expect(await row("crash.service")).toMatchObject({ active: "failed", result: "exit-code" });

    const quick = await cluster.cli(["start", "--block-attempts=5", path("quick.service")]);
    expect(quick.stderr).toMatch(/Unit quick\.service exited on .+ right after its start/);
    expect(quick.stderr).not.toMatch(/current state/);
    expect(quick.code).toBe(1);

    const flap = await cluster.cli(["start", path("flap.service")]);
    expect(flap.stderr).toMatch(/Unit flap\.service failed on .+\(Result: start-limit-hit\)/);
    expect(flap.code).toBe(1);

    // A oneshot that ran is done, not failed.
    const setup = await cluster.cli(["start", path("setup.service")]);
    expect(setup).toMatchObject({ code: 0, stderr: "" });
    expect(setup.stdout).toMatch(/^Unit setup\.service launched on /);
  }, 60_000);

  it("a wait that runs out says how many units got there (exit 3); many units: what the cluster accepted", async () => {
    const slow = await cluster.cli([
      "start",
      "--block-attempts=1",
      ...[1, 2, 3].map((i) => path(`slow@${i}.service`)),
    ]);
    expect(slow.code).toBe(3);
    expect(slow.stderr).toMatch(
      /Unit slow@1\.service did not become launched after 1 attempt .*activating \(start-pre\)/,
    );
    expect(slow.stderr).toMatch(/\n0 of 3 units launched\n$/);
    const names = Array.from({ length: 60 }, (_, i) => path(`idle@${i + 1}.service`));
    const load = await cluster.cli(["load", ...names], cluster.endpoints(), 60_000);
    expect(load.stderr).toBe("All 60 units accepted by the cluster (desired state loaded)\n");
    expect(load.code).toBe(0);
    expect(load.stdout.split("\n").filter((l) => / loaded on /.test(l))).toHaveLength(60);
    expect((await cluster.cli(["destroy", "--no-block", "idle@*", "slow@*"])).code).toBe(0);
  }, 60_000);

  it("stop takes along what Requires=/BindsTo=/PartOf= the unit, keeps them stopped, and leaves Wants= alone", async () => {
    const bound = ["req.service", "bind.service", "part.service"];
    const all = ["x.service", ...bound, "wants.service"];
    const start = await cluster.cli(["start", ...all.map(path)]);
    expect(start.code).toBe(0);
    const stop = await cluster.cli(["stop", "x.service"]);
    expect(stop.code).toBe(0);
    for (const b of bound)
      expect(stop.stderr).toContain(`Stopping ${b} too: it is bound to a unit being stopped`);
    expect(stop.stderr).toContain("Successfully stopped units [x.service].");
    // Give a reconcile the chance to start anything again: nothing is.
    await new Promise((r) => setTimeout(r, 1000));
    const after = await rows();
    for (const n of ["x.service", ...bound])
      expect(
        after.find((r) => r.name === n),
        n,
      ).toMatchObject({ active: "inactive", launched: false });
    expect(after.find((r) => r.name === "wants.service")).toMatchObject({ active: "active" });
    const desired = await files();
    for (const n of ["x.service", ...bound]) expect(desired.get(n)?.desired, n).toBe("loaded");
    expect(desired.get("wants.service")?.desired).toBe("launched");
  }, 60_000);

  it("restart stops and starts a unit, and what the stop took along starts again with it", async () => {
    expect((await cluster.cli(["start", "x.service", "req.service"])).code).toBe(0);
    const pid = async (n: string) => (await row(n))?.mainPid;
    const before = { x: await pid("x.service"), req: await pid("req.service") };
    const r = await cluster.cli(["restart", "x.service"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Unit x\.service loaded on .*\n(.*\n)*Unit x\.service launched on /);
    const after = { x: await pid("x.service"), req: await pid("req.service") };
    expect(after.x).not.toBe(before.x);
    expect(after.req).not.toBe(before.req);
    expect(after.x && after.req).toBeTruthy();
    expect((await row("req.service"))?.active).toBe("active");
    const inactive = await cluster.cli(["restart", "nosuch.service"]);
    expect(inactive).toMatchObject({ code: 4, stderr: "Unit nosuch.service not found in the cluster\n" });
  }, 60_000);

  it("destroy removes the units that exist and names the missing; a destroyed unit is listed until it stopped", async () => {
    expect((await cluster.cli(["start", path("slowstop.service"), path("slowstop2.service")])).code).toBe(0);
    const d = await cluster.cli(["destroy", "--no-block", "slowstop.service", "nosuch.service"]);
    expect(d).toMatchObject({
      code: 4,
      stdout: "Destroyed slowstop.service\n",
      stderr: "Unit nosuch.service not found in the cluster\n",
    });
    // Its ExecStop= takes 2 s: meanwhile list-units still shows it, marked destroyed.
    expect(await row("slowstop.service")).toMatchObject({ note: "destroyed" });
    await waitFor(
      "slowstop.service gone from list-units",
      async () => !(await row("slowstop.service")),
      20_000,
      200,
    );
    // Blocking (the default): returns once the unit has stopped.
    const blocking = await cluster.cli(["destroy", "slowstop2.service"]);
    expect(blocking).toMatchObject({ code: 0, stdout: "Destroyed slowstop2.service\n" });
    expect(await row("slowstop2.service")).toBeUndefined();
  }, 60_000);
});
