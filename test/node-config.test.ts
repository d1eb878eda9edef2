// Node configuration resolved from flags and the data directory's node.json: the peer listen address
// (--peer-listen-addr) apart from the address the cluster knows the member by (--peer-addr).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { UsageError } from "../src/cli/exit-codes.ts";
import { flagHelp } from "../src/cli/flags.ts";
import { NODE_FLAGS, resolveNodeConfig } from "../src/cli/node-config.ts";
import { saveNodeConfig } from "../src/node/node-config.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), "berth-config-"));
  dirs.push(d);
  return join(d, "n1");
}

describe("--peer-listen-addr", () => {
  it("defaults to --peer-addr and is then not stored", () => {
    const dir = dataDir();
    const c = resolveNodeConfig({ name: "n1", "data-dir": dir, "peer-addr": "127.0.0.1:7001" });
    expect(c.peerListenAddr).toEqual(c.peerAddr);
    saveNodeConfig(c);
    expect(JSON.parse(readFileSync(join(dir, "node.json"), "utf8"))).not.toHaveProperty("peer-listen-addr");
  });

  it("listens apart from the advertised address and is remembered for restarts", () => {
    const dir = dataDir();
    const c = resolveNodeConfig({
      name: "n1",
      "data-dir": dir,
      "peer-addr": "127.0.0.1:7001",
      "peer-listen-addr": "127.0.0.1:7101",
    });
    expect(c.peerAddr).toEqual({ host: "127.0.0.1", port: 7001 });
    expect(c.peerListenAddr).toEqual({ host: "127.0.0.1", port: 7101 });
    saveNodeConfig(c);
    const again = resolveNodeConfig({ "data-dir": dir });
    expect(again.peerAddr).toEqual(c.peerAddr);
    expect(again.peerListenAddr).toEqual(c.peerListenAddr);
  });

  it("refuses a malformed value naming the flag", () => {
    const bad = () => resolveNodeConfig({ name: "n1", "data-dir": dataDir(), "peer-listen-addr": "nowhere" });
    expect(bad).toThrow(UsageError);
    expect(bad).toThrow(/--peer-listen-addr/);
  });
});

describe("what the data directory keeps", () => {
  it("is written only by saveNodeConfig (resolving touches nothing), and only when it changes", () => {
    const dir = dataDir();
    const c = resolveNodeConfig({ name: "n1", "data-dir": dir, "peer-addr": "127.0.0.1:7001" });
    expect(existsSync(dir)).toBe(false);
    saveNodeConfig(c);
    expect(readFileSync(join(dir, "cluster-secret"), "utf8")).toBe(`${c.clusterSecret}\n`);
    const files = ["node.json", "cluster-secret"].map((f) => join(dir, f));
    const stamp = () => files.map((f) => `${statSync(f).ino}@${statSync(f).mtimeMs}`);
    const before = stamp();
    // A restart with the same settings rewrites nothing (on a full disk it could not); new settings replace it.
    saveNodeConfig(resolveNodeConfig({ "data-dir": dir }));
    expect(stamp()).toEqual(before);
    saveNodeConfig(resolveNodeConfig({ "data-dir": dir, "client-addr": "127.0.0.1:4101" }));
    expect(JSON.parse(readFileSync(files[0]!, "utf8"))["client-addr"]).toBe("127.0.0.1:4101");
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });
});

describe("--peer-max-frame", () => {
  it("defaults to 128 MiB, is remembered for restarts, and refuses what leaves no room for a snapshot chunk", () => {
    const dir = dataDir();
    expect(resolveNodeConfig({ name: "n1", "data-dir": dir }).peerMaxFrameBytes).toBe(128 * 1024 * 1024);
    const c = resolveNodeConfig({ name: "n1", "data-dir": dir, "peer-max-frame": "65536" });
    expect(c.peerMaxFrameBytes).toBe(65536);
    saveNodeConfig(c);
    expect(resolveNodeConfig({ "data-dir": dir }).peerMaxFrameBytes).toBe(65536);
    for (const v of ["1000", "65536.5", String(2 * 1024 * 1024 * 1024)]) {
      const bad = () => resolveNodeConfig({ name: "n1", "data-dir": dataDir(), "peer-max-frame": v });
      expect(bad).toThrow(UsageError);
      expect(bad).toThrow(/--peer-max-frame/);
    }
  });
});

describe("client and HTTP addresses by default", () => {
  it("follow a loopback peer host, so members on 127.0.0.N of one machine do not collide", () => {
    const c = resolveNodeConfig({ name: "n2", "data-dir": dataDir(), "peer-addr": "127.0.0.2:7001" });
    expect(c.clientAddr).toEqual({ host: "127.0.0.2", port: 4001 });
    expect(c.httpAddr).toEqual({ host: "127.0.0.2", port: 2379 });
  });

  it("stay on 127.0.0.1 for a peer address on the network (clients there need TLS or --insecure-listen)", () => {
    const c = resolveNodeConfig({ name: "n1", "data-dir": dataDir(), "peer-addr": "10.1.2.3:7001" });
    expect(c.clientAddr).toEqual({ host: "127.0.0.1", port: 4001 });
    expect(c.httpAddr).toEqual({ host: "127.0.0.1", port: 2379 });
  });

  it("yield to --config and to node.json: the flag specs carry no defaults, help shows them", () => {
    expect(NODE_FLAGS.filter((f) => f.default !== undefined).map((f) => f.name)).toEqual([]);
    const dir = dataDir();
    const file = join(dirs[dirs.length - 1]!, "config.json");
    writeFileSync(file, JSON.stringify({ "client-addr": "127.0.0.9:5000", "http-addr": "off" }));
    const c = resolveNodeConfig({ name: "n3", "data-dir": dir, "peer-addr": "127.0.0.3:7001", config: file });
    expect(c.clientAddr).toEqual({ host: "127.0.0.9", port: 5000 });
    expect(c.httpAddr).toBeNull();
    saveNodeConfig(c);
    const again = resolveNodeConfig({ "data-dir": dir });
    expect(again.clientAddr).toEqual({ host: "127.0.0.9", port: 5000 });
    expect(again.httpAddr).toBeNull();
    const help = flagHelp(NODE_FLAGS);
    for (const name of ["client-addr", "http-addr"])
      expect(help).toMatch(
        new RegExp(
          `--${name} .*default the --peer-addr host if it is a loopback address, else 127.0.0.1; port`,
        ),
      );
    expect(help).toMatch(/--peer-addr .*default 127\.0\.0\.1:7001/);
    expect(help).toMatch(/--agent-ttl .*default 2500ms/);
  });
});
