// The seed's flow with Berth: three machines boot from the same #cloud-config user-data (discovery URL, secret
// file, metadata, cluster units) and the cluster they form runs each unit once.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { berth, TestCluster, waitFor } from "./support/cluster.ts";
import { EtcdMember } from "./support/etcd.ts";

describe("three machines booting from one cloud-config", () => {
  let etcd: EtcdMember;
  let cluster: TestCluster;
  let dir: string;
  const userData = (unitLine: string, token: string, secret: string) => `#cloud-config
hostname: ignored-by-berth
berth:
  discovery: ${token}
  cluster-secret-file: ${secret}
  metadata:
    role: web
  units:
    - name: once.service
      command: start
      content: |
        [Unit]
        Description=started once by whichever machine applies first
        [Service]
        ${unitLine}
`;

  beforeAll(async () => {
    etcd = await EtcdMember.start("127.0.2.30");
    cluster = TestCluster.empty();
    dir = mkdtempSync(join(tmpdir(), "berth-cloud-config-"));
  }, 30_000);
  afterAll(async () => {
    await cluster?.stop();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("bootstraps by the file's discovery URL, applies its metadata, and starts its unit exactly once", async () => {
    const token = (await berth(["discovery", "new", "--size=3", `--endpoint=${etcd.url}`])).stdout.trim();
    const starts = join(dir, "starts");
    const file = join(dir, "user-data");
    writeFileSync(
      file,
      userData(`ExecStart=/bin/sh -c "echo started >> ${starts}; exec sleep 600"`, token, cluster.secretFile),
    );
    // Each machine is told only its name and addresses (as its own IP would tell it): the rest is the file's.
    for (const [i, host] of ["127.0.2.31", "127.0.2.32", "127.0.2.33"].entries())
      cluster.spawn(await cluster.define(`c${i + 1}`, host, [`--cloud-config=${file}`]));
    await cluster.waitHealthy();
    await waitFor(
      "every machine applied the file",
      () => cluster.nodes.every((n) => readFileSync(n.logFile, "utf8").includes("[cloud-config] units:")),
      20_000,
    );
    await waitFor(
      "once.service running",
      async () => /once\.service.*active\s+running/.test((await cluster.cli(["list-units"])).stdout),
      20_000,
    );
    const machines = (await cluster.cli(["list-machines", "--no-legend"])).stdout.trim().split("\n");
    expect(machines).toHaveLength(3);
    for (const m of machines) expect(m).toContain("role=web");
    expect(readFileSync(starts, "utf8")).toBe("started\n");
    const submitters = cluster.nodes.filter((n) =>
      /\[cloud-config\] units: 1 submitted/.test(readFileSync(n.logFile, "utf8")),
    );
    expect(submitters.length).toBeGreaterThanOrEqual(1);

    // Applied again (by an operator, or a machine restarting): nothing changes.
    const again = await cluster.cli(["cloud-config", "apply", file]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe("unchanged once.service\n");
    // A file whose unit differs from the registry's: the registry's copy stays, exit 5.
    const other = join(dir, "user-data-2");
    writeFileSync(other, userData("ExecStart=/bin/sleep 601", token, cluster.secretFile));
    const differs = await cluster.cli(["cloud-config", "apply", other]);
    expect(differs.code).toBe(5);
    expect(differs.stderr).toContain("unit once.service is in the cluster with other content: left as it is");
    expect((await cluster.cli(["cat", "once.service"])).stdout).toContain("echo started");
    expect(readFileSync(starts, "utf8")).toBe("started\n");
  }, 120_000);

  it("a node refuses a file with mistakes before it starts, naming each line", async () => {
    const bad = join(dir, "bad");
    writeFileSync(
      bad,
      "#cloud-config\nberth:\n  peer-adr: 127.0.2.39:7001\n  units:\n    - name: x.service\n      command: go\n",
    );
    const r = await berth(["node", `--cloud-config=${bad}`, `--data-dir=${join(dir, "never")}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}:3: unknown key "peer-adr"`);
    expect(r.stderr).toContain(`${bad}:6: command: must be one of submit, load, start`);
  });
});
