// --tunnel against a real OpenSSH server on loopback: client subcommands reach a node through SSH, host keys are
// checked as OpenSSH does (known, unknown, changed, hashed, trusted at a terminal), keys come from files or a real
// ssh-agent, and every failure is a one-line message with its exit code.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BINARY,
  berth,
  freePort,
  type RunResult,
  runProcess,
  TestCluster,
  waitFor,
} from "./support/cluster.ts";
import { keygen, TestSshd } from "./support/sshd.ts";

describe("berth --tunnel (real OpenSSH server)", () => {
  let cluster: TestCluster;
  let sshd: TestSshd;
  /** HOME of the CLI runs (sshd.home), and the known_hosts in it with the server's key. */
  let home: string;
  let knownHosts: string;
  let endpoint: string;
  /** The authorized key and a known_hosts with the server's key. */
  let withKey: string[];

  beforeAll(async () => {
    cluster = await TestCluster.start(1);
    const n1 = cluster.node("n1");
    endpoint = `${n1.host}:${n1.clientPort}`;
    sshd = await TestSshd.start([endpoint]);
    home = sshd.home;
    knownHosts = sshd.knownHostsFile;
    withKey = [`--ssh-identity=${sshd.clientKeyFile}`, `--known-hosts-file=${knownHosts}`];
  }, 60_000);

  afterAll(async () => {
    await sshd?.stop();
    await cluster?.stop();
  });

  const env = (extra: Record<string, string> = {}) => sshd.clientEnv(extra);
  const viaTunnel = (args: string[], extra: string[] = [], envExtra: Record<string, string> = {}) =>
    berth([...args, `--tunnel=${sshd.target}`, `--endpoint=${endpoint}`, ...extra], { env: env(envExtra) });

  it("runs subcommands through the SSH server: the same answers as a direct connection", async () => {
    const direct = await cluster.cli(["list-machines"]);
    expect(direct.code).toBe(0);
    const tunnelled = await viaTunnel(["list-machines"], withKey);
    expect(tunnelled.stderr).toBe("");
    expect(tunnelled.code).toBe(0);
    expect(tunnelled.stdout).toBe(direct.stdout);

    expect((await viaTunnel(["kv", "set", "/tunnel/k", "through-ssh"], withKey)).code).toBe(0);
    const got = await cluster.cli(["kv", "get", "/tunnel/k"]);
    expect(got.stdout.trim()).toBe("through-ssh");
    // sshd opened the forwarding: the traffic really went through it.
    expect(sshd.output).toContain(`target ${endpoint.replace(":", " port ")}`);
  });

  it("takes the tunnel and its settings from BERTH_* variables too", async () => {
    // fleetctl's order too: global flags before the command.
    const r = await berth([`--endpoint=${endpoint}`, "kv", "get", "/tunnel/k"], {
      env: env({
        BERTH_TUNNEL: sshd.target,
        BERTH_SSH_IDENTITY: sshd.clientKeyFile,
        BERTH_KNOWN_HOSTS_FILE: knownHosts,
      }),
    });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("through-ssh");
  });

  it("reaches only what the SSH server forwards: another endpoint fails with exit 3, saying why", async () => {
    const other = `127.0.0.1:${await freePort()}`;
    // (`berth --tunnel HOST --endpoint ADDR list-machines`: flags with their values before the command)
    const r = await berth(["--tunnel", sshd.target, "--endpoint", other, ...withKey, "list-machines"], {
      env: env(),
    });
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(other);
    expect(r.stderr).toMatch(/prohibited|cannot reach/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("accepts a host key recorded hashed (ssh-keyscan -H), and one from ~/.ssh/known_hosts with ~/.ssh keys", async () => {
    const hashed = join(home, "hashed_known_hosts");
    writeFileSync(hashed, `${sshd.hostKeyLine(true)}\n`);
    expect(readFileSync(hashed, "utf8")).toMatch(/^\|1\|/);
    const a = await viaTunnel(
      ["list-machines"],
      [`--ssh-identity=${sshd.clientKeyFile}`, `--known-hosts-file=${hashed}`],
    );
    expect(a.stderr).toBe("");
    expect(a.code).toBe(0);

    const sshHome = mkdtempSync(join(tmpdir(), "berth-tunnel-home-"));
    try {
      execFileSync("mkdir", ["-p", join(sshHome, ".ssh")]);
      writeFileSync(join(sshHome, ".ssh", "known_hosts"), `${sshd.hostKeyLine()}\n`);
      // No --ssh-identity: OpenSSH's default key files, skipping one that needs a passphrase.
      execFileSync("ssh-keygen", [
        "-q",
        "-t",
        "ecdsa",
        "-N",
        "passphrase",
        "-f",
        join(sshHome, ".ssh", "id_ecdsa"),
      ]);
      writeFileSync(join(sshHome, ".ssh", "id_rsa"), readFileSync(sshd.clientKeyFile));
      const b = await berth(["list-machines", `--tunnel=${sshd.target}`, `--endpoint=${endpoint}`], {
        env: { HOME: sshHome, SSH_AUTH_SOCK: "" },
      });
      expect(b.stderr).toBe("");
      expect(b.code).toBe(0);
      // Nothing was written: the key was known.
      expect(existsSync(join(sshHome, ".berth", "known_hosts"))).toBe(false);
    } finally {
      rmSync(sshHome, { recursive: true, force: true });
    }
  });

  it("refuses an unknown host without a terminal: exit 1, the fingerprint and how to add it; nothing written", async () => {
    const empty = join(home, "empty_known_hosts");
    writeFileSync(empty, "");
    const r = await viaTunnel(
      ["list-machines"],
      [`--ssh-identity=${sshd.clientKeyFile}`, `--known-hosts-file=${empty}`],
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(sshd.fingerprint());
    expect(r.stderr).toContain("ssh-keyscan");
    expect(readFileSync(empty, "utf8")).toBe("");
  });

  it("refuses a changed host key (a different ed25519 key on record for that host)", async () => {
    const other = join(home, "other_host_key");
    keygen(other);
    const line = sshd.hostKeyLine().split(" ");
    const forged = join(home, "forged_known_hosts");
    writeFileSync(
      forged,
      `${line[0]} ${readFileSync(`${other}.pub`, "utf8").split(" ").slice(0, 2).join(" ")}\n`,
    );
    const r = await viaTunnel(
      ["list-machines"],
      [`--ssh-identity=${sshd.clientKeyFile}`, `--known-hosts-file=${forged}`],
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/host key of 127\.0\.0\.1:\d+ has changed/);
    expect(r.stderr).toContain(sshd.fingerprint());
  });

  it("--strict-host-key-checking=false connects to a host it does not know", async () => {
    const empty = join(home, "none_known_hosts");
    const r = await viaTunnel(
      ["list-machines"],
      [
        `--ssh-identity=${sshd.clientKeyFile}`,
        `--known-hosts-file=${empty}`,
        "--strict-host-key-checking=false",
      ],
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(existsSync(empty)).toBe(false);
  });

  it("asks at a terminal, as ssh does; 'yes' records the key and later runs need no question", async () => {
    const fresh = join(home, "fresh", "known_hosts");
    const args = [
      "list-machines",
      `--tunnel=${sshd.target}`,
      `--endpoint=${endpoint}`,
      `--ssh-identity=${sshd.clientKeyFile}`,
      `--known-hosts-file=${fresh}`,
    ];
    // util-linux `script` gives the binary a pseudo-terminal and passes our input to it.
    const quoted = [BINARY, ...args].map((a) => `'${a}'`).join(" ");
    const r = await runWithInput("script", ["-qec", quoted, "/dev/null"], "yes\n", env());
    expect(r.stdout).toContain("The authenticity of host 127.0.0.1:");
    expect(r.stdout).toContain(sshd.fingerprint());
    expect(r.code).toBe(0);
    expect(readFileSync(fresh, "utf8")).toBe(
      `[127.0.0.1]:${sshd.port} ${sshd.hostKeyLine().split(" ").slice(1).join(" ")}\n`,
    );
    const again = await berth(args, { env: env() });
    expect(again.stderr).toBe("");
    expect(again.code).toBe(0);

    const no = join(home, "no", "known_hosts");
    const refused = await runWithInput(
      "script",
      ["-qec", quoted.replace(fresh, no), "/dev/null"],
      "no\n",
      env(),
    );
    expect(refused.code).toBe(1);
    expect(existsSync(no)).toBe(false);
  });

  it("authenticates with a real ssh-agent when no key file is given", async () => {
    const sock = join(home, "agent.sock");
    const agent: ChildProcess = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
    try {
      await waitFor("ssh-agent socket", () => existsSync(sock), 5000, 50);
      execFileSync("ssh-add", ["-q", sshd.clientKeyFile], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
      const r = await viaTunnel(["list-machines"], [`--known-hosts-file=${knownHosts}`], {
        SSH_AUTH_SOCK: sock,
      });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
    } finally {
      agent.kill("SIGTERM"); // by the PID of the agent this test started
    }
  });

  it("says which part failed: a key the server does not accept (1), no credentials (1), no SSH server (3), bad flags (2)", async () => {
    const stranger = join(home, "stranger_key");
    keygen(stranger);
    const denied = await viaTunnel(
      ["list-machines"],
      [`--ssh-identity=${stranger}`, `--known-hosts-file=${knownHosts}`],
    );
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/SSH authentication as root to 127\.0\.0\.1:\d+ failed/);

    const none = await viaTunnel(["list-machines"], [`--known-hosts-file=${knownHosts}`]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("no SSH credentials");

    const nobody = await berth(
      ["list-machines", `--tunnel=root@127.0.0.1:${await freePort()}`, `--endpoint=${endpoint}`, ...withKey],
      { env: env() },
    );
    expect(nobody.code).toBe(3);
    expect(nobody.stderr).toContain("connection refused");

    const bad = await berth(["list-machines", "--tunnel=root@", `--endpoint=${endpoint}`, ...withKey], {
      env: env(),
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("expected [USER@]HOST[:PORT]");

    const locked = join(home, "locked_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "passphrase", "-f", locked]);
    const encrypted = await viaTunnel(
      ["list-machines"],
      [`--ssh-identity=${locked}`, `--known-hosts-file=${knownHosts}`],
    );
    expect(encrypted.code).toBe(2);
    expect(encrypted.stderr).toContain("add them to an ssh-agent");
    const missing = await viaTunnel(
      ["list-machines"],
      [`--ssh-identity=${home}/nope`, `--known-hosts-file=${knownHosts}`],
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`--ssh-identity ${home}/nope`);
  });
});

function runWithInput(
  cmd: string,
  args: string[],
  input: string,
  env: Record<string, string>,
): Promise<RunResult> {
  // The question comes first; answer once the binary had time to ask it.
  return runProcess(cmd, args, { env, input, inputDelayMs: 1500 });
}
