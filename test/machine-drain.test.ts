// `berth machine drain` moves every unit off a live machine, and at no instant do two copies of a unit run: the
// units are at-most-once probes (test/chaos/probes.ts: a copy that finds its lock taken records a double run) that
// take 1.5 s to stop (ExecStop=), so a unit started on another machine before the drained one has stopped it would
// be caught. Then undrain: the machine takes new units again, and nothing moves back by itself.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProbeKit } from "./chaos/probes.ts";
import { TestCluster, waitFor } from "./support/cluster.ts";

interface UnitRow {
  name: string;
  machine: string;
  active: string;
}
interface Machine {
  id: string;
  name: string;
  state: string;
}

describe("berth machine drain / undrain", () => {
  let cluster: TestCluster;
  let probes: ProbeKit;
  const json = async <T>(args: string[], timeoutMs?: number): Promise<T> => {
    const r = await cluster.cli([...args, "--output=json"], cluster.endpoints(), timeoutMs);
    if (r.code !== 0) throw new Error(`berth ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const probeRows = async () =>
    (await json<UnitRow[]>(["list-units"])).filter((r) => r.name.startsWith("probe@"));
  /** Waits until each unit is active or failed (a copy that found its lock taken fails), then says which. */
  const settled = (names: string[]) =>
    waitFor(
      `${names.join(", ")} active or failed`,
      async () => {
        const rows = await probeRows();
        const done = (n: string) =>
          rows.some((r) => r.name === n && (r.active === "active" || r.active === "failed"));
        return names.every(done) ? rows : null;
      },
      20_000,
      200,
    );
  const allActive = async (names: string[]) => {
    const rows = (await settled(names))!;
    expect(probes.doubles(), cluster.logs()).toEqual([]);
    expect(rows.filter((r) => r.active !== "active")).toEqual([]);
    return rows;
  };

  beforeAll(async () => {
    probes = new ProbeKit();
    writeFileSync(
      join(probes.dir, "probe@.service"),
      `[Service]\nExecStart=${probes.execStart("probe-%i", "-")}\nExecStop=/bin/sleep 1.5\n`,
    );
    cluster = await TestCluster.start(3);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
    probes?.remove();
  });

  it("moves every unit off the machine with no double run, and undrain lets units land there again", async () => {
    const first = [1, 2, 3, 4, 5, 6].map((i) => `probe@${i}.service`);
    const submit = await cluster.cli(["submit", join(probes.dir, "probe@.service")]);
    expect(submit.code, submit.stderr).toBe(0);
    expect((await cluster.cli(["start", "--no-block", ...first])).code).toBe(0);
    const before = await allActive(first);
    const machines = await json<Machine[]>(["list-machines"]);
    const victim = machines.find((m) => m.id === before[0]!.machine)!;
    const moving = before.filter((r) => r.machine === victim.id).map((r) => r.name);
    expect(moving.length).toBeGreaterThan(0);

    expect((await cluster.cli(["machine", "drain", "no-such-machine"])).code).toBe(4);
    const drained = await json<{ machine: Machine; units: string[] }>(
      ["machine", "drain", victim.name, "--timeout=25s"],
      30_000,
    );
    expect(drained.units).toEqual([]);
    expect(drained.machine.state).toBe("drained");

    // Every unit runs, once, and none on the drained machine.
    const after = await allActive(first);
    expect(after.filter((r) => r.machine === victim.id)).toEqual([]);
    for (const name of first) expect(after.filter((r) => r.name === name)).toHaveLength(1);
    for (const name of moving) expect(probes.held(`probe-${name.slice(6, -8)}`)).toBe(true);
    expect(probes.doubles(), cluster.logs()).toEqual([]);
    const listed = await json<Machine[]>(["list-machines", "--fields=machine,state"]);
    expect(listed.find((m) => m.id === victim.id)?.state).toBe("drained");
    const table = await cluster.cli(["list-machines", "--fields=name,state", "--no-legend"]);
    expect(table.stdout).toMatch(new RegExp(`${victim.name}\\s+drained`));

    // Undrained: it is up again, the moved units stay, new ones may land there (it is the least loaded).
    const undrained = await json<{ machine: Machine }>(["machine", "undrain", victim.id.slice(0, 8)]);
    expect(undrained.machine.state).toBe("up");
    const more = ["probe@7.service", "probe@8.service"];
    expect((await cluster.cli(["start", "--no-block", ...more])).code).toBe(0);
    const rows = await allActive([...first, ...more]);
    expect(rows.filter((r) => r.machine === victim.id).map((r) => r.name)).toEqual(more);
    expect(probes.doubles(), cluster.logs()).toEqual([]);

    // --no-block returns at once; a --timeout that runs out exits 3 naming what is left; the drain goes on.
    const started = await json<{ machine: Machine; units: string[] }>([
      "machine",
      "drain",
      victim.name,
      "--no-block",
    ]);
    expect(started.machine.state).toBe("draining");
    expect(started.units).toEqual(more);
    const short = await cluster.cli(["machine", "drain", victim.name, "--timeout=100ms"]);
    expect(short.code, short.stderr).toBe(3);
    expect(short.stderr).toMatch(/still holds \d unit\(s\) after 0.1 s: probe@/);
    const done = await cluster.cli(
      ["machine", "drain", victim.name, "--timeout=25s"],
      cluster.endpoints(),
      30_000,
    );
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/drained: it holds no units/);
    const last = await allActive([...first, ...more]);
    expect(last.filter((r) => r.machine === victim.id)).toEqual([]);
  }, 60_000);
});
