// One endpoint grammar (issue 18) and listening addresses that work out of the box (issue 21 §1), with real
// processes on loopback: three members started with only --name, --peer-addr, --initial-cluster and the secret;
// `berth --endpoint http://...` (an HTTP Upgrade to the msgpack protocol) as guest and as an etcd user; curl on the
// client port answered as on the HTTP port; a listen failure that names the flag; a TLS client certificate's CN as
// the etcd user on the HTTP API and through `--endpoint https://...`.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { haveOpenssl, makeTestCerts, type TestCerts } from "./support/certs.ts";
import { BINARY, berth, type RunResult, TestCluster, waitFor } from "./support/cluster.ts";
import { killUnitProcesses } from "./support/processes.ts";

function curl(args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("curl", ["-s", "--max-time", "10", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const json = (method: string, url: string, body: string, extra: string[] = []) =>
  curl(["-X", method, "-H", "Content-Type: application/json", "-d", body, ...extra, url]);

/** Users and roles as etcd's API makes them: root, a role for /app/*, `user` in it; auth on, guest closed. */
async function setUpAuth(base: string, user: string, extra: string[] = []): Promise<void> {
  const ok = async (r: Promise<RunResult>) => expect((await r).code).toBe(0);
  await ok(json("PUT", `${base}/v2/auth/users/root`, '{"user":"root","password":"rootpw"}', extra));
  await ok(
    json(
      "PUT",
      `${base}/v2/auth/roles/app`,
      '{"role":"app","permissions":{"kv":{"read":["/app/*"],"write":["/app/*"]}}}',
      extra,
    ),
  );
  await ok(
    json("PUT", `${base}/v2/auth/users/${user}`, `{"user":"${user}","password":"pw","roles":["app"]}`, extra),
  );
  await ok(curl(["-X", "PUT", ...extra, `${base}/v2/auth/enable`]));
  const revoke = await json(
    "PUT",
    `${base}/v2/auth/roles/guest`,
    '{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}',
    ["-u", "root:rootpw", ...extra],
  );
  expect(revoke.stdout).not.toContain("message");
}

describe("three members with only the minimal flags, reached over http://", () => {
  const hosts = ["127.0.0.201", "127.0.0.202", "127.0.0.203"];
  let dir: string;
  const procs: ChildProcess[] = [];
  const unit = () => join(dir, "web.service");

  /** Runs berth in the test's directory (the members' data directories are NAME.berth there). */
  const run = (args: string[]) => berth(args);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-ports-"));
    writeFileSync(join(dir, "secret"), "a-secret-of-at-least-16-chars", { mode: 0o600 });
    writeFileSync(unit(), "[Service]\nExecStart=/bin/sleep 1000\n");
    const initial = hosts.map((h, i) => `n${i + 1}=${h}:7001`).join(",");
    hosts.forEach((h, i) => {
      const log = openSync(join(dir, `n${i + 1}.log`), "a");
      procs.push(
        spawn(
          BINARY,
          [
            "node",
            `--name=n${i + 1}`,
            `--peer-addr=${h}:7001`,
            `--initial-cluster=${initial}`,
            "--cluster-secret-file=secret",
          ],
          { cwd: dir, stdio: ["ignore", log, log] },
        ),
      );
    });
    await waitFor(
      "the three members to be healthy",
      async () =>
        (await run(["cluster", "health", "--request-timeout=1s", `--endpoint=http://${hosts[0]}:2379`]))
          .code === 0,
      30_000,
      200,
    ).catch((e) => {
      throw new Error(
        `${(e as Error).message}\n${hosts.map((_, i) => readFileSync(join(dir, `n${i + 1}.log`), "utf8")).join("\n")}`,
      );
    });
  }, 60_000);

  afterAll(async () => {
    for (const p of procs) p.kill("SIGKILL");
    await Promise.all(
      procs.map((p) =>
        p.exitCode === null && p.signalCode === null ? new Promise((r) => p.once("exit", r)) : null,
      ),
    );
    for (let i = 1; i <= 3; i++) killUnitProcesses(join(dir, `n${i}.berth`));
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  });

  it("serve clients and HTTP on their peer host: 127.0.0.N:4001 and :2379", async () => {
    for (const h of hosts) {
      expect((await run(["kv", "ls", "/", `--endpoint=${h}:4001`])).code).toBe(0);
      expect((await curl([`http://${h}:2379/version`])).stdout).toContain("etcdserver");
    }
  });

  it("berth --endpoint http://HOST:2379: keys and views as guest; unit operations refused (exit 7)", async () => {
    const ep = `--endpoint=http://${hosts[1]}:2379`;
    expect((await run(["kv", "set", "/k", "v1", ep])).code).toBe(0);
    const got = await run(["kv", "get", "/k", `--endpoint=http://${hosts[2]}:2379`]);
    expect(got.stdout.trim()).toBe("v1");
    const units = await run(["list-units", ep]);
    expect(units.code).toBe(0);
    expect(units.stdout).toContain("UNIT");
    const submit = await run(["submit", unit(), ep]);
    expect(submit.code).toBe(7);
    expect(submit.stderr).toContain("needs admin rights");
    const start = await run(["start", unit(), ep]);
    expect(start.code).toBe(7);
    // A list: the first endpoint that answers is used.
    expect(
      (await run(["kv", "get", "/k", `--endpoint=http://127.0.0.1:9,http://${hosts[0]}:2379`])).code,
    ).toBe(0);
  });

  it("curl on the client port answers as the HTTP port does, byte for byte but the Date", async () => {
    const strip = (s: string) => s.replace(/^Date: .*\r\n/m, "");
    for (const path of [
      "/v2/keys/k",
      "/v2/keys/missing",
      "/version",
      "/v2/members",
      "/v2/keys//k?quorum=true",
    ]) {
      // A member's own heartbeats move the store's index between two requests now and then: asked again then.
      await waitFor(`the same answer for ${path}`, async () => {
        const [a, b] = await Promise.all([
          curl(["-i", "-L", `http://${hosts[0]}:4001${path}`]),
          curl(["-i", "-L", `http://${hosts[0]}:2379${path}`]),
        ]);
        expect(a.code).toBe(0);
        expect(a.stdout).toMatch(/^HTTP\/1\.1 /);
        return strip(a.stdout) === strip(b.stdout);
      });
    }
    // The seed's curl, a write included.
    const put = await curl([
      "-L",
      "-X",
      "PUT",
      "-d",
      "value=seed",
      `http://${hosts[2]}:4001/v2/keys/message`,
    ]);
    expect(put.stdout).toContain('"value":"seed"');
    expect((await curl(["-L", `http://${hosts[0]}:4001/v2/keys/message`])).stdout).toContain(
      '"value":"seed"',
    );
    // A Berth client on the same port is not mistaken for HTTP.
    expect((await run(["kv", "get", "/message", `--endpoint=${hosts[0]}:4001`])).stdout.trim()).toBe("seed");
  });

  it("a listen failure names the flag, the address and the cause; --http-addr off keeps HTTP on the client port", async () => {
    const taken = await berth(
      [
        "node",
        "--name=n4",
        `--data-dir=${join(dir, "n4")}`,
        "--peer-addr=127.0.0.204:7001",
        `--http-addr=${hosts[0]}:2379`,
      ],
      { timeoutMs: 15_000 },
    );
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain(`--http-addr ${hosts[0]}:2379: address already in use`);
    const client = await berth(
      [
        "node",
        "--name=n5",
        `--data-dir=${join(dir, "n5")}`,
        "--peer-addr=127.0.0.205:7001",
        `--client-addr=${hosts[1]}:4001`,
      ],
      { timeoutMs: 15_000 },
    );
    expect(client.stderr).toContain(`--client-addr ${hosts[1]}:4001: address already in use`);
    killUnitProcesses(join(dir, "n4"));
    killUnitProcesses(join(dir, "n5"));

    const log = openSync(join(dir, "n6.log"), "a");
    const alone = spawn(
      BINARY,
      [
        "node",
        "--name=n6",
        `--data-dir=${join(dir, "n6")}`,
        "--peer-addr=127.0.0.206:7001",
        "--http-addr=off",
      ],
      { stdio: ["ignore", log, log] },
    );
    procs.push(alone);
    const answer = await waitFor("n6's client port to answer HTTP", async () => {
      const r = await curl(["-i", "http://127.0.0.206:4001/version"]);
      return r.code === 0 && r.stdout;
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(answer).toContain('"etcdserver"');
    expect((await curl(["http://127.0.0.206:2379/version"])).code).not.toBe(0); // no HTTP listener
    alone.kill("SIGKILL");
    killUnitProcesses(join(dir, "n6"));
  });

  it("as an etcd user: --username sends Basic credentials in the upgrade; the user's roles apply", async () => {
    const base = `http://${hosts[0]}:2379`;
    const ep = `--endpoint=http://${hosts[1]}:2379`;
    await setUpAuth(base, "alice");
    expect((await run(["kv", "set", "/app/x", "1", ep, "--username=alice:pw"])).code).toBe(0);
    expect((await run(["kv", "get", "/app/x", ep, "--username=alice:pw"])).stdout.trim()).toBe("1");
    expect((await run(["kv", "get", "/k", ep, "--username=alice:pw"])).code).toBe(7);
    expect((await run(["kv", "get", "/app/x", ep])).code).toBe(7); // guest: the guest role was revoked
    const wrong = await run(["kv", "get", "/app/x", ep, "--username=alice:nope"]);
    expect(wrong.code).toBe(7);
    expect(wrong.stderr).toContain("authentication as etcd user alice failed");
    expect((await run(["submit", unit(), ep, "--username=alice:pw"])).code).toBe(7);
    // etcd's root has every right, as admin: through HTTP too, never more.
    expect((await run(["submit", unit(), ep, "--username=root:rootpw"])).code).toBe(0);
    expect((await run(["destroy", "web.service", ep, "--username=root:rootpw"])).code).toBe(0);
    // The client port's HTTP answers the same callers: Basic credentials there too.
    expect((await curl([`http://${hosts[2]}:4001/v2/keys/app/x`])).stdout).toContain('"errorCode":110');
    expect((await curl(["-u", "alice:pw", `http://${hosts[2]}:4001/v2/keys/app/x`])).stdout).toContain(
      '"value":"1"',
    );
  });
});

describe.runIf(haveOpenssl())("a TLS client certificate names the etcd user on the HTTP API", () => {
  let certs: TestCerts;
  let cluster: TestCluster;
  let tlsArgs: string[];
  let curlTls: string[];

  beforeAll(async () => {
    certs = makeTestCerts();
    tlsArgs = [
      `--ca-file=${certs.caCert}`,
      `--cert-file=${certs.clientCert}`,
      `--key-file=${certs.clientKey}`,
    ];
    curlTls = ["--cacert", certs.caCert, "--cert", certs.clientCert, "--key", certs.clientKey];
    cluster = await TestCluster.start(1, {
      extraArgs: [
        `--cert-file=${certs.nodeCert}`,
        `--key-file=${certs.nodeKey}`,
        `--trusted-ca-file=${certs.caCert}`,
        "--client-cert-auth",
      ],
      httpScheme: "https",
    });
    // The client certificate's CN is "client": an etcd user of that name may use /app/*, guests nothing.
    await setUpAuth(cluster.httpUrl("n1"), "client", curlTls);
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
    certs?.cleanup();
  });

  it("curl with the certificate and no password is user `client` (etcd's --client-cert-auth)", async () => {
    const base = cluster.httpUrl("n1");
    const put = await curl([...curlTls, "-X", "PUT", "-d", "value=c", `${base}/v2/keys/app/y`]);
    expect(put.stdout).toContain('"value":"c"');
    expect((await curl([...curlTls, `${base}/v2/keys/other`])).stdout).toContain('"errorCode":110');
    // The client port speaks HTTP inside its TLS too, with the same caller.
    const n = cluster.node("n1");
    const viaClientPort = await curl([...curlTls, `https://${n.host}:${n.clientPort}/v2/keys/app/y`]);
    expect(viaClientPort.stdout).toContain('"value":"c"');
  });

  it("berth --endpoint https://... is the certificate's user, never admin", async () => {
    const ep = `--endpoint=${cluster.httpUrl("n1")}`;
    const got = await berth(["kv", "get", "/app/y", ep, ...tlsArgs]);
    expect(got.stderr).toBe("");
    expect(got.stdout.trim()).toBe("c");
    expect((await berth(["kv", "get", "/other", ep, ...tlsArgs])).code).toBe(7);
    const file = join(cluster.dir, "x.service");
    writeFileSync(file, "[Service]\nExecStart=/bin/sleep 1000\n");
    expect((await berth(["submit", file, ep, ...tlsArgs])).code).toBe(7);
  });
});
