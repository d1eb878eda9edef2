// etcd's v2 auth API on Berth. The answers of a real etcd 3.4.23 (test/fixtures/etcd-v2-auth-samples.txt, captured
// by scripts/capture-etcd-fixtures.sh) are replayed in order against a fresh 1-node Berth cluster and compared as
// test/http-samples.test.ts compares the keys API; Debian's real etcdctl runs its user/role/auth commands (the
// outputs and exit codes of test/fixtures/etcdctl-v2-auth-samples.txt); a 3-node cluster shows that every member
// enforces the same users, and that the records' prefix is refused through kv (HTTP and msgpack).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster } from "./support/cluster.ts";
import {
  type Got,
  loadSamples,
  parseCurl,
  type RawResponse,
  rawRequest,
  type Sample,
  view,
} from "./support/etcd-samples.ts";

const HTTP_SAMPLES = resolve(import.meta.dirname, "fixtures/etcd-v2-auth-samples.txt");
const CTL_SAMPLES = resolve(import.meta.dirname, "fixtures/etcdctl-v2-auth-samples.txt");

describe("etcd 3.4's v2 auth answers replayed against a 1-node Berth cluster", () => {
  const samples = loadSamples(HTTP_SAMPLES);
  let cluster: TestCluster;
  const url = (u: URL) => new URL(u.pathname + u.search, cluster.httpUrl("n1"));

  /** Runs a sample's command line; returns what `curl -si` would have printed. */
  async function run(s: Sample): Promise<Got[]> {
    const curls = s.command
      .split(/;|&(?!&)/)
      .map((p) => p.trim())
      .filter((p) => p.startsWith("curl"));
    if (s.command.includes("await_watcher")) {
      // The watch's headers come at once; the write that fires it goes after them (the capture's await_watcher).
      const [w, put] = curls.map(parseCurl) as [ReturnType<typeof parseCurl>, ReturnType<typeof parseCurl>];
      let headersIn!: () => void;
      const headersSeen = new Promise<void>((r) => (headersIn = r));
      const watching = rawRequest(w.method, url(w.url), w.data, () => headersIn(), true, w.headers);
      await headersSeen;
      await rawRequest(put.method, url(put.url), put.data, undefined, true, put.headers);
      return [await watching];
    }
    const got: Got[] = [];
    for (const part of curls) {
      const c = parseCurl(part);
      const r = await rawRequest(c.method, url(c.url), c.data, undefined, false, c.headers);
      if (!c.silent) got.push(r);
    }
    return got;
  }

  beforeAll(async () => {
    cluster = await TestCluster.start(1);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it("parses every sample block", () => {
    expect(samples.length).toBeGreaterThan(80);
    for (const s of samples) expect(s.responses.length, s.title).toBeGreaterThan(0);
  });

  for (const s of samples)
    it(s.title, async () => {
      const got = await run(s);
      expect(got.length, "number of answers").toBe(s.responses.length);
      got.forEach((g, i) => {
        expect(view(s.title, g)).toEqual(view(s.title, s.responses[i] as RawResponse));
      });
    }, 15_000);
});

interface CtlSample {
  args: string[];
  stdin: string;
  output: string;
  exit: number;
}

function loadCtlSamples(): CtlSample[] {
  const out: CtlSample[] = [];
  for (const block of readFileSync(CTL_SAMPLES, "utf8").split(/^### /m).slice(1)) {
    const [head, ...rest] = block.split("\n");
    let body = rest.join("\n");
    let stdin = "";
    const input = /^<<< (.*)\n/.exec(body);
    if (input) {
      stdin = input[1] as string;
      body = body.slice(input[0].length);
    }
    const m = /\[exit (\d+)\]/.exec(body);
    if (!m) continue;
    out.push({
      args: (head as string).trim().split(/\s+/).slice(1),
      stdin,
      output: body.slice(0, m.index),
      exit: Number(m[1]),
    });
  }
  return out;
}

describe("real etcdctl v2 user/role/auth against Berth, and every member enforcing the same users", () => {
  let cluster: TestCluster;
  const etcdctl = (args: string[], node: string, stdin = "") =>
    spawnSync("etcdctl", ["--endpoints", cluster.httpUrl(node), ...args], {
      env: { ...process.env, ETCDCTL_API: "2" },
      input: `${stdin}\n`,
      encoding: "utf8",
      timeout: 20_000,
    });
  const curl = async (
    node: string,
    path: string,
    opts: { method?: string; user?: string; data?: string } = {},
  ) => {
    const headers: Record<string, string> = opts.user
      ? { Authorization: `Basic ${Buffer.from(opts.user).toString("base64")}` }
      : {};
    const r = await rawRequest(
      opts.method ?? "GET",
      new URL(path, cluster.httpUrl(node)),
      opts.data ?? null,
      undefined,
      true,
      headers,
    );
    return { status: Number(r.statusLine.split(" ")[1]), body: r.body };
  };

  beforeAll(async () => {
    cluster = await TestCluster.start(3);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it("every sampled command prints what it prints against etcd, with the same exit code", () => {
    const samples = loadCtlSamples();
    expect(samples.length).toBeGreaterThan(40);
    for (const s of samples) {
      const r = etcdctl(s.args, "n2", s.stdin);
      const label = `etcdctl ${s.args.join(" ")}`;
      // etcdctl's password prompt runs stty, which complains on a pipe; stdout and stderr interleave freely there.
      const norm = (t: string) =>
        t
          .replace(/\[\d+\]/g, "[N]")
          .replace(/stty: [^\n]*/g, "")
          .split("\n")
          .map((l) => l.trimEnd())
          .filter((l) => l !== "")
          .join("\n");
      expect({ label, out: norm(r.stdout + r.stderr), exit: r.status }).toEqual({
        label,
        out: norm(s.output),
        exit: s.exit,
      });
    }
  }, 60_000);

  it("users and roles made through one member are enforced by every member (Basic auth, guest, root-only /v2/auth)", async () => {
    expect(etcdctl(["user", "add", "root:rootpw"], "n1").status).toBe(0);
    expect(etcdctl(["role", "add", "app"], "n1").status).toBe(0);
    expect(etcdctl(["role", "grant", "--path", "/app/*", "--readwrite", "app"], "n1").status).toBe(0);
    expect(etcdctl(["user", "add", "eve:evepw"], "n1").status).toBe(0);
    expect(etcdctl(["user", "grant", "--roles", "app", "eve"], "n1").status).toBe(0);
    expect(etcdctl(["auth", "enable"], "n3").stdout).toContain("Authentication Enabled");
    // Nobody may read anything anonymously once guest loses its default /*.
    const revoke = '{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}';
    expect(
      (await curl("n2", "/v2/auth/roles/guest", { method: "PUT", user: "root:rootpw", data: revoke })).status,
    ).toBe(200);
    for (const n of ["n1", "n2", "n3"]) {
      // A member may be a moment behind the commit (reads are served by the local replica, as etcd's).
      let put = await curl(n, `/v2/keys/app/${n}`, { method: "PUT", user: "eve:evepw", data: "value=1" });
      for (let i = 0; i < 50 && put.status !== 201; i++) {
        await new Promise((r) => setTimeout(r, 20));
        put = await curl(n, `/v2/keys/app/${n}`, { method: "PUT", user: "eve:evepw", data: "value=1" });
      }
      expect(put.status, n).toBe(201);
      expect((await curl(n, "/v2/keys/app/x", { user: "eve:wrong" })).status, n).toBe(401);
      expect(
        (await curl(n, "/v2/keys/other", { method: "PUT", user: "eve:evepw", data: "value=1" })).status,
      ).toBe(401);
      let anon = await curl(n, "/v2/keys/app/n1");
      for (let i = 0; i < 50 && anon.status !== 401; i++) {
        await new Promise((r) => setTimeout(r, 20));
        anon = await curl(n, "/v2/keys/app/n1");
      }
      expect(anon.status, n).toBe(401);
      expect(JSON.parse(anon.body)).toMatchObject({ errorCode: 110, cause: "Insufficient credentials" });
      expect((await curl(n, "/v2/auth/users", { user: "eve:evepw" })).status, n).toBe(401);
      expect((await curl(n, "/v2/auth/users", { user: "root:rootpw" })).status, n).toBe(200);
    }
    expect(etcdctl(["--username", "root:rootpw", "auth", "disable"], "n1").status).toBe(0);
  }, 60_000);

  it("the auth records' prefix is refused through kv, on HTTP and msgpack, reads included", async () => {
    // The previous test left users behind; their hashes live under /_berth_auth.
    for (const path of [
      "/v2/keys/_berth_auth/users/root",
      "/v2/keys/_berth_auth?recursive=true",
      "/v2/keys//_berth_auth/users/root",
      "/v2/keys/_berth_auth/users/root?wait=true&waitIndex=1",
    ]) {
      const r = await curl("n1", path);
      expect(r.status, path).toBe(400);
      expect(JSON.parse(r.body), path).toMatchObject({ errorCode: 106 });
      expect(r.body, path).not.toContain("scrypt");
    }
    const put = await curl("n1", "/v2/keys/_berth_auth/enabled", { method: "PUT", data: "value=false" });
    expect(put.status).toBe(400);
    const del = await curl("n1", "/v2/keys/_berth_auth?recursive=true", { method: "DELETE" });
    expect(del.status).toBe(400);
    const all = await curl("n1", "/v2/keys/?recursive=true");
    expect(all.body).not.toContain("_berth_auth");
    // The msgpack API (berth kv) refuses the same keys.
    for (const args of [
      ["kv", "get", "/_berth_auth/users/root"],
      ["kv", "ls", "--recursive", "/_berth_auth"],
      ["kv", "set", "/_berth_auth/users/mallory", '{"user":"mallory","roles":["root"]}'],
      ["kv", "rm", "--recursive", "/_berth_auth"],
    ]) {
      const r = await cluster.cli(args);
      expect(r.code, args.join(" ")).not.toBe(0);
      expect(r.stdout + r.stderr, args.join(" ")).toContain("106");
      expect(r.stdout, args.join(" ")).not.toContain("scrypt");
    }
    // Root still authenticates: nothing above changed the records.
    expect(etcdctl(["--username", "root:rootpw", "user", "get", "root"], "n2").stdout).toContain(
      "User: root",
    );
  }, 60_000);
});
