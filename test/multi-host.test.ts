// Multi-host for real, on one machine: 3 machines (BERTH_MACHINES=5 for five), each with its own network, mount
// and UTS namespace and its own cgroup (test/support/netns.ts), installed with deploy/install.sh --root and started
// as deploy/berth-node.service starts the node. As the seed's cluster, they come up from one #cloud-config user-data
// naming a discovery token of size 3 (Debian's etcd-discovery on a machine of its own on the bridge; a 4th and 5th
// machine join as learners) and listing a cluster unit, started once whichever machines apply it. Keys across
// machines, units placed by metadata, `berth --tunnel` to one machine's sshd from the operator's workstation, a
// rolling upgrade to a build with a bumped version (no acknowledged write lost, no unit restarted), and machines
// dying (cable pulled; every process killed) with their units moving. Needs root, iproute2, etcd and
// etcd-discovery: it fails, it does not skip, without them.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BINARY, waitFor } from "./support/cluster.ts";
import {
  destroyAll,
  isRunning,
  Machine,
  Network,
  requireNamespaces,
  SUBNET,
  WORKSTATION_IP,
} from "./support/netns.ts";
import { startDiscoveryMachine } from "./support/netns-discovery.ts";
import { TestSshd } from "./support/sshd.ts";

const COUNT = Number(process.env.BERTH_MACHINES ?? 3);
const REPO = resolve(import.meta.dirname, "..");
const NEXT_VERSION = "0.1.0-next.1";
const DISCOVERY_IP = `${SUBNET}.100`;
/** Voters the token founds; the machines after them join as learners. */
const TOKEN_SIZE = 3;

/** Machine i: name, address, metadata (east/west and ssd/hdd alternate; only core-03 is west with three). */
const SPECS = Array.from({ length: COUNT }, (_, i) => ({
  name: `core-0${i + 1}`,
  ip: `${SUBNET}.${101 + i}`,
  metadata: `region=${i === 2 || i === 3 ? "west" : "east"},disk=${i % 2 === 0 ? "ssd" : "hdd"}`,
}));

const UNITS: Record<string, string> = {
  "west.service":
    "[Service]\nExecStart=/bin/sh -c 'while true; do sleep 1; done'\n[X-Fleet]\nMachineMetadata=region=west\n",
  "ssd.service":
    "[Service]\nExecStart=/bin/sh -c 'while true; do sleep 1; done'\n[X-Fleet]\nMachineMetadata=disk=ssd\n",
  "steady-a.service": "[Service]\nExecStart=/bin/sh -c 'while true; do sleep 1; done'\n",
  "steady-b.service":
    "[Service]\nExecStart=/bin/sh -c 'while true; do sleep 1; done'\n[X-Fleet]\nConflicts=steady-a.service\n",
};

/** The cluster unit of the user-data, started by whichever machine applies the file first. */
const CLOUD_UNIT = "hello.service";

/**
 * The one user-data file every machine gets (each machine's name, address and metadata are in its node.env).
 * agent-ttl is 5 s (twice the default): while a node restarts (the upgrade), its supervisor keeps the machine's
 * lease by a keepalive to the leader, which must be confirmed within the fence (72% of the TTL). A 3 s TTL left
 * 1–1.4 s of slack in a run at load 15 on this shared host: too little under more load, and a fence restarts every
 * unit of the machine, which the upgrade step counts as a failure.
 */
const userData = (token: string) => `#cloud-config
hostname: set-by-the-vm-not-berth
berth:
  discovery: ${token}
  cluster-secret-file: /etc/berth/cluster-secret
  agent-ttl: 5s
  units:
    - name: ${CLOUD_UNIT}
      command: start
      content: |
        [Unit]
        Description=Hello World
        [Service]
        ExecStart=/bin/sh -c "while true; do echo Hello World; sleep 1; done"
`;

