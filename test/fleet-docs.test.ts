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
      .replace(/ (coreos\/subgun|quay\.io\/coreos\/elb-presence|nginx)$/m, ` local/busybox ${SERVE}`)
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
  const units = async (...globs: string[]) =>
    (await table(["list-units", ...globs])).slice(1).map(([u, m, a, s]) => [u, host(m!), a, s]);
  /** The host name of the machine a MACHINE legend (`0e0a1f59.../127.0.0.2`) names. */
  const host = (legend: string): string => {
    const ip = /\.\.\.\/127\.0\.0\.(\d)$/.exec(legend);
    return ip ? HOSTS[Number(ip[1]) - 1]! : legend;
  };
  const engineOf = (h: string): PrivateDocker => engines[HOSTS.indexOf(h)]!;
  /** Names of the containers running in a machine's engine. */
  const containers = (h: string): string[] =>
    engineOf(h).cli("ps", "--format", "{{.Names}}").split("\n").filter(Boolean).sort();
  /** Where list-unit-files places each unit: the host name of its TARGET ("-" when nowhere, "global"). */
  const targets = async (glob: string) =>
    Object.fromEntries((await table(["list-unit-files", glob])).slice(1).map((r) => [r[0], host(r[4]!)]));
  /** The reason list-unit-files gives for a unit it cannot place ("-" when it can). */
  const reason = async (name: string) =>
    (await cli(["list-unit-files", "--fields", "reason", "--no-legend", name])).stdout.trim();
  /** A unit file from a doc's [X-Fleet] snippet, with a process to run (the snippets have no [Service]). */
  const snippet = (name: string, xfleet: string, extra = ""): string =>
    unit(name, `${extra}[Service]\nExecStart=${SERVE}\n\n[X-Fleet]\n${xfleet}\n`);
  /** Machine ids by host name. */
  const machineIds = async (): Promise<Record<string, string>> =>
    Object.fromEntries(
      (await table(["list-machines", "-l"])).slice(1).map(([m, ip]) => [host(`x.../${ip}`), m!]),
    );
  /** A GET of etcd's v2 API on the first node that answers (the test stops one). */
  const httpGet = async (path: string) => {
    for (const n of cluster.nodes) {
      const r = await fetch(`${cluster.httpUrl(n.name)}/v2/keys${path}`).catch(() => null);
      if (r)
        return { status: r.status, body: (await r.json()) as { node?: { value?: string; ttl?: number } } };
    }
    throw new Error("no node answered");
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

    it("a failed machine's units start on another machine, its sidekick with it; the recovered machine runs neither", async () => {
      const x = (await units("apache@2.service"))[0]![1]!;
      const y = (await units("apache@1.service"))[0]![1]!;
      const z = HOSTS.find((h) => h !== x && h !== y)!;
      const n = cluster.nodes[HOSTS.indexOf(x)]!.name;
      // The machine dies: its node, supervisor and unit processes, and its Docker engine.
      await cluster.crash(n);
      await engineOf(x).crash();
      // apache@1 is loaded on y (Conflicts counts it): apache@2 can only go to z, and its discovery follows.
      await waitFor(
        "apache@2 and apache-discovery@2 running on the third machine",
        async () => {
          const rows = await units("apache*@2.service");
          return rows.length === 2 && rows.every((r) => r[1] === z && r[2] === "active") ? rows : null;
        },
        30_000,
        200,
      );
      await waitFor(`apache1 on ${z}`, async () => (containers(z).includes("apache1") ? true : null));
      await waitFor("the announcement names the new machine", async () => {
        const { body } = await httpGet("/services/website/apache@2");
        return body.node?.value && JSON.parse(body.node.value).host === z ? true : null;
      });
      // The machine comes back: the units that moved stay where they are; it runs only what is its own (datadog).
      await engineOf(x).restart();
      cluster.spawn(cluster.node(n));
      await waitFor(
        `datadog.service active on ${x} again`,
        async () =>
          (await units("datadog.service")).some((r) => r[1] === x && r[2] === "active") ? true : null,
        30_000,
        200,
      );
      expect((await units("apache*")).filter((r) => r[1] === x)).toEqual([]);
      expect(containers(x)).not.toContain("apache1");
    }, 60_000);
  });

  describe("examples/example-deployment.md", () => {
    it("submit stores both templates: list-unit-files shows them inactive and placed nowhere", async () => {
      await cli(["submit", unit("subgun-presence@.service"), unit("subgun-http@.service")]);
      expect(await table(["list-unit-files", "subgun*"])).toEqual([
        ["UNIT", "HASH", "DSTATE", "STATE", "TARGET"],
        ["subgun-http@.service", expect.stringMatching(/^[0-9a-f]{7}$/), "inactive", "inactive", "-"],
        ["subgun-presence@.service", expect.stringMatching(/^[0-9a-f]{7}$/), "inactive", "inactive", "-"],
      ]);
    });

    it("three instances of each: the http units on three machines, each presence unit beside its http unit", async () => {
      const names = [
        ...[1, 2, 3].map((i) => `subgun-presence@${i}.service`),
        ...[1, 2, 3].map((i) => `subgun-http@${i}.service`),
      ];
      const r = await cli(["start", ...names.map((u) => join(dir, u))]);
      const launched = Object.fromEntries(
        r.stdout
          .trimEnd()
          .split("\n")
          .map((l) => /^Unit (\S+) launched on (\S+)$/.exec(l)!)
          .map((m) => [m[1], host(m[2]!)]),
      );
      expect(Object.keys(launched).sort()).toEqual([...names].sort());
      const rows = await units("subgun*");
      expect(rows.map((x) => [x[0], x[2], x[3]])).toEqual(
        [...names].sort().map((u) => [u, "active", "running"]),
      );
      const where = Object.fromEntries(rows.map((x) => [x[0], x[1]]));
      expect(where).toEqual(launched);
      expect(new Set([1, 2, 3].map((i) => where[`subgun-http@${i}.service`])).size).toBe(3);
      for (const i of [1, 2, 3]) {
        const h = where[`subgun-http@${i}.service`]!;
        expect(where[`subgun-presence@${i}.service`]).toBe(h);
        await waitFor(`subgun-${i} and subgun-presence-${i} on ${h}`, async () => {
          const c = containers(h);
          return c.includes(`subgun-${i}`) && c.includes(`subgun-presence-${i}`) ? true : null;
        });
      }
    }, 30_000);
    it("destroying subgun-http@3 takes subgun-presence@3 along: stopped (BindsTo), then out of list-units (MachineOf)", async () => {
      const h = (await units("subgun-http@3.service"))[0]![1]!;
      // Without waiting forever for its follower to be "loaded" again somewhere (it never will be).
      const r = await cluster.cli(["destroy", "subgun-http@3.service"], cluster.endpoints(), 15_000);
      expect(r.code).toBe(0);
      // (The follower is reported once stopped: on its machine, or on none once the engine has unplaced it.)
      expect(r.stdout).toMatch(
        /^Destroyed subgun-http@3\.service\nUnit subgun-presence@3\.service (inactive|loaded on \S+)\n$/,
      );
      expect(r.stderr).toContain("Stopping subgun-presence@3.service too");
      // Its follower has nowhere to go: as fleet's "automatically removed", it leaves list-units; --all says why.
      await waitFor("subgun-presence@3 out of list-units", async () =>
        (await units("subgun*@3.service")).length === 0 ? true : null,
      );
      const all = (await table(["list-units", "--all", "subgun*@3.service"])).slice(1);
      expect(all).toEqual([
        ["subgun-presence@3.service", "-", "inactive", expect.stringMatching(/^dead \(cannot be placed: /)],
      ]);
      await waitFor(`no subgun container left on ${h} for instance 3`, async () =>
        containers(h).some((c) => c.endsWith("-3")) ? null : true,
      );
    }, 30_000);
  });

  describe("examples/service-discovery.md", () => {
    // The unit the doc announces; the doc does not give it.
    const NGINX1 = `[Unit]\nDescription=nginx1\n\n[Service]\nExecStartPre=-/usr/bin/docker kill nginx1
ExecStartPre=-/usr/bin/docker rm nginx1\nExecStart=/usr/bin/docker run --rm --name nginx1 -p 8080:80 nginx
ExecStop=/usr/bin/docker stop nginx1\n`;

    it("the sidekick runs beside nginx1 and announces it with the machine's host name and a 60 s TTL", async () => {
      await cli(["start", unit("nginx1.service", NGINX1), unit("nginx1-discovery.service")]);
      const rows = await units("nginx1*");
      expect(rows.map((r) => [r[0], r[2], r[3]])).toEqual([
        ["nginx1-discovery.service", "active", "running"],
        ["nginx1.service", "active", "running"],
      ]);
      expect(rows[0]![1]).toBe(rows[1]![1]);
      const { body } = await waitFor("the announcement", async () => {
        const r = await httpGet("/services/website/nginx1");
        return r.status === 200 ? r : null;
      });
      expect(JSON.parse(body.node!.value!)).toEqual({ host: rows[1]![1], port: 8080, version: "52c7248a14" });
      expect(body.node!.ttl).toBeGreaterThan(0);
      expect(body.node!.ttl).toBeLessThanOrEqual(60);
    }, 30_000);

    it("when nginx1 is stopped the sidekick stops too (BindsTo); its `etcdctl delete` leaves the key to its TTL", async () => {
      await cli(["stop", "nginx1.service"]);
      expect((await units("nginx1*")).map((r) => [r[0], r[2], r[3]])).toEqual([
        ["nginx1-discovery.service", "inactive", "dead"],
        ["nginx1.service", "inactive", "dead"],
      ]);
      // etcdctl has no "delete" (v2's is "rm", as apache-discovery@ uses): the ExecStop fails and the
      // announcement stays until its TTL runs out, as it would with fleet.
      const journal = (await cli(["journal", "nginx1-discovery.service"])).stdout;
      expect(journal).toContain("No help topic for 'delete'");
      const { status, body } = await httpGet("/services/website/nginx1");
      expect(status).toBe(200);
      expect(body.node!.ttl).toBeGreaterThan(0);
    }, 30_000);
  });

  describe("unit-files-and-scheduling.md", () => {
    it("my_discovery.service (BindsTo=, MachineOf=my.service) runs beside my.service and stops with it", async () => {
      await cli(["start", unit("my.service"), unit("my_discovery.service")]);
      const rows = await units("my.service", "my_discovery.service");
      expect(rows.map((r) => [r[0], r[2], r[3]])).toEqual([
        ["my.service", "active", "running"],
        ["my_discovery.service", "active", "running"],
      ]);
      expect(rows[0]![1]).toBe(rows[1]![1]);
      // "Use fleetctl status my_discovery.service to explicitly identify the service and get its actual status."
      expect((await cli(["status", "my_discovery.service"])).stdout).toMatch(/Active: active \(running\)/);
      await cli(["stop", "my.service"]);
      expect((await units("my.service", "my_discovery.service")).map((r) => r[2])).toEqual([
        "inactive",
        "inactive",
      ]);
      // As under fleet (systemd's WantedBy=my.service): starting my.service starts my_discovery.service again, its
      // [Install] edge acting on the machine whatever its desired state.
      await cli(["start", "my.service"]);
      await waitFor(
        "my_discovery.service started with my.service",
        async () => {
          const r = (await units("my.service", "my_discovery.service")).map((x) => [x[0], x[2]]);
          return (
            JSON.stringify(r) ===
            JSON.stringify([
              ["my.service", "active"],
              ["my_discovery.service", "active"],
            ])
          );
        },
        15_000,
        200,
      );
    }, 30_000);

    it("MachineMetadata: AND across keys, OR within a key; Global=true runs on every machine that matches", async () => {
      // The doc's machines: list-machines shows them as it does.
      await cli([
        "machine",
        "set-metadata",
        "n1",
        "--reset",
        "--unset",
        "disk,platform,provider",
        "region=us-east-1",
        "diskType=SSD",
      ]);
      await cli(["machine", "set-metadata", "n2", "--unset", "disk,platform,provider", "region=us-east-1"]);
      await cli([
        "machine",
        "set-metadata",
        "n3",
        "--unset",
        "disk,platform,provider",
        "region=us-west-1",
        "diskType=SSD",
      ]);
      expect(
        (await table(["list-machines"]))
          .slice(1)
          .map(([m, ip, md]) => [host(`${m}/${ip}`), md])
          .sort(),
      ).toEqual([
        ["core-01", "diskType=SSD,region=us-east-1"],
        ["core-02", "region=us-east-1"],
        ["core-03", "diskType=SSD,region=us-west-1"],
      ]);
      const and = snippet("md-and.service", `MachineMetadata="region=us-east-1" "diskType=SSD"`);
      const or = snippet(
        "md-or.service",
        "MachineMetadata=region=us-east-1\nMachineMetadata=region=us-west-1",
      );
      const both = snippet(
        "md-both.service",
        `MachineMetadata="region=us-east-1" "diskType=SSD"\nMachineMetadata=region=us-west-1`,
      );
      const grouped = snippet(
        "md-grouped.service",
        `MachineMetadata="region=us-east-1" "job=foo"\nMachineMetadata="region=us-west-1" "job=bar"`,
      );
      await cli(["load", and, or, both]);
      await cli(["load", "--no-block", grouped]);
      const t = await targets("md-*");
      expect(t["md-and.service"]).toBe("core-01");
      expect(HOSTS).toContain(t["md-or.service"]);
      expect(["core-01", "core-03"]).toContain(t["md-both.service"]);
      // (job=foo OR job=bar) AND (region=us-east-1 OR region=us-west-1): no machine has a job yet.
      expect(t["md-grouped.service"]).toBe("-");
      expect(await reason("md-grouped.service")).not.toBe("-");
      await cli(["machine", "set-metadata", "n2", "job=bar"]);
      await waitFor("md-grouped placed on core-02 once it has job=bar", async () =>
        (await targets("md-grouped.service"))["md-grouped.service"] === "core-02" ? true : null,
      );
      // The doc's app.service: Global=true with the combined requirement runs on core-01 and core-03.
      const app = snippet(
        "app.service",
        `Global=true\nMachineMetadata="region=us-east-1" "diskType=SSD"\nMachineMetadata=region=us-west-1`,
      );
      await cli(["start", app]);
      await waitFor("app.service active on two machines", async () => {
        const rows = await units("app.service");
        return rows.length === 2 && rows.every((r) => r[2] === "active") ? true : null;
      });
      expect((await units("app.service")).map((r) => r.slice(1)).sort()).toEqual([
        ["core-01", "active", "running"],
        ["core-03", "active", "running"],
      ]);
    }, 40_000);

    it("MachineID: the full id from list-machines -l places a unit on that machine (Berth: a unique prefix too)", async () => {
      const ids = await machineIds();
      await cli(["load", snippet("pin-full.service", `MachineID=${ids["core-03"]}`)]);
      expect(await targets("pin-full.service")).toEqual({ "pin-full.service": "core-03" });
      // fleet left a unit with the short id of list-machines unplaceable for good; Berth takes a prefix that names
      // one machine (README, "fleet's documentation, run").
      await cli(["load", snippet("pin-short.service", `MachineID=${ids["core-03"]!.slice(0, 8)}`)]);
      expect(await targets("pin-short.service")).toEqual({ "pin-short.service": "core-03" });
    });

    it("MachineOf: a follower waits for its target, is placed where the target is and follows it when it moves", async () => {
      await cli(["load", "--no-block", snippet("follower.service", "MachineOf=leader.service")]);
      expect(await targets("follower.service")).toEqual({ "follower.service": "-" });
      expect(await reason("follower.service")).not.toBe("-");
      await cli(["machine", "set-metadata", "n3", "role=leader"]);
      await cli(["load", snippet("leader.service", "MachineMetadata=role=leader")]);
      const placed = (h: string) => async () => {
        const t = await targets("*er.service");
        return t["leader.service"] === h && t["follower.service"] === h ? true : null;
      };
      await waitFor("the follower beside its leader on core-03", placed("core-03"));
      await cli(["machine", "set-metadata", "n3", "--unset", "role"]);
      await cli(["machine", "set-metadata", "n1", "role=leader"]);
      await waitFor("leader and follower moved to core-01", placed("core-01"), 20_000, 200);
    }, 30_000);

    it("MachineOf cannot be bidirectional: neither unit can be placed", async () => {
      await cli([
        "load",
        "--no-block",
        snippet("mutual-a.service", "MachineOf=mutual-b.service"),
        snippet("mutual-b.service", "MachineOf=mutual-a.service"),
      ]);
      expect(await targets("mutual-*")).toEqual({ "mutual-a.service": "-", "mutual-b.service": "-" });
    });

    it("MachineOf=%p.socket: foo.service goes where foo.socket is; bar.service has no bar.socket to follow", async () => {
      await cli(["load", unit("foo.socket", "[Socket]\nListenStream=/run/foo.sock\n")]);
      await cli(["load", snippet("foo.service", "MachineOf=%p.socket")]);
      const t = await targets("foo.*");
      expect(t["foo.service"]).toBe(t["foo.socket"]);
      expect(HOSTS).toContain(t["foo.service"]);
      await cli(["load", "--no-block", snippet("bar.service", "MachineOf=%p.socket")]);
      expect(await targets("bar.service")).toEqual({ "bar.service": "-" });
    });

    it("Conflicts: a glob keeps units apart, also units without Conflicts of their own; Global with Conflicts", async () => {
      await cli(["machine", "set-metadata", "n1", "location=chicago"]);
      await cli(["machine", "set-metadata", "n2", "location=chicago"]);
      // The doc's monitor.service (location=chicago, Conflicts=monitor*) twice: the two chicago machines.
      const monitor = readFileSync(join(FLEET, "monitor.service"), "utf8");
      await cli(["load", unit("monitor.service"), unit("monitor-2.service", monitor)]);
      const t = await targets("monitor*");
      expect([t["monitor.service"], t["monitor-2.service"]].sort()).toEqual(["core-01", "core-02"]);
      await cli(["load", "--no-block", unit("monitor-3.service", monitor)]);
      // monitoring.service has no Conflicts, but both chicago machines run a unit whose Conflicts= matches it.
      await cli(["load", "--no-block", snippet("monitoring.service", "MachineMetadata=location=chicago")]);
      expect(await targets("monitor*-3.service")).toEqual({ "monitor-3.service": "-" });
      expect(await targets("monitoring.service")).toEqual({ "monitoring.service": "-" });
      // Global=true with Conflicts=monitor*: only the machine without a monitor.
      await cli(["start", snippet("watch.service", "Global=true\nConflicts=monitor*")]);
      const rows = await waitFor("watch.service active", async () => {
        const r = await units("watch.service");
        return r.length > 0 && r.every((x) => x[2] === "active") ? r : null;
      });
      expect(rows).toEqual([["watch.service", "core-03", "active", "running"]]);
    }, 30_000);
  });
});
