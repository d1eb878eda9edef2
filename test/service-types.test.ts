// Type=forking and the parts of Type=notify that need no notify socket, with the agent in this process (Node):
// a real daemon that double-forks and is found by its PID file or, without one, in the unit's cgroup; a notify
// unit refused at start where the runtime has no notify socket (under Node: see src/agent/notify-socket.ts).
// The notify socket itself is tested through the compiled binary (service-notify.test.ts).
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { guessMainPid } from "../src/agent/main-pid.ts";
import { notifyFields } from "../src/agent/notify-socket.ts";
import { loadServiceConfig } from "../src/agent/service-config.ts";
import { detectPlacement } from "../src/agent/unit-cgroup.ts";
import { checkUnit } from "../src/agent/unit-check.ts";
import { agentHarness, alive, spec } from "./support/agent.ts";

const { tmp, makeAgent, killAfterTest, waitFor, waitState } = agentHarness({
  tmpPrefix: "berth-svctypes-",
  waitMs: 5000,
});

/** A script that starts a daemon in its own session (double fork) writing its PID to `pidOut`, then exits. */
function daemonizing(pidOut: string): string {
  const path = join(tmp(), "daemonize");
  writeFileSync(
    path,
    `#!/bin/sh\nsetsid /bin/sh -c 'echo $$ > ${pidOut}; exec sleep 1000' </dev/null >/dev/null 2>&1 &\nsleep 0.1\n`,
  );
  chmodSync(path, 0o755);
  return path;
}

const pidIn = (path: string): number => Number(readFileSync(path, "utf8").trim());

describe("service types: configuration (pure)", () => {
  const load = (t: string) => loadServiceConfig("a.service", t, {});

  it("accepts forking and notify, refuses dbus with its reason, defaults NotifyAccess= as systemd does", () => {
    expect(load("[Service]\nType=forking\nExecStart=/bin/d\nPIDFile=d.pid\n")).toMatchObject({
      type: "forking",
      pidFile: "/run/d.pid",
      guessMainPid: true,
      notifyAccess: "none",
    });
    expect(load("[Service]\nType=notify\nExecStart=/bin/d\n")).toMatchObject({
      type: "notify",
      notifyAccess: "main",
      watchdogMs: 0,
    });
    expect(load("[Service]\nExecStart=/bin/d\nWatchdogSec=2\n")).toMatchObject({
      notifyAccess: "main",
      watchdogMs: 2000,
      watchdogSignal: "SIGABRT",
    });
    expect(() => load("[Service]\nType=dbus\nBusName=a.b\nExecStart=/bin/d\n")).toThrow(
      /Type=dbus is not supported/,
    );
    expect(() => load("[Service]\nType=notify\nNotifyAccess=none\nExecStart=/bin/d\n")).toThrow(/never/);
    expect(() => load("[Service]\nType=notify\nNotifyAccess=some\nExecStart=/bin/d\n")).toThrow(
      /NotifyAccess=/,
    );
    // `berth verify`/submit share the check: no "does not implement" warning for the keys acted on.
    const { warnings } = checkUnit(
      "a.service",
      "[Service]\nType=notify\nNotifyAccess=all\nWatchdogSec=1\nWatchdogSignal=SIGKILL\nExecStart=/bin/d\n",
      {},
    );
    expect(warnings).toEqual([]);
  });

  it("guesses the main PID as the one process whose parent is outside the group", () => {
    const parents = new Map([
      [10, 1],
      [11, 10],
      [12, 11],
    ]);
    const parentOf = (p: number) => parents.get(p) ?? null;
    expect(guessMainPid([10, 11, 12], parentOf)).toBe(10);
    parents.set(20, 1);
    expect(guessMainPid([10, 11, 12, 20], parentOf)).toBeNull();
    expect(notifyFields("READY=1\nSTATUS=a=b\nbad\nSTATUS=c")).toEqual(
      new Map([
        ["READY", "1"],
        ["STATUS", "c"],
      ]),
    );
  });
});

describe("Type=forking with real daemons", () => {
  it("takes the daemon in PIDFile= as the main process, and the unit ends when it does", async () => {
    const dir = tmp();
    const pidFile = join(dir, "d.pid");
    const { agent } = makeAgent();
    const unit = `[Service]\nType=forking\nPIDFile=${pidFile}\nExecStart=${daemonizing(pidFile)}\n`;
    agent.reconcile([spec("f.service", unit)]);
    const s = await waitState(agent, "f.service", "active", "running");
    const daemon = pidIn(pidFile);
    killAfterTest(daemon);
    expect(s.mainPid).toBe(daemon);
    expect(s.steps.find((x) => x.step === "ExecStart")).toMatchObject({ code: "exited", status: 0 });
    process.kill(daemon, "SIGTERM");
    await waitState(agent, "f.service", "inactive", "dead");
    const lines = (await agent.journalStore.tail("f.service", 20)).map((l) => l.text);
    expect(lines).toContain(
      `f.service: Main process ${daemon} is gone (not a child of Berth, its exit status is unknown).`,
    );
  });

  it("refuses a PID file naming no running process", async () => {
    const dir = tmp();
    const pidFile = join(dir, "d.pid");
    const { agent } = makeAgent();
    const unit = `[Service]\nType=forking\nPIDFile=${pidFile}\nExecStart=/bin/sh -c 'echo 999999999 > ${pidFile}'\n`;
    agent.reconcile([spec("g.service", unit)]);
    const s = await waitState(agent, "g.service", "failed");
    expect(s.result).toBe("resources");
  });

  it.runIf(detectPlacement() !== null)(
    "guesses the daemon from the unit's cgroup without PIDFile= (GuessMainPID=yes), and stop kills it",
    async () => {
      const dir = tmp();
      const out = join(dir, "d.pid");
      const { agent } = makeAgent();
      const unit = `[Service]\nType=forking\nExecStart=${daemonizing(out)}\n`;
      agent.reconcile([spec("h.service", unit)]);
      const s = await waitState(agent, "h.service", "active", "running");
      const daemon = pidIn(out);
      killAfterTest(daemon);
      expect(s.mainPid).toBe(daemon);
      agent.reconcile([spec("h.service", unit, "loaded")]);
      await waitState(agent, "h.service", "inactive", "dead");
      await waitFor("the daemon killed", () => !alive(daemon), 2000);
    },
  );
});

describe("Type=notify where the runtime has no notify socket", () => {
  it("fails the start with result 'resources' and says why", async () => {
    const { agent } = makeAgent();
    agent.reconcile([spec("n.service", "[Service]\nType=notify\nExecStart=/bin/sleep 1000\n")]);
    const s = await waitState(agent, "n.service", "failed");
    expect(s.result).toBe("resources");
    const lines = (await agent.journalStore.tail("n.service", 20)).map((l) => l.text);
    expect(lines.join("\n")).toMatch(/needs a notify socket, which only Berth's binary offers/);
  });
});