interface UnitRow {
  name: string;
  machine: string;
  active: string;
}
interface MachineRow {
  id: string;
  name: string;
  publicIp: string;
  metadata?: Record<string, string>;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

describe.sequential(`${COUNT} machines, each in its own namespaces`, () => {
  let network: Network;
  const machines: Machine[] = [];
  let dir: string;
  let sshd: TestSshd | undefined;
  /** Machines still reachable (the death tests take them away). */
  const up = () => machines.filter((m) => m.nodePid !== null);

  const json = async <T>(m: Machine, args: string[]): Promise<T> => {
    const r = await m.berth([...args, "--output=json"]);
    if (r.code !== 0) throw new Error(`${m.name}: berth ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const units = (m: Machine) => json<UnitRow[]>(m, ["list-units"]);
  const machineRows = (m: Machine) => json<MachineRow[]>(m, ["list-machines"]);
  const mainPid = async (m: Machine, unit: string): Promise<number> => {
    const r = await m.berth(["status", unit]);
    const pid = /Main PID: (\d+)/.exec(r.stdout)?.[1];
    if (!pid) throw new Error(`${unit}: no Main PID in ${r.stdout}${r.stderr}`);
    return Number(pid);
  };
  const healthy = (m: Machine) =>
    waitFor(
      `a healthy cluster seen from ${m.name}`,
      async () => (await m.berth(["cluster", "health"])).code === 0,
      60_000,
      300,
    );

  // The machines' logs go with their directories: a failure shows their ends first.
  const dumpLogs = () => {
    for (const m of machines) console.error(m.logTails());
  };
  beforeEach(({ onTestFailed }) => onTestFailed(dumpLogs));

  beforeAll(async () => {
    requireNamespaces();
    network = Network.create();
    dir = network.dir;
    const { url } = await startDiscoveryMachine(network, 100, DISCOVERY_IP);
    // The operator makes the token from the workstation, as `curl https://discovery.etcd.io/new?size=3`.
    const token = await network.run(BINARY, [
      "discovery",
      "new",
      `--size=${TOKEN_SIZE}`,
      `--endpoint=${url}`,
    ]);
    expect(token.code, token.stderr).toBe(0);
    expect(token.stdout.trim()).toMatch(new RegExp(`^${url}/[0-9a-f]{32}$`));
    const file = join(dir, "user-data");
    writeFileSync(file, userData(token.stdout.trim()));
    const secret = join(dir, "cluster-secret");
    writeFileSync(secret, "the-secret-all-machines-share");
    for (const [name, text] of Object.entries(UNITS)) writeFileSync(join(dir, name), text);
    for (const [i, s] of SPECS.entries()) {
      const m = new Machine(network, i + 1, s.name, s.ip);
      machines.push(m);
      // What the Vagrantfile runs on each VM with a user-data file, plus this machine's metadata.
      m.install({ binary: BINARY, userData: file, secretFile: secret, metadata: s.metadata });
      await m.boot();
      m.startNode();
    }
    await healthy(machines[0]!).catch((err) => {
      dumpLogs();
      throw err;
    });
  }, 90_000);

  afterAll(async () => {
    await sshd?.stop();
    destroyAll(); // every machine, then the switch and its files, each whatever the others do
  });

  it("each machine has its own hostname, address and /var/lib/berth, and the cluster lists them all", async () => {
    for (const m of machines) {
      expect((await m.run("hostname", [])).stdout.trim()).toBe(m.name);
      expect((await m.run("ip", ["-br", "-4", "addr", "show", "eth0"])).stdout).toContain(`${m.ip}/24`);
      // The node's data went to this machine's own tree, through the overlay on /var/lib.
      expect(existsSync(join(m.root, "var/lib/berth/node.json"))).toBe(true);
    }
    const rows = await waitFor("every machine listed", async () => {
      const r = await machineRows(machines[1]!);
      return r.length === COUNT ? r : null;
    });
    expect(rows.map((r) => `${r.name} ${r.publicIp}`).sort()).toEqual(SPECS.map((s) => `${s.name} ${s.ip}`));
  });

  it("the token's first machines founded the cluster, the others joined as learners; the user-data's unit runs once", async () => {
    const members = await json<{ name: string; role: string }[]>(machines[0]!, ["cluster", "members"]);
    expect(members.map((m) => m.name).sort()).toEqual(SPECS.map((s) => s.name));
    expect(members.filter((m) => m.role === "voter").length).toBe(TOKEN_SIZE);
    expect(members.filter((m) => m.role === "learner").length).toBe(COUNT - TOKEN_SIZE);
    // Every machine applied the same file once the cluster was up; the unit is in the registry once, and running.
    await waitFor("every machine applied the user-data", () =>
      machines.every((m) => m.journal().includes("[cloud-config] units:")),
    );
    await waitFor(`${CLOUD_UNIT} active`, async () =>
      (await units(machines[0]!)).some((u) => u.name === CLOUD_UNIT && u.active === "active"),
    );
    expect((await units(machines[0]!)).filter((u) => u.name === CLOUD_UNIT).length).toBe(1);
    // One copy of its process across all machines.
    const copies = machines.flatMap((m) => m.pids()).filter((pid) => cmdline(pid).includes("Hello World"));
    expect(copies.length).toBe(1);
  });

  it("a key written on one machine is read on every other", async () => {
    const [first, ...others] = machines;
    expect((await first!.berth(["kv", "set", "/mh/greeting", `from ${first!.name}`])).code).toBe(0);
    for (const m of others) {
      const r = await m.berth(["kv", "get", "/mh/greeting"]);
      expect(r.stdout.trim()).toBe(`from ${first!.name}`);
    }
  });

  it("places units by machine metadata", async () => {
    const m = machines[0]!;
    const files = Object.keys(UNITS).map((u) => join(dir, u));
    const r = await m.berth(["start", ...files], { timeoutMs: 60_000 });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const byId = new Map((await machineRows(m)).map((row) => [row.id, row]));
    const placed = await waitFor("every unit active", async () => {
      const rows = await units(m);
      return rows.length === Object.keys(UNITS).length + 1 && rows.every((u) => u.active === "active")
        ? rows
        : null;
    });
    const where = (unit: string) => byId.get(placed.find((u) => u.name === unit)!.machine)!;
    expect(where("west.service").metadata?.region).toBe("west");
    expect(where("ssd.service").metadata?.disk).toBe("ssd");
    if (COUNT === 3) expect(where("west.service").name).toBe("core-03");
  });

  it("berth --tunnel reaches the cluster through one machine's sshd from the workstation", async () => {
    const m = machines[0]!;
    sshd = await TestSshd.start(["127.0.0.1:4001"], {
      host: m.ip,
      port: 22,
      serverPrefix: m.prefix(),
      clientPrefix: network.prefix(),
    });
    const cli = (args: string[]) =>
      network.run(BINARY, [...args, "--endpoint=127.0.0.1:4001", "--request-timeout=3s"], {
        env: sshd!.clientEnv(),
      });
    // The workstation has no node of its own, and the machines serve clients on their loopback only.
    expect((await cli(["kv", "get", "/mh/greeting"])).code).toBe(3);
    const r = await cli(["kv", "get", "/mh/greeting", ...sshd.tunnelFlags()]);
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe(`from ${m.name}`);
    expect(sshd.output).toContain("target 127.0.0.1 port 4001");
    expect(sshd.output).toContain(`from ${WORKSTATION_IP}`);
  });

  it("a rolling upgrade to a bumped version loses no acknowledged write and restarts no unit", async () => {
    const next = join(dir, "next", "berth");
    const build = spawnSync(
      join(REPO, "node_modules/.bin/bun"),
      ["scripts/build-binary.ts", "--outfile", next],
      { cwd: REPO, env: { ...process.env, BERTH_BUILD_VERSION: NEXT_VERSION }, encoding: "utf8" },
    );
    expect(build.status, build.stderr).toBe(0);
    const current = await json<{ version: string }>(machines[0]!, ["cluster", "status"]);
    expect(current.version).not.toBe(NEXT_VERSION);
    const before = new Map<string, number>();
    for (const u of [...Object.keys(UNITS), CLOUD_UNIT]) before.set(u, await mainPid(machines[0]!, u));

    // A writer through every machine in turn, as long as the upgrade runs; it keeps what was acknowledged.
    const acked = new Map<string, string>();
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const m = machines[i % machines.length]!;
        if (m.nodePid === null) continue;
        const key = `/mh/upgrade/k${i}`;
        const r = await m.berth(["kv", "set", key, `v${i}`, "--request-timeout=2s"]);
        if (r.code === 0) acked.set(key, `v${i}`);
      }
    })();

    for (const m of machines) {
      await m.stopNode(); // systemctl stop: the node alone; its supervisor and units stay
      const inst = await m.run("install", ["-m", "0755", next, "/usr/local/bin/berth"]);
      expect(inst.code, inst.stderr).toBe(0);
      m.startNode();
      await healthy(m);
      const status = await json<{ version: string }>(m, ["cluster", "status"]);
      expect(status.version).toBe(NEXT_VERSION);
    }
    writing = false;
    await writer;
    expect(acked.size).toBeGreaterThan(machines.length);

    const stored = await machines[0]!.run("curl", [
      "-sf",
      "http://127.0.0.1:2379/v2/keys/mh/upgrade?recursive=true",
    ]);
    const nodes = (JSON.parse(stored.stdout) as { node: { nodes?: { key: string; value: string }[] } }).node
      .nodes;
    const found = new Map((nodes ?? []).map((n) => [n.key, n.value]));
    for (const [k, v] of acked) expect(found.get(k), k).toBe(v);
    for (const [u, pid] of before) expect(await mainPid(machines[0]!, u), u).toBe(pid);
  }, 120_000);

  /** The machine running `unit`, and the unit's main PID there. */
  const locate = async (unit: string) => {
    const observer = up()[0]!;
    const rows = await units(observer);
    const byId = new Map((await machineRows(observer)).map((r) => [r.id, r.name]));
    const name = byId.get(rows.find((r) => r.name === unit)!.machine)!;
    return { machine: machines.find((m) => m.name === name)!, pid: await mainPid(observer, unit) };
  };
  const movedAway = (unit: string, from: Machine) =>
    waitFor(
      `${unit} running again away from ${from.name}`,
      async () => {
        const observer = up().find((m) => m !== from)!;
        const rows = await units(observer);
        const byId = new Map((await machineRows(observer)).map((r) => [r.id, r.name]));
        const row = rows.find((r) => r.name === unit);
        return row && row.active === "active" && byId.get(row.machine) !== from.name
          ? byId.get(row.machine)
          : null;
      },
      45_000,
      300,
    );

  it("a machine whose cable is pulled loses its unit to another, which it fences off, and it comes back", async () => {
    const { machine: victim, pid } = await locate("steady-a.service");
    network.setPort(victim.index, false);
    try {
      const to = await movedAway("steady-a.service", victim);
      expect(to).not.toBe(victim.name);
      // The cut-off machine's supervisor stopped its copy once the lease ran out: it ran once, not twice.
      await waitFor("the old copy stopped", () => !isRunning(pid), 30_000, 200);
    } finally {
      network.setPort(victim.index, true);
    }
    await waitFor(
      `${victim.name} back in the cluster`,
      async () => (await machineRows(victim)).length === COUNT,
      45_000,
      300,
    );
  }, 120_000);

  it("a machine whose every process is killed loses its units to the others", async () => {
    const { machine: victim, pid } = await locate("steady-b.service");
    expect(victim.pids().length).toBeGreaterThan(2); // init, node, supervisor, units
    victim.killAll();
    expect(victim.pids()).toEqual([]);
    expect(isRunning(pid)).toBe(false);
    const to = await movedAway("steady-b.service", victim);
    expect(to).not.toBe(victim.name);
  }, 90_000);
});
