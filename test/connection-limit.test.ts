// A node's client connections (msgpack and HTTP together) are capped: past the cap a new connection is closed at
// once (HTTP with a 503), so a flood can neither use up the file descriptors the node needs nor drive accept(2)
// into EMFILE, where the listener spins. Real processes of the built binary.
import { readdirSync, readFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { afterEach, describe, expect, it, onTestFinished } from "vitest";
import { BerthClient } from "../src/client/client.ts";
import { ConnectionBudget, defaultClientConnectionLimit } from "../src/node/connection-budget.ts";
import { makeTestCerts } from "./support/certs.ts";
import { TestCluster, waitFor } from "./support/cluster.ts";

let cluster: TestCluster | null = null;
const held: Socket[] = [];

afterEach(async () => {
  for (const s of held.splice(0)) s.destroy();
  await cluster?.stop();
  cluster = null;
});

/** Opens a TCP connection and keeps it; resolves once connected (or failed: the socket is still returned). */
function hold(host: string, port: number): Promise<Socket> {
  return new Promise((resolve) => {
    const s = netConnect({ host, port });
    held.push(s);
    s.on("error", () => {});
    s.once("connect", () => resolve(s));
    s.once("close", () => resolve(s));
  });
}

/** One raw HTTP request on a new connection: the whole answer, up to the close (or "" on a reset). */
function rawHttp(host: string, port: number, request: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host, port });
    let out = "";
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    s.on("data", (d) => {
      out += d.toString("latin1");
    });
    s.on("error", () => {});
    s.once("close", () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.once("connect", () => s.write(request));
  });
}

const put = (key: string) =>
  `PUT /v2/keys/${key} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\nConnection: close\r\n\r\nvalue=1`;

describe("client connection limit", () => {
  it("refuses connections over --max-client-connections on both ports, and serves again once some close", async () => {
    cluster = await TestCluster.start(1, { extraArgs: ["--max-client-connections=6"] });
    const n = cluster.node("n1");
    // The health checks' CLI connections may still be closing: fill the budget until a request is refused.
    const idle: Socket[] = [];
    for (let i = 0; i < 6; i++) idle.push(await hold(n.host, n.httpPort));
    let answer = "";
    await waitFor(
      "a request refused for lack of connections",
      async () => {
        answer = await rawHttp(n.host, n.httpPort, put("over"));
        return answer.startsWith("HTTP/1.1 503");
      },
      5000,
    );
    expect(answer).toContain("too many connections");
    // The msgpack port shares the budget.
    await expect(
      BerthClient.connect({ endpoints: [`${n.host}:${n.clientPort}`], timeoutMs: 2000 }),
    ).rejects.toThrow();
    for (const s of idle.splice(0, 3)) s.destroy();
    await waitFor(
      "a write on a new connection",
      async () => (await rawHttp(n.host, n.httpPort, put("after"))).startsWith("HTTP/1.1 201"),
      5000,
    );
    const client = await BerthClient.connect({ endpoints: [`${n.host}:${n.clientPort}`], timeoutMs: 2000 });
    try {
      expect((await client.call("kv.get", { key: "/after" })).event.node.value).toBe("1");
    } finally {
      client.close();
    }
    expect(readFileSync(n.logFile, "utf8")).toMatch(
      /refused \d+ client connection\(s\).*--max-client-connections/,
    );
  }, 60_000);

  it("under a low file descriptor limit, a flood of connections neither stops nor stalls the node", async () => {
    // 512 descriptors: the default cap leaves a reserve of 256 for the log, snapshots, peers and units.
    cluster = await TestCluster.start(1, { launcher: ["prlimit", "--nofile=512:512", "--"] });
    const n = cluster.node("n1");
    const pid = n.proc!.pid!;
    expect(readFileSync(n.logFile, "utf8")).toContain("at most 256 client connections");
    const flood: Promise<Socket>[] = [];
    for (let i = 0; i < 700; i++) flood.push(hold(n.host, i % 2 === 0 ? n.httpPort : n.clientPort));
    await Promise.all(flood);
    // Over the cap, a request is answered at once (503), not left hanging behind a spinning listener.
    expect(await rawHttp(n.host, n.httpPort, put("flooded"), 5000)).toMatch(/^HTTP\/1\.1 503/);
    expect(readdirSync(`/proc/${pid}/fd`).length).toBeLessThan(512);
    for (const s of held.splice(0)) s.destroy();
    await waitFor(
      "a write on a new connection",
      async () => (await rawHttp(n.host, n.httpPort, put("recovered"))).startsWith("HTTP/1.1 201"),
      10_000,
    );
    expect(n.proc!.exitCode).toBeNull();
  }, 60_000);
});

describe("client connection limit with TLS", () => {
  it("turns TLS connections away before the handshake, with one log line for the lot", async () => {
    const certs = makeTestCerts();
    onTestFinished(() => certs.cleanup());
    cluster = await TestCluster.start(1, {
      extraArgs: [
        `--cert-file=${certs.nodeCert}`,
        `--key-file=${certs.nodeKey}`,
        `--trusted-ca-file=${certs.caCert}`,
        "--client-cert-auth",
        "--max-client-connections=3",
      ],
      cliArgs: [
        `--ca-file=${certs.caCert}`,
        `--cert-file=${certs.clientCert}`,
        `--key-file=${certs.clientKey}`,
      ],
      httpScheme: "https",
    });
    const n = cluster.node("n1");
    // Idle TCP connections: three take the slots, the rest are turned away (on both ports).
    for (let i = 0; i < 40; i++) await hold(n.host, i % 2 ? n.clientPort : n.httpPort);
    await new Promise((r) => setTimeout(r, 500));
    for (const s of held.splice(0)) s.destroy();
    expect((await cluster.cli(["kv", "set", "/after", "1"])).code).toBe(0);
    const log = readFileSync(n.logFile, "utf8");
    expect(log.match(/refused \d+ client connection\(s\)/g)).toHaveLength(1);
    // Only the admitted connections (given up by the test mid-handshake) can show up as failed handshakes.
    expect((log.match(/TLS handshake failed/g) ?? []).length).toBeLessThanOrEqual(3);
  }, 60_000);
});

describe("ConnectionBudget", () => {
  it("hands out `limit` slots, refuses the next ones with a rate-limited log line, and reuses released slots", () => {
    let t = 0;
    const lines: string[] = [];
    const b = new ConnectionBudget(
      2,
      (l) => lines.push(l),
      () => t,
    );
    expect([b.tryAcquire("a"), b.tryAcquire("b"), b.tryAcquire("c"), b.tryAcquire("d")]).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect(lines).toEqual([
      "refused 1 client connection(s) (latest from c): 2 are open, the --max-client-connections limit",
    ]);
    t = 10_000;
    expect(b.tryAcquire("e")).toBe(false);
    expect(lines[1]).toMatch(/^refused 2 client connection\(s\) \(latest from e\)/);
    b.release();
    expect(b.tryAcquire("f")).toBe(true);
  });

  it("by default leaves a quarter of the descriptor limit (at least 256) to the rest of the node", () => {
    expect(defaultClientConnectionLimit(null)).toBe(10_000);
    expect(defaultClientConnectionLimit(1024)).toBe(768);
    expect(defaultClientConnectionLimit(20_000)).toBe(10_000);
    expect(defaultClientConnectionLimit(8192)).toBe(6144);
    expect(defaultClientConnectionLimit(200)).toBe(16);
  });
});
