// A node's client connections are capped on each listener (msgpack, HTTP): past the cap a new connection takes the
// place of the oldest idle one, or is closed at once (HTTP with a 503) when none is idle, so a flood can neither use
// up the file descriptors the node needs nor drive accept(2) into EMFILE, where the listener spins. Real processes
// of the built binary.
import { readdirSync, readFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { afterEach, describe, expect, it, onTestFinished } from "vitest";
import { BerthClient } from "../src/client/client.ts";
import { ConnectionBudget, defaultClientConnectionLimit } from "../src/wire/connection-budget.ts";
import { makeTestCerts } from "./support/certs.ts";
import { TestCluster, waitFor } from "./support/cluster.ts";

let cluster: TestCluster | null = null;
const held: Socket[] = [];

afterEach(async () => {
  for (const s of held.splice(0)) s.destroy();
  await cluster?.stop();
  cluster = null;
});

/** Opens a TCP (or unix socket) connection and keeps it; resolves once connected (or failed: the socket is still returned). */
function hold(host: string, port: number): Promise<Socket>;
function hold(path: string): Promise<Socket>;
function hold(hostOrPath: string, port?: number): Promise<Socket> {
  return new Promise((resolve) => {
    const s = port === undefined ? netConnect({ path: hostOrPath }) : netConnect({ host: hostOrPath, port });
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
  it("refuses connections over --max-client-connections when none is idle; each port has its own limit", async () => {
    cluster = await TestCluster.start(1, { extraArgs: ["--max-client-connections=6"] });
    const n = cluster.node("n1");
    // Six long polls: connections being answered, which no newcomer may push out.
    const polls: Socket[] = [];
    for (let i = 0; i < 6; i++) {
      const s = await hold(n.host, n.httpPort);
      const headers = new Promise((r) => s.once("data", r)); // flushed at once: the poll is being answered
      s.write(`GET /v2/keys/poll${i}?wait=true HTTP/1.1\r\nHost: x\r\n\r\n`);
      await headers;
      polls.push(s);
    }
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
    // The msgpack port has its own limit: clients get in, until six hold its places.
    const clients: BerthClient[] = [];
    onTestFinished(() => {
      for (const c of clients) c.close();
    });
    for (let i = 0; i < 6; i++)
      clients.push(await BerthClient.connect({ endpoints: [`${n.host}:${n.clientPort}`], timeoutMs: 2000 }));
    await expect(
      BerthClient.connect({ endpoints: [`${n.host}:${n.clientPort}`], timeoutMs: 2000 }),
    ).rejects.toThrow();
    for (const s of polls.splice(0, 3)) s.destroy();
    await waitFor(
      "a write on a new connection",
      async () => (await rawHttp(n.host, n.httpPort, put("after"))).startsWith("HTTP/1.1 201"),
      5000,
    );
    expect((await clients[0]!.call("kv.get", { key: "/after" })).event.node.value).toBe("1");
    const log = readFileSync(n.logFile, "utf8");
    expect(log).toMatch(/\[http\] refused \d+ HTTP connection\(s\).*--max-client-connections/);
    expect(log).toMatch(/\[client\] refused \d+ client connection\(s\).*--max-client-connections/);
  }, 60_000);

  it("under a low file descriptor limit, a flood of connections neither stops nor stalls the node", async () => {
    // 512 descriptors: the default caps (128 per port) leave a reserve of 256 for the log, snapshots, peers and units.
    cluster = await TestCluster.start(1, { launcher: ["prlimit", "--nofile=512:512", "--"] });
    const n = cluster.node("n1");
    const pid = n.proc!.pid!;
    expect(readFileSync(n.logFile, "utf8")).toContain("at most 128 connections on each client port");
    const flood: Promise<Socket>[] = [];
    for (let i = 0; i < 700; i++) flood.push(hold(n.host, i % 2 === 0 ? n.httpPort : n.clientPort));
    await Promise.all(flood);
    // Over the cap, a request takes an idle connection's place and is answered, not left hanging behind a
    // spinning listener.
    expect(await rawHttp(n.host, n.httpPort, put("flooded"), 5000)).toMatch(/^HTTP\/1\.1 201/);
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
  it("makes room among TLS connections before their handshake, with one log line for the lot", async () => {
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
    // Idle TCP connections: on the client port each takes the place of the oldest idle one. (Bun's HTTPS listener
    // reports a connection only once its TLS handshake is done: the idle ones there are not counted.)
    for (let i = 0; i < 40; i++) await hold(n.host, i % 2 ? n.clientPort : n.httpPort);
    await new Promise((r) => setTimeout(r, 500));
    for (const s of held.splice(0)) s.destroy();
    expect((await cluster.cli(["kv", "set", "/after", "1"])).code).toBe(0);
    const log = readFileSync(n.logFile, "utf8");
    expect(log.match(/closed \d+ idle client connection\(s\) to make room/g)).toHaveLength(1);
    // Only the connections left at the end (given up by the test mid-handshake) can show up as failed handshakes.
    expect((log.match(/TLS handshake failed/g) ?? []).length).toBeLessThanOrEqual(3);
  }, 60_000);
});

describe("client connection limit on the admin socket", () => {
  it("makes room among idle unix socket connections for an admin's command, and keeps the ones in use", async () => {
    cluster = await TestCluster.start(1, { extraArgs: ["--max-client-connections=3"] });
    const n = cluster.node("n1");
    const endpoint = cluster.endpoint("n1");
    // Done with its handshake, this connection is in use: no newcomer may push it out.
    const admin = await BerthClient.connect({ endpoints: [endpoint], timeoutMs: 2000 });
    onTestFinished(() => admin.close());
    const closedByNode = new Set<Socket>();
    for (let i = 0; i < 20; i++) {
      const s = await hold(endpoint.slice("unix://".length));
      s.once("close", () => closedByNode.add(s));
      s.resume(); // read (and drop) the node's hello: a unix socket's end shows only after its data is read
    }
    // Three places: the admin's and two idle ones; the node closed the others to make room, the oldest first.
    await waitFor("idle admin socket connections closed to make room", () => closedByNode.size >= 17, 10_000);
    // A command on a new connection takes an idle one's place, and the connection in use was kept: it answers.
    expect((await cluster.cli(["kv", "set", "/after", "1"])).code).toBe(0);
    expect((await admin.call("kv.get", { key: "/after" })).event.node.value).toBe("1");
    expect(readFileSync(n.logFile, "utf8")).toMatch(
      /\[client\] closed \d+ idle admin socket connection\(s\) to make room .*--max-client-connections/,
    );
  }, 60_000);
});

describe("ConnectionBudget", () => {
  it("hands out `limit` slots, makes room by closing the oldest idle one, refuses when none is idle", () => {
    let t = 0;
    const lines: string[] = [];
    const evicted: string[] = [];
    const b = new ConnectionBudget(
      2,
      "client",
      (l) => lines.push(l),
      () => t,
    );
    const take = (name: string) => b.acquire(name, () => evicted.push(name));
    const a = take("a")!;
    const c = take("c")!;
    a.idle(true);
    c.idle(true);
    a.idle(false);
    a.idle(true); // idle again: now younger than c
    expect(take("d")).not.toBeNull();
    expect(evicted).toEqual(["c"]);
    expect(lines).toEqual([
      "closed 1 idle client connection(s) to make room (latest from d): 2 are open, the --max-client-connections limit",
    ]);
    c.release(); // the evicted connection closing later frees nothing more
    a.idle(false);
    expect(take("e")).toBeNull();
    expect(b.count).toBe(2);
    t = 10_000;
    expect(take("f")).toBeNull();
    expect(lines[1]).toMatch(/^refused 2 client connection\(s\) \(latest from f\)/);
    a.release();
    expect(take("g")).not.toBeNull();
    expect(b.count).toBe(2);
  });

  it("by default leaves a quarter of the descriptor limit (at least 256) to the rest of the node, shared by two ports", () => {
    expect(defaultClientConnectionLimit(null)).toBe(10_000);
    expect(defaultClientConnectionLimit(1024)).toBe(384);
    expect(defaultClientConnectionLimit(40_000)).toBe(10_000);
    expect(defaultClientConnectionLimit(8192)).toBe(3072);
    expect(defaultClientConnectionLimit(200)).toBe(16);
  });
});
