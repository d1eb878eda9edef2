// Deployment files: the systemd unit passes systemd's own checker, deploy/install.sh writes what a machine needs,
// and three nodes started with exactly the settings it wrote (as systemd would start them) form a cluster.
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BINARY, berth, freePort, waitFor } from "./support/cluster.ts";
import { killUnitProcesses } from "./support/processes.ts";

const DEPLOY = resolve(import.meta.dirname, "../deploy");
const INSTALL = join(DEPLOY, "install.sh");

describe("deployment files", () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-deploy-"));
  const started: ChildProcess[] = [];
  const dataDirs: string[] = [];
  afterAll(async () => {
    for (const p of started) if (p.exitCode === null) p.kill("SIGKILL"); // by the PIDs this test started
    await Promise.all(
      started.map((p) => (p.exitCode === null ? new Promise((r) => p.once("exit", r)) : null)),
    );
    for (const d of dataDirs) killUnitProcesses(d); // their unit supervisors, by the PIDs they recorded
    rmSync(dir, { recursive: true, force: true });
  });

  const verify = (unitText: string) => {
    const file = join(dir, "berth-node.service");
    writeFileSync(file, unitText);
    return spawnSync("systemd-analyze", ["verify", file], { encoding: "utf8" });
  };

  it("the systemd unit passes systemd-analyze verify (which does catch a bad line)", () => {
    // The binary's path is the one line that depends on the machine.
    const unit = readFileSync(join(DEPLOY, "berth-node.service"), "utf8").replace(
      "ExecStart=/usr/local/bin/berth",
      `ExecStart=${BINARY}`,
    );
    expect(unit).toContain(`ExecStart=${BINARY} node`);
    // Only the node is signalled on stop and restart: its supervisor and units outlive it (test/supervisor.test.ts).
    expect(unit).toMatch(/^KillMode=process$/m);
    const ok = verify(unit);
    expect(ok.stderr).toBe("");
    expect(ok.status).toBe(0);
    const bad = verify(unit.replace("KillMode=process", "KillMode=sometimes"));
    expect(bad.stderr).toContain("Failed to parse kill mode");
  });

  it("install.sh writes the binary, the unit, the secret and node.env, with tight permissions", () => {
    const root = join(dir, "root");
    const secret = join(dir, "secret");
    writeFileSync(secret, "s3cret-of-the-cluster");
    const out = execFileSync(
      INSTALL,
      [
        "--root",
        root,
        "--name",
        "core-01",
        "--peer-ip",
        "10.1.0.5",
        "--initial-cluster",
        "core-01=10.1.0.5:7001,core-02=10.1.0.6:7001",
        "--secret-file",
        secret,
        "--metadata",
        "disk=ssd",
        "--binary",
        BINARY,
      ],
      { encoding: "utf8" },
    );
    expect(out).toContain("not started");
    const mode = (p: string) => statSync(join(root, p)).mode & 0o777;
    expect(mode("usr/local/bin/berth")).toBe(0o755);
    expect(mode("etc/berth/cluster-secret")).toBe(0o600);
    expect(mode("etc/berth/node.env")).toBe(0o600);
    expect(readFileSync(join(root, "etc/systemd/system/berth-node.service"), "utf8")).toBe(
      readFileSync(join(DEPLOY, "berth-node.service"), "utf8"),
    );
    expect(readFileSync(join(root, "etc/berth/cluster-secret"), "utf8")).toBe("s3cret-of-the-cluster");
    const env = parseEnv(readFileSync(join(root, "etc/berth/node.env"), "utf8"));
    expect(env).toEqual({
      BERTH_NAME: "core-01",
      BERTH_DATA_DIR: "/var/lib/berth",
      BERTH_PEER_ADDR: "10.1.0.5:7001",
      BERTH_CLIENT_ADDR: "127.0.0.1:4001",
      BERTH_HTTP_ADDR: "127.0.0.1:2379",
      BERTH_INITIAL_CLUSTER: "core-01=10.1.0.5:7001,core-02=10.1.0.6:7001",
      BERTH_CLUSTER_SECRET_FILE: "/etc/berth/cluster-secret",
      BERTH_PUBLIC_IP: "10.1.0.5",
      BERTH_METADATA: "disk=ssd",
    });

    const missing = spawnSync(INSTALL, ["--root", root, "--name", "x"], { encoding: "utf8" });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("--peer-ip is required");
  });

  it("install.sh --cloud-config checks the user-data, installs it and points the node at it", () => {
    const root = join(dir, "root-cc");
    const secret = join(dir, "secret-cc");
    writeFileSync(secret, "s3cret-of-the-cluster");
    const example = join(DEPLOY, "user-data.example");
    const args = ["--root", root, "--name", "core-02", "--peer-ip", "10.1.0.6", "--secret-file", secret];
    execFileSync(INSTALL, [...args, "--cloud-config", example, "--binary", BINARY], { encoding: "utf8" });
    expect(readFileSync(join(root, "etc/berth/user-data"), "utf8")).toBe(readFileSync(example, "utf8"));
    expect(statSync(join(root, "etc/berth/user-data")).mode & 0o777).toBe(0o600);
    const env = parseEnv(readFileSync(join(root, "etc/berth/node.env"), "utf8"));
    expect(env.BERTH_CLOUD_CONFIG).toBe("/etc/berth/user-data");
    // Unset, not empty, so the user-data's discovery URL and metadata are what the node uses.
    expect(Object.keys(env)).not.toContain("BERTH_INITIAL_CLUSTER");
    expect(Object.keys(env)).not.toContain("BERTH_METADATA");

    const bad = join(dir, "bad-user-data");
    writeFileSync(bad, "#cloud-config\nberth:\n  discovry: http://x:8087/t\n");
    const refused = spawnSync(
      INSTALL,
      [...args, "--root", join(dir, "root-bad"), "--cloud-config", bad, "--binary", BINARY],
      {
        encoding: "utf8",
      },
    );
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain(`${bad}:3: unknown key "discovry"`);
    const none = spawnSync(INSTALL, [...args, "--root", join(dir, "root-none"), "--binary", BINARY], {
      encoding: "utf8",
    });
    expect(none.status).toBe(2);
    expect(none.stderr).toContain("--initial-cluster, --discovery or --cloud-config is required");
  });

  it("three nodes started with the settings install.sh wrote (as systemd would) form a cluster", async () => {
    const secret = join(dir, "cluster-secret");
    writeFileSync(secret, "one-secret-for-all-three-members");
    const names = ["core-01", "core-02", "core-03"];
    const ips = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
    const initial = names.map((n, i) => `${n}=${ips[i]}:7001`).join(",");
    // Ports of this machine's test run instead of the fixed 7001/4001/2379 (a local cluster may be using them).
    const peerPort = await freePort();
    const clientPorts: number[] = [];
    for (const [i, name] of names.entries()) {
      const root = join(dir, name);
      execFileSync(INSTALL, [
        "--root",
        root,
        "--name",
        name,
        "--peer-ip",
        ips[i]!,
        "--initial-cluster",
        initial,
        "--secret-file",
        secret,
        "--binary",
        BINARY,
      ]);
      const env = parseEnv(readFileSync(join(root, "etc/berth/node.env"), "utf8"));
      const clientPort = await freePort(ips[i]);
      clientPorts.push(clientPort);
      const dataDir = join(root, env.BERTH_DATA_DIR!);
      dataDirs.push(dataDir);
      const local: Record<string, string> = {
        ...env,
        BERTH_DATA_DIR: dataDir,
        BERTH_CLUSTER_SECRET_FILE: join(root, env.BERTH_CLUSTER_SECRET_FILE!),
        BERTH_PEER_ADDR: env.BERTH_PEER_ADDR!.replace(":7001", `:${peerPort}`),
        BERTH_INITIAL_CLUSTER: env.BERTH_INITIAL_CLUSTER!.replaceAll(":7001", `:${peerPort}`),
        // Each member on its own loopback address here, as each on its own machine there.
        BERTH_CLIENT_ADDR: `${ips[i]}:${clientPort}`,
        BERTH_HTTP_ADDR: "off",
      };
      const proc = spawn(join(root, "usr/local/bin/berth"), ["node"], {
        env: { PATH: process.env.PATH ?? "", ...local },
        stdio: "ignore",
      });
      started.push(proc);
    }
    const endpoints = ips.map((ip, i) => `${ip}:${clientPorts[i]}`).join(",");
    await waitFor(
      "the installed members to form a healthy cluster",
      async () => (await berth(["cluster", "health", `--endpoint=${endpoints}`])).code === 0,
      30_000,
      300,
    );
    // Each machine as install.sh named it, with the public IP it wrote (list-machines sorts by machine id).
    const machines = await waitFor("three machines", async () => {
      const r = await berth([
        "list-machines",
        "--fields",
        "name,ip",
        "--no-legend",
        `--endpoint=${endpoints}`,
      ]);
      const rows = r.stdout
        .trim()
        .split("\n")
        .map((l) => l.trim().split(/\s+/).join(" "));
      return rows.length === 3 ? rows.sort() : null;
    });
    expect(machines).toEqual(["core-01 127.0.0.1", "core-02 127.0.0.2", "core-03 127.0.0.3"]);
  }, 60_000);
});

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}
