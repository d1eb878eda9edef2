// `berth node --discovery` and `berth discovery new` (etcd's v2 discovery protocol) against the real services an
// operator would use: a real etcd v2, Debian's etcd-discovery service in front of it, and a Berth cluster.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memberId } from "../src/node/cluster-service.ts";
import { DiscoveryError, discover } from "../src/node/discovery/bootstrap.ts";
import { berth, TestCluster, waitFor } from "./support/cluster.ts";
import { EtcdMember } from "./support/etcd.ts";
import { EtcdDiscoveryService } from "./support/etcd-discovery.ts";

interface Member {
  name: string;
  role: string;
}

async function newToken(size: number, endpoint: string): Promise<string> {
  const r = await berth(["discovery", "new", `--size=${size}`, `--endpoint=${endpoint}`]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

/** Defines and starts members on the given hosts, each told only --discovery (plus the shared secret). */
async function startByDiscovery(
  c: TestCluster,
  token: string,
  hosts: string[],
  first = 1,
  extra: string[] = [],
) {
  for (const [i, host] of hosts.entries()) {
    const n = await c.define(`m${first + i}`, host, [`--discovery=${token}`, ...extra]);
    c.spawn(n);
  }
}

async function members(c: TestCluster): Promise<Member[]> {
  const r = await c.cli(["cluster", "members", "--output=json"]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as Member[]).map(({ name, role }) => ({ name, role }));
}

describe("discovery against a real etcd v2", () => {
  let etcd: EtcdMember;
  let cluster: TestCluster;
  let dir: string;

  beforeAll(async () => {
    etcd = await EtcdMember.start("127.0.2.10");
    cluster = TestCluster.empty();
    dir = mkdtempSync(join(tmpdir(), "berth-discovery-"));
  }, 30_000);
  afterAll(async () => {
    await cluster?.stop();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("founds a size-3 cluster; a 4th machine joins as a learner and runs units; --discovery-fallback=exit refuses", async () => {
    const token = await newToken(3, etcd.url);
    expect(token).toMatch(new RegExp(`^${etcd.url}/v2/keys/_etcd/registry/[0-9a-f]{32}$`));
    await startByDiscovery(cluster, token, ["127.0.2.1", "127.0.2.2", "127.0.2.3"]);
    await cluster.waitHealthy();
    await startByDiscovery(cluster, token, ["127.0.2.4"], 4, ["--metadata=role=late"]);
    await waitFor(
      "m4 in the member list",
      async () => (await members(cluster)).some((m) => m.name === "m4"),
      20_000,
    );
    expect(await members(cluster)).toEqual([
      { name: "m1", role: "voter" },
      { name: "m2", role: "voter" },
      { name: "m3", role: "voter" },
      { name: "m4", role: "learner" },
    ]);
    // Every machine is a machine of the cluster, the late one too, and it runs what is placed on it.
    await waitFor(
      "4 machines listed",
      async () =>
        (await cluster.cli(["list-machines", "--no-legend"])).stdout.trim().split("\n").length === 4,
      20_000,
    );
    const unit = join(dir, "late.service");
    writeFileSync(
      unit,
      '[Service]\nExecStart=/bin/sh -c "exec sleep 600"\n\n[X-Fleet]\nMachineMetadata=role=late\n',
    );
    expect((await cluster.cli(["start", unit])).code).toBe(0);
    await waitFor(
      "late.service active on 127.0.2.4",
      async () =>
        /late\.service\s+\S+\/127\.0\.2\.4\s+active\s+running/.test(
          (await cluster.cli(["list-units"])).stdout,
        ),
      30_000,
    );
    // The etcd keys show what each member registered: NAME=PEER-URL under its member id.
    const reg = (await (await fetch(`${token}/${memberId("m2")}`)).json()) as { node: { value: string } };
    expect(reg.node.value).toBe(`m2=http://127.0.2.2:${cluster.node("m2").peerPort}`);

    const refused = await cluster.define("m5", "127.0.2.5", [
      `--discovery=${token}`,
      "--discovery-fallback=exit",
    ]);
    cluster.spawn(refused);
    const code = await new Promise<number | null>((r) => refused.proc!.once("exit", (c) => r(c)));
    expect(code).toBe(5);
    expect(cluster.logs()).toMatch(
      /m5 cannot start: discovery token \S+ is full \(3 members: m\d=.*--discovery-fallback=exit/,
    );
    expect((await members(cluster)).map((m) => m.name)).toEqual(["m1", "m2", "m3", "m4"]);
  }, 120_000);

  it("a restart with --discovery still given uses its data directory, not the token", async () => {
    await cluster.restart("m1");
    await cluster.waitHealthy();
    expect((await members(cluster)).length).toBe(4);
  }, 60_000);

  it("handles duplicate ids and names and a token without a size, as etcd does", async () => {
    const log = () => {};
    const base = { log, requestTimeoutMs: 2000, unreachableForMs: 2000 };
    // The same member registering again with its own value resumes (a restart before the first save).
    const t1 = await newToken(1, etcd.url);
    const id = memberId("solo");
    await fetch(`${t1}/${id}?prevExist=false`, {
      method: "PUT",
      body: new URLSearchParams({ value: "solo=http://127.0.2.9:7001" }),
    });
    const again = await discover({
      ...base,
      url: t1,
      name: "solo",
      memberId: id,
      peerUrl: "http://127.0.2.9:7001",
    });
    expect(again).toEqual({ kind: "founding", size: 1, members: new Map([["solo", "127.0.2.9:7001"]]) });
    // Its id taken by another value: another machine uses this name.
    const t2 = await newToken(2, etcd.url);
    await fetch(`${t2}/${id}?prevExist=false`, {
      method: "PUT",
      body: new URLSearchParams({ value: "solo=http://127.0.2.8:7001" }),
    });
    await expect(
      discover({ ...base, url: t2, name: "solo", memberId: id, peerUrl: "http://127.0.2.9:7001" }),
    ).rejects.toThrow(/already registered as "solo=http:\/\/127\.0\.2\.8:7001"/);
    // Two ids with one name (etcd's ErrDuplicateName).
    const t3 = await newToken(2, etcd.url);
    await fetch(`${t3}/aaaa?prevExist=false`, {
      method: "PUT",
      body: new URLSearchParams({ value: "x=http://127.0.2.8:7001" }),
    });
    await expect(
      discover({ ...base, url: t3, name: "x", memberId: "bbbb", peerUrl: "http://127.0.2.9:7001" }),
    ).rejects.toThrow(/lists the name x twice/);
    // No _config/size: not a token.
    await expect(
      discover({
        ...base,
        url: `${etcd.url}/v2/keys/nothing-here`,
        name: "x",
        memberId: "bbbb",
        peerUrl: "http://127.0.2.9:7001",
      }),
    ).rejects.toThrow(DiscoveryError);
  }, 30_000);
});

describe("discovery through Debian's etcd-discovery service", () => {
  let etcd: EtcdMember;
  let service: EtcdDiscoveryService;
  let cluster: TestCluster;

  beforeAll(async () => {
    etcd = await EtcdMember.start("127.0.2.12");
    service = await EtcdDiscoveryService.start("127.0.2.11", etcd.url);
    cluster = TestCluster.empty();
  }, 30_000);
  afterAll(async () => {
    await cluster?.stop();
    await service?.stop();
    await etcd?.stop();
  });

  it("creates the token with /new and bootstraps three members through it", async () => {
    const token = await newToken(3, service.url);
    expect(token).toMatch(new RegExp(`^${service.url}/[0-9a-f]{32}$`));
    await startByDiscovery(cluster, token, ["127.0.2.13", "127.0.2.14", "127.0.2.15"]);
    await cluster.waitHealthy();
    expect((await members(cluster)).map((m) => m.role)).toEqual(["voter", "voter", "voter"]);
  }, 60_000);
});

describe("a Berth cluster as the discovery service", () => {
  let service: TestCluster;
  let cluster: TestCluster;

  beforeAll(async () => {
    service = TestCluster.empty();
    service.spawn(await service.define("d1", "127.0.2.20"));
    await service.waitHealthy();
    cluster = TestCluster.empty();
  }, 30_000);
  afterAll(async () => {
    await cluster?.stop();
    await service?.stop();
  });

  it("hosts the token on its HTTP API and three members bootstrap from it", async () => {
    const token = await newToken(3, service.httpUrl("d1"));
    await startByDiscovery(cluster, token, ["127.0.2.21", "127.0.2.22", "127.0.2.23"]);
    await cluster.waitHealthy();
    expect((await members(cluster)).map((m) => m.role)).toEqual(["voter", "voter", "voter"]);
  }, 60_000);
});

describe("discovery service unreachable", () => {
  it("retries with backoff, saying so, and gives up after unreachableForMs with DiscoveryError", async () => {
    const lines: string[] = [];
    // Nothing listens on port 1 of this loopback address: every request is refused at once.
    const refused = discover({
      log: (line) => lines.push(line),
      requestTimeoutMs: 500,
      unreachableForMs: 1500,
      url: "http://127.0.8.1:1/v2/keys/_etcd/registry/none",
      name: "x",
      memberId: "bbbb",
      peerUrl: "http://127.0.8.2:7001",
    });
    await expect(refused).rejects.toThrow(DiscoveryError);
    await expect(refused).rejects.toThrow(
      /^discovery service unreachable for 1\.5 s: GET http:\/\/127\.0\.8\.1:1\//,
    );
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines)
      expect(line).toMatch(/^\[discovery\] reading the token: GET .*; retrying in \d+ ms$/);
  });
});
