// fleet's documented examples, run as the docs run them on a 3-machine cluster, with the placement and lifecycle the
// docs describe checked: launching-containers-fleet.md (coreos/docs), examples/example-deployment.md,
// examples/service-discovery.md and unit-files-and-scheduling.md (coreos/fleet). The unit files are the docs' own
// (test/fixtures/units/fleet, see SOURCE.md), changed by adapt() below in these ways only:
//   - images: the local busybox in each machine's engine instead of Docker Hub's (no pulls: `docker pull X` checks
//     that the local image is there), with busybox's own long-running command where the Hub image had its own;
//   - networking: `--net=none` instead of `-p HOST:CONTAINER` (every machine shares the test host's network);
//   - the machine's environment the docs take for granted, given in the unit (units get a clean environment):
//     DOCKER_HOST for the machine's own engine (a socket per host name, `%H`, as each CoreOS machine had its own
//     /var/run/docker.sock), and etcdctl's v2 API at the cluster's HTTP endpoints (CoreOS's etcdctl reached the
//     local etcd by default);
//   - datadog's `--privileged` is left out: the test host, itself a container, cannot grant every capability.
// Each machine has a host name of its own (a UTS namespace per node) and its own Docker engine, so `%H`,
// `hostname` and the docs' fixed container names (apache1, dd-agent on every machine) mean what they meant there.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, waitFor } from "./support/cluster.ts";
import {
  buildBusyboxImage,
  type PrivateDocker,
  requireDocker,
  startPrivateDocker,
} from "./support/docker.ts";

const FLEET = resolve(import.meta.dirname, "fixtures/units/fleet");
const HOSTS = ["core-01", "core-02", "core-03"];
// launching-containers-fleet.md, "Schedule based on machine metadata": the three machines' metadata.
const METADATA = [
  "disk=ssd,platform=metal,provider=rackspace,region=east",
  "disk=ssd,platform=cloud,provider=rackspace,region=east",
  "disk=ssd,platform=cloud,provider=amazon,region=east",
];
/** The docs' busybox command (myapp.service), for the containers whose Hub image had a command of its own. */
const SERVE = `/bin/sh -c "trap 'exit 0' INT TERM; while true; do sleep 1; done"`;

