// `berth status` and `berth journal` on a real 3-node cluster, always asked of a node that is NOT the unit's
// machine, so the request has to travel to the agent that runs it over the peer connections.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BINARY, TestCluster, waitFor } from "./support/cluster.ts";

// A template's instance: %i must show expanded in status; two ExecStartPre lines must both show; the main
// process keeps a child, so the unit's cgroup holds two processes.
const TEMPLATE = "hello-status@.service";
const UNIT = "hello-status@7.service";
const TEXT = `[Unit]
Description=Hello Status %i

[Service]
ExecStartPre=-/bin/false
ExecStartPre=/bin/echo pre %i
ExecStart=/bin/sh -c "trap 'exit 0' INT TERM; sleep 1000 & while true; do echo Hello World; sleep 0.2; done"
`;

const HOST = hostname().replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
/** journalctl's short form: the host name, then the program's name and pid (sh, not the unit's name). */
const LINE = new RegExp(`^[A-Z][a-z]{2} \\d{2} \\d{2}:\\d{2}:\\d{2} ${HOST} sh\\[\\d+\\]: Hello World$`);

describe("status and journal through any node", () => {
  let cluster: TestCluster;
  let dir: string;
  /** A node that does not run the unit. */
  let other: string;
  let owner: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-status-"));
    writeFileSync(join(dir, TEMPLATE), TEXT);
    writeFileSync(join(dir, "idle.service"), "[Service]\nExecStart=/bin/sleep 1000\n");
    cluster = await TestCluster.start(3);
    const r = await cluster.cli(["start", join(dir, UNIT)], cluster.endpoints(), 30_000);
    if (r.code !== 0) throw new Error(`start failed: ${r.stdout}${r.stderr}\n${cluster.logs()}`);
    if (r.code !== 0) throw new Error(`start failed: ${r.stdout}${r.stderr}\n${cluster.logs()}`);
    const units = JSON.parse((await cluster.cli(["list-units", "--output=json"])).stdout) as {
      name: string;
      machine: string;
    }[];
    const machines = JSON.parse((await cluster.cli(["list-machines", "--output=json"])).stdout) as {
      id: string;
      name: string;
    }[];
    const id = units.find((u) => u.name === UNIT)!.machine;
    owner = machines.find((m) => m.id === id)!.name;
    other = cluster.nodes.map((n) => n.name).find((n) => n !== owner)!;
    // A few lines written before the tests look at them.
    await waitFor(
      "log lines",
      async () => {
        const j = await cluster.cli(["journal", "-n", "10", UNIT], cluster.endpoint(other));
        return j.stdout.split("\n").filter((l) => LINE.test(l)).length >= 10;
      },
      15_000,
      200,
    );
  }, 90_000);

  afterAll(async () => {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("prints status as systemctl does, from another node", async () => {
    const r = await cluster.cli(["status", UNIT, "--ssh-port=2222"], cluster.endpoint(other));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toBe(`● ${UNIT} - Hello Status 7`);
    expect(r.stdout).toMatch(new RegExp(`^ {3}Loaded: loaded \\(/_berth/units/${UNIT}\\)$`, "m"));
    expect(r.stdout).toMatch(
      /^ {3}Active: active \(running\) since \w{3} \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}( \S+)?; (\d+ms|\d+s|\d+min \d+s) ago$/m,
    );
    // One Process: line per Exec line, in order, with specifiers expanded.
    const processes = lines.filter((l) => l.startsWith("  Process: "));
    expect(processes).toHaveLength(2);
    expect(processes[0]).toMatch(
      /^ {2}Process: \d+ ExecStartPre=\/bin\/false \(code=exited, status=1\/FAILURE\)$/,
    );
    expect(processes[1]).toMatch(
      /^ {2}Process: \d+ ExecStartPre=\/bin\/echo pre 7 \(code=exited, status=0\/SUCCESS\)$/,
    );
    expect(r.stdout).toMatch(/^ Main PID: \d+ \(sh\)$/m);
    expect(r.stdout).toMatch(/^ {3}Memory: [\d.]+[BKMG]$/m);
    // The unit's cgroup and its processes by pid: the shell and the sleep it started.
    const pid = /Main PID: (\d+)/.exec(r.stdout)![1];
    const cg = lines.findIndex((l) => l.startsWith("   CGroup: "));
    expect(cg).toBeGreaterThan(0);
    expect(lines[cg]).toMatch(new RegExp(`^ {3}CGroup: /\\S+/${UNIT.replace(/[.@]/g, "\\$&")}$`));
    const tree = lines.slice(cg + 1).filter((l) => /^ {11}[├└]─/.test(l));
    expect(tree.map((l) => l.replace(/^ {11}[├└]─\d+ /, ""))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^\/bin\/sh -c trap/), "sleep 1000"]),
    );
    expect(tree.some((l) => l.includes(`─${pid} /bin/sh -c`))).toBe(true);
    expect(tree.at(-1)).toMatch(/^ {11}└─/);
    expect(r.stdout).toMatch(/^ {2}Machine: [0-9a-f]{8}\.\.\./m);
    const blank = lines.indexOf("");
    expect(blank).toBeGreaterThan(0);
    const log = lines.slice(blank + 1).filter((l) => l !== "");
    expect(log.length).toBe(10);
    for (const l of log)
      expect(l).toMatch(
        new RegExp(`^[A-Z][a-z]{2} \\d{2} \\d{2}:\\d{2}:\\d{2} ${HOST} (berth|sh|echo)\\[\\d+\\]: `),
      );
    expect(log.at(-1)).toMatch(LINE);
    expect(log.at(-1)).toContain(`[${pid}]`);
  });

  it("prints JSON with the full agent state, and a unit named twice once", async () => {
    const j = await cluster.cli(["status", UNIT, "--output=json"], cluster.endpoint(other));
    expect(j.code).toBe(0);
    const doc = JSON.parse(j.stdout);
    expect(doc).toMatchObject({
      name: UNIT,
      machineName: owner,
      state: { active: "active", sub: "running" },
    });
    expect(doc.state.steps.find((s: { step: string }) => s.step === "ExecStartPre")).toMatchObject({
      code: "exited",
      status: 1,
    });
    expect(doc.journal).toHaveLength(10);
    const two = await cluster.cli(["status", UNIT, UNIT.replace(".service", "")], cluster.endpoint(other));
    expect(two.code).toBe(0); // the same unit twice (mangled) is shown once
    expect(two.stdout.match(/^● /gm)).toHaveLength(1);
  });

  it("prints exactly N journal lines, as journalctl's short output, and journalctl's other modes", async () => {
    const r = await cluster.cli(["journal", "-n", "3", UNIT, "--ssh-port", "2222"], cluster.endpoint(other));
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n").filter((l) => l !== "");
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(l).toMatch(LINE);
    const cat = await cluster.cli(["journal", "-n", "2", "-o", "cat", UNIT], cluster.endpoint(other));
    expect(cat.stdout).toBe("Hello World\nHello World\n");
    // -o json: journalctl's field names, string values.
    const j = await cluster.cli(["journal", "--lines=2", UNIT, "--output=json"], cluster.endpoint(other));
    const docs = j.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(docs).toHaveLength(2);
    expect(docs[0]).toMatchObject({
      MESSAGE: "Hello World",
      _HOSTNAME: hostname(),
      SYSLOG_IDENTIFIER: "sh",
      _SYSTEMD_UNIT: UNIT,
      _TRANSPORT: "stdout",
      PRIORITY: "6",
    });
    expect(docs[0]._PID).toMatch(/^\d+$/);
    expect(docs[0].__REALTIME_TIMESTAMP).toMatch(/^\d{16}$/);
    const v = await cluster.cli(["journal", "-n", "1", "-o", "verbose", UNIT], cluster.endpoint(other));
    const vl = v.stdout.trimEnd().split("\n");
    expect(vl[0]).toMatch(/^\w{3} \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}( \S+)?$/);
    expect(vl).toContain("    MESSAGE=Hello World");
    expect(vl).toContain(`    _SYSTEMD_UNIT=${UNIT}`);
    const bad = await cluster.cli(["journal", "-o", "table2", UNIT], cluster.endpoint(other));
    expect(bad.code).toBe(2);
    // Berth's own lines are the service manager's: berth[PID], PID being the process that runs the agent.
    const all = await cluster.cli(["journal", "-n", "1000", UNIT], cluster.endpoint(other));
    expect(all.stdout).toMatch(new RegExp(`^.{15} ${HOST} berth\\[\\d+\\]: .*status=1/FAILURE`, "m"));
    expect(all.stdout).toMatch(new RegExp(`^.{15} ${HOST} echo\\[\\d+\\]: pre 7$`, "m"));
    const ownerPid = readFileSync(
      join(cluster.node(owner).dataDir, "agent", "supervisor.pid"),
      "utf8",
    ).trim();
    expect(all.stdout).toContain(` berth[${ownerPid}]: `);
  });

  it("follows the journal live from another node until Ctrl-C, which exits 0", async () => {
    const child = spawn(BINARY, ["journal", "-f", "-n", "2", UNIT, `--endpoint=${cluster.endpoint(other)}`], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    try {
      const started = Date.now();
      // 2 lines of history, then at least 4 live ones (the unit writes one every 200 ms).
      await waitFor(
        "followed lines",
        () => out.split("\n").filter((l) => LINE.test(l)).length >= 6,
        15_000,
        50,
      );
      expect(Date.now() - started).toBeGreaterThan(500);
    } finally {
      child.kill("SIGINT");
    }
    expect(await exited).toBe(0);
    expect(err).toBe("");
    const lines = out.split("\n").filter((l) => l !== "");
    for (const l of lines) expect(l).toMatch(LINE);
    // No line twice: timestamps never go backwards.
    const stamps = lines.map((l) => l.slice(0, 15));
    expect([...stamps].sort()).toEqual(stamps);
  }, 30_000);

  it("also answers on the unit's own machine", async () => {
    const r = await cluster.cli(["journal", "-n", "4", UNIT], cluster.endpoint(owner));
    expect(r.stdout.split("\n").filter((l) => LINE.test(l))).toHaveLength(4);
    const s = await cluster.cli(["status", UNIT], cluster.endpoint(owner));
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/Main PID: \d+ \(sh\)/);
  });

  it("refuses unknown units and units that are not loaded", async () => {
    const s = await cluster.cli(["status", "nope.service"], cluster.endpoint(other));
    expect(s.code).toBe(4);
    expect(s.stderr).toContain("Unit nope.service does not exist.");
    const j = await cluster.cli(["journal", "nope"], cluster.endpoint(other));
    expect(j.code).toBe(4);
    expect(j.stderr).toContain("Unit nope.service does not exist.");
    expect((await cluster.cli(["submit", join(dir, "idle.service")])).code).toBe(0);
    const n = await cluster.cli(["status", "idle.service"], cluster.endpoint(other));
    expect(n.code).toBe(1);
    expect(n.stderr).toContain("Unit idle.service does not appear to be loaded.");
    const nj = await cluster.cli(["journal", "idle.service"], cluster.endpoint(other));
    expect(nj.code).toBe(1);
    expect(nj.stderr).toContain("does not appear to be loaded");
  });

  it("a unit that hits its start limit: SUB failed in list-units, the Result in status", async () => {
    writeFileSync(
      join(dir, "flap.service"),
      "[Unit]\nStartLimitIntervalSec=30\nStartLimitBurst=3\n[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=100ms\n",
    );
    const start = await cluster.cli(["start", join(dir, "flap.service")], cluster.endpoints(), 30_000);
    expect(start.code).toBe(1);
    const lu = await cluster.cli(["list-units", "--no-legend", "flap.service"]);
    expect(lu.stdout).toMatch(/^flap\.service\t+[0-9a-f]{8}\.\.\.\S*\t+failed\t+failed\n$/);
    const st = await cluster.cli(["status", "flap.service"], cluster.endpoint(other));
    expect(st.stdout).toMatch(/^ {3}Active: failed \(Result: start-limit-hit\) since /m);
    expect((await cluster.cli(["destroy", "flap.service"])).code).toBe(0);
  }, 40_000);

  it("names the machine when it cannot be reached (last: kills the unit's machine)", async () => {
    await cluster.kill(owner);
    const r = await cluster.cli(["status", UNIT, "--request-timeout=2s"], cluster.endpoint(other), 20_000);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(new RegExp(`machine [0-9a-f]{8}\\.\\.\\..*node ${owner}\\) is unreachable`));
    const j = await cluster.cli(["journal", UNIT, "--request-timeout=2s"], cluster.endpoint(other), 20_000);
    expect(j.code).toBe(3);
    expect(j.stderr).toContain(`node ${owner}`);
  }, 30_000);
});
