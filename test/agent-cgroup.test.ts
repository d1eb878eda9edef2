// Unit cgroups (unit-cgroup.ts) with real processes: children that call setsid are still part of their unit.
// Which hierarchy is the host's: on the hybrid machines this project runs on, the controller-less cgroup2 at
// /sys/fs/cgroup/unified; the v1 freezer path and the fallback without cgroups are chosen by injecting a placement.
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Agent } from "../src/agent/agent.ts";
import { type CgroupPlacement, detectPlacement } from "../src/agent/unit-cgroup.ts";
import { agentHarness, alive, spec } from "./support/agent.ts";
import { agentCgroupBases } from "./support/cgroups.ts";

const { tmp, makeAgent, killAfterTest, waitFor, waitState } = agentHarness({
  tmpPrefix: "berth-cgroup-",
  waitMs: 5000,
});

const HOST = detectPlacement();

/** The v1 freezer and pids hierarchies at the node's own cgroup, where the host mounts them. */
function v1Placement(): Extract<CgroupPlacement, { kind: "v1" }> | null {
  const own = (ctrl: string): string | null => {
    const line = readFileSync("/proc/self/cgroup", "utf8")
      .split("\n")
      .find((l) => l.split(":")[1]?.split(",").includes(ctrl));
    const dir = `/sys/fs/cgroup/${ctrl}`;
    return line === undefined || !existsSync(join(dir, "cgroup.procs"))
      ? null
      : join(dir, line.split(":")[2]!);
  };
  const freezer = own("freezer");
  return freezer === null ? null : { kind: "v1", freezer, pids: own("pids") };
}

function script(dir: string, name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

/** The pid a unit's process wrote to `file`; the process is killed after the test whatever happens. */
async function pidIn(file: string): Promise<number> {
  const pid = await waitFor(
    file,
    () => (existsSync(file) ? Number(readFileSync(file, "utf8").trim()) || null : null),
    5000,
  );
  killAfterTest(pid); // a setsid child leads its own process group
  return pid;
}

/** Session id (field 6 of /proc/PID/stat). */
function sessionOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[3]);
}

/** A unit whose main process starts a child that leaves its session (setsid) and writes its pid to child.pid. */
function setsidUnit(dir: string, extra = ""): string {
  const main = script(
    dir,
    "main.sh",
    `setsid /bin/sh -c 'echo $$ > ${dir}/child.pid; exec sleep 1000' &\nexec sleep 1000`,
  );
  return `[Service]\nExecStart=${main}\n${extra}`;
}

describe("unit cgroups on this host", () => {
  it("finds the node's own cgroup in the hierarchy these machines offer (cgroup2, else the unified one)", () => {
    expect(HOST).not.toBeNull();
    expect(HOST!.kind).toBe("v2");
    const v2root = readFileSync("/proc/self/mountinfo", "utf8").includes(" /sys/fs/cgroup rw,")
      ? ""
      : "/unified";
    const own = readFileSync("/proc/self/cgroup", "utf8")
      .split("\n")
      .find((l) => l.startsWith("0::"))!
      .slice(3);
    if (existsSync("/sys/fs/cgroup/unified"))
      expect(HOST).toEqual({ kind: "v2", dir: join("/sys/fs/cgroup/unified", own) });
    else expect(HOST).toEqual({ kind: "v2", dir: join(`/sys/fs/cgroup${v2root}`, own) });
  });

  it("stop kills a child that called setsid, and removes the unit's group", async () => {
    const { agent, dir } = makeAgent();
    agent.reconcile([spec("escape.service", setsidUnit(dir))]);
    const s = await waitState(agent, "escape.service", "active", "running");
    const child = await pidIn(join(dir, "child.pid"));
    expect(sessionOf(child)).not.toBe(s.mainPid); // it left the main process's session and group
    const cg = agent.unitCgroup("escape.service")!;
    expect(cg.path).toBe(join(agentCgroupBases(HOST!, join(dir, "data"))[0]!, "escape.service"));
    await waitFor("child in the unit's cgroup", () => cg.pids().includes(child), 2000);
    expect(cg.pids()).toContain(s.mainPid);

    agent.reconcile([spec("escape.service", setsidUnit(dir), "loaded")]);
    await waitState(agent, "escape.service", "inactive", "dead");
    expect(alive(child)).toBe(false);
    expect(alive(s.mainPid!)).toBe(false);
    expect(existsSync(cg.path)).toBe(false);
    await agent.stop();
    // The agent's own directory goes with it.
    expect(existsSync(agentCgroupBases(HOST!, join(dir, "data"))[0]!)).toBe(false);
  });

  it("KillMode=control-group sends KillSignal= to every process, setsid children included", async () => {
    const { agent, dir } = makeAgent();
    const child = script(
      dir,
      "child.sh",
      `echo $$ > ${dir}/child.pid\ntrap 'echo child > ${dir}/child.got; exit 0' USR2\nwhile :; do sleep 0.05; done`,
    );
    const main = script(
      dir,
      "main.sh",
      `trap 'echo main > ${dir}/main.got; exit 0' USR2\nsetsid ${child} &\nwhile :; do sleep 0.05; done`,
    );
    const text = `[Service]\nExecStart=${main}\nKillMode=control-group\nKillSignal=SIGUSR2\n`;
    agent.reconcile([spec("sig.service", text)]);
    await waitState(agent, "sig.service", "active", "running");
    const pid = await pidIn(join(dir, "child.pid"));
    agent.reconcile([spec("sig.service", text, "loaded")]);
    await waitState(agent, "sig.service", "inactive", "dead"); // not failed: no timeout, no SIGKILL
    expect(readFileSync(join(dir, "main.got"), "utf8")).toBe("main\n");
    expect(readFileSync(join(dir, "child.got"), "utf8")).toBe("child\n");
    expect(alive(pid)).toBe(false);
  });

  it("KillMode=process signals the main process only: the rest stays in the unit's group", async () => {
    const { agent, dir } = makeAgent();
    const text = setsidUnit(dir, "KillMode=process\n");
    agent.reconcile([spec("proc.service", text)]);
    await waitState(agent, "proc.service", "active", "running");
    const child = await pidIn(join(dir, "child.pid"));
    const cg = agent.unitCgroup("proc.service")!;
    agent.reconcile([spec("proc.service", text, "loaded")]);
    await waitState(agent, "proc.service", "inactive", "dead");
    expect(alive(child)).toBe(true);
    expect(cg.pids()).toEqual([child]);
    // What a later supervisor uses: freeze, kill every process, thaw; the group goes once empty.
    expect(await cg.freeze()).toBe(true);
    cg.killAll();
    cg.thaw();
    await waitFor("child killed", () => !alive(child), 3000);
    expect(await cg.remove()).toBe(true);
  });

  it("a restarted agent kills what a crashed one left in a unit's cgroup, setsid children included", async () => {
    const dir = tmp();
    const first = new Agent({ machineId: "m1abc", hostname: "node-1", dataDir: join(dir, "data") });
    first.reconcile([spec("left.service", setsidUnit(dir))]);
    await waitState(first, "left.service", "active", "running");
    const child = await pidIn(join(dir, "child.pid"));
    const path = first.unitCgroup("left.service")!.path;
    await new Promise((r) => setTimeout(r, 20)); // the record is written once per event-loop turn
    // No first.stop(): the agent "crashed". A new agent on the same data directory cleans up.
    makeAgent(dir);
    await waitFor("setsid child of the crashed agent's unit gone", () => !alive(child), 3000);
    expect(existsSync(path)).toBe(false);
  });
});

