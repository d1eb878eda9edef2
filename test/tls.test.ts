// Security of a real 3-node cluster (dist/berth): peer TLS under the cluster-secret challenge, TLS with client
// certificates on the client (msgpack) and HTTP listeners, the berth CLI, curl and Debian's etcdctl over TLS, a
// member with the wrong secret kept out, and listeners on non-loopback addresses refused before they bind.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BerthClient } from "../src/client/client.ts";
import { connect } from "../src/wire/client.ts";
import { listen } from "../src/wire/server.ts";
import { makeTestCerts, type TestCerts } from "./support/certs.ts";
import { berth, freePort, TestCluster } from "./support/cluster.ts";
import { TestSshd } from "./support/sshd.ts";

describe("TLS and cluster-secret security", () => {
  let certs: TestCerts;
  let cluster: TestCluster;
  let tlsClientArgs: string[];

  beforeAll(async () => {
    certs = makeTestCerts();
    tlsClientArgs = [
      `--ca-file=${certs.caCert}`,
      `--cert-file=${certs.clientCert}`,
      `--key-file=${certs.clientKey}`,
    ];
    cluster = await TestCluster.start(3, {
      extraArgs: [
        `--peer-cert-file=${certs.nodeCert}`,
        `--peer-key-file=${certs.nodeKey}`,
        `--peer-trusted-ca-file=${certs.caCert}`,
        `--cert-file=${certs.nodeCert}`,
        `--key-file=${certs.nodeKey}`,
        `--trusted-ca-file=${certs.caCert}`,
        "--client-cert-auth",
      ],
      cliArgs: tlsClientArgs,
      httpScheme: "https",
    });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
    certs?.cleanup();
  });

  const status = async (name: string) => {
    const c = await BerthClient.connect({
      endpoints: [cluster.tcpEndpoint(name)],
      timeoutMs: 3000,
      name: "tls-test",
      tls: {
        ca: readFileSync(certs.caCert),
        cert: readFileSync(certs.clientCert),
        key: readFileSync(certs.clientKey),
      },
    });
    try {
      return await c.call("node.status", {}, 3000);
    } finally {
      c.close();
    }
  };

  it("berth kv set/get work over TLS with a client certificate (flags and BERTH_* variables)", async () => {
    const set = await cluster.cli(["kv", "set", "/tls/k", "secret-value"], cluster.tcpEndpoints());
    expect(set.stderr).toBe("");
    expect(set.code).toBe(0);
    const get = await berth(["kv", "get", "/tls/k", `--endpoint=${cluster.tcpEndpoint("n3")}`], {
      env: {
        BERTH_CA_FILE: certs.caCert,
        BERTH_CERT_FILE: certs.clientCert,
        BERTH_KEY_FILE: certs.clientKey,
      },
    });
    expect({ code: get.code, out: get.stdout, err: get.stderr }).toEqual({
      code: 0,
      out: "secret-value\n",
      err: "",
    });
    // The members' health probes reach each other's TLS client listeners with the node certificate.
    const health = await cluster.cli(["cluster", "health"], cluster.tcpEndpoints());
    expect(health.code).toBe(0);
    expect(health.stdout).toContain("cluster is healthy");
  });

  it("TLS runs end to end through an SSH --tunnel (the SSH server only forwards the encrypted stream)", async () => {
    const endpoint = cluster.tcpEndpoint("n2");
    const sshd = await TestSshd.start([endpoint]);
    try {
      const env = sshd.clientEnv();
      const args = ["kv", "get", "/tls/k", `--endpoint=${endpoint}`, ...sshd.tunnelFlags()];
      const get = await berth([...args, ...tlsClientArgs], { env });
      expect({ code: get.code, out: get.stdout, err: get.stderr }).toEqual({
        code: 0,
        out: "secret-value\n",
        err: "",
      });
      // Without the CA the node's certificate is not trusted, tunnel or not.
      const untrusted = await berth([...args, ...tlsClientArgs.slice(1)], { env });
      expect(untrusted.code).toBe(3);
      expect(untrusted.stderr).toContain("--ca-file");
    } finally {
      await sshd.stop();
    }
  });

  it("the members' settings are kept in node.json", () => {
    const saved = JSON.parse(readFileSync(join(cluster.node("n1").dataDir, "node.json"), "utf8"));
    expect(saved).toMatchObject({
      "peer-cert-file": certs.nodeCert,
      "peer-key-file": certs.nodeKey,
      "peer-trusted-ca-file": certs.caCert,
      "cert-file": certs.nodeCert,
      "key-file": certs.nodeKey,
      "trusted-ca-file": certs.caCert,
      "client-cert-auth": true,
      "insecure-listen": false,
    });
  });

  it("clients without the CA, without TLS or without a client certificate are refused with a clear error", async () => {
    const ep = `--endpoint=${cluster.tcpEndpoint("n1")}`;
    const noCa = await berth([
      "kv",
      "get",
      "/tls/k",
      ep,
      `--cert-file=${certs.clientCert}`,
      `--key-file=${certs.clientKey}`,
    ]);
    expect(noCa.code).toBe(3);
    expect(noCa.stdout).toBe("");
    expect(noCa.stderr).toMatch(/server certificate is not trusted.*--ca-file/);

    const plain = await berth(["kv", "get", "/tls/k", ep]);
    expect(plain.code).toBe(3);
    expect(plain.stderr).toMatch(/speaks TLS: connect with TLS/);

    const noCert = await berth(["kv", "get", "/tls/k", ep, `--ca-file=${certs.caCert}`]);
    expect(noCert.code).toBe(3);
    expect(noCert.stdout).toBe("");
    expect(noCert.stderr).toMatch(/requires a client certificate.*--cert-file and --key-file/);

    const strangerCert = await berth([
      "kv",
      "get",
      "/tls/k",
      ep,
      `--ca-file=${certs.caCert}`,
      `--cert-file=${certs.otherNodeCert}`,
      `--key-file=${certs.otherNodeKey}`,
    ]);
    expect(strangerCert.code).toBe(3);
    expect(strangerCert.stdout).toBe("");
    expect(strangerCert.stderr).toMatch(/client certificate/);
  });

  it("curl --cacert reaches /v2/keys over HTTPS; without a client certificate it is refused", () => {
    const url = `${cluster.httpUrl("n2")}/v2/keys/tls/k`;
    expect(url.startsWith("https://")).toBe(true);
    const ok = spawnSync(
      "curl",
      [
        "-sS",
        "--cacert",
        certs.caCert,
        "--cert",
        certs.clientCert,
        "--key",
        certs.clientKey,
        "--max-time",
        "10",
        url,
      ],
      { encoding: "utf8" },
    );
    expect(ok.stderr).toBe("");
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      action: "get",
      node: { key: "/tls/k", value: "secret-value" },
    });
    const noCert = spawnSync("curl", ["-sS", "--cacert", certs.caCert, "--max-time", "10", url], {
      encoding: "utf8",
    });
    expect(noCert.status).not.toBe(0);
    const plain = spawnSync("curl", ["-sS", "--max-time", "10", url.replace("https:", "http:")], {
      encoding: "utf8",
    });
    expect(plain.status).not.toBe(0);
  });

  it("etcdctl (v2) works with --ca-file/--cert-file/--key-file", () => {
    // Without --no-sync: etcdctl first syncs the member list and dials the https:// client URLs it advertises.
    const etcdctl = (args: string[]) =>
      spawnSync(
        "etcdctl",
        [
          "--endpoints",
          cluster.httpUrl("n1"),
          "--ca-file",
          certs.caCert,
          "--cert-file",
          certs.clientCert,
          "--key-file",
          certs.clientKey,
          ...args,
        ],
        { env: { ...process.env, ETCDCTL_API: "2" }, encoding: "utf8", timeout: 20_000 },
      );
    const set = etcdctl(["set", "/tls/etcdctl", "via-etcdctl"]);
    expect({ out: set.stdout, err: set.stderr, code: set.status }).toEqual({
      out: "via-etcdctl\n",
      err: "",
      code: 0,
    });
    const get = etcdctl(["get", "/tls/k"]);
    expect({ out: get.stdout, code: get.status }).toEqual({ out: "secret-value\n", code: 0 });
  });

  it("a member with a different cluster secret (valid certificate) or a foreign certificate cannot join or deliver", async () => {
    const before = await status("n1");
    expect(before.leader).not.toBeNull();
    const otherSecret = join(cluster.dir, "other-secret");
    writeFileSync(otherSecret, "an-entirely-different-cluster-secret", { mode: 0o600 });
    const tls = (cert: string, key: string) => [
      `--peer-cert-file=${cert}`,
      `--peer-key-file=${key}`,
      `--peer-trusted-ca-file=${certs.caCert}`,
      `--cert-file=${cert}`,
      `--key-file=${key}`,
    ];
    // n4: a certificate from the cluster CA but the wrong secret. n5: the right secret, a foreign certificate.
    const n4 = await cluster.define("n4", "127.0.0.4", [
      ...tls(certs.nodeCert, certs.nodeKey),
      `--cluster-secret-file=${otherSecret}`,
    ]);
    const n5 = await cluster.define("n5", "127.0.0.5", tls(certs.otherNodeCert, certs.otherNodeKey));
    const founders = cluster.nodes
      .filter((n) => ["n1", "n2", "n3"].includes(n.name))
      .map((n) => `${n.name}=${n.host}:${n.peerPort}`);
    for (const n of [n4, n5])
      cluster.spawn(n, [`--initial-cluster=${[...founders, `${n.name}=${n.host}:${n.peerPort}`].join(",")}`]);

    // Give them several election timeouts (10 ticks of 50 ms) to campaign at the members.
    await new Promise((r) => setTimeout(r, 4000));

    const n4Log = readFileSync(n4.logFile, "utf8");
    expect(n4Log).toMatch(/cannot reach n[123]: .*cluster secret/);
    const n5Log = readFileSync(n5.logFile, "utf8");
    expect(n5Log).toMatch(/cannot reach n[123]: .*(TLS|certificate|closed the connection)/);
    const n1Log = readFileSync(cluster.node("n1").logFile, "utf8");
    // (Dials leave from 127.0.0.1 whatever address the intruder listens on.)
    expect(n1Log).toMatch(
      /refused a peer connection from [\d.]+:\d+: .*did not prove knowledge of the cluster secret/,
    );
    expect(n1Log).toMatch(
      /refused a peer connection from [\d.]+:\d+: TLS: the client certificate was refused/,
    );

    const members = await cluster.cli(["cluster", "members", "-o", "json"], cluster.tcpEndpoint("n1"));
    expect(members.code).toBe(0);
    expect(members.stdout).toContain('"n1"');
    expect(members.stdout).not.toContain("n4");
    expect(members.stdout).not.toContain("n5");
    // Nothing the intruders sent reached Raft: same leader, same term, on every member.
    for (const name of ["n1", "n2", "n3"]) {
      const s = await status(name);
      expect({ leader: s.leader, term: s.term }).toEqual({ leader: before.leader, term: before.term });
    }
    await cluster.kill("n4");
    await cluster.kill("n5");
  }, 30_000);

  it("client and HTTP listeners on a non-loopback address without TLS client auth refuse to start, before binding", async () => {
    for (const [flag, extra] of [
      ["--client-addr", ["--http-addr=off"]],
      ["--http-addr", [`--client-addr=127.0.0.1:${await freePort()}`]],
    ] as const) {
      const dataDir = join(cluster.dir, `exposed${flag}`);
      const r = await berth(
        [
          "node",
          "--name=exposed",
          `--data-dir=${dataDir}`,
          `--peer-addr=127.0.0.1:${await freePort()}`,
          `${flag}=0.0.0.0:${await freePort("0.0.0.0")}`,
          ...extra,
        ],
        { timeoutMs: 10_000 },
      );
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${flag} 0.0.0.0:`);
      expect(r.stderr).toContain("--insecure-listen");
      // Refused while resolving the configuration: nothing was created, let alone bound.
      expect(existsSync(dataDir)).toBe(false);
    }
  });

  it("bad certificate flags are refused at start naming the flag", async () => {
    const run = (args: string[]) =>
      berth(["node", "--name=bad", `--data-dir=${join(cluster.dir, "bad")}`, ...args], { timeoutMs: 10_000 });
    const mismatch = await run([`--cert-file=${certs.nodeCert}`, `--key-file=${certs.clientKey}`]);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toMatch(/--key-file .* does not match --cert-file/);
    const missing = await run([
      `--peer-cert-file=${join(certs.dir, "missing.crt")}`,
      `--peer-key-file=${certs.nodeKey}`,
      `--peer-trusted-ca-file=${certs.caCert}`,
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--peer-cert-file .*missing\.crt: no such file/);
    const noCa = await run([
      `--cert-file=${certs.nodeCert}`,
      `--key-file=${certs.nodeKey}`,
      "--client-cert-auth",
    ]);
    expect(noCa.code).toBe(2);
    expect(noCa.stderr).toContain("--client-cert-auth needs --trusted-ca-file");
  });

  it("wire layer (in-process, node:tls): TLS with client certificates under the secret challenge", async () => {
    const pem = (f: string) => readFileSync(f);
    const secret = Buffer.from("wire-level-secret-0123456789");
    const refused: string[] = [];
    const l = await listen({
      host: "127.0.0.1",
      port: 0,
      secret,
      role: "peer",
      name: "srv",
      tls: { cert: pem(certs.nodeCert), key: pem(certs.nodeKey), ca: pem(certs.caCert), requestCert: true },
      onConnection: () => {},
      onRefused: (reason) => refused.push(reason),
    });
    try {
      const base = {
        host: "127.0.0.1",
        port: l.address.port,
        role: "peer" as const,
        name: "cli",
        timeoutMs: 3000,
      };
      const tls = { cert: pem(certs.nodeCert), key: pem(certs.nodeKey), ca: pem(certs.caCert) };
      const { conn, hello } = await connect({ ...base, secret, tls });
      expect(hello.name).toBe("srv");
      conn.close();
      await expect(
        connect({ ...base, secret: Buffer.from("another-secret-0123456789"), tls }),
      ).rejects.toThrow(/cluster secret/);
      await expect(connect({ ...base, secret, tls: { ca: tls.ca } })).rejects.toThrow(/client certificate/);
      await expect(connect({ ...base, secret, tls: { cert: tls.cert, key: tls.key } })).rejects.toThrow(
        /not trusted/,
      );
      await expect(connect({ ...base, secret })).rejects.toThrow(/(speaks|serves) TLS/);
      await new Promise((r) => setTimeout(r, 100));
      expect(refused.join("\n")).toMatch(/cluster secret/);
      expect(refused.join("\n")).toMatch(/client certificate was refused/);
    } finally {
      await l.close();
    }
  });
});
