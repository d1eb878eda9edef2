// fleetctl's interface on a real 3-node cluster (dist/berth on 127.0.0.1-3): FLEETCTL_* variables, ssh's
// --machine/--unit, durations in --help, list tables padded with tabs, list-units listing units on machines only
// (a MachineOf= follower whose unit was destroyed leaves it), list-machines live by default, and machine
// metadata changed at run time with units placed again against it.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONTAINER_KEYS } from "../src/agent/container-config.ts";
import { berth, TestCluster, waitFor } from "./support/cluster.ts";

interface Row {
  name: string;
  machine: string;
  active: string;
  note?: string;
}
interface Machine {
  id: string;
  name: string;
  state: string;
  metadata: Record<string, string>;
}

describe("fleetctl's interface", () => {
  let cluster: TestCluster;
  let dir: string;
  const ids = new Map<string, string>();

  const rows = async (...args: string[]): Promise<Row[]> =>
    JSON.parse((await cluster.cli(["list-units", "-o", "json", ...args])).stdout) as Row[];
  const machines = async (...args: string[]): Promise<Machine[]> =>
    JSON.parse((await cluster.cli(["list-machines", "-o", "json", ...args])).stdout) as Machine[];
  const placedOn = async (unit: string): Promise<string | undefined> =>
    (await rows()).find((r) => r.name === unit && r.active === "active")?.machine;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-fleet2-"));
    writeFileSync(
      join(dir, "hello@.service"),
      "[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nConflicts=hello@*.service\n",
    );
    writeFileSync(
      join(dir, "side@.service"),
      "[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nMachineOf=hello@%i.service\n",
    );
    writeFileSync(
      join(dir, "db.service"),
      "[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nMachineMetadata=role=db\n",
    );
    cluster = await TestCluster.start(3, { extraArgs: ["--agent-ttl", "2s", "--metadata", "role=web"] });
    for (const m of await machines()) ids.set(m.name, m.id);
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("reads FLEETCTL_* as aliases of BERTH_* (BERTH_* wins), prints durations as durations", async () => {
    const env = { BERTH_ENDPOINT: "", BERTH_REQUEST_TIMEOUT: "" };
    const viaAlias = await berth(["list-machines", "--no-legend"], {
      env: { ...env, FLEETCTL_ENDPOINT: cluster.endpoints() },
    });
    expect(viaAlias.stderr).toBe("");
    expect(viaAlias.stdout.trim().split("\n")).toHaveLength(3);
    // Both set: BERTH_ENDPOINT (unreachable) wins, and FLEETCTL_REQUEST_TIMEOUT bounds the wait.
    const both = await berth(["list-machines"], {
      env: {
        BERTH_ENDPOINT: "127.0.0.1:1",
        FLEETCTL_ENDPOINT: cluster.endpoints(),
        FLEETCTL_REQUEST_TIMEOUT: "1s",
      },
    });
    expect(both.code).toBe(3);
    const bad = await berth(["list-machines"], { env: { ...env, FLEETCTL_REQUEST_TIMEOUT: "soon" } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("FLEETCTL_REQUEST_TIMEOUT must be a duration");
    const help = await berth(["list-units", "--help"]);
    expect(help.stdout).toMatch(
      /--request-timeout DURATION +how long to wait for the cluster \(default 5s, env BERTH_REQUEST_TIMEOUT or FLEETCTL_REQUEST_TIMEOUT\)/,
    );
    expect(help.stdout).toContain("default 10s, env BERTH_SSH_TIMEOUT or FLEETCTL_SSH_TIMEOUT");
    expect(help.stdout).not.toMatch(/default \d{4,}\b/);
  });

  it("ssh takes --machine=ID and --unit=NAME as fleetctl's", async () => {
    const m = await cluster.cli(["ssh", "--machine=nosuch"]);
    expect(m.code).toBe(4);
    expect(m.stderr).toContain('no machine "nosuch"');
    const u = await cluster.cli(["ssh", "--unit", "nosuch.service"]);
    expect(u.code).toBe(4);
    expect(u.stderr).toContain('no unit "nosuch.service"');
  });

  it("list-units: tab-padded rows of units on machines; a MachineOf follower whose unit is destroyed leaves it", async () => {
    const start = await cluster.cli(
      ["start", join(dir, "hello@4.service"), join(dir, "side@4.service")],
      cluster.endpoints(),
      30_000,
    );
    expect(start.code).toBe(0);
    const table = await cluster.cli(["list-units"]);
    const lines = table.stdout.trimEnd().split("\n");
    // fleetctl's tabwriter: a column is its widest cell plus one, rounded up to 8, and filled with tabs (UNIT: 15 →
    // 16, MACHINE: "xxxxxxxx.../127.0.0.N" 21 → 24, ACTIVE: 6 → 8).
    expect(lines[0]).toBe("UNIT\t\tMACHINE\t\t\tACTIVE\tSUB");
    expect(lines.map((l) => l.split("\t")[0])).toEqual(["UNIT", "hello@4.service", "side@4.service"]);
    expect(lines[1]).toMatch(/^hello@4\.service\t[0-9a-f]{8}\.\.\.\/127\.0\.0\.\d\tactive\trunning$/);

    expect((await cluster.cli(["destroy", "hello@4.service"], cluster.endpoints(), 20_000)).code).toBe(0);
    // As fleet ("fleet automatically removed python-test@4"): the follower is on no machine, so not listed.
    await waitFor(
      "side@4 leaves list-units",
      async () => !(await rows()).some((r) => r.name === "side@4.service"),
    );
    const count = await cluster.cli(["list-units", "--no-legend"]);
    expect(count.stdout).toBe("");
    // --all shows it with why; MACHINE is "-", never "-...".
    const all = await cluster.cli(["list-units", "--all", "--no-legend"]);
    expect(all.stdout).toMatch(
      /^side@4\.service\t-\tinactive\tdead \(cannot be placed: .*hello@4\.service.*\)\n$/,
    );
    expect(all.stdout).not.toContain("-...");
    const files = await cluster.cli([
      "list-unit-files",
      "--fields",
      "unit,target,reason",
      "--no-legend",
      "side@4",
    ]);
    expect(files.stdout).toMatch(/^side@4\.service\t-\t.*hello@4\.service/);
    const status = await cluster.cli(["status", "side@4.service"]);
    expect(status.code).toBe(1);
    expect(status.stderr).toMatch(
      /does not appear to be loaded\. It is not placed on any machine: .*hello@4\.service/,
    );
    expect((await cluster.cli(["destroy", "side@4.service"])).code).toBe(0);
  }, 40_000);

  it("machine set-metadata: units are placed again against it, and the change outlives a restart of the node", async () => {
    expect((await cluster.cli(["start", "--no-block", join(dir, "db.service")])).code).toBe(0);
    await waitFor("db.service unplaceable", async () =>
      (await rows("--all")).some((r) => r.name === "db.service" && r.machine === "-"),
    );
    const set = await cluster.cli(["machine", "set-metadata", "n2", "role=db", "disk=ssd"]);
    expect(set.stderr).toBe("");
    expect(set.stdout).toBe(`Machine ${ids.get("n2")!.slice(0, 8)}... (n2) metadata: disk=ssd,role=db\n`);
    await waitFor("db.service on n2", async () => (await placedOn("db.service")) === ids.get("n2"), 15_000);

    // Moves between live machines: n2 no longer matches, n3 does.
    expect((await cluster.cli(["machine", "set-metadata", "n2", "role=web", "--unset", "disk"])).code).toBe(
      0,
    );
    expect((await cluster.cli(["machine", "set-metadata", "n3", "role=db"])).code).toBe(0);
    await waitFor("db.service on n3", async () => (await placedOn("db.service")) === ids.get("n3"), 15_000);
    expect((await machines()).find((m) => m.name === "n2")!.metadata).toEqual({ role: "web" });

    // The node restarts with --metadata role=web: the run-time change still wins.
    await cluster.restart("n3");
    await cluster.waitHealthy();
    await new Promise((r) => setTimeout(r, 1000));
    expect((await machines()).find((m) => m.name === "n3")!.metadata).toEqual({ role: "db" });
    expect(await placedOn("db.service")).toBe(ids.get("n3"));

    // --reset: the node's own metadata again; no machine matches, the unit leaves list-units.
    const reset = await cluster.cli(["machine", "set-metadata", "n3", "--reset"]);
    expect(reset.stdout).toContain("metadata: role=web");
    await waitFor(
      "db.service unplaced",
      async () => !(await rows()).some((r) => r.name === "db.service"),
      15_000,
    );
    expect((await cluster.cli(["machine", "set-metadata", "nosuch", "a=b"])).code).toBe(4);
    expect((await cluster.cli(["machine", "set-metadata", "n1", "novalue"])).code).toBe(2);
    expect((await cluster.cli(["destroy", "db.service"])).code).toBe(0);
  }, 60_000);

  it("list-machines: live machines (drained ones too) by default, lost ones with --all", async () => {
    expect((await cluster.cli(["machine", "drain", "n2"])).code).toBe(0);
    const live = await cluster.cli(["list-machines", "--fields", "machine,name,state", "--no-legend"]);
    expect(live.stdout).toContain(`${ids.get("n2")!.slice(0, 8)}...\tn2\tdrained\n`);
    expect((await cluster.cli(["machine", "undrain", "n2"])).code).toBe(0);

    await cluster.crash("n3");
    const endpoint = cluster.endpoint("n1");
    await waitFor(
      "n3 lost",
      async () =>
        (
          JSON.parse(
            (await cluster.cli(["list-machines", "--all", "-o", "json"], endpoint)).stdout,
          ) as Machine[]
        ).some((m) => m.name === "n3" && m.state === "lost"),
      15_000,
    );
    const shown = await cluster.cli(["list-machines", "--fields", "name,state", "--no-legend"], endpoint);
    expect(shown.stdout.split("\n").filter(Boolean).sort()).toEqual(["n1\tup", "n2\tup"]);
    const all = await cluster.cli(
      ["list-machines", "--all", "--fields", "name,state", "--no-legend"],
      endpoint,
    );
    expect(all.stdout.split("\n").filter(Boolean).sort()).toEqual(["n1\tup", "n2\tup", "n3\tlost"]);
  }, 40_000);
});

describe("README: Docker units", () => {
  it("the complete [Container] example verifies without a warning, and names every key the agent runs", async () => {
    const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("### Docker units"));
    const example = /```ini\n([\s\S]*?)```/.exec(section)?.[1];
    expect(example).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), "berth-fleet2-readme-"));
    try {
      writeFileSync(join(dir, "web@.service"), example!);
      const r = await berth(["verify", join(dir, "web@.service")]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    for (const key of CONTAINER_KEYS) expect(section).toContain(`\`${key}=`);
    expect(section).toContain("/var/run/docker.sock");
    expect(section).toContain("Environment=DOCKER_HOST=");
  });
});
