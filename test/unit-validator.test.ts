// One validator (issue 19, point 5): `berth verify` refuses, with file and line, everything the agent refuses, and
// accepts fleet's own unit files and ordinary systemd keys (with a warning for what Berth ignores). The corpus is
// test/fixtures/units: bad/ (each file's expected message in unit-corpus.ts), good/ and fleet/ (fleet's examples
// and docs).
import { readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileUnit } from "../src/agent/unit-check.ts";
import { EXIT } from "../src/cli/exit-codes.ts";
import { instanceName, parseUnitName } from "../src/unit/unit-file.ts";
import { BERTH_KEYS } from "../src/unit/unit-keys.ts";
import { agentHarness, spec } from "./support/agent.ts";
import { berthInProcess } from "./support/cli-in-process.ts";
import { BAD, base, corpus, FIXTURES } from "./support/unit-corpus.ts";

const berth = (...args: string[]) => berthInProcess(args);

const expectedError = (path: string): string => {
  const [line, message] = BAD[base(path)]!;
  return `${line > 0 ? `${path}:${line}` : path}: ${message}`;
};

describe("berth verify refuses what the agent would refuse, with file and line", () => {
  it("the bad corpus: one message per file, as listed", async () => {
    const bad = corpus("bad");
    expect(bad.map(base).sort()).toEqual(Object.keys(BAD).sort());
    const r = await berth("verify", ...bad);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stdout).toBe("");
    expect(r.stderr.split("\n").filter((l) => !l.includes(": warning: "))).toEqual([
      ...bad.map(expectedError),
      "",
    ]);
  });
});

describe("fleet's unit files and ordinary systemd keys are accepted", () => {
  it("every file of fleet's examples, docs and functional fixtures verifies ok", async () => {
    const fleet = corpus("fleet");
    expect(fleet.length).toBeGreaterThan(30);
    const r = await berth("verify", ...fleet);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(fleet.map((f) => `${f}: ok\n`).join(""));
    expect(r.code).toBe(EXIT.ok);
  });

  it("keys systemd knows but Berth ignores: ok, with a warning per key and its line", async () => {
    const good = corpus("good");
    const r = await berth("verify", ...good);
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toBe(good.map((f) => `${f}: ok\n`).join(""));
    const myapp = join(FIXTURES, "good", "myapp.service");
    const ignored = (key: string, line: number) =>
      `${myapp}:${line}: warning: ${key}= is a systemd option Berth does not implement, ignoring it`;
    for (const w of [
      ignored("LimitNOFILE", 11),
      ignored("CPUQuota", 12),
      ignored("MemoryLimit", 13),
      ignored("Nice", 14),
      ignored("SyslogIdentifier", 21),
    ])
      expect(r.stderr).toContain(w);
    // [Install] and the keys Berth implements raise nothing.
    expect(r.stderr).not.toMatch(/WantedBy|TimeoutStartSec|ExecStartPre|RestartSec/);
    // Timers, sockets and paths run now: they verify without a warning but for the keys Berth ignores.
    expect(r.stderr).not.toContain("backup.timer");
    expect(r.stderr).not.toContain("spool.path");
    expect(r.stderr).toContain(
      `${join(FIXTURES, "good", "web.socket")}:7: warning: ReusePort= is a systemd option Berth does not implement, ignoring it`,
    );
    for (const key of ["LimitNOFILE", "CPUQuota", "Nice"]) expect(BERTH_KEYS.Service).not.toContain(key);
  });
});

describe("the agent refuses exactly what verify refuses", () => {
  const { makeAgent, waitFor } = agentHarness({ tmpPrefix: "berth-validator-", waitMs: 5000 });

  it("compileUnit (the agent's loader) accepts every good .service file, instances for templates", () => {
    for (const f of [...corpus("fleet"), ...corpus("good")].filter((f) => f.endsWith(".service"))) {
      const name = parseUnitName(base(f)).isTemplate ? instanceName(base(f), "1") : base(f);
      const text = readFileSync(f, "utf8");
      expect(() => compileUnit(name, text, { hostname: "h", machineId: "m" }), f).not.toThrow();
    }
  });

  it("a running agent reports each bad unit with the same reason and line as verify", async () => {
    const { agent } = makeAgent();
    // [X-Fleet] is the scheduler's: the cluster refuses those at submit (unit-service.ts), the agent never sees them.
    const bad = corpus("bad").filter((f) => f.endsWith(".service") && !base(f).startsWith("xfleet-"));
    agent.reconcile(bad.map((f) => spec(base(f), readFileSync(f, "utf8"))));
    await agent.settled();
    await waitFor("all units listed", () => agent.states().length === bad.length, 5000);
    for (const f of bad) {
      const [line, message] = BAD[base(f)]!;
      const s = agent.state(base(f))!;
      expect(s.load, f).toBe("error");
      expect(s.error, f).toBe(line > 0 ? `line ${line}: ${message}` : message);
    }
    const j = (await agent.journal("no-execstart.service", { lines: 5 })).map((l) => l.text);
    // The unit is named once, with the line: as verify says it.
    expect(j).toContain(`no-execstart.service:4: ${BAD["no-execstart.service"]![1]}`);
  });

  it("%s (the shell of the user running the service manager) works in a unit that runs", async () => {
    const { agent } = makeAgent();
    // systemd's get_shell: $SHELL when absolute, /bin/sh for root, else the passwd entry.
    const env = process.env.SHELL;
    const shell = env?.startsWith("/") ? env : userInfo().uid === 0 ? "/bin/sh" : userInfo().shell!;
    const text = `[Service]\nType=oneshot\nExecStart=%s -c 'echo "ran by $0 as %u in %t"'\n`;
    agent.reconcile([spec("shell.service", text)]);
    const want = `ran by ${shell} as ${userInfo().username} in /run`;
    let lines: string[] = [];
    for (let i = 0; i < 250 && !lines.includes(want); i++) {
      await new Promise((r) => setTimeout(r, 20));
      lines = (await agent.journal("shell.service", { lines: 20 })).map((l) => l.text);
    }
    expect(lines).toContain(want);
    expect(agent.state("shell.service")?.load).toBe("loaded");
  });
});
