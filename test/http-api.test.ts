// The etcd v2 HTTP API (src/etcdv2/) against a real KvStore applying commands in-process: request parsing,
// status codes, headers and body bytes as etcd 3.4 sends them (see test/fixtures/etcd-v2-samples*.txt).
import { connect } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { KvResult, MemberInfo } from "../src/client/protocol.ts";
import { ADMIN } from "../src/etcdv2/access.ts";
import { type HttpApi, type HttpDeps, startHttpApi } from "../src/etcdv2/index.ts";
import { commandFor } from "../src/kv/requests.ts";
import { KvStore } from "../src/kv/store.ts";
import { KvError, type KvEvent } from "../src/kv/types.ts";
import { kvFailure, ServiceError } from "../src/service/errors.ts";
import { waitFor } from "./support/processes.ts";

const CLUSTER = "0858a80da6de7ae5"; // leading zero: etcd prints ids without it
const CORS = [
  "Access-Control-Allow-Headers: accept, content-type, authorization",
  "Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE",
  "Access-Control-Allow-Origin: *",
];

let store: KvStore;
let raftIndex = 0;
let fail: unknown = null;
let leaderStats: object | null = { leader: "66805fe4535c7e43", followers: {} };
let healthy = true;
let membersThrow = false;
let members: MemberInfo[] = [];
const logs: string[] = [];

function member(name: string, id: string, port: number, isLeader = false): MemberInfo {
  return {
    name,
    id,
    peerAddr: `127.0.0.1:${port + 10}`,
    clientAddr: `127.0.0.1:${port + 20}`,
    httpAddr: `127.0.0.1:${port}`,
    role: "voter",
    isLeader,
  };
}

function wrap(event: KvEvent): KvResult {
  return { event, etcdIndex: store.index, raftIndex, raftTerm: 2 };
}

const deps: HttpDeps = {
  kv: {
    async get(p) {
      if (fail) throw fail;
      const r = store.get(p.key, { recursive: !!p.recursive, sorted: !!p.sorted }, Date.now());
      if (r instanceof KvError) throw kvFailure(r);
      return wrap(r);
    },
    async write(req) {
      if (fail) throw fail;
      raftIndex++;
      const r = store.apply(commandFor(req, Date.now()));
      if (r instanceof KvError) throw kvFailure(r);
      return wrap(r as KvEvent);
    },
    watch(p, onEvent) {
      const w = store.watch(
        p.key,
        { recursive: !!p.recursive, stream: !!p.forever, sinceIndex: p.sinceIndex },
        (e) => onEvent(wrap(e)),
      );
      if (w instanceof KvError) throw kvFailure(w);
      return w;
    },
  },
  indexes: () => ({ etcdIndex: store.index, raftIndex, raftTerm: 2 }),
  members: () => {
    if (membersThrow) throw new Error("boom in members");
    return members;
  },
  async addMember(name, peerAddr) {
    if (members.some((m) => m.peerAddr === peerAddr))
      throw new ServiceError("conflict", `peer address ${peerAddr} belongs to x`);
    members = [
      ...members,
      { ...member(name, "00000000000000ab", 1), peerAddr, httpAddr: null, clientAddr: null },
    ];
    return members;
  },
  async removeMember(name) {
    members = members.filter((m) => m.name !== name);
    return members;
  },
  clusterId: () => CLUSTER,
  selfStats: () => ({ name: "b1", id: "66805fe4535c7e43", state: "StateLeader" }),
  leaderStats: () => leaderStats,
  storeStats: () => store.stats(),
  versions: () => ({ etcdserver: "3.4.23", etcdcluster: "3.4.0" }),
  health: () => healthy,
};

let api: HttpApi;
let base: string;

beforeAll(async () => {
  api = await startHttpApi({
    host: "127.0.0.1",
    port: 0,
    deps,
    logger: (l) => logs.push(l),
    // As admin: the /v2/members writes below need it (test/authz.test.ts checks a guest is refused them).
    callerOf: () => ADMIN,
  });
  base = `http://127.0.0.1:${api.address.port}`;
});

