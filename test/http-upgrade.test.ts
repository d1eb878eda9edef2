// The switch from etcd's HTTP API to the msgpack client protocol (src/wire/http-upgrade.ts) and connections handed
// to the HTTP API from elsewhere (the client port), on node:http: the implementation Node runs (the compiled
// binary's own parser is exercised through real processes in test/http-endpoints.test.ts).
import { createServer, connect as netConnect, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseEndpoint } from "../src/client/endpoint.ts";
import { httpUpgradeDialer } from "../src/client/http-dial.ts";
import { GUEST } from "../src/etcdv2/access.ts";
import { type HttpApi, type HttpDeps, startHttpApi } from "../src/etcdv2/index.ts";
import { connect } from "../src/wire/client.ts";
import { type Listener, listen } from "../src/wire/server.ts";

const deps = {
  versions: () => ({ etcdserver: "3.4.23", etcdcluster: "3.4.0" }),
  clusterId: () => "0858a80da6de7ae5",
  health: () => true,
} as unknown as HttpDeps;

let api: HttpApi;
let clients: Listener;
let handOver: Server;

beforeAll(async () => {
  clients = await listen({
    host: "127.0.0.1",
    port: 0,
    secret: null,
    role: "client",
    name: "t",
    onConnection: (conn) => conn.close(),
  });
  api = await startHttpApi({
    host: "127.0.0.1",
    port: 0,
    deps,
    upgrader: {
      // As a node does (v2auth/http.ts upgradeCaller): wrong credentials → 401, Basic → that user, else guest.
      caller: async (req) => {
        const auth = req.header("authorization");
        if (auth === undefined) return GUEST;
        const [name, password] = Buffer.from(auth.slice(6), "base64").toString().split(":");
        return password === "pw" ? { kind: "user", name: name! } : null;
      },
      take: (stream, caller, remote) =>
        clients.adopt(stream, remote, (conn) =>
          conn.serve({
            request: (method) => ({ method, caller: caller.kind === "user" ? caller.name : caller.kind }),
          }),
        ),
    },
  });
  // The client port's part: a listener handing its sockets to the HTTP API.
  handOver = createServer((s) => api.serve(s));
  await new Promise<void>((r) => handOver.listen(0, "127.0.0.1", r));
});

afterAll(async () => {
  await api?.close();
  await clients?.close();
  handOver?.close();
});

function dialHttp(login?: { name: string; password: string }) {
  const ep = parseEndpoint(`http://127.0.0.1:${api.address.port}`);
  if (ep.kind !== "http") throw new Error("not http");
  return connect({
    host: ep.host,
    port: ep.port,
    label: ep.text,
    secret: null,
    role: "client",
    name: "test",
    dial: httpUpgradeDialer(ep, { tls: null, login }),
  });
}

function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, "127.0.0.1");
    let out = "";
    s.on("data", (d) => (out += d));
    s.on("error", reject);
    s.on("close", () => resolve(out));
    s.write(text);
  });
}

describe("HTTP Upgrade to the msgpack protocol on node:http", () => {
  it("switches with 101 and serves the connection as the request's caller", async () => {
    const { conn } = await dialHttp();
    expect(await conn.request("who", {}, { timeoutMs: 2000 })).toEqual({ method: "who", caller: "guest" });
    conn.close();
    const { conn: alice } = await dialHttp({ name: "alice", password: "pw" });
    expect(await alice.request("who", {}, { timeoutMs: 2000 })).toEqual({ method: "who", caller: "alice" });
    alice.close();
  });

  it("refuses wrong credentials with 401: the client reports auth_failed", async () => {
    await expect(dialHttp({ name: "alice", password: "nope" })).rejects.toMatchObject({
      code: "auth_failed",
    });
  });

  it("leaves every other request to etcd's API: /berth without Upgrade, another Upgrade", async () => {
    const plain = await raw(api.address.port, "GET /berth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(plain).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
    const ws = await raw(
      api.address.port,
      "GET /version HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\r\n",
    );
    expect(ws).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(ws).toContain('{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}');
  });
});

describe("connections handed to the HTTP API (the client port)", () => {
  it("are answered byte for byte as on the HTTP port, but the Date", async () => {
    const req = "GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    const strip = (s: string) => s.replace(/^Date: .*\r\n/m, "");
    const [direct, handed] = await Promise.all([
      raw(api.address.port, req),
      raw((handOver.address() as { port: number }).port, req),
    ]);
    expect(direct).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(strip(handed)).toBe(strip(direct));
  });
});
