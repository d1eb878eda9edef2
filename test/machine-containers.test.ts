// `berth list-machines --containers` on a real 3-node cluster whose nodes run [Container] units against a private
// Docker engine (test/support/docker.ts: own socket and data root, no bridge, no iptables, network none).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MachineContainers, MachineInfo, UnitInfo } from "../src/client/protocol.ts";
import { TestCluster, waitFor } from "./support/cluster.ts";
import {
  buildBusyboxImage,
  type PrivateDocker,
  requireDocker,
  startPrivateDocker,
} from "./support/docker.ts";

const UNIT = `[Unit]
Description=busybox loop in a container

[Container]
Image=local/busybox
Network=none
Exec=sh -c "while true; do sleep 1; done"
`;

let d: PrivateDocker | undefined;
let c: TestCluster | undefined;

describe("list-machines --containers (3 nodes, private dockerd)", () => {
  requireDocker();
  beforeAll(async () => {
    d = await startPrivateDocker();
    buildBusyboxImage(d);
    c = await TestCluster.start(3, { extraArgs: [`--docker-socket=${d.socket}`] });
  }, 60_000);

  afterAll(async () => {
    await c?.stop();
    await d?.stop(); // removes every container of the private engine, then kills it by its PID
  }, 60_000);

  it("shows a container unit on the machine that runs it, asked through another node", async () => {
    const cluster = c!;
    const path = join(cluster.dir, "loop.service");
    writeFileSync(path, UNIT);
    const started = await cluster.cli(["start", path], cluster.endpoints(), 60_000);
    expect(started.stderr).toBe("");
    expect(started.code).toBe(0);

    const json = async <T>(args: string[], endpoint?: string): Promise<T> => {
      const r = await cluster.cli([...args, "--output=json"], endpoint);
      if (r.code !== 0) throw new Error(`berth ${args.join(" ")}: ${r.code} ${r.stdout}${r.stderr}`);
      return JSON.parse(r.stdout) as T;
    };
    const units = await json<UnitInfo[]>(["list-unit-files"]);
    const machineId = units.find((u) => u.name === "loop.service")!.machines[0]!;
    const machines = (await json<MachineInfo[]>(["list-machines"])).filter((m) => m.state === "up");
    expect(machines).toHaveLength(3);
    const host = machines.find((m) => m.id === machineId)!;
    const other = machines.find((m) => m.id !== machineId)!;

    // The engine's own view of the container (labelled by the agent).
    const ps = d!.cli("ps", "--no-trunc", "--filter", "label=berth.unit=loop.service", "--format", "{{.ID}}");
    expect(ps).toMatch(/^[0-9a-f]{64}$/);

    const listed = await waitFor(
      "the container listed with its engine status",
      async () => {
        const all = await json<MachineContainers[]>(
          ["list-machines", "--containers"],
          cluster.endpoint(other.name),
        );
        const row = all.find((m) => m.machine === machineId)?.containers[0];
        return row?.state === "running" ? all : null;
      },
      20_000,
      200,
    );
    expect(listed.map((m) => m.machine).sort()).toEqual(machines.map((m) => m.id).sort());
    for (const m of listed) {
      expect(m.error).toBeUndefined();
      expect(m.engineError).toBeUndefined();
      if (m.machine !== machineId) expect(m.containers).toEqual([]);
    }
    const onHost = listed.find((m) => m.machine === machineId)!;
    expect(onHost.machineName).toBe(host.name);
    expect(onHost.containers).toEqual([
      {
        unit: "loop.service",
        containerId: ps.slice(0, 12),
        image: "local/busybox",
        name: expect.any(String),
        state: "running",
        status: expect.stringMatching(/^Up /),
        created: expect.any(Number),
        active: "active",
        sub: "running",
      },
    ]);
    expect(Math.abs(onHost.containers[0]!.created! - Date.now())).toBeLessThan(120_000);

    // The table, asked through another node and for one machine by member name.
    const table = await cluster.cli(["list-machines", "--containers"], cluster.endpoint(other.name));
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^MACHINE\s+CONTAINER\s+IMAGE\s+UNIT\s+STATUS$/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(
      new RegExp(
        `^${machineId.slice(0, 8)}\\.\\.\\.\\s+${ps.slice(0, 12)}\\s+local/busybox\\s+loop\\.service\\s+Up `,
      ),
    );
    const one = await json<MachineContainers[]>(["list-machines", "--containers", other.name]);
    expect(one).toHaveLength(1);
    expect(one[0]).toMatchObject({ machine: other.id, containers: [] });
    const missing = await cluster.cli(["list-machines", "--containers", "nosuchmachine"]);
    expect(missing.code).toBe(4);
  }, 90_000);
});
