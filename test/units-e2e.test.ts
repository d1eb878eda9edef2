// The seed's fleet walkthrough on real node processes: submit, list-unit-files, cat, start of template instances
// spread over machines, MachineOf pairs, Conflicts refused when impossible, destroy, and a machine killed with
// SIGKILL whose units come back elsewhere. Units are real processes run by each node's agent.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, waitFor } from "./support/cluster.ts";

const HELLO = `[Unit]
Description=Hello World %i

[Service]
ExecStartPre=-/bin/false
ExecStart=/bin/sh -c "trap 'exit 0' INT TERM; while true; do echo Hello World; sleep 1; done"

[X-Fleet]
Conflicts=hello-world@*.service
`;

const SIDEKICK = `[Unit]
Description=Announces hello-world@%i

[Service]
ExecStart=/bin/sh -c "while true; do sleep 1; done"

[X-Fleet]
MachineOf=hello-world@%i.service
`;

interface UnitRow {
  name: string;
  machine: string;
  active: string;
  sub: string;
}

describe("units on a 3-node cluster", () => {
  let cluster: TestCluster;
  let dir: string;
  const json = async <T>(args: string[]): Promise<T> => {
    const r = await cluster.cli([...args, "--output=json"]);
    if (r.code !== 0) throw new Error(`berth ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const rows = () => json<UnitRow[]>(["list-units"]);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-units-"));
    writeFileSync(join(dir, "hello-world@.service"), HELLO);
    writeFileSync(join(dir, "sidekick@.service"), SIDEKICK);
    writeFileSync(join(dir, "bad.service"), "[Service]\nExecStart=/bin/true\nthis line has no equals sign\n");
    cluster = await TestCluster.start(3, { extraArgs: ["--agent-ttl=2s"] });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a malformed unit file with its line number and stores nothing", async () => {
    const r = await cluster.cli(["submit", join(dir, "bad.service")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.service:3: /);
    expect(await json<unknown[]>(["list-unit-files"])).toEqual([]);
  });

  it("submits a template, lists it with its hash, and cats it back", async () => {
    expect((await cluster.cli(["submit", join(dir, "hello-world@.service")])).code).toBe(0);
    const files = await json<{ name: string; hash: string; desired: string }[]>(["list-unit-files"]);
    expect(files).toMatchObject([{ name: "hello-world@.service", desired: "inactive" }]);
    expect(files[0]!.hash).toMatch(/^[0-9a-f]{40}$/);
    const table = await cluster.cli(["list-unit-files"]);
    expect(table.stdout.split("\n")[0]).toMatch(/^UNIT\s+HASH\s+DSTATE\s+STATE\s+TARGET/);
    const cat = await cluster.cli(["cat", "hello-world@.service"]);
    expect(cat.stdout).toContain("Conflicts=hello-world@*.service");
  });

  it("starts three instances on three different machines (Conflicts) and their sidekicks beside them", async () => {
    const start = await cluster.cli(
      ["start", ...[1, 2, 3].map((i) => join(dir, `hello-world@${i}.service`))],
      cluster.endpoints(),
      60_000,
    );
    expect(start.stderr).toBe("");
    expect(start.code).toBe(0);
    expect(start.stdout).toMatch(/Unit hello-world@1\.service launched on [0-9a-f]{8}\.\.\./);
    const sk = await cluster.cli(
      ["start", ...[1, 2, 3].map((i) => join(dir, `sidekick@${i}.service`))],
      cluster.endpoints(),
      60_000,
    );
    expect(sk.code).toBe(0);
    const list = await rows();
    const where = (n: string) => list.find((r) => r.name === n)?.machine;
    expect(new Set([1, 2, 3].map((i) => where(`hello-world@${i}.service`))).size).toBe(3);
    for (const i of [1, 2, 3]) expect(where(`sidekick@${i}.service`)).toBe(where(`hello-world@${i}.service`));
    for (const r of list) expect([r.active, r.sub]).toEqual(["active", "running"]);
    const table = await cluster.cli(["list-units"]);
    expect(table.stdout.split("\n")[0]).toMatch(/^UNIT\s+MACHINE\s+ACTIVE\s+SUB/);
  }, 90_000);

  it("says why a fourth conflicting instance cannot be placed, instead of blocking forever", async () => {
    const r = await cluster.cli(["start", join(dir, "hello-world@4.service")], cluster.endpoints(), 60_000);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/hello-world@4\.service cannot be placed/);
    const d = await cluster.cli(["destroy", "hello-world@4.service"]);
    expect(d.stdout).toContain("Destroyed hello-world@4.service");
  }, 60_000);

  it("moves the units of a crashed machine to the survivors, and says which cannot follow", async () => {
    writeFileSync(
      join(dir, "mover.service"),
      "[Service]\nExecStart=/bin/sh -c 'while true; do sleep 1; done'\n",
    );
    expect((await cluster.cli(["start", join(dir, "mover.service")], cluster.endpoints(), 30_000)).code).toBe(
      0,
    );
    const machines = await json<{ id: string; name: string }[]>(["list-machines"]);
    const before = await rows();
    const victim = machines.find((m) => m.id === before.find((r) => r.name === "mover.service")!.machine)!;
    const stranded = before.find((r) => r.name.startsWith("hello-world@") && r.machine === victim.id)!.name;
    await cluster.crash(victim.name);
    const after = await waitFor(
      "mover.service running on a survivor",
      async () => {
        const now = await rows();
        const r = now.find((x) => x.name === "mover.service");
        return r && r.machine !== victim.id && r.active === "active" ? now : null;
      },
      30_000,
      200,
    );
    // The stranded instance conflicts with the two others, which hold the two surviving machines: it and its
    // sidekick (MachineOf) wait; as in fleet they are on no machine and leave list-units, and --all says why.
    expect(after.some((r) => r.name === stranded)).toBe(false);
    const all = await json<(UnitRow & { note?: string })[]>(["list-units", "--all"]);
    const strandedRow = all.find((r) => r.name === stranded)!;
    expect(strandedRow.note).toMatch(/cannot be placed/);
    expect(after.some((r) => r.machine === victim.id)).toBe(false);
    await cluster.restart(victim.name);
  }, 60_000);

  it("destroys units and stops their processes", async () => {
    const names = [1, 2, 3].flatMap((i) => [`hello-world@${i}.service`, `sidekick@${i}.service`]);
    names.push("mover.service");
    const r = await cluster.cli(["destroy", ...names]);
    expect(r.code).toBe(0);
    await waitFor("no unit rows left", async () => (await rows()).length === 0, 20_000, 200);
  }, 30_000);
});
