// Backup and restore with real processes on loopback: `berth snapshot save` from a follower while writes go on,
// `snapshot status`, `snapshot restore` into a new three-member cluster (every key, a new cluster id, the units, and
// a unit that ran before runs again exactly once), a damaged file refused, a guest refused, and `berth backup` of a
// stopped node starting as a cluster of one.
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KvResult } from "../src/client/protocol.ts";
import { ProbeKit } from "./chaos/probes.ts";
import { berth, clientFor, currentLeader, TestCluster, waitFor } from "./support/cluster.ts";

describe("snapshot save, status and restore; offline backup", () => {
  let old: TestCluster | null = null;
  let restored: TestCluster | null = null;
  let single: TestCluster | null = null;
  let probes: ProbeKit;
  let dir: string;
  let file: string;
  /** Keys /w/0 .. /w/(acked - 1) were acknowledged before the save started. */
  let acked = 0;
  let oldClusterId = "";
  let backupDir: string;

  const unitFile = () => join(probes.dir, "probe.service");
  const clusterId = async (c: TestCluster, name: string) => {
    const client = await clientFor(c, name);
    try {
      return (await client.call("node.status", {})).clusterId;
    } finally {
      client.close();
    }
  };
  /** The indexes i of the keys /w/i the cluster holds. */
  const writtenKeys = async (c: TestCluster, name: string) => {
    const client = await clientFor(c, name);
    try {
      const r = (await client.call("kv.get", { key: "/w", recursive: true })) as KvResult;
      return new Set((r.event.node.nodes ?? []).map((n) => Number(n.key.slice(3))));
    } finally {
      client.close();
    }
  };

  beforeAll(async () => {
    probes = new ProbeKit();
    writeFileSync(unitFile(), `[Service]\nExecStart=${probes.execStart("probe", "-")}\n`);
    dir = mkdtempSync(join(tmpdir(), "berth-snapshot-"));
    file = join(dir, "cluster.snap");
    backupDir = join(dir, "backup");
    old = await TestCluster.start(3);
  }, 60_000);
  afterAll(async () => {
    await old?.stop();
    await restored?.stop();
    await single?.stop();
    probes?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it("saves from a follower during writes: status shows the index, keys and hash; guests are refused", async () => {
    const c = old!;
    expect((await c.cli(["start", unitFile()], c.endpoints(), 30_000)).code).toBe(0);
    await waitFor("the probe running", () => probes.starts("probe") === 1 && probes.held("probe"), 20_000);
    const leader = await currentLeader(c);
    const follower = c.nodes.find((n) => n.name !== leader)!.name;

    const writer = await clientFor(c, leader);
    let writing = true;
    let next = 0;
    const loop = (async () => {
      while (writing) {
        await writer.call("kv.write", { method: "PUT", key: `/w/${next}`, value: `v${next}` });
        next++;
      }
    })();
    await waitFor("some writes", () => next >= 20);
    acked = next;
    const saved = await c.cli(["snapshot", "save", file, "-o", "json"], c.endpoint(follower), 60_000);
    await new Promise((r) => setTimeout(r, 200)); // writes go on after the save too
    writing = false;
    await loop;
    writer.close();
    expect(saved.code, saved.stderr).toBe(0);
    expect(JSON.parse(saved.stdout).member).toBe(follower);

    const status = await berth(["snapshot", "status", file, "-o", "json"]);
    expect(status.code, status.stderr).toBe(0);
    const st = JSON.parse(status.stdout);
    const bytes = readFileSync(file);
    expect(st.hash).toBe(createHash("sha256").update(bytes.subarray(0, -32)).digest("hex"));
    expect(st.totalSize).toBe(bytes.length);
    expect(st.totalKeys).toBeGreaterThan(acked);
    expect(st.index).toBeGreaterThan(acked);
    oldClusterId = await clusterId(c, leader);
    expect(st.clusterId).toBe(oldClusterId);
    const table = await berth(["snapshot", "status", file]);
    expect(table.stdout).toMatch(/HASH\s+INDEX\s+ETCD INDEX\s+TOTAL KEYS\s+TOTAL SIZE/);
    expect(table.stdout).toContain(st.hash.slice(0, 16));

    // A guest (the anonymous TCP port) may not read every key: exit 7, no file.
    const guestFile = join(dir, "guest.snap");
    const guest = await c.cli(["snapshot", "save", guestFile], c.tcpEndpoint(follower));
    expect(guest.code).toBe(7);
    expect(guest.stderr).toMatch(/saving a snapshot of the whole store needs admin rights/);
    expect(existsSync(guestFile)).toBe(false);
  }, 60_000);

  it("refuses a damaged file in status and restore, saying so", async () => {
    const bad = join(dir, "bad.snap");
    copyFileSync(file, bad);
    const bytes = readFileSync(bad);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    writeFileSync(bad, bytes);
    const status = await berth(["snapshot", "status", bad]);
    expect(status.code).toBe(2);
    expect(status.stderr).toMatch(/corrupt: its sha256 checksum does not match/);
    const target = join(dir, "never");
    const restore = await berth([
      "snapshot",
      "restore",
      bad,
      "--name=x",
      `--data-dir=${target}`,
      "--initial-cluster=x=127.0.0.1:7001",
    ]);
    expect(restore.code).toBe(2);
    expect(restore.stderr).toMatch(/corrupt: its sha256 checksum does not match/);
    expect(existsSync(target)).toBe(false);
  });

  it("backs up a stopped node's data dir offline, and refuses one whose node runs", async () => {
    const c = old!;
    const running = await berth([
      "backup",
      `--data-dir=${c.node("n1").dataDir}`,
      `--backup-dir=${join(dir, "x")}`,
    ]);
    expect(running.code).toBe(1);
    expect(running.stderr).toMatch(/stop that node first/);
    await c.kill("n3", "SIGTERM");
    const r = await berth(["backup", `--data-dir=${c.node("n3").dataDir}`, `--backup-dir=${backupDir}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/member n3 .* alone in the new cluster/);
  }, 30_000);

  it("restores into three new data dirs: every key, a new cluster id, the units; the probe runs again once", async () => {
    // The old cluster stops, its units with it (its supervisors too: see `berth snapshot restore --help`).
    await old!.stop();
    old = null;
    expect(probes.held("probe")).toBe(false);

    const c = TestCluster.empty();
    restored = c;
    for (let i = 1; i <= 3; i++) await c.define(`n${i}`, `127.0.0.${i}`);
    const initial = c.nodes.map((n) => `${n.name}=${n.host}:${n.peerPort}`).join(",");
    for (const n of c.nodes) {
      const r = await berth([
        "snapshot",
        "restore",
        file,
        `--name=${n.name}`,
        `--data-dir=${n.dataDir}`,
        `--initial-cluster=${initial}`,
      ]);
      expect(r.code, r.stderr).toBe(0);
    }
    for (const n of c.nodes) c.spawn(n, [`--initial-cluster=${initial}`]);
    await c.waitHealthy(30_000);

    const keys = await writtenKeys(c, "n2");
    for (let i = 0; i < acked; i++) expect(keys.has(i), `/w/${i}`).toBe(true);
    const id = await clusterId(c, "n1");
    expect(id).not.toBe("");
    expect(id).not.toBe(oldClusterId);
    expect(await clusterId(c, "n3")).toBe(id);
    const units = await c.cli(["list-unit-files", "-o", "json"]);
    expect(units.stdout).toContain("probe.service");

    await waitFor(
      "the probe running again",
      () => probes.starts("probe") === 2 && probes.held("probe"),
      30_000,
    );
    await new Promise((r) => setTimeout(r, 2000));
    expect(probes.starts("probe")).toBe(2);
    expect(probes.doubles()).toEqual([]);
  }, 60_000);

  it("starts the offline backup as a cluster of one with the data", async () => {
    await restored!.stop();
    restored = null;
    const c = TestCluster.empty();
    single = c;
    const n = await c.define("n3", "127.0.0.3");
    n.dataDir = backupDir;
    c.spawn(n); // node.json came along: `berth node --data-dir DIR2`
    await c.waitHealthy(30_000);
    const members = JSON.parse((await c.cli(["cluster", "members", "-o", "json"])).stdout);
    expect(members.map((m: { name: string }) => m.name)).toEqual(["n3"]);
    const keys = await writtenKeys(c, "n3");
    for (let i = 0; i < acked; i++) expect(keys.has(i), `/w/${i}`).toBe(true);
    const id = await clusterId(c, "n3");
    expect(id).not.toBe("");
    expect(id).not.toBe(oldClusterId);
  }, 45_000);
});