afterAll(async () => {
  await api?.close();
});

beforeEach(() => {
  store = new KvStore();
  raftIndex = 0;
  fail = null;
  leaderStats = { leader: "66805fe4535c7e43", followers: {} };
  healthy = true;
  membersThrow = false;
  members = [
    member("b2", "13cf3251bccaa617", 23792),
    member("b1", "66805fe4535c7e43", 23791, true),
    member("b3", "0b051394837139ff", 23793),
  ];
});

interface RawResponse {
  status: string;
  headers: string[];
  body: string;
  raw: string;
}

/** Sends bytes as they are and reads the whole answer (the request asks for Connection: close). */
function rawRequest(text: string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = connect(api.address.port, "127.0.0.1");
    const chunks: Buffer[] = [];
    sock.on("data", (c) => chunks.push(c));
    sock.on("error", reject);
    sock.on("close", () => resolve(parseRaw(Buffer.concat(chunks).toString("utf8"))));
    sock.write(text);
  });
}

function parseRaw(raw: string): RawResponse {
  const end = raw.indexOf("\r\n\r\n");
  const lines = raw.slice(0, end).split("\r\n");
  return { status: lines[0] ?? "", headers: lines.slice(1), body: raw.slice(end + 4), raw };
}

/** Header lines etcd would send too: Node's own Connection/Keep-Alive lines and the date are left out. */
function comparable(headers: string[]): string[] {
  return headers.filter((h) => !/^(Date|Connection|Keep-Alive):/.test(h));
}

function req(method: string, path: string, body?: string, extra: string[] = []): Promise<RawResponse> {
  const head = [`${method} ${path} HTTP/1.1`, "Host: x", "Connection: close", ...extra];
  if (body !== undefined) {
    head.push(
      "Content-Type: application/x-www-form-urlencoded",
      `Content-Length: ${Buffer.byteLength(body)}`,
    );
  }
  return rawRequest(`${head.join("\r\n")}\r\n\r\n${body ?? ""}`);
}

function keyHeaders(status: number, etcdIndex: number, raft: number, length: number): string[] {
  void status;
  return [
    ...CORS,
    "Content-Type: application/json",
    "X-Etcd-Cluster-Id: 858a80da6de7ae5",
    `X-Etcd-Index: ${etcdIndex}`,
    `X-Raft-Index: ${raft}`,
    "X-Raft-Term: 2",
    `Content-Length: ${length}`,
  ];
}

function errHeaders(index: number, length: number): string[] {
  return [
    ...CORS,
    "Content-Type: application/json",
    "X-Etcd-Cluster-Id: 858a80da6de7ae5",
    `X-Etcd-Index: ${index}`,
    `Content-Length: ${length}`,
  ];
}

async function put(path: string, body: string): Promise<RawResponse> {
  return req("PUT", path, body);
}

