// `berth ssh` (fleetctl ssh) with the system's OpenSSH client against a real OpenSSH server on 127.0.0.1: machines
// by member name or id prefix, the machine of a unit, the remote exit code, through --tunnel, and the lookup rules.
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pickMachine } from "../src/cli/ssh.ts";
import type { MachineInfo } from "../src/client/protocol.ts";
import { BINARY, berth, TestCluster } from "./support/cluster.ts";
import { unitInfo } from "./support/fixtures.ts";
import { TestSshd } from "./support/sshd.ts";
import { TestTerminal } from "./support/terminal.ts";

describe("berth ssh (real OpenSSH client and server)", () => {
  let cluster: TestCluster;
  let sshd: TestSshd;
  let ids: Map<string, string>;

  beforeAll(async () => {
    cluster = await TestCluster.start(2);
    // The machines' SSH server, also the bastion for --tunnel (which carries the cluster lookup too).
    sshd = await TestSshd.start(["self", cluster.tcpEndpoint("n1"), cluster.tcpEndpoint("n2")]);
    const list = await cluster.cli(["list-machines", "-o", "json"]);
    ids = new Map((JSON.parse(list.stdout) as MachineInfo[]).map((m) => [m.name, m.id]));
  }, 60_000);

  afterAll(async () => {
    await sshd?.stop();
    await cluster?.stop();
  });

  const sshFlags = () => [
    `--ssh-port=${sshd.port}`,
    "--ssh-username=root",
    `--ssh-identity=${sshd.clientKeyFile}`,
    `--known-hosts-file=${sshd.knownHostsFile}`,
  ];
  const run = (args: string[], extra: string[] = []) =>
    berth(["ssh", ...sshFlags(), ...extra, `--endpoint=${cluster.tcpEndpoints()}`, ...args], {
      env: sshd.clientEnv(),
    });

  it("runs a command on a machine named by member name or id prefix, and exits with its exit code", async () => {
    const byName = await run(["n1", "--", "echo", "hello from", "$SSH_CONNECTION"]);
    expect(byName.stderr).toBe("");
    expect(byName.code).toBe(0);
    expect(byName.stdout.trim()).toMatch(
      new RegExp(`^hello from 127\\.0\\.0\\.1 \\d+ 127\\.0\\.0\\.1 ${sshd.port}$`),
    );
    const byPrefix = await run([ids.get("n1")!.slice(0, 8), "--", "sh", "-c", "'exit 7'"]);
    expect(byPrefix.code).toBe(7);
  });

  it("runs everything after -- on the machine, --help included, with client flags before the command too", async () => {
    const help = await run(["n1", "--", "ls", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: ls /);
    const hoisted = await berth(
      [`--endpoint=${cluster.tcpEndpoints()}`, "ssh", ...sshFlags(), "n1", "--", "echo", "-h", "x"],
      { env: sshd.clientEnv() },
    );
    expect(hoisted).toMatchObject({ code: 0, stdout: "-h x\n" });
  });

  it("reaches the machine a unit runs on (n2's address here has no SSH server: ssh's own failure, 255)", async () => {
    for (const [unit, machine] of [
      ["on-n1.service", "n1"],
      ["on-n2.service", "n2"],
    ]) {
      const file = join(cluster.dir, unit!);
      writeFileSync(file, `[Service]\nExecStart=/bin/sleep 600\n[X-Fleet]\nMachineID=${ids.get(machine!)}\n`);
      expect((await cluster.cli(["start", file])).code).toBe(0);
    }
    const ok = await run(["on-n1.service", "--", "echo", "on-the-unit-machine"]);
    expect(ok.stdout).toBe("on-the-unit-machine\n");
    expect(ok.code).toBe(0);
    const refused = await run(["-u", "on-n2", "--", "true"]);
    expect(refused.code).toBe(255);
    expect(refused.stderr).toMatch(/127\.0\.0\.2.*Connection refused/);
  });

  it("opens an interactive shell on a terminal when no COMMAND is given", async () => {
    const t = TestTerminal.start(
      [BINARY, "ssh", ...sshFlags(), `--endpoint=${cluster.tcpEndpoints()}`, "n1"],
      {
        env: sshd.clientEnv(),
      },
    );
    try {
      t.keys("echo interactive-$((6*7))", "Enter");
      await t.waitForScreen("interactive-42");
      t.keys("exit 3", "Enter");
      expect(await t.exitCode()).toBe(3);
    } finally {
      t.stop();
    }
  });

  it("goes through --tunnel with the same identity and host key settings", async () => {
    const r = await run(["n1", "--", "echo", "via the bastion"], [`--tunnel=root@127.0.0.1:${sshd.port}`]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("via the bastion\n");
    expect(sshd.output).toContain(`target 127.0.0.1 port ${sshd.port}`);
  });

  it("refuses an unknown host key in scripts (BatchMode), writing nothing; says what is unknown", async () => {
    const empty = join(sshd.home, "empty_known_hosts");
    writeFileSync(empty, "");
    const r = await berth(
      [
        "ssh",
        `--ssh-port=${sshd.port}`,
        "--ssh-username=root",
        `--ssh-identity=${sshd.clientKeyFile}`,
        `--known-hosts-file=${empty}`,
        `--endpoint=${cluster.tcpEndpoints()}`,
        "n1",
        "--",
        "true",
      ],
      { env: sshd.clientEnv() },
    );
    expect(r.code).toBe(255);
    expect(r.stderr).toContain("Host key verification failed");
    expect(existsSync(join(sshd.home, ".ssh", "known_hosts"))).toBe(false);

    const nothing = await run(["no-such-thing", "--", "true"]);
    expect(nothing.code).toBe(4);
    expect(nothing.stderr).toContain('no machine or unit "no-such-thing"');
    expect((await run([])).code).toBe(2);
  });
});

describe("berth ssh: which machine an argument names", () => {
  const m = (id: string, name: string): MachineInfo => ({
    id,
    name,
    publicIp: `10.0.0.${name.slice(1)}`,
    metadata: {},
    state: "up",
  });
  const machines = [m("aa11", "n1"), m("aa22", "n2"), m("bb33", "n3")];
  const units = [
    unitInfo("web.service", { machines: ["bb33"] }),
    unitInfo("n1.service", { machines: ["aa22"] }),
    unitInfo("logs.service", { global: true }),
    unitInfo("idle.service", { current: "inactive" }),
  ];

  it("takes member names, unique id prefixes and units (with or without .service)", () => {
    expect(pickMachine("n2", machines, units, null).id).toBe("aa22");
    expect(pickMachine("BB", machines, units, null).name).toBe("n3");
    expect(pickMachine("web", machines, units, null).name).toBe("n3");
    expect(pickMachine("web.service", machines, units, "unit").name).toBe("n3");
  });

  it("refuses what is ambiguous, global, not loaded or unknown", () => {
    expect(() => pickMachine("aa", machines, units, null)).toThrow(/more than one machine for "aa": n1, n2/);
    // "n1" is a machine and n1.service a unit (on n2): fleetctl's -m/-u decide.
    expect(() => pickMachine("n1", machines, units, null)).toThrow(/both a machine and a unit: use -m or -u/);
    expect(pickMachine("n1", machines, units, "machine").name).toBe("n1");
    expect(pickMachine("n1", machines, units, "unit").name).toBe("n2");
    expect(() => pickMachine("n1.service", machines, units, "machine")).toThrow(/no machine "n1.service"/);
    expect(() => pickMachine("logs", machines, units, null)).toThrow(/global/);
    expect(() => pickMachine("idle", machines, units, null)).toThrow(/not loaded on any machine/);
    expect(() => pickMachine("zz", machines, units, null)).toThrow(/no machine or unit "zz"/);
  });
});