describe("unit cgroups elsewhere", () => {
  it("the v1 freezer hierarchy tracks and kills setsid children too", async () => {
    const v1 = v1Placement();
    expect(v1).not.toBeNull();
    const { agent, dir } = makeAgent(undefined, { cgroups: v1 });
    agent.reconcile([spec("v1.service", setsidUnit(dir))]);
    await waitState(agent, "v1.service", "active", "running");
    const child = await pidIn(join(dir, "child.pid"));
    const cg = agent.unitCgroup("v1.service")!;
    expect(cg.path.startsWith(v1!.freezer)).toBe(true);
    expect(cg.pids()).toContain(child);
    agent.reconcile([spec("v1.service", setsidUnit(dir), "loaded")]);
    await waitState(agent, "v1.service", "inactive", "dead");
    expect(alive(child)).toBe(false);
    expect(existsSync(cg.path)).toBe(false);
  });

  it("where no cgroup can be made, a stop still reaches the session and the main process's children", async () => {
    const root = tmp(); // a plain directory: making a "group" there makes no cgroup
    const { agent, dir } = makeAgent(undefined, { cgroups: { kind: "v2", dir: root } });
    // One child in a process group of its own, still in the main process's session; one that left the session
    // (setsid) while its parent, a child of the main process, waits for it.
    const main = script(
      dir,
      "main.sh",
      [
        `perl -e 'setpgrp(0, 0); exec @ARGV' /bin/sh -c 'echo $$ > ${dir}/pg.pid; exec sleep 1000' &`,
        `/bin/sh -c 'setsid /bin/sh -c "echo \\$\\$ > ${dir}/sid.pid; exec sleep 1000"; :' &`,
        "wait",
      ].join("\n"),
    );
    const text = `[Service]\nExecStart=${main}\n`;
    agent.reconcile([spec("fallback.service", text)]);
    const s = await waitState(agent, "fallback.service", "active", "running");
    const pg = await pidIn(join(dir, "pg.pid"));
    const sid = await pidIn(join(dir, "sid.pid"));
    expect(agent.unitCgroup("fallback.service")).toBeNull();
    expect(readdirSync(root)).toEqual([]);
    expect(sessionOf(pg)).toBe(s.mainPid);
    expect(sessionOf(sid)).toBe(sid);
    agent.reconcile([spec("fallback.service", text, "loaded")]);
    await waitState(agent, "fallback.service", "inactive", "dead");
    expect(alive(pg)).toBe(false);
    expect(alive(sid)).toBe(false);
  });
});