describe("keys: bytes as etcd sends them", () => {
  it("creates (201), reads and overwrites (200 with prevNode) with etcd's headers in Go's order", async () => {
    const created = await put("/v2/keys/message", "value=hello");
    expect(created.status).toBe("HTTP/1.1 201 Created");
    const body1 =
      '{"action":"set","node":{"key":"/message","value":"hello","modifiedIndex":1,"createdIndex":1}}\n';
    expect(created.body).toBe(body1);
    expect(comparable(created.headers)).toEqual(keyHeaders(201, 1, 1, 94));
    expect(created.headers.some((h) => /^Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/.test(h))).toBe(
      true,
    );

    const got = await req("GET", "/v2/keys/message");
    expect(got.status).toBe("HTTP/1.1 200 OK");
    expect(got.body).toBe(body1.replace('"set"', '"get"'));

    const over = await put("/v2/keys/message", "value=hello2");
    expect(over.status).toBe("HTTP/1.1 200 OK");
    expect(over.body).toBe(
      '{"action":"set","node":{"key":"/message","value":"hello2","modifiedIndex":2,"createdIndex":2},' +
        '"prevNode":{"key":"/message","value":"hello","modifiedIndex":1,"createdIndex":1}}\n',
    );
  });

  it("answers errors with X-Etcd-Index = error index and no raft headers", async () => {
    await put("/v2/keys/message", "value=hello2");
    const r = await req("GET", "/v2/keys/nonexistent");
    expect(r.status).toBe("HTTP/1.1 404 Not Found");
    expect(r.body).toBe('{"errorCode":100,"message":"Key not found","cause":"/nonexistent","index":1}\n');
    expect(comparable(r.headers)).toEqual(errHeaders(1, 77));
  });

  it("maps store errors to etcd's statuses", async () => {
    await put("/v2/keys/message", "value=hello2");
    await put("/v2/keys/dir", "dir=true");
    await put("/v2/keys/dir/a", "value=1");
    const cases: [Promise<RawResponse>, string, string][] = [
      [put("/v2/keys/message?prevValue=wrong", "value=new"), "412 Precondition Failed", '"errorCode":101'],
      [put("/v2/keys/message?prevIndex=9", "value=new"), "412 Precondition Failed", '"cause":"[9 != 1]"'],
      [put("/v2/keys/message?prevExist=false", "value=new"), "412 Precondition Failed", '"errorCode":105'],
      [put("/v2/keys/missing?prevExist=true", "value=new"), "404 Not Found", '"errorCode":100'],
      [put("/v2/keys/dir", "value=x"), "403 Forbidden", '"errorCode":102'],
      [put("/v2/keys/message/child", "value=x"), "400 Bad Request", '"errorCode":104'],
      [req("DELETE", "/v2/keys/dir?dir=true"), "403 Forbidden", '"errorCode":108'],
      [put("/v2/keys/", "value=x"), "400 Bad Request", '"errorCode":107'],
    ];
    for (const [p, status, frag] of cases) {
      const r = await p;
      expect(r.status, frag).toBe(`HTTP/1.1 ${status}`);
      expect(r.body).toContain(frag);
      expect(r.body.endsWith("}\n")).toBe(true);
    }
  });

  it("reads parameters from the query string and the form body (body first, as Go's FormValue)", async () => {
    expect((await req("PUT", "/v2/keys/q?value=fromquery")).body).toContain('"value":"fromquery"');
    expect((await put("/v2/keys/b?value=fromquery", "value=frombody")).body).toContain('"value":"frombody"');
    expect((await put("/v2/keys/sp", "value=a+b%20c")).body).toContain('"value":"a b c"');
    // A DELETE body is not parsed by Go: prevValue there is ignored.
    const del = await req("DELETE", "/v2/keys/sp", "prevValue=nope");
    expect(del.status).toBe("HTTP/1.1 200 OK");
    expect(del.body).toContain('"action":"delete"');
    // A non-form body is ignored for PUT.
    const j = await rawRequest(
      'PUT /v2/keys/j HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"value":"x"}',
    );
    expect(j.body).toContain('"value":""');
  });

  it("supports ttl, refresh, dir, in-order POST, CAS, CAD, recursive and sorted gets, noValueOnSuccess", async () => {
    const t = await put("/v2/keys/tmp", "value=t&ttl=5");
    expect(t.body).toMatch(/"expiration":"[^"]+Z","ttl":5,/);
    const refreshed = await put("/v2/keys/tmp?refresh=true&prevExist=true", "ttl=20");
    expect(refreshed.status).toBe("HTTP/1.1 200 OK");
    expect(refreshed.body).toMatch(
      /^\{"action":"update","node":\{"key":"\/tmp","value":"t","expiration":.*"ttl":20,/,
    );
    const noTtl = await put("/v2/keys/tmp?prevExist=true", "value=t&ttl=");
    expect(noTtl.body).not.toContain('"ttl":20,"modifiedIndex":3');
    expect(JSON.parse(noTtl.body).node.ttl).toBeUndefined();

    const q1 = await req("POST", "/v2/keys/queue", "value=Job1");
    expect(q1.status).toBe("HTTP/1.1 201 Created");
    expect(q1.body).toMatch(
      /^\{"action":"create","node":\{"key":"\/queue\/0000000000000000000\d","value":"Job1"/,
    );

    await put("/v2/keys/dir/b", "value=2");
    await put("/v2/keys/dir/a", "value=1");
    const sorted = await req("GET", "/v2/keys/dir?recursive=true&sorted=true");
    const keys = (JSON.parse(sorted.body).node.nodes as { key: string }[]).map((n) => n.key);
    expect(keys).toEqual(["/dir/a", "/dir/b"]);

    const cas = await put("/v2/keys/dir/a?prevValue=1", "value=9");
    expect(JSON.parse(cas.body).action).toBe("compareAndSwap");
    const cad = await req("DELETE", "/v2/keys/dir/a?prevValue=9");
    expect(JSON.parse(cad.body).action).toBe("compareAndDelete");
    const rec = await req("DELETE", "/v2/keys/dir?recursive=true");
    expect(rec.body).toMatch(/^\{"action":"delete","node":\{"key":"\/dir","dir":true,/);

    const nv = await put("/v2/keys/nv?noValueOnSuccess=true", "value=x");
    expect(nv.body).toBe('{"action":"set"}\n');
    const empty = await req("PUT", "/v2/keys/emptyval");
    expect(empty.body).toContain('"value":""');
  });

  it("answers HEAD like GET without a body", async () => {
    await put("/v2/keys/h", "value=1");
    const r = await req("HEAD", "/v2/keys/h");
    expect(r.status).toBe("HTTP/1.1 200 OK");
    expect(r.body).toBe("");
    expect(r.headers).toContain("X-Etcd-Index: 1");
  });

  it("cleans key paths and decodes percent-escapes in them", async () => {
    expect((await put("/v2/keys/a%2Fb", "value=1")).body).toContain('"key":"/a/b"');
    const moved = await req("GET", "/v2/keys//a/./b?x=1");
    expect(moved.status).toBe("HTTP/1.1 301 Moved Permanently");
    expect(moved.headers).toContain("Location: /v2/keys/a/b?x=1");
  });

  it("switches to chunked encoding above Go's 2048-byte buffer", async () => {
    const big = "v".repeat(3000);
    const r = await put("/v2/keys/big", `value=${big}`);
    expect(r.headers).toContain("Transfer-Encoding: chunked");
    expect(r.headers.some((h) => h.startsWith("Content-Length"))).toBe(false);
  });
});

describe("keys: parameter errors with etcd's codes and causes", () => {
  const cases: [string, string, string | undefined, number, string][] = [
    ["PUT", "/v2/keys/bad", "value=x&ttl=abc", 202, 'invalid value for \\"ttl\\"'],
    ["PUT", "/v2/keys/bad?ttl=-1", undefined, 202, 'invalid value for \\"ttl\\"'],
    ["PUT", "/v2/keys/bad?prevIndex=x", undefined, 203, 'invalid value for \\"prevIndex\\"'],
    ["GET", "/v2/keys/bad?wait=true&waitIndex=1.5", undefined, 203, 'invalid value for \\"waitIndex\\"'],
    ["GET", "/v2/keys/bad?recursive=yes", undefined, 209, 'invalid value for \\"recursive\\"'],
    ["GET", "/v2/keys/bad?sorted", undefined, 209, 'invalid value for \\"sorted\\"'],
    ["GET", "/v2/keys/bad?quorum=2", undefined, 209, 'invalid value for \\"quorum\\"'],
    ["GET", "/v2/keys/bad?stream=x", undefined, 209, 'invalid value for \\"stream\\"'],
    ["PUT", "/v2/keys/bad?dir=x", undefined, 209, 'invalid value for \\"dir\\"'],
    ["PUT", "/v2/keys/bad?wait=true", undefined, 209, '\\"wait\\" can only be used with GET requests'],
    ["PUT", "/v2/keys/bad?prevValue=", undefined, 201, '\\"prevValue\\" cannot be empty'],
    ["PUT", "/v2/keys/bad?prevExist=maybe", undefined, 209, "invalid value for prevExist"],
    ["PUT", "/v2/keys/bad?refresh=maybe", undefined, 209, "invalid value for refresh"],
    ["PUT", "/v2/keys/bad?refresh=true&ttl=5", "value=v", 211, "A value was provided on a refresh"],
    ["PUT", "/v2/keys/bad?refresh=true", undefined, 212, "No TTL value set"],
    ["PUT", "/v2/keys/bad?noValueOnSuccess=x", undefined, 209, 'invalid value for \\"noValueOnSuccess\\"'],
    ["GET", "/v2/keys/bad?x=%zz", undefined, 210, 'invalid URL escape \\"%zz\\"'],
    ["GET", "/v2/keys/bad?a=1;b=2", undefined, 210, "invalid semicolon separator in query"],
    ["PUT", "/v2/keys/bad", "value=%4", 210, 'invalid URL escape \\"%4\\"'],
  ];
  for (const [method, path, body, code, cause] of cases) {
    it(`${method} ${path} ${body ?? ""} -> ${code}`, async () => {
      const r = await req(method, path, body);
      expect(r.status).toBe("HTTP/1.1 400 Bad Request");
      const message = new KvError(code as 202, "", 0).message;
      const doc = `{"errorCode":${code},"message":"${message}","cause":"${cause}","index":0}\n`;
      expect(r.body).toBe(doc);
      expect(comparable(r.headers)).toEqual(errHeaders(0, Buffer.byteLength(doc)));
    });
  }

  it("matches the sample byte for byte for a bad ttl", async () => {
    const r = await put("/v2/keys/badttl", "value=x&ttl=abc");
    expect(r.body).toBe(
      '{"errorCode":202,"message":"The given TTL in POST form is not a number","cause":"invalid value for \\"ttl\\"","index":0}\n',
    );
    expect(r.headers).toContain("Content-Length: 119");
  });
});

describe("keys: failures of the node", () => {
  it("maps unavailable/timeout to 500 errorCode 300 'etcdserver: request timed out'", async () => {
    for (const code of ["unavailable", "timeout", "not_leader"] as const) {
      fail = new ServiceError(code, "no leader");
      const r = await req("GET", "/v2/keys/x?quorum=true");
      expect(r.status).toBe("HTTP/1.1 500 Internal Server Error");
      expect(r.body).toBe(
        '{"errorCode":300,"message":"Raft Internal Error","cause":"etcdserver: request timed out","index":0}\n',
      );
    }
  });

  it("turns unexpected errors (and non-errors) into 300 and keeps serving", async () => {
    fail = new Error("disk on fire");
    const r = await put("/v2/keys/x", "value=1");
    expect(r.status).toBe("HTTP/1.1 500 Internal Server Error");
    expect(r.body).toContain('"errorCode":300,"message":"Raft Internal Error","cause":"disk on fire"');
    fail = "a string";
    expect((await req("GET", "/v2/keys/x")).body).toContain('"cause":"a string"');
    fail = null;
    membersThrow = true;
    const m = await req("GET", "/v2/members");
    expect(m.status).toBe("HTTP/1.1 500 Internal Server Error");
    expect(m.body).toContain('"errorCode":300');
    membersThrow = false;
    expect((await req("GET", "/v2/members")).status).toBe("HTTP/1.1 200 OK");
    expect(logs.some((l) => l.includes("boom in members"))).toBe(true);
  });

  it("rejects a value over the store limit like etcd's request size limit", async () => {
    const r = await put("/v2/keys/huge", `value=${"x".repeat(1024 * 1024 + 1)}`);
    expect(r.status).toBe("HTTP/1.1 500 Internal Server Error");
    expect(r.body).toBe(
      '{"errorCode":300,"message":"Raft Internal Error","cause":"etcdserver: request is too large","index":0}\n',
    );
  });

  it("refuses a form body over Go's 10 MiB form limit without reading it", async () => {
    const r = await rawRequest(
      "PUT /v2/keys/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 20000000\r\n\r\nvalue=1",
    );
    expect(r.status).toBe("HTTP/1.1 400 Bad Request");
    expect(r.body).toBe(
      '{"errorCode":210,"message":"Invalid POST form","cause":"http: POST too large","index":0}\n',
    );
  });

  it("answers garbage percent-encoding in the path as Go's server does", async () => {
    const r = await req("GET", "/v2/keys/%zz");
    expect(r.status).toBe("HTTP/1.1 400 Bad Request");
    expect(r.body).toBe("400 Bad Request");
    expect((await req("GET", "/v2/keys/ok%")).status).toBe("HTTP/1.1 400 Bad Request");
  });
});

/** Opens a raw long poll; resolves once the response headers are in. */
function openWatch(path: string) {
  const sock = connect(api.address.port, "127.0.0.1");
  let data = "";
  const waiters: (() => void)[] = [];
  sock.on("data", (c) => {
    data += c.toString("utf8");
    for (const w of waiters.splice(0)) w();
  });
  sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  const until = (pred: (d: string) => boolean) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; got ${JSON.stringify(data)}`)), 3000);
      const check = () => {
        if (pred(data)) {
          clearTimeout(timer);
          resolve(data);
        } else waiters.push(check);
      };
      check();
    });
  return {
    sock,
    until,
    get data() {
      return data;
    },
  };
}

/** The watch of a closed connection is gone from the store. */
const noWatcherLeft = () => waitFor("no watcher left", () => store.stats().watchers === 0, 2000, 20);

describe("keys: watches", () => {
  it("flushes headers at once and answers a long poll with the first later event", async () => {
    await put("/v2/keys/message", "value=hello3");
    const w = openWatch("/v2/keys/message?wait=true");
    const head = await w.until((d) => d.includes("\r\n\r\n"));
    expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(head).toContain("Transfer-Encoding: chunked");
    expect(head).toContain("X-Etcd-Index: 1\r\n");
    expect(head).toContain("X-Raft-Index: 1\r\nX-Raft-Term: 2\r\n");
    expect(head.split("\r\n\r\n")[1]).toBe("");
    await put("/v2/keys/message", "value=world");
    const all = await w.until((d) => d.endsWith("0\r\n\r\n"));
    const ev =
      '{"action":"set","node":{"key":"/message","value":"world","modifiedIndex":2,"createdIndex":2},' +
      '"prevNode":{"key":"/message","value":"hello3","modifiedIndex":1,"createdIndex":1}}\n';
    expect(all).toContain(`\r\n${Buffer.byteLength(ev).toString(16)}\r\n${ev}\r\n0\r\n\r\n`);
    w.sock.destroy();
    await noWatcherLeft();
  });

  it("returns a past event at once with waitIndex (fetch)", async () => {
    await put("/v2/keys/message", "value=hello");
    await put("/v2/keys/message", "value=world");
    const r = await fetch(`${base}/v2/keys/message?wait=true&waitIndex=1`);
    expect(r.status).toBe(200);
    expect(r.headers.get("x-etcd-index")).toBe("2");
    expect(await r.text()).toBe(
      '{"action":"set","node":{"key":"/message","value":"hello","modifiedIndex":1,"createdIndex":1}}\n',
    );
  });

  it("answers 401 (HTTP 400) for an index older than the history", async () => {
    for (let i = 0; i < 1010; i++) await deps.kv.write({ method: "PUT", key: "/spin", value: String(i) });
    const r = await req("GET", "/v2/keys/spin?wait=true&waitIndex=2");
    expect(r.status).toBe("HTTP/1.1 400 Bad Request");
    expect(r.body).toMatch(
      /^\{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared \[\d+\/2\]","index":1010\}\n$/,
    );
  });

  it("frees the watcher when the client disconnects", async () => {
    const w = openWatch("/v2/keys/gone?wait=true&recursive=true");
    await w.until((d) => d.includes("\r\n\r\n"));
    expect(store.stats().watchers).toBe(1);
    w.sock.destroy();
    await noWatcherLeft();
    // The server is still fine and the write notifies nobody.
    expect((await put("/v2/keys/gone/x", "value=1")).status).toBe("HTTP/1.1 201 Created");
  });

  it("streams every event, one JSON document per line, with stream=true", async () => {
    const w = openWatch("/v2/keys/wdir?wait=true&recursive=true&stream=true");
    await w.until((d) => d.includes("\r\n\r\n"));
    await put("/v2/keys/wdir/a", "value=1");
    await put("/v2/keys/wdir/b", "value=2");
    const data = await w.until((d) => d.includes('"/wdir/b"'));
    const lines = data
      .split("\r\n\r\n")[1]!
      .split("\r\n")
      .filter((l) => l.startsWith("{"));
    expect(lines.map((l) => JSON.parse(l).node.key)).toEqual(["/wdir/a", "/wdir/b"]);
    expect(data.endsWith("0\r\n\r\n")).toBe(false);
    w.sock.destroy();
    await noWatcherLeft();
  });
});

describe("members, machines, version, health, stats", () => {
  it("lists members in etcd's shape, ordered by id, ids without leading zeros", async () => {
    const r = await req("GET", "/v2/members");
    expect(r.status).toBe("HTTP/1.1 200 OK");
    expect(comparable(r.headers)).toEqual([
      ...CORS,
      "Content-Type: application/json",
      "X-Etcd-Cluster-Id: 858a80da6de7ae5",
      `Content-Length: ${Buffer.byteLength(r.body)}`,
    ]);
    expect(r.body).toBe(
      '{"members":[' +
        '{"id":"b051394837139ff","name":"b3","peerURLs":["http://127.0.0.1:23803"],"clientURLs":["http://127.0.0.1:23793"]},' +
        '{"id":"13cf3251bccaa617","name":"b2","peerURLs":["http://127.0.0.1:23802"],"clientURLs":["http://127.0.0.1:23792"]},' +
        '{"id":"66805fe4535c7e43","name":"b1","peerURLs":["http://127.0.0.1:23801"],"clientURLs":["http://127.0.0.1:23791"]}]}\n',
    );
    const leader = await fetch(`${base}/v2/members/leader`);
    expect(await leader.json()).toEqual({
      id: "66805fe4535c7e43",
      name: "b1",
      peerURLs: ["http://127.0.0.1:23801"],
      clientURLs: ["http://127.0.0.1:23791"],
    });
    members = members.map((m) => ({ ...m, isLeader: false }));
    const none = await req("GET", "/v2/members/leader");
    expect(none.status).toBe("HTTP/1.1 503 Service Unavailable");
    expect(none.body).toBe('{"message":"During election"}');
    expect((await req("GET", "/v2/members/what")).body).toBe('{"message":"Not found"}');
  });

  it("adds and removes members with etcd's statuses and messages", async () => {
    const json = (body: string, type = "application/json") =>
      fetch(`${base}/v2/members`, { method: "POST", headers: { "content-type": type }, body });
    const added = await json('{"peerURLs":["http://10.0.0.9:2380"]}');
    expect(added.status).toBe(201);
    expect(await added.json()).toEqual({
      id: "ab",
      name: "10.0.0.9-2380",
      peerURLs: ["http://10.0.0.9:2380"],
      clientURLs: [],
    });
    const dup = await json('{"peerURLs":["http://10.0.0.9:2380"]}');
    expect(dup.status).toBe(409);
    expect(await dup.text()).toBe('{"message":"membership: peerURL exists"}');
    const badType = await json("{}", "text/plain");
    expect(badType.status).toBe(415);
    expect(await badType.text()).toBe('{"message":"Bad Content-Type text/plain, accept application/json"}');
    expect(await (await json("{}")).text()).toBe('{"message":"no valid URLs given"}');
    expect(await (await json('{"peerURLs":["ftp://a:1"]}')).text()).toBe(
      '{"message":"URL scheme must be http, https, unix, or unixs: ftp://a:1"}',
    );
    expect(await (await json('{"peerURLs":["http://a"]}')).text()).toBe(
      '{"message":"URL address does not have the form \\"host:port\\": http://a"}',
    );
    expect(await (await json('{"peerURLs":["http://a:1/x"]}')).text()).toBe(
      '{"message":"URL must not contain a path: http://a:1/x"}',
    );
    expect((await json("{nope")).status).toBe(400);

    const del = await req("DELETE", "/v2/members/13cf3251bccaa617");
    expect(del.status).toBe("HTTP/1.1 204 No Content");
    expect(members.map((m) => m.name)).not.toContain("b2");
    const missing = await req("DELETE", "/v2/members/13cf3251bccaa617");
    expect(missing.status).toBe("HTTP/1.1 404 Not Found");
    expect(missing.body).toBe('{"message":"No such member: 13cf3251bccaa617"}');
    const noId = await req("DELETE", "/v2/members");
    expect(noId.status).toBe("HTTP/1.1 405 Method Not Allowed");
  });

  it("serves /v2/machines, /version and /health as etcd 3.4 does", async () => {
    const m = await req("GET", "/v2/machines");
    expect(m.body).toBe("http://127.0.0.1:23791, http://127.0.0.1:23792, http://127.0.0.1:23793");
    expect(comparable(m.headers)).toEqual([
      ...CORS,
      "Content-Length: 70",
      "Content-Type: text/plain; charset=utf-8",
    ]);

    const v = await req("GET", "/version");
    expect(v.body).toBe('{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}');
    expect(comparable(v.headers)).toEqual([...CORS, "Content-Type: application/json", "Content-Length: 45"]);

    const h = await req("GET", "/health");
    expect(h.body).toBe('{"health":"true"}');
    expect(comparable(h.headers)).toEqual([
      ...CORS,
      "Content-Length: 17",
      "Content-Type: text/plain; charset=utf-8",
    ]);
    healthy = false;
    const sick = await req("GET", "/health");
    expect(sick.status).toBe("HTTP/1.1 503 Service Unavailable");
    expect(sick.body).toBe('{"health":"false"}');
  });

  it("serves the stats documents; /v2/stats/leader is 403 on a follower", async () => {
    await put("/v2/keys/a", "value=1");
    const s = await req("GET", "/v2/stats/store");
    expect(Object.keys(JSON.parse(s.body)).slice(0, 3)).toEqual(["getsSuccess", "getsFail", "setsSuccess"]);
    expect(s.body.endsWith("}")).toBe(true);
    expect((await req("GET", "/v2/stats/self")).body).toBe(
      '{"name":"b1","id":"66805fe4535c7e43","state":"StateLeader"}',
    );
    expect((await req("GET", "/v2/stats/leader")).body).toBe('{"leader":"66805fe4535c7e43","followers":{}}');
    leaderStats = null;
    const f = await req("GET", "/v2/stats/leader");
    expect(f.status).toBe("HTTP/1.1 403 Forbidden");
    expect(f.body).toBe('{"message":"not current leader"}');
    expect(comparable(f.headers)).toEqual([...CORS, "Content-Type: application/json", "Content-Length: 32"]);
  });
});

describe("routing", () => {
  it("answers unknown paths with Go's 404 text", async () => {
    for (const p of ["/nope", "/v2/keysx", "/v2", "/v2/stats"]) {
      const r = await req("GET", p);
      expect(r.status).toBe("HTTP/1.1 404 Not Found");
      expect(r.body).toBe("404 page not found\n");
    }
  });

  it("answers a wrong method with 405, Allow and etcd's body", async () => {
    const r = await req("PATCH", "/v2/keys/message");
    expect(r.status).toBe("HTTP/1.1 405 Method Not Allowed");
    expect(comparable(r.headers)).toEqual([
      ...CORS,
      "Allow: HEAD,GET,PUT,POST,DELETE",
      "Content-Type: text/plain; charset=utf-8",
      "X-Content-Type-Options: nosniff",
      "Content-Length: 19",
    ]);
    expect(r.body).toBe("Method Not Allowed\n");
    expect((await req("POST", "/v2/stats/self")).headers).toContain("Allow: GET");
    expect((await req("PUT", "/v2/machines")).headers).toContain("Allow: GET,HEAD");
  });

  it("answers CORS preflight requests", async () => {
    const r = await req("OPTIONS", "/v2/keys/x");
    expect(r.status).toBe("HTTP/1.1 200 OK");
    expect(comparable(r.headers)).toEqual([...CORS, "Content-Length: 0"]);
  });
});
