// Who may do what, with real users against a real node: `nobody` (runuser) over the loopback TCP port and HTTP, a
// member of the `berth` group and a user outside it on the node's unix socket, directly and through a real sshd
// (--tunnel, streamlocal forwarding). The independent review's attacks must fail; anonymous key access must not.
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { groupId } from "../src/node/client-socket.ts";
import { BINARY, type RunResult, runProcess, TestCluster } from "./support/cluster.ts";
import { TestSshd } from "./support/sshd.ts";
import { createUser, ensureGroup, removeCreated } from "./support/system-users.ts";

const OPERATOR = "berth-authz-op"; // in the berth group
const STRANGER = "berth-authz-x"; // not in it

/** Runs dist/berth as `user` (runuser, as root does it). */
function runAs(user: string, args: string[]): Promise<RunResult> {
  return run("runuser", ["-u", user, "--", BINARY, ...args]);
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return runProcess(cmd, args, { env });
}

describe("authorization with real users", () => {
  /** A directory every user may enter, holding the node's socket and the unit files. */
  let dir: string;
  let socket: string;
  let cluster: TestCluster;
  let tcp: string;
  let http: string;

  beforeAll(async () => {
    dir = mkdtempSync("/tmp/berth-authz-");
    chmodSync(dir, 0o755);
    socket = join(dir, "berth.sock");
    ensureGroup("berth"); // before the node starts: it gives its socket to the group it finds
    createUser(OPERATOR, ["berth"]);
    createUser(STRANGER);
    cluster = await TestCluster.start(1, { extraArgs: [`--client-socket=${socket}`] });
    tcp = cluster.tcpEndpoint("n1");
    http = cluster.httpUrl("n1");
    writeFileSync(
      join(dir, "shadow.service"),
      `[Service]\nExecStart=/bin/sh -c 'cat /etc/shadow > ${join(dir, "stolen")}'\n`,
    );
    writeFileSync(join(dir, "pg.service"), "[Service]\nUser=postgres\nExecStart=/bin/sleep 1000\n");
    writeFileSync(join(dir, "keep.service"), "[Service]\nExecStart=/bin/sleep 1000\n");
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
    removeCreated();
    rmSync(dir, { recursive: true, force: true });
  });

  const admin = (args: string[]) => cluster.cli(args);

  it("the node's unix socket is mode 0660, group berth: the socket's mode is the grant", () => {
    const st = statSync(socket);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(groupId("berth"));
  });

  it("nobody cannot submit or start a unit (the review's unit ran as uid 0 and read /etc/shadow)", async () => {
    const file = join(dir, "shadow.service");
    const viaTcp = await runAs("nobody", ["start", file, `--endpoint=${tcp}`]);
    expect(viaTcp.code).toBe(7);
    expect(viaTcp.stderr).toContain("needs admin rights");
    const submit = await runAs("nobody", ["submit", file, `--endpoint=${tcp}`]);
    expect(submit.code).toBe(7);
    // The CLI's default order (socket first, then the loopback port): the refusal says why the socket was not used.
    const fallback = await runAs("nobody", ["start", file, `--endpoint=unix://${socket},${tcp}`]);
    expect(fallback.code).toBe(7);
    expect(fallback.stderr).toContain(`unix://${socket}: permission denied`);
    expect((await admin(["list-unit-files", "--no-legend"])).stdout).not.toContain("shadow.service");
    expect(existsSync(join(dir, "stolen"))).toBe(false);
  });

  it("nobody cannot submit a unit with User=postgres; admin can (the grant to run as another user)", async () => {
    const file = join(dir, "pg.service");
    const refused = await runAs("nobody", ["submit", file, `--endpoint=${tcp}`]);
    expect(refused.code).toBe(7);
    expect((await admin(["list-unit-files", "--no-legend"])).stdout).not.toContain("pg.service");
    expect((await admin(["submit", file])).code).toBe(0);
    expect((await admin(["destroy", "pg.service"])).code).toBe(0);
  });

  it("nobody cannot remove or write the registry, destroy, stop or drain, nor change the membership", async () => {
    // Launched: stop and unload have something to do.
    expect((await admin(["start", join(dir, "keep.service"), "--no-block"])).code).toBe(0);
    const tries = [
      ["kv", "rm", "--recursive", "/_berth"],
      ["kv", "set", "/_berth/units/evil.service/object", "{}"],
      ["kv", "rm", "//_berth/./units/keep.service/object"],
      ["destroy", "keep.service"],
      ["stop", "keep.service"],
      ["unload", "keep.service"],
      ["machine", "drain", "n1", "--no-block"],
      ["cluster", "remove", "n1"],
    ];
    for (const args of tries) {
      const r = await runAs("nobody", [...args, `--endpoint=${tcp}`]);
      expect({ args, code: r.code, err: r.stderr }).toMatchObject({ args, code: 7 });
    }
    // The HTTP API: the same rows, as etcd answers an unauthorized request (401).
    const curl = (method: string, path: string, data?: string) => curlAs(method, `${http}${path}`, data);
    expect(await curl("PUT", "/v2/keys/_berth/x", "value=y")).toMatch(/^401 .*"errorCode":110/);
    expect(await curl("DELETE", "/v2/keys/_berth?recursive=true")).toMatch(/^401 /);
    expect(await curl("POST", "/v2/members", '{"peerURLs":["http://127.0.0.9:7001"]}')).toBe(
      '401 {"message":"Insufficient credentials"}',
    );
    const units = await admin(["list-unit-files", "--no-legend"]);
    expect(units.stdout).toContain("keep.service");
    const machines = await admin(["list-machines", "--no-legend", "--fields=name,state"]);
    expect(machines.stdout.split(/\s+/).filter(Boolean)).toEqual(["n1", "up"]);
    expect((await admin(["destroy", "keep.service"])).code).toBe(0);
  });

  /** curl as nobody: "STATUS BODY". */
  async function curlAs(method: string, url: string, data?: string): Promise<string> {
    const args = ["-s", "-X", method, "-w", "\n%{http_code}", url];
    if (data) args.push("-d", data);
    if (data?.startsWith("{")) args.push("-H", "Content-Type: application/json");
    const r = await run("runuser", ["-u", "nobody", "--", "curl", ...args]);
    const i = r.stdout.lastIndexOf("\n");
    return `${r.stdout.slice(i + 1)} ${r.stdout.slice(0, i).trim()}`;
  }

  it("nobody still reads and writes keys with berth, etcdctl and curl on loopback while auth is disabled", async () => {
    expect((await runAs("nobody", ["kv", "set", "/open/a", "1", `--endpoint=${tcp}`])).code).toBe(0);
    const got = await runAs("nobody", ["kv", "get", "/open/a", `--endpoint=${tcp}`]);
    expect(got).toMatchObject({ code: 0, stdout: "1\n" });
    const etcdctl = (...a: string[]) =>
      run("runuser", ["-u", "nobody", "--", "env", "ETCDCTL_API=2", "etcdctl", `--endpoints=${http}`, ...a]);
    expect((await etcdctl("set", "/open/b", "2")).code).toBe(0);
    expect((await etcdctl("get", "/open/b")).stdout).toBe("2\n");
    expect(await curlAs("PUT", `${http}/v2/keys/open/c`, "value=3")).toMatch(/^201 /);
    // Views stay open too.
    expect((await runAs("nobody", ["list-units", `--endpoint=${tcp}`])).code).toBe(0);
    expect((await admin(["kv", "get", "/open/c"])).stdout).toBe("3\n");
  });

  it("a member of the berth group is admin on the socket; a user outside it cannot open it", async () => {
    const file = join(dir, "keep.service");
    const op = await runAs(OPERATOR, ["submit", file, `--endpoint=unix://${socket}`]);
    expect(op).toMatchObject({ code: 0 });
    expect((await runAs(OPERATOR, ["destroy", "keep.service", `--endpoint=unix://${socket}`])).code).toBe(0);
    const stranger = await runAs(STRANGER, ["submit", file, `--endpoint=unix://${socket}`]);
    expect(stranger.code).toBe(3);
    expect(stranger.stderr).toContain("permission denied (the socket is for root and the berth group)");
  });

  it("--tunnel: an SSH user in the berth group is admin through streamlocal forwarding; one outside it is refused", async () => {
    // PermitOpen any: a PermitOpen list (HOST:PORT only) would refuse every unix socket.
    const sshd = await TestSshd.start(["any"], { anyUser: true });
    try {
      const through = (user: string, args: string[]) =>
        run(
          BINARY,
          [
            ...args,
            `--tunnel=${sshd.targetFor(user)}`,
            `--ssh-identity=${sshd.clientKeyFile}`,
            `--known-hosts-file=${sshd.knownHostsFile}`,
          ],
          sshd.clientEnv(),
        );
      const file = join(dir, "keep.service");
      const op = await through(OPERATOR, ["submit", file, `--endpoint=unix://${socket},${tcp}`]);
      expect({ code: op.code, err: op.stderr }, sshd.output).toEqual({ code: 0, err: "" });
      const destroyed = await through(OPERATOR, ["destroy", "keep.service", `--endpoint=unix://${socket}`]);
      expect({ code: destroyed.code, err: destroyed.stderr }, sshd.output).toMatchObject({ code: 0 });
      const refused = await through(STRANGER, ["submit", file, `--endpoint=unix://${socket},${tcp}`]);
      expect(refused.code).toBe(7);
      expect(refused.stderr).toContain("needs admin rights");
      expect(refused.stderr).toContain("the SSH user cannot open it");
      // It still reads, as any guest.
      expect((await through(STRANGER, ["list-units", `--endpoint=unix://${socket},${tcp}`])).code).toBe(0);
    } finally {
      await sshd.stop();
    }
  }, 30_000);

  it("--username with no such etcd user is refused (exit 7), not silently a guest", async () => {
    const r = await runAs("nobody", ["kv", "get", "/open/a", "--username=root:wrong", `--endpoint=${tcp}`]);
    expect(r.code).toBe(7);
    expect(r.stderr).toContain("authentication as etcd user root failed");
  });

  it("with etcd auth enabled, --username on the client port gets the user's roles, root gets every right (last: enables auth)", async () => {
    const http = cluster.httpUrl("n1");
    const put = async (path: string, body: unknown, auth?: string) => {
      const r = await fetch(`${http}${path}`, {
        method: "PUT",
        headers: {
          "content-type": "application/json",
          ...(auth ? { authorization: `Basic ${Buffer.from(auth).toString("base64")}` } : {}),
        },
        body: body === null ? undefined : JSON.stringify(body),
      });
      expect(r.status, `${path}: ${await r.clone().text()}`).toBeLessThan(300);
    };
    await put("/v2/auth/users/root", { user: "root", password: "rootpw" });
    await put("/v2/auth/roles/app-reader", {
      role: "app-reader",
      permissions: { kv: { read: ["/app/*"], write: [] } },
    });
    await put("/v2/auth/users/alice", { user: "alice", password: "alicepw" });
    await put("/v2/auth/users/alice", { user: "alice", grant: ["app-reader"] });
    expect((await runAs("nobody", ["kv", "set", "/app/x", "v", `--endpoint=${tcp}`])).code).toBe(0);
    await put("/v2/auth/enable", null);
    // etcd gives the guest role every key when auth is enabled: take it back.
    await put(
      "/v2/auth/roles/guest",
      { role: "guest", revoke: { kv: { read: ["/*"], write: ["/*"] } } },
      "root:rootpw",
    );

    const as = (args: string[]) => runAs("nobody", [...args, `--endpoint=${tcp}`]);
    expect((await as(["kv", "get", "/app/x"])).code).toBe(7);
    const read = await as(["kv", "get", "/app/x", "--username=alice:alicepw"]);
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout.trim()).toBe("v");
    expect((await as(["kv", "set", "/app/x", "w", "--username=alice:alicepw"])).code).toBe(7);
    expect((await as(["kv", "get", "/other", "--username=alice:alicepw"])).code).toBe(7);
    const root = await as(["kv", "set", "/app/x", "w", "--username=root:rootpw"]);
    expect(root.code, root.stderr).toBe(0);
    // etcd's root is admin for Berth too: the registry and unit operations.
    const units = await as(["list-unit-files", "--username=root:rootpw"]);
    expect(units.code, units.stderr).toBe(0);
  }, 30_000);
});
