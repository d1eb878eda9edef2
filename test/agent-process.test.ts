import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Agent, type UnitState } from "../src/agent/agent.ts";
import {
  compileExec,
  expandEnvArgv,
  expandEnvInWord,
  parseEnvironment,
  parseEnvironmentFile,
  parseTimespan,
} from "../src/agent/exec-line.ts";
import { Journal } from "../src/agent/journal.ts";
import { groupAlive, processStartTime } from "../src/agent/proc.ts";
import { loadServiceConfig } from "../src/agent/service-config.ts";
import { agentHarness, alive, SLEEPER, spec } from "./support/agent.ts";

// ---------------------------------------------------------------------------------------------------------------
// Harness

const { tmp, makeAgent, killAfterTest, waitFor, waitState } = agentHarness({
  tmpPrefix: "berth-agent-",
  waitMs: 5000,
});

function script(dir: string, name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

function stateOf(agent: Agent, name: string): UnitState | undefined {
  return agent.states().find((s) => s.name === name);
}

// ---------------------------------------------------------------------------------------------------------------
// Pure parts

describe("exec lines and environment (pure)", () => {
  it("expands $VAR as separate words and ${VAR} inside a word, as systemd does", () => {
    const env = { A: "one two", B: "x y" };
    expect(expandEnvArgv(["/bin/echo", "$A", "pre${B}post", "$$A", "$UNSET", "${UNSET}"], env)).toEqual([
      "/bin/echo",
      "one",
      "two",
      "prex ypost",
      "$A",
      "",
    ]);
    expect(expandEnvInWord("${A:-d}|${U:-d}|${A:+alt}|${U:+alt}", { A: "a" })).toBe("a|d|alt|");
  });

  it("expands specifiers per word after splitting, and keeps the raw command", () => {
    const c = compileExec('-/bin/echo %n "%i x" %H %m', {
      unitName: "web@3.service",
      hostname: "h",
      machineId: "m",
    });
    expect(c.ignoreFailure).toBe(true);
    expect(c.argv).toEqual(["/bin/echo", "web@3.service", "3 x", "h", "m"]);
    expect(c.command).toBe('-/bin/echo %n "%i x" %H %m');
  });

  it("parses Environment= and environment files", () => {
    const { env, warnings } = parseEnvironment(['A=1 "B=two words"', "C=%i", "bad"], {
      unitName: "a@z.service",
    });
    expect(env).toEqual({ A: "1", B: "two words", C: "z" });
    expect(warnings).toHaveLength(1);
    expect(parseEnvironmentFile('# c\nX=1\nexport Y = \'a b\'\nZ="q\\"x"\n; c\nW=  v  \n')).toEqual({
      X: "1",
      Y: "a b",
      Z: 'q"x',
      W: "v",
    });
  });

  it("parses systemd time spans", () => {
    expect(parseTimespan("90")).toBe(90_000);
    expect(parseTimespan("500ms")).toBe(500);
    expect(parseTimespan("1min 30s")).toBe(90_000);
    expect(parseTimespan("2h30min")).toBe(9_000_000);
    expect(parseTimespan("infinity")).toBe(Number.POSITIVE_INFINITY);
    expect(() => parseTimespan("5 parsecs")).toThrow();
  });

  it("loads defaults and refuses what systemd refuses", () => {
    const c = loadServiceConfig("a.service", "[Service]\nExecStart=/bin/true\n", {
      hostname: "h",
      machineId: "m",
    });
    expect(c).toMatchObject({
      type: "simple",
      restart: "no",
      restartMs: 100,
      timeoutStopMs: 90_000,
      startLimitBurst: 5,
      startLimitIntervalMs: 10_000,
    });
    const bad = (t: string) => expect(() => loadServiceConfig("a.service", t, {})).toThrow();
    bad("[Service]\nType=simple\n");
    bad("[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n");
    bad("[Service]\nExecStart=/bin/a\nRestart=sometimes\n");
    bad("[Service]\nExecStart=/bin/a 'unbalanced\n");
    bad("[Container]\nImage=busybox\n");
  });

  it("journal rotates at its size bound and tails across the rotation", async () => {
    const j = new Journal(join(tmp(), "j"), { maxBytes: 2000 });
    for (let i = 0; i < 100; i++) j.append({ at: i, unit: "u.service", stream: "stdout", text: `line ${i}` });
    j.flush();
    const tail = await j.tail("u.service", 30);
    expect(tail.map((l) => l.text)).toEqual(Array.from({ length: 30 }, (_, i) => `line ${70 + i}`));
    expect(readFileSync(`${j.pathOf("u.service")}.1`, "utf8").length).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Real processes

describe("Agent with real processes", () => {
  it("runs a simple unit: active/running with a main pid, memory, journal lines", async () => {
    const { agent } = makeAgent();
    agent.reconcile([
      spec(
        "hello.service",
        `[Unit]\nDescription=Hello\n[Service]\nExecStart=/bin/sh -c 'echo out-line; echo err-line >&2; exec sleep 30'\n`,
      ),
    ]);
    const s = await waitState(agent, "hello.service", "active", "running");
    expect(s.mainPid).toBeGreaterThan(0);
    expect(alive(s.mainPid!)).toBe(true);
    expect(s.load).toBe("loaded");
    await waitFor("memory", () => (stateOf(agent, "hello.service")?.memoryBytes ?? 0) > 0, 2000);
    let j = await agent.journal("hello.service", { lines: 50 });
    for (let i = 0; i < 50 && !j.some((l) => l.stream === "stderr"); i++) {
      await new Promise((r) => setTimeout(r, 20));
      j = await agent.journal("hello.service", { lines: 50 });
    }
    expect(j.find((l) => l.stream === "stdout")?.text).toBe("out-line");
    expect(j.find((l) => l.stream === "stderr")?.text).toBe("err-line");
    expect(j.some((l) => l.stream === "berth" && l.text === "Starting Hello...")).toBe(true);
    expect(j.some((l) => l.stream === "berth" && l.text === "Started Hello.")).toBe(true);
    expect(j.every((l) => typeof l.at === "number" && l.at > 0)).toBe(true);
    const tail = await agent.journal("hello.service", { lines: 1 });
    expect(tail).toHaveLength(1);
    const pid = s.mainPid!;
    await agent.stop();
    expect(alive(pid)).toBe(false);
    expect(stateOf(agent, "hello.service")).toMatchObject({ active: "inactive", sub: "dead", mainPid: null });
    const after = await agent.journal("hello.service", { lines: 3 });
    expect(after.map((l) => l.text)).toContain("Stopped Hello.");
  });

  it("ExecStartPre: '-' failures are ignored, others fail the unit with code/status recorded", async () => {
    const { agent } = makeAgent();
    agent.reconcile([
      spec("pre-ok.service", `[Service]\nExecStartPre=-/bin/sh -c 'exit 3'\nExecStart=${SLEEPER}\n`),
      spec(
        "pre-bad.service",
        `[Service]\nExecStartPre=/bin/true\nExecStartPre=/bin/sh -c 'exit 1'\nExecStart=${SLEEPER}\n`,
      ),
    ]);
    const ok = await waitState(agent, "pre-ok.service", "active", "running");
    expect(ok.steps.find((s) => s.step === "ExecStartPre")).toMatchObject({ code: "exited", status: 3 });
    const bad = await waitState(agent, "pre-bad.service", "failed", "failed");
    // One step per Exec line (status shows a Process: line for each): the second ExecStartPre failed.
    const pres = bad.steps.filter((s) => s.step === "ExecStartPre");
    // As systemctl status shows them: the argv joined by spaces.
    expect(pres.map((s) => s.command)).toEqual(["/bin/true", "/bin/sh -c exit 1"]);
    const pre = pres[1]!;
    expect(pre).toMatchObject({ code: "exited", status: 1 });
    expect(pre.pid).toBeGreaterThan(0);
    expect(bad.steps.find((s) => s.step === "ExecStart")).toBeUndefined();
    expect(bad.mainPid).toBeNull();
    const j = (await agent.journal("pre-bad.service", { lines: 20 })).map((l) => l.text);
    expect(j).toContain("pre-bad.service: Control process exited, code=exited, status=1/FAILURE");
    expect(j).toContain("pre-bad.service: Failed with result 'exit-code'.");
  });

  it("Restart=on-failure: kill -9 of the main pid restarts it within RestartSec with a new pid", async () => {
    const { agent } = makeAgent();
    agent.reconcile([
      spec("r.service", `[Service]\nExecStart=${SLEEPER}\nRestart=on-failure\nRestartSec=200ms\n`),
    ]);
    const s1 = await waitState(agent, "r.service", "active", "running");
    const t0 = Date.now();
    process.kill(s1.mainPid!, "SIGKILL");
    await waitState(agent, "r.service", "activating", "auto-restart", 2000);
    const s2 = await waitFor(
      "restart",
      () => {
        const s = stateOf(agent, "r.service");
        return s?.sub === "running" && s.mainPid !== s1.mainPid ? s : undefined;
      },
      3000,
    );
    expect(Date.now() - t0).toBeGreaterThanOrEqual(180);
    expect(s2.restarts).toBe(1);
    const j = (await agent.journal("r.service", { lines: 30 })).map((l) => l.text);
    expect(j).toContain("r.service: Main process exited, code=killed, status=9/KILL");
    expect(j).toContain("r.service: Scheduled restart job, restart counter is at 1.");
  });

  it("Restart=on-failure does not restart a clean exit; Restart=always does", async () => {
    const { agent } = makeAgent();
    agent.reconcile([
      spec(
        "clean.service",
        `[Service]\nExecStart=/bin/sh -c 'sleep 0.1; exit 0'\nRestart=on-failure\nRestartSec=50ms\n`,
      ),
      spec(
        "always.service",
        `[Service]\nExecStart=/bin/sh -c 'sleep 0.1; exit 0'\nRestart=always\nRestartSec=50ms\n`,
      ),
    ]);
    await waitState(agent, "clean.service", "active", "running");
    const clean = await waitState(agent, "clean.service", "inactive", "dead");
    expect(clean.restarts).toBe(0);
    await waitFor("always restarts", () => (stateOf(agent, "always.service")?.restarts ?? 0) >= 2, 4000);
    await new Promise((r) => setTimeout(r, 300));
    expect(stateOf(agent, "clean.service")).toMatchObject({ active: "inactive", sub: "dead", restarts: 0 });
  });

  it("hits the start limit: failed/failed with result start-limit-hit (systemd's states)", async () => {
    const { agent } = makeAgent();
    agent.reconcile([
      spec(
        "flap.service",
        `[Unit]\nStartLimitIntervalSec=10s\nStartLimitBurst=3\n[Service]\nExecStart=/bin/sh -c 'exit 1'\nRestart=always\nRestartSec=20ms\n`,
      ),
    ]);
    const s = await waitState(agent, "flap.service", "failed", "failed", 4000);
    expect(s.result).toBe("start-limit-hit");
    expect(s.restarts).toBe(3);
    const j = (await agent.journal("flap.service", { lines: 50 })).map((l) => l.text);
    expect(j.filter((l) => l === "Starting flap.service...")).toHaveLength(3);
    expect(j).toContain("flap.service: Start request repeated too quickly.");
  });

  it("ExecStop runs on stop, with $MAINPID", async () => {
    const { agent, dir } = makeAgent();
    const marker = join(dir, "stopped");
    const s0 = spec(
      "st.service",
      `[Service]\nExecStart=${SLEEPER}\nExecStop=/bin/sh -c 'echo $MAINPID > ${marker}; kill $MAINPID'\nExecStopPost=/bin/sh -c 'echo post-$SERVICE_RESULT >> ${marker}'\n`,
    );
    agent.reconcile([s0]);
    const s = await waitState(agent, "st.service", "active", "running");
    // desired "loaded" (same hash) stops it
    agent.reconcile([{ ...s0, desired: "loaded" }]);
    await waitState(agent, "st.service", "inactive", "dead");
    expect(readFileSync(marker, "utf8")).toBe(`${s.mainPid}\npost-success\n`);
    expect(alive(s.mainPid!)).toBe(false);
    expect(stateOf(agent, "st.service")!.steps.map((x) => x.step)).toEqual([
      "ExecStart",
      "ExecStop",
      "ExecStopPost",
    ]);
  });

  it("without ExecStop: SIGTERM to the group, SIGKILL after TimeoutStopSec", async () => {
    const { agent, dir } = makeAgent();
    const sh = script(
      dir,
      "stubborn.sh",
      "trap '' TERM\nsleep 30 &\necho child $!\nwhile :; do sleep 0.05; done",
    );
    const obedient = script(dir, "obedient.sh", "sleep 30 &\necho child $!\nwait");
    agent.reconcile([
      spec("stubborn.service", `[Service]\nExecStart=${sh}\nTimeoutStopSec=400ms\n`),
      spec("obedient.service", `[Service]\nExecStart=${obedient}\nTimeoutStopSec=5s\n`),
    ]);
    const a = await waitState(agent, "stubborn.service", "active", "running");
    const b = await waitState(agent, "obedient.service", "active", "running");
    const childOf = async (unit: string) => {
      for (let i = 0; i < 100; i++) {
        const l = (await agent.journal(unit, { lines: 20 })).find((x) => x.text.startsWith("child "));
        if (l) return Number(l.text.slice(6));
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error("no child line");
    };
    const ca = await childOf("stubborn.service");
    const cb = await childOf("obedient.service");
    const t0 = Date.now();
    agent.reconcile([
      spec("stubborn.service", `[Service]\nExecStart=${sh}\nTimeoutStopSec=400ms\n`, "loaded"),
      spec("obedient.service", `[Service]\nExecStart=${obedient}\nTimeoutStopSec=5s\n`, "loaded"),
    ]);
    await waitState(agent, "obedient.service", "inactive", "dead", 3000);
    expect(Date.now() - t0).toBeLessThan(1500);
    const st = await waitState(agent, "stubborn.service", "failed", "failed", 3000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(380);
    expect(st.steps[0]).toMatchObject({ code: "killed", status: "KILL" });
    for (const pid of [a.mainPid!, b.mainPid!, ca, cb]) expect(alive(pid)).toBe(false);
    const j = (await agent.journal("stubborn.service", { lines: 20 })).map((l) => l.text);
    expect(j).toContain("stubborn.service: State 'stop-sigterm' timed out. Killing.");
    expect(j).toContain("stubborn.service: Failed with result 'timeout'.");
  });

  it("Type=oneshot: ExecStart lines in order; RemainAfterExit decides active/exited or inactive/dead", async () => {
    const { agent, dir } = makeAgent();
    const out = join(dir, "order");
    agent.reconcile([
      spec(
        "one.service",
        `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'sleep 0.2; echo a >> ${out}'\nExecStart=/bin/sh -c 'echo b >> ${out}'\n`,
      ),
      spec("remain.service", `[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n`),
      spec("onefail.service", `[Service]\nType=oneshot\nExecStart=/bin/false\nExecStart=/bin/true\n`),
    ]);
    await waitState(agent, "one.service", "activating", "start");
    await waitState(agent, "one.service", "inactive", "dead");
    expect(readFileSync(out, "utf8")).toBe("a\nb\n");
    await waitState(agent, "remain.service", "active", "exited");
    const f = await waitState(agent, "onefail.service", "failed", "failed");
    expect(f.steps.find((s) => s.step === "ExecStart")).toMatchObject({ code: "exited", status: 1 });
  });

  it("Environment=, EnvironmentFile=, $VAR/${VAR}, %n/%i and WorkingDirectory=", async () => {
    const { agent, dir } = makeAgent();
    const envFile = join(dir, "env");
    writeFileSync(envFile, "FROMFILE='file value'\nB=overridden\n");
    const wd = join(dir, "wd");
    mkdirSync(wd);
    const out = join(dir, "out");
    agent.reconcile([
      spec(
        "env@inst.service",
        [
          "[Service]",
          "Type=oneshot",
          `Environment="A=one two" B=b`,
          "Environment=UNIT=%n",
          `EnvironmentFile=${envFile}`,
          `EnvironmentFile=-${join(dir, "missing")}`,
          `WorkingDirectory=${wd}`,
          `ExecStart=/bin/sh -c 'printf "%%s|" "$#" "$0" "$1" "$FROMFILE" "$B" "$UNIT" "$(pwd)" > ${out}' $A \${A}x %i`,
        ].join("\n"),
      ),
      spec(
        "envbad.service",
        `[Service]\nType=oneshot\nEnvironmentFile=${join(dir, "missing")}\nExecStart=/bin/true\n`,
      ),
    ]);
    await waitState(agent, "env@inst.service", "inactive", "dead");
    // $A splits into "one" "two" (argv $0 and $1 of sh -c), ${A}x stays one word, %i is "inst"
    expect(readFileSync(out, "utf8")).toBe(`3|one|two|file value|overridden|env@inst.service|${wd}|`);
    const bad = await waitState(agent, "envbad.service", "failed", "failed");
    expect(bad.steps).toEqual([]);
    const j = (await agent.journal("envbad.service", { lines: 10 })).map((l) => l.text);
    expect(j).toContain("envbad.service: Failed with result 'resources'.");
  });

  it("a changed hash restarts the unit; a unit removed from reconcile is stopped and forgotten", async () => {
    const { agent } = makeAgent();
    const text = `[Service]\nExecStart=${SLEEPER}\nRestart=always\n`;
    agent.reconcile([spec("a.service", text), spec("b.service", text)]);
    const a1 = await waitState(agent, "a.service", "active", "running");
    const b1 = await waitState(agent, "b.service", "active", "running");
    agent.reconcile([spec("a.service", text), spec("b.service", text)]); // idempotent
    await new Promise((r) => setTimeout(r, 100));
    expect(stateOf(agent, "a.service")!.mainPid).toBe(a1.mainPid);
    agent.reconcile([spec("a.service", `${text}Environment=X=1\n`, "launched", "h2")]);
    const a2 = await waitFor(
      "new hash running",
      () => {
        const s = stateOf(agent, "a.service");
        return s?.hash === "h2" && s.sub === "running" ? s : undefined;
      },
      3000,
    );
    expect(a2.mainPid).not.toBe(a1.mainPid);
    expect(alive(a1.mainPid!)).toBe(false);
    await waitFor("b forgotten", () => stateOf(agent, "b.service") === undefined, 3000);
    expect(alive(b1.mainPid!)).toBe(false);
  });

  it("a malformed unit gives load:error and does not throw", async () => {
    const { agent } = makeAgent();
    expect(() =>
      agent.reconcile([
        spec("bad.service", "[Service\nExecStart=/bin/true\n"),
        spec("noexec.service", "[Service]\nType=simple\n"),
        spec("bad name", "[Service]\nExecStart=/bin/true\n"),
        spec("quote.service", "[Service]\nExecStart=/bin/echo 'oops\n"),
        spec("spec.service", "[Service]\nExecStart=/bin/echo %z\n"),
      ]),
    ).not.toThrow();
    await agent.settled();
    const states = agent.states();
    expect(states).toHaveLength(5);
    for (const s of states) {
      expect(s.load).toBe("error");
      expect(s.active).toBe("inactive");
      expect(s.error).toBeTruthy();
    }
    expect(stateOf(agent, "noexec.service")!.error).toMatch(/no ExecStart/);
  });

  it("Agent.stop() leaves no process running", async () => {
    const { agent, dir } = makeAgent();
    const tree = script(dir, "tree.sh", "sleep 30 &\nsleep 30 &\nwhile :; do sleep 0.05; done");
    agent.reconcile([
      spec("t1.service", `[Service]\nExecStart=${tree}\nRestart=always\n`),
      spec("t2.service", `[Service]\nExecStart=${SLEEPER}\nRestart=on-failure\n`),
      spec("t3.service", `[Service]\nExecStartPre=/bin/sleep 30\nExecStart=${SLEEPER}\n`),
    ]);
    const s1 = await waitState(agent, "t1.service", "active", "running");
    const s2 = await waitState(agent, "t2.service", "active", "running");
    const pre = await waitFor("pre pid", () => stateOf(agent, "t3.service")?.steps[0]?.pid, 3000);
    await new Promise((r) => setTimeout(r, 100));
    await agent.stop();
    for (const pid of [s1.mainPid!, s2.mainPid!, pre]) expect(alive(pid)).toBe(false);
    expect(groupAlive(s1.mainPid!)).toBe(false);
    for (const s of agent.states()) expect(["inactive", "failed"]).toContain(s.active);
  });

  it("TimeoutStartSec= kills a hanging ExecStartPre and fails with result timeout", async () => {
    const { agent } = makeAgent();
    agent.reconcile([
      spec(
        "slow.service",
        `[Service]\nTimeoutStartSec=300ms\nTimeoutStopSec=300ms\nExecStartPre=/bin/sleep 30\nExecStart=${SLEEPER}\n`,
      ),
    ]);
    const pre = await waitFor("pre pid", () => stateOf(agent, "slow.service")?.steps[0]?.pid, 3000);
    const s = await waitState(agent, "slow.service", "failed", "failed", 3000);
    expect(s.steps[0]).toMatchObject({ step: "ExecStartPre", code: "killed", status: "TERM" });
    expect(alive(pre)).toBe(false);
    const j = (await agent.journal("slow.service", { lines: 10 })).map((l) => l.text);
    expect(j).toContain("slow.service: start-pre operation timed out. Terminating.");
    expect(j).toContain("slow.service: Failed with result 'timeout'.");
  });

  it.runIf(process.getuid?.() === 0)("User= runs the processes as that user", async () => {
    const { agent, dir } = makeAgent();
    const out = join(dir, "uid");
    chmodSync(dir, 0o777);
    agent.reconcile([
      spec(
        "user.service",
        `[Service]\nType=oneshot\nUser=nobody\nExecStart=/bin/sh -c 'id -u > ${out}; echo $USER >> ${out}'\n`,
      ),
    ]);
    await waitState(agent, "user.service", "inactive", "dead");
    const uid = readFileSync("/etc/passwd", "utf8")
      .split("\n")
      .find((l) => l.startsWith("nobody:"))!
      .split(":")[2];
    expect(readFileSync(out, "utf8")).toBe(`${uid}\nnobody\n`);
    agent.reconcile([spec("nouser.service", `[Service]\nUser=no-such-user-x\nExecStart=/bin/true\n`)]);
    const s = await waitState(agent, "nouser.service", "failed", "failed");
    expect(s.steps[0]).toMatchObject({ code: "exited", status: 217 });
  });

  it("followJournal streams live lines until unsubscribed", async () => {
    const { agent } = makeAgent();
    const seen: string[] = [];
    const off = agent.followJournal("f.service", (l) => seen.push(`${l.stream}:${l.text}`));
    agent.reconcile([spec("f.service", `[Service]\nExecStart=/bin/sh -c 'echo hi; exec sleep 30'\n`)]);
    await waitFor("live line", () => seen.includes("stdout:hi"), 3000);
    expect(seen[0]).toBe("berth:Starting f.service...");
    off();
    const n = seen.length;
    agent.reconcile([]);
    await agent.settled();
    expect(seen.length).toBe(n);
  });
});

describe("taking over many units", () => {
  it("starts them a time budget per turn: the event loop turns (lease renewals are read) while they start", async () => {
    const { agent } = makeAgent();
    const n = 400; // more than one turn's budget (100 ms) can start, on any machine
    agent.reconcile(
      Array.from({ length: n }, (_, i) => spec(`many${i}.service`, "[Service]\nExecStart=/bin/sleep 600\n")),
    );
    const running = () => agent.states().filter((s) => s.mainPid !== null).length;
    // Nothing was spawned inside reconcile() itself, and a timer set now runs long before the last one starts.
    expect(running()).toBe(0);
    const atFirstTimer = await new Promise<number>((r) => setTimeout(() => r(running()), 0));
    expect(atFirstTimer).toBeLessThan(n);
    await waitFor("every unit running", () => running() === n, 30_000);
  }, 40_000);
});

describe("agent restarts", () => {
  it("kills the process groups a crashed agent left behind, and only those", async () => {
    const dir = tmp();
    const first = new Agent({ machineId: "m1abc", hostname: "node-1", dataDir: join(dir, "data") });
    first.reconcile([spec("left.service", "[Service]\nExecStart=/bin/sh -c 'sleep 60 & exec sleep 60'\n")]);
    const s = await waitFor("main pid", () => stateOf(first, "left.service")?.mainPid, 3000);
    killAfterTest(s);
    await new Promise((r) => setTimeout(r, 20)); // the record is written once per event-loop turn
    // No first.stop(): the agent "crashed". A new agent on the same data directory cleans up.
    const second = makeAgent(dir).agent;
    expect(second.states()).toEqual([]);
    await waitFor("leftover group gone", () => !groupAlive(s), 3000);
    expect(alive(s)).toBe(false);
  });

  it("holds a unit a crashed supervisor left running until its first reconcile settles it (status: active)", async () => {
    const dir = tmp();
    const dataDir = join(dir, "data");
    mkdirSync(dataDir, { recursive: true });
    // What a supervisor that crashed recorded of a running service whose output went to FIFOs (adoptable).
    const child = spawn("sleep", ["60"], { detached: true, stdio: "ignore" });
    const pid = child.pid!;
    killAfterTest(pid);
    const startTime = processStartTime(pid);
    writeFileSync(
      join(dataDir, "process-groups.json"),
      JSON.stringify({ [pid]: { unit: "left.service", startTime } }),
    );
    writeFileSync(
      join(dataDir, "unit-mains.json"),
      JSON.stringify({
        "left.service": {
          hash: "h1",
          pid,
          pgid: pid,
          startTime,
          output: { stdout: "/none/1", stderr: "/none/2" },
        },
      }),
    );
    const { agent } = makeAgent(dir, { keepLeftovers: true });
    // Asked before the first reconcile (the node settling a handoff): still here, not stopped.
    expect(await agent.status("left.service")).toMatchObject({ active: "active", mainPid: pid });
    expect(alive(pid)).toBe(true);
    agent.reconcile([]);
    expect(await agent.status("left.service")).toBeNull();
    await waitFor("the leftover killed", () => !alive(pid), 3000);
  });
});