describe("fleet's documented examples", () => {
  let cluster: TestCluster;
  let engines: PrivateDocker[];
  let dir: string;
  let etcdEndpoints: string;

  /** The three documented adaptations (see the top of the file), and nothing else. */
  const adapt = (text: string): string =>
    text
      .replace(/\/usr\/bin\/docker pull \S+/g, "/usr/bin/docker image inspect --format={{.Id}} local/busybox")
      .replace(/ -p \d+:\d+ /g, " --net=none ")
      .replace(/ busybox \/bin\/sh/g, " local/busybox /bin/sh")
      .replace(/ coreos\/apache \/usr\/sbin\/apache2ctl -D FOREGROUND$/m, ` local/busybox ${SERVE}`)
      .replace(/ (coreos\/subgun|quay\.io\/coreos\/elb-presence)$/m, ` local/busybox ${SERVE}`)
      .replace(
        /^datadog\/docker-dd-agent"$/m,
        `local/busybox /bin/sh -c 'trap \\"exit 0\\" INT TERM; while true; do sleep 1; done'"`,
      )
      .replace(/-v \/var\/run\/docker\.sock:/, `-v ${dir}/%H.sock:`)
      .replace(/ --privileged /, " ")
      .replace(
        /^\[Service\]\n/m,
        `[Service]\nEnvironment=DOCKER_HOST=unix://${dir}/%H.sock ETCDCTL_API=2 ETCDCTL_ENDPOINTS=${etcdEndpoints}\n`,
      );
  /** Writes the adapted copy of a unit file (the docs' own from fixtures, or given text) where the CLI reads it. */
  const unit = (name: string, text = readFileSync(join(FLEET, name), "utf8")): string => {
    const adapted = adapt(text);
    // No image from a registry may be left: the engine would try to reach Docker Hub.
    if (/docker run /.test(adapted) && !adapted.includes("local/busybox"))
      throw new Error(`${name}: adapt() left an image to pull`);
    writeFileSync(join(dir, name), adapted);
    return join(dir, name);
  };
  const cli = async (args: string[], expectCode = 0) => {
    const r = await cluster.cli(args, cluster.endpoints(), 60_000);
    if (r.code !== expectCode)
      throw new Error(`berth ${args.join(" ")} exited ${r.code}, not ${expectCode}: ${r.stdout}${r.stderr}`);
    return r;
  };
  /** A fleetctl table: rows of tab-separated cells (the header first). */
  const table = async (args: string[]) =>
    (await cli(args)).stdout
      .trimEnd()
      .split("\n")
      .map((l) => l.split(/\t+/));
  /** `list-units` rows without the header, as [unit, host name of its machine, active, sub]. */
  const units = async (glob?: string) =>
    (await table(["list-units", ...(glob ? [glob] : [])]))
      .slice(1)
      .map(([u, m, a, s]) => [u, host(m!), a, s]);
  /** The host name of the machine a MACHINE legend (`0e0a1f59.../127.0.0.2`) names. */
  const host = (legend: string): string => {
    const ip = /\.\.\.\/127\.0\.0\.(\d)$/.exec(legend);
    return ip ? HOSTS[Number(ip[1]) - 1]! : legend;
  };
  const engineOf = (h: string): PrivateDocker => engines[HOSTS.indexOf(h)]!;
  /** Names of the containers running in a machine's engine. */
  const containers = (h: string): string[] =>
    engineOf(h).cli("ps", "--format", "{{.Names}}").split("\n").filter(Boolean).sort();
  const httpGet = async (path: string) => {
    const r = await fetch(`${cluster.httpUrl("n1")}/v2/keys${path}`);
    return { status: r.status, body: (await r.json()) as { node?: { value?: string; ttl?: number } } };
  };

  beforeAll(async () => {
    requireDocker();
    dir = mkdtempSync(join(tmpdir(), "berth-fleetdocs-"));
    engines = await Promise.all(HOSTS.map(() => startPrivateDocker()));
    for (const [i, e] of engines.entries()) {
      buildBusyboxImage(e);
      symlinkSync(e.socket, join(dir, `${HOSTS[i]}.sock`));
    }
    cluster = await TestCluster.start(3, {
      extraArgs: ["--agent-ttl=2s"],
      perNode: HOSTS.map((hostname, i) => ({ hostname, extraArgs: [`--metadata=${METADATA[i]}`] })),
    });
    etcdEndpoints = cluster.nodes.map((n) => cluster.httpUrl(n.name)).join(",");
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
    await Promise.all((engines ?? []).map((e) => e.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  describe("launching-containers-fleet.md", () => {
    it("list-machines shows the three machines with the metadata of their config", async () => {
      const rows = await table(["list-machines"]);
      expect(rows[0]).toEqual(["MACHINE", "IP", "METADATA"]);
      // Sorted by machine id, as fleetctl sorts them.
      expect(
        rows
          .slice(1)
          .map(([m, ip, md]) => [host(`${m}/${ip}`), md])
          .sort(),
      ).toEqual(HOSTS.map((h, i) => [h, METADATA[i]]));
      for (const [m] of rows.slice(1)) expect(m).toMatch(/^[0-9a-f]{8}\.\.\.$/);
      // The full ids (`-l`) are what MachineID= takes.
      for (const [m] of (await table(["list-machines", "-l"])).slice(1)) expect(m).toMatch(/^[0-9a-f]{32}$/);
    });

    it("myapp.service runs its busybox container on one machine", async () => {
      const r = await cli(["start", unit("myapp.service")]);
      expect(r.stdout).toMatch(/^Unit myapp\.service launched on [0-9a-f]{8}\.\.\.\/127\.0\.0\.\d\n/);
      const rows = await units("myapp.service");
      expect(rows).toEqual([["myapp.service", expect.stringMatching(/^core-0\d$/), "active", "running"]]);
      const h = rows[0]![1]!;
      await waitFor("busybox1", async () => (containers(h).includes("busybox1") ? true : null));
      await waitFor("myapp's Hello World in its journal", async () =>
        (await cli(["journal", "myapp.service"])).stdout.includes("Hello World") ? true : null,
      );
    }, 30_000);

    it("apache@1 and apache@2 run on two different machines (Conflicts=apache@*.service)", async () => {
      await cli(["submit", unit("apache@.service")]);
      expect((await cli(["start", join(dir, "apache@1.service")])).stdout).toMatch(
        /^Unit apache@1\.service launched/,
      );
      expect((await cli(["start", join(dir, "apache@2.service")])).stdout).toMatch(
        /^Unit apache@2\.service launched/,
      );
      const rows = await units("apache@*");
      expect(rows.map(([u, , a, s]) => [u, a, s])).toEqual([
        ["apache@1.service", "active", "running"],
        ["apache@2.service", "active", "running"],
      ]);
      expect(rows[0]![1]).not.toBe(rows[1]![1]);
      // Each machine's engine runs the unit's container under the name the unit gives it, apache1 on both (active
      // means the docker client runs: the container follows).
      for (const [, h] of rows)
        await waitFor(`apache1 on ${h}`, async () => (containers(h!).includes("apache1") ? true : null));
    }, 30_000);

    it("apache-discovery@N runs beside apache@N and announces it in etcd with %H and a 60 s TTL", async () => {
      await cli(["submit", unit("apache-discovery@.service")]);
      await cli(["start", join(dir, "apache-discovery@1.service"), join(dir, "apache-discovery@2.service")]);
      const rows = await units();
      const where = (u: string) => rows.find((r) => r[0] === u)?.[1];
      for (const i of [1, 2]) {
        expect(where(`apache-discovery@${i}.service`)).toBe(where(`apache@${i}.service`));
        expect(rows.find((r) => r[0] === `apache-discovery@${i}.service`)?.slice(2)).toEqual([
          "active",
          "running",
        ]);
      }
      // etcdctl ls /services/ --recursive, as the doc shows it.
      const ls = await waitFor("both announcements", async () => {
        const out = (await cli(["kv", "ls", "/services/", "--recursive"])).stdout;
        return out.split("\n").length >= 4 ? out : null;
      });
      expect(ls.trimEnd().split("\n").sort()).toEqual([
        "/services/website",
        "/services/website/apache@1",
        "/services/website/apache@2",
      ]);
      for (const i of [1, 2]) {
        const { body } = await httpGet(`/services/website/apache@${i}`);
        expect(JSON.parse(body.node!.value!)).toEqual({
          host: where(`apache@${i}.service`),
          port: 80,
          version: "52c7248a14",
        });
        expect(body.node!.ttl).toBeGreaterThan(0);
        expect(body.node!.ttl).toBeLessThanOrEqual(60);
      }
    }, 30_000);

    it("datadog.service (Global=true) runs on all 3 machines, each container named by its machine's hostname", async () => {
      await cli(["kv", "set", "/ddapikey", "k3y-from-etcd"]);
      // fleetctl does not wait for global units.
      expect((await cli(["start", unit("datadog.service")])).stdout).toBe(
        "Triggered global unit datadog.service start\n",
      );
      await waitFor("datadog.service active on every machine", async () => {
        const rows = await units("datadog.service");
        return rows.length === 3 && rows.every((r) => r[2] === "active") ? rows : null;
      });
      const rows = await units("datadog.service");
      expect(rows.map((r) => r.slice(1)).sort()).toEqual(HOSTS.map((h) => [h, "active", "running"]));
      for (const h of HOSTS) {
        const c = await waitFor(`dd-agent on ${h}`, async () =>
          containers(h).includes("dd-agent") ? JSON.parse(engineOf(h).cli("inspect", "dd-agent"))[0] : null,
        );
        expect(c.Config.Hostname).toBe(h);
        expect(c.Config.Env).toContain("API_KEY=k3y-from-etcd");
      }
      // list-unit-files as fleet 1.0 prints it (the doc's "3 of 3" TMACHINE is older fleet's).
      const files = await table(["list-unit-files"]);
      expect(files[0]).toEqual(["UNIT", "HASH", "DSTATE", "STATE", "TARGET"]);
      expect(files.find((r) => r[0] === "datadog.service")).toEqual([
        "datadog.service",
        expect.stringMatching(/^[0-9a-f]{7}$/),
        "launched",
        "-",
        "global",
      ]);
      const myapp = files.find((r) => r[0] === "myapp.service")!;
      expect(myapp.slice(2, 4)).toEqual(["launched", "launched"]);
      expect(myapp[4]).toMatch(/^[0-9a-f]{8}\.\.\.\/127\.0\.0\.\d$/);
      // The doc's last list-units: 8 rows (sorted by unit, as fleet 1.0 sorts them).
      const all = await table(["list-units"]);
      expect(all[0]).toEqual(["UNIT", "MACHINE", "ACTIVE", "SUB"]);
      expect(all.slice(1).map((r) => r[0])).toEqual([
        "apache-discovery@1.service",
        "apache-discovery@2.service",
        "apache@1.service",
        "apache@2.service",
        "datadog.service",
        "datadog.service",
        "datadog.service",
        "myapp.service",
      ]);
    }, 30_000);

    it("stopping apache@1 stops apache-discovery@1 too (BindsTo), whose ExecStop removes the announcement", async () => {
      const h = (await units("apache@1.service"))[0]![1]!;
      const r = await cli(["stop", "apache@1.service"]);
      expect(r.stderr).toContain("apache-discovery@1.service");
      expect((await units("apache*@1.service")).map(([u, m, a, s]) => [u, m, a, s])).toEqual([
        ["apache-discovery@1.service", h, "inactive", "dead"],
        ["apache@1.service", h, "inactive", "dead"],
      ]);
      expect((await httpGet("/services/website/apache@1")).status).toBe(404);
      expect(containers(h)).not.toContain("apache1");
      // Their desired state is loaded: nothing starts them again.
      const files = await table(["list-unit-files", "apache*@1.service"]);
      expect(files.slice(1).map((f) => f[2])).toEqual(["loaded", "loaded"]);
    }, 30_000);
  });
});
