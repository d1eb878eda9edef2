// Units belong to each node's supervisor, not to the node process: a node restarted in place (SIGTERM, SIGKILL),
// or away for longer than the agent TTL, finds its units still running and adopts them; only a machine whose node
// and supervisor are both gone has its units run elsewhere. Units are at-most-once probes (test/chaos/probes.ts): each start
// is recorded, and a copy that finds the unit's lock taken records a double run.
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SUPERVISOR_SOCKET, supervisorPid } from "../src/agent/supervisor.ts";
import { ProbeKit } from "./chaos/probes.ts";
import { TestCluster, waitFor } from "./support/cluster.ts";
import { stopSupervisor } from "./support/processes.ts";

interface UnitRow {
  name: string;
  machine: string;
  active: string;
}

const UNITS = Array.from({ length: 20 }, (_, i) => `probe@${i + 1}.service`);

describe("the unit supervisor", () => {
  let cluster: TestCluster;
  let probes: ProbeKit;
  const json = async <T>(args: string[]): Promise<T> => {
    const r = await cluster.cli([...args, "--output=json"], cluster.endpoints(), 30_000);
    if (r.code !== 0) throw new Error(`berth ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const rows = () => json<UnitRow[]>(["list-units"]);
  const doubles = () => probes.doubles().join("\n");
  const starts = () => probes.starts();
  const allActive = async () => {
    const r = await rows();
    return r.length === UNITS.length && r.every((x) => x.active === "active") ? r : null;
  };
  /** A little later: no double run, no unit started again, every one still active. */
  const expectUntouched = async () => {
    await new Promise((r) => setTimeout(r, 2000));
    expect(doubles()).toBe("");
    expect(starts(), cluster.logs()).toBe(UNITS.length);
    expect(await allActive(), JSON.stringify(await rows())).not.toBeNull();
  };
  const machineNames = async () =>
    new Map((await json<{ id: string; name: string }[]>(["list-machines"])).map((m) => [m.id, m.name]));

  beforeAll(async () => {
    probes = new ProbeKit();
    writeFileSync(
      join(probes.dir, "probe@.service"),
      `[Service]\nExecStart=${probes.execStart("%i", "-")}\n`,
    );
    cluster = await TestCluster.start(3, { extraArgs: ["--agent-ttl=5s"] });
    const r = await cluster.cli(
      ["start", ...UNITS.map((u) => join(probes.dir, u)), "--no-block"],
      cluster.endpoints(),
      60_000,
    );
    expect(r.code, r.stderr).toBe(0);
    await waitFor("20 probes active", allActive, 60_000, 250);
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
    probes?.remove();
  });

  it("serves the node on a socket only its owner may use", () => {
    const mode = statSync(join(cluster.node("n1").dataDir, "agent", SUPERVISOR_SOCKET)).mode & 0o777;
    expect(mode.toString(8)).toBe("600");
  });

  it("keeps every unit running (same processes) while each node restarts in place, one by one", async () => {
    for (const n of cluster.nodes) {
      await cluster.kill(n.name, "SIGTERM");
      cluster.spawn(n);
      await cluster.waitHealthy(30_000);
      await waitFor(`${n.name} adopted its units`, () =>
        /acting on units now/.test(readFileSync(n.logFile, "utf8").split("SIGTERM received").at(-1)!),
      );
    }
    await expectUntouched();
  }, 120_000);

  it("keeps the units of a node SIGKILLed and started again at once", async () => {
    const names = await machineNames();
    const victim = names.get((await rows()).find((r) => r.name === UNITS[0])!.machine)!;
    await cluster.kill(victim, "SIGKILL");
    cluster.spawn(cluster.node(victim));
    await cluster.waitHealthy(30_000);
    await expectUntouched();
  }, 60_000);

  it("keeps the units of a supervisor SIGKILLed alone: the one its node starts next adopts them", async () => {
    const names = await machineNames();
    const victim = cluster.node(names.get((await rows()).find((r) => r.name === UNITS[0])!.machine)!);
    const before = supervisorPid(join(victim.dataDir, "agent"));
    await stopSupervisor(victim.dataDir, "SIGKILL");
    await waitFor("a new supervisor", () => {
      const pid = supervisorPid(join(victim.dataDir, "agent"));
      return pid !== null && pid !== before;
    });
    await expectUntouched();
    expect(readFileSync(victim.logFile, "utf8")).toMatch(/Adopted main process/);
  }, 60_000);

  it("keeps the units of a node that stays away past the agent TTL: its supervisor keeps the machine alive", async () => {
    const names = await machineNames();
    const victim = names.get((await rows()).find((r) => r.name === UNITS[0])!.machine)!;
    const agentDir = join(cluster.node(victim).dataDir, "agent");
    await cluster.kill(victim, "SIGKILL");
    // Twice the TTL (5 s): without the supervisor's keepalive the units are fenced at 3 s and moved at 5 s.
    await new Promise((r) => setTimeout(r, 10_000));
    expect(doubles(), cluster.logs()).toBe("");
    expect(starts(), cluster.logs()).toBe(UNITS.length);
    const log = readFileSync(join(agentDir, "supervisor.log"), "utf8");
    expect(log).toMatch(/keeping the machine alive with the cluster/);
    expect(log).not.toMatch(/\[lease\] fencing/);
    cluster.spawn(cluster.node(victim));
    await cluster.waitHealthy(30_000);
    await expectUntouched();
  }, 60_000);

  it("moves the units of a machine that crashed (node, supervisor and units gone) without a double run", async () => {
    const names = await machineNames();
    const before = await rows();
    const victimId = before.find((r) => r.name === UNITS[0])!.machine;
    const victim = names.get(victimId)!;
    const moving = before.filter((r) => r.machine === victimId).length;
    const startsBefore = starts();
    await cluster.crash(victim);
    await waitFor(
      "the victim's units active on the other machines",
      async () => {
        const r = await allActive();
        return r?.every((x) => x.machine !== victimId);
      },
      60_000,
      250,
    );
    await new Promise((r) => setTimeout(r, 1000));
    expect(doubles(), cluster.logs()).toBe("");
    expect(starts()).toBe(startsBefore + moving);
    cluster.spawn(cluster.node(victim));
    await cluster.waitHealthy(30_000);
  }, 90_000);
});
