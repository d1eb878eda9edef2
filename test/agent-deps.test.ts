// Dependencies between the units of one machine (After=/Before=/Requires=/Wants=), with real processes.
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Agent } from "../src/agent/agent.ts";
import { agentHarness, alive, SLEEPER, spec } from "./support/agent.ts";

// ---------------------------------------------------------------------------------------------------------------
// Harness

const harness = agentHarness({ tmpPrefix: "berth-deps-", waitMs: 8000 });
const { release, waitFor, waitState } = harness;

function makeAgent(): { agent: Agent; dir: string; log: string } {
  const { agent, dir } = harness.makeAgent();
  const log = join(dir, "events.log");
  // `mark WHAT`: appends "WHAT <ns timestamp>" to the shared event log.
  const mark = join(dir, "mark");
  writeFileSync(mark, `#!/bin/sh\necho "$1 $(date +%s%N)" >> ${log}\n`);
  chmodSync(mark, 0o755);
  return { agent, dir, log };
}

/** The event log as [event, timestamp] pairs, in the order written. */
function events(log: string): [string, bigint][] {
  if (!existsSync(log)) return [];
  return readFileSync(log, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const i = l.lastIndexOf(" ");
      return [l.slice(0, i), BigInt(l.slice(i + 1))];
    });
}

const names = (log: string): string[] => events(log).map((e) => e[0]);

function inOrder(log: string, a: string, b: string): void {
  const ev = events(log);
  const ia = ev.findIndex((e) => e[0] === a);
  const ib = ev.findIndex((e) => e[0] === b);
  expect(ia, `${a} in ${JSON.stringify(names(log))}`).toBeGreaterThanOrEqual(0);
  expect(ib, `${b} in ${JSON.stringify(names(log))}`).toBeGreaterThanOrEqual(0);
  expect(ia).toBeLessThan(ib);
  expect(ev[ia]![1] <= ev[ib]![1]).toBe(true);
}

/** A long-running service that marks "start NAME" (after `delay` s) and "stop NAME" (taking `stopDelay` s). */
function svc(
  dir: string,
  name: string,
  unit: string,
  o: { delay?: number; stopDelay?: number; extra?: string } = {},
): string {
  const m = join(dir, "mark");
  return (
    `[Unit]\nDescription=Unit ${name}\n${unit}` +
    `[Service]\nExecStartPre=/bin/sh -c 'sleep ${o.delay ?? 0}; ${m} "start ${name}"'\n` +
    `ExecStart=${SLEEPER}\nExecStop=/bin/sh -c 'sleep ${o.stopDelay ?? 0}; ${m} "stop ${name}"'\n${o.extra ?? ""}`
  );
}

async function journalText(agent: Agent, name: string): Promise<string> {
  return (await agent.journal(name, { lines: 200 })).map((l) => l.text).join("\n");
}

// ---------------------------------------------------------------------------------------------------------------

describe("ordering: After= / Before=", () => {
  it("starts a unit after what it is After= (and Before=) is active, and stops in reverse order", async () => {
    const { agent, dir, log } = makeAgent();
    // a After=b; c Before=a (so a also waits for c); b is slow to start, a is slow to stop.
    agent.reconcile([
      spec("a.service", svc(dir, "a", "After=b.service\n", { stopDelay: 0.3 })),
      spec("b.service", svc(dir, "b", "", { delay: 0.4 })),
      spec("c.service", svc(dir, "c", "Before=a.service\n", { delay: 0.2 })),
    ]);
    const a = await waitFor("a waiting for its After= units", () => {
      const s = agent.state("a.service");
      return s?.waitingFor ? s : undefined;
    });
    expect(a.active).toBe("inactive");
    expect(a.waitingFor).toEqual(expect.arrayContaining(["b.service"]));
    await waitState(agent, "a.service", "active", "running");
    inOrder(log, "start b", "start a");
    inOrder(log, "start c", "start a");
    expect(agent.state("a.service")?.waitingFor).toBeUndefined();

    // Both to "loaded": a (after b and c) stops first even though its ExecStop is the slow one.
    agent.reconcile([
      spec("a.service", svc(dir, "a", "After=b.service\n", { stopDelay: 0.3 }), "loaded"),
      spec("b.service", svc(dir, "b", "", { delay: 0.4 }), "loaded"),
      spec("c.service", svc(dir, "c", "Before=a.service\n", { delay: 0.2 }), "loaded"),
    ]);
    await agent.settled();
    for (const n of ["a", "b", "c"]) expect(agent.state(`${n}.service`)?.active).toBe("inactive");
    inOrder(log, "stop a", "stop b");
    inOrder(log, "stop a", "stop c");
  });

  it("waits for a Type=oneshot unit to finish successfully", async () => {
    const { agent, dir, log } = makeAgent();
    const m = join(dir, "mark");
    agent.reconcile([
      spec("setup.service", `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'sleep 0.3; ${m} "setup done"'\n`),
      spec("app.service", svc(dir, "app", "After=setup.service\nRequires=setup.service\n")),
    ]);
    await waitState(agent, "app.service", "active", "running");
    inOrder(log, "setup done", "start app");
    expect(agent.state("setup.service")).toMatchObject({ active: "inactive", sub: "dead" });
    // The finished oneshot does not count as "stopped": app keeps running.
    await new Promise((r) => setTimeout(r, 200));
    expect(agent.state("app.service")?.active).toBe("active");
  });

  it("stops in reverse order on Agent.stop() too", async () => {
    const { agent, dir, log } = makeAgent();
    agent.reconcile([
      spec("db.service", svc(dir, "db", "")),
      spec("web.service", svc(dir, "web", "After=db.service\nRequires=db.service\n", { stopDelay: 0.3 })),
    ]);
    await waitState(agent, "web.service", "active", "running");
    release(agent);
    await agent.stop();
    inOrder(log, "stop web", "stop db");
  });

  it("ignores references to units this agent does not run (After=docker.service, network.target)", async () => {
    const { agent } = makeAgent();
    agent.reconcile([
      spec(
        "seed.service",
        `[Unit]\nDescription=Seed\nAfter=docker.service network-online.target\nRequires=docker.service\nWants=network-online.target\n[Service]\nExecStart=${SLEEPER}\n`,
      ),
    ]);
    const s = await waitState(agent, "seed.service", "active", "running");
    expect(s.waitingFor).toBeUndefined();
  });
});

describe("requirements: Requires= / Wants=", () => {
  it("does not start a unit whose requirement fails to start: failed with result 'dependency'", async () => {
    const { agent, dir, log } = makeAgent();
    agent.reconcile([
      spec(
        "b.service",
        `[Unit]\nDescription=Broken B\n[Service]\nExecStartPre=/bin/false\nExecStart=${SLEEPER}\n`,
      ),
      spec("a.service", svc(dir, "a", "Requires=b.service\nAfter=b.service\n")),
    ]);
    const a = await waitState(agent, "a.service", "failed");
    expect(a).toMatchObject({ sub: "failed", result: "dependency", mainPid: null });
    expect(a.error).toContain("b.service");
    expect(agent.state("b.service")?.active).toBe("failed");
    await agent.settled();
    await new Promise((r) => setTimeout(r, 200));
    expect(names(log)).not.toContain("start a");
    expect(a.steps).toEqual([]);
    const j = await journalText(agent, "a.service");
    expect(j).toContain("Dependency failed for Unit a.");
    expect(j).toContain("a.service: Job a.service/start failed with result 'dependency'.");
  });

  it("fails a unit whose requirement cannot be loaded", async () => {
    const { agent, dir } = makeAgent();
    agent.reconcile([
      spec("b.service", "[Service]\nType=bogus\n"),
      spec("a.service", svc(dir, "a", "Requires=b.service\n")),
    ]);
    const a = await waitState(agent, "a.service", "failed");
    expect(a.error).toMatch(/b\.service failed to load/);
  });

  it("stops a unit when what it requires dies, and starts it again when that is back", async () => {
    const { agent, dir, log } = makeAgent();
    const b1 = svc(dir, "b", "");
    const a = svc(dir, "a", "Requires=b.service\nAfter=b.service\n");
    agent.reconcile([spec("b.service", b1), spec("a.service", a)]);
    const aUp = await waitState(agent, "a.service", "active", "running");
    const bUp = await waitState(agent, "b.service", "active", "running");
    process.kill(-bUp.mainPid!, "SIGKILL");
    await waitState(agent, "b.service", "failed");
    // a is stopped (its ExecStop ran, its processes are gone), and reports why it does not run.
    const aDown = await waitState(agent, "a.service", "failed");
    expect(aDown.result).toBe("dependency");
    expect(names(log)).toContain("stop a");
    await waitFor("a's main process to exit", () => !alive(aUp.mainPid!), 3000);

    // b comes back (a new version is deployed): a starts again by itself.
    agent.reconcile([spec("b.service", b1, "launched", "h2"), spec("a.service", a)]);
    const aAgain = await waitState(agent, "a.service", "active", "running");
    expect(aAgain.mainPid).not.toBe(aUp.mainPid);
    expect(aAgain.result).toBeUndefined();
    const starts = names(log).filter((n) => n.startsWith("start"));
    expect(starts).toEqual(["start b", "start a", "start b", "start a"]);
  });

  it("propagates a restart: b restarted by Restart=always takes a down and back up with it", async () => {
    const { agent, dir, log } = makeAgent();
    agent.reconcile([
      spec("b.service", svc(dir, "b", "", { extra: "Restart=always\nRestartSec=300ms\n" })),
      spec("a.service", svc(dir, "a", "Requires=b.service\nAfter=b.service\n")),
    ]);
    const aUp = await waitState(agent, "a.service", "active", "running");
    const bUp = await waitState(agent, "b.service", "active", "running");
    process.kill(-bUp.mainPid!, "SIGKILL");
    await waitFor("a to be stopped", () => names(log).includes("stop a"), 3000);
    await waitFor(
      "a to start again after b restarted",
      () => names(log).filter((n) => n === "start a").length === 2,
      5000,
    );
    const aAgain = await waitState(agent, "a.service", "active", "running");
    expect(aAgain.mainPid).not.toBe(aUp.mainPid);
    expect(agent.state("b.service")?.restarts).toBe(1);
    const ev = names(log).filter((n) => n !== "stop b");
    expect(ev).toEqual(["start b", "start a", "stop a", "start b", "start a"]);
  });

  it("restarts in order when a required unit is replaced: a stops before b, b starts before a", async () => {
    const { agent, dir, log } = makeAgent();
    const a = svc(dir, "a", "Requires=b.service\nAfter=b.service\n", { stopDelay: 0.2 });
    agent.reconcile([spec("b.service", svc(dir, "b", "")), spec("a.service", a)]);
    await waitState(agent, "a.service", "active", "running");
    agent.reconcile([
      spec("b.service", svc(dir, "b", "", { delay: 0.1 }), "launched", "h2"),
      spec("a.service", a),
    ]);
    await waitFor("a back", () => names(log).filter((n) => n === "start a").length === 2, 5000);
    expect(names(log)).toEqual(["start b", "start a", "stop a", "stop b", "start b", "start a"]);
  });

  it("pulls in a required unit that is only loaded, and stops it when nothing needs it", async () => {
    const { agent, dir } = makeAgent();
    const b = spec("b.service", svc(dir, "b", ""), "loaded");
    agent.reconcile([b, spec("a.service", svc(dir, "a", "Requires=b.service\nAfter=b.service\n"))]);
    await waitState(agent, "b.service", "active", "running");
    await waitState(agent, "a.service", "active", "running");
    agent.reconcile([b, spec("a.service", svc(dir, "a", "Requires=b.service\nAfter=b.service\n"), "loaded")]);
    await agent.settled();
    expect(agent.state("a.service")?.active).toBe("inactive");
    expect(agent.state("b.service")?.active).toBe("inactive");
  });

  it("Wants= starts the other unit along but does not care whether it fails", async () => {
    const { agent, dir, log } = makeAgent();
    agent.reconcile([
      spec("b.service", "[Service]\nExecStartPre=/bin/false\nExecStart=/bin/sleep 30\n", "loaded"),
      spec("c.service", svc(dir, "c", "", { delay: 0.3 }), "loaded"),
      spec("a.service", svc(dir, "a", "Wants=b.service c.service\nAfter=b.service c.service\n")),
    ]);
    const a = await waitState(agent, "a.service", "active", "running");
    expect(a.result).toBeUndefined();
    expect(agent.state("b.service")?.active).toBe("failed");
    expect(agent.state("c.service")?.active).toBe("active");
    inOrder(log, "start c", "start a");
  });
});

describe("cycles and specifiers", () => {
  it("refuses an ordering cycle without deadlocking, and starts the units once it is fixed", async () => {
    const { agent, dir } = makeAgent();
    const cyc = [
      spec("a.service", svc(dir, "a", "After=b.service\n")),
      spec("b.service", svc(dir, "b", "After=c.service\nRequires=c.service\n")),
      spec("c.service", svc(dir, "c", "After=a.service\n")),
      spec("d.service", svc(dir, "d", "After=a.service\n")),
      spec("free.service", svc(dir, "free", "")),
    ];
    agent.reconcile(cyc);
    for (const n of ["a", "b", "c"]) {
      const s = await waitState(agent, `${n}.service`, "failed");
      expect(s.error).toMatch(/^ordering cycle: /);
    }
    expect(agent.state("a.service")?.error).toBe(
      "ordering cycle: a.service → b.service → c.service → a.service",
    );
    // d is only after a unit of the cycle, not in it: it starts; so does an unrelated unit.
    await waitState(agent, "d.service", "active", "running");
    await waitState(agent, "free.service", "active", "running");
    await agent.settled();
    expect(await journalText(agent, "a.service")).toContain("Found ordering cycle");

    // Fixed: c no longer after a.
    agent.reconcile([
      ...cyc.slice(0, 2),
      spec("c.service", svc(dir, "c", ""), "launched", "h2"),
      ...cyc.slice(3),
    ]);
    for (const n of ["a", "b", "c"]) await waitState(agent, `${n}.service`, "active", "running");
    expect(agent.state("a.service")?.error).toBeUndefined();
  });

  it("expands specifiers in Description= and in dependency names", async () => {
    const { agent, dir, log } = makeAgent();
    agent.reconcile([
      spec(
        "db@7.service",
        svc(dir, "db", "", { delay: 0.3 }).replace("Description=Unit db", "Description=DB %i"),
      ),
      spec(
        "web@7.service",
        `[Unit]\nDescription=Web %i (%n, %p)\nAfter=db@%i.service\n[Service]\nExecStart=/bin/sh -c '${join(dir, "mark")} "start web"; exec sleep 30'\n`,
      ),
    ]);
    await waitState(agent, "web@7.service", "active", "running");
    await waitFor("web's mark", () => names(log).includes("start web"), 3000);
    inOrder(log, "start db", "start web");
    const j = await journalText(agent, "web@7.service");
    expect(j).toContain("Starting Web 7 (web@7.service, web)...");
    expect(j).toContain("Started Web 7 (web@7.service, web).");
    expect(j).not.toContain("%i");
    expect(await journalText(agent, "db@7.service")).toContain("Starting DB 7...");
  });
});

describe("explicit stops (systemd's stop job)", () => {
  it("stops a unit set to loaded although a running unit Wants= it; a fresh start of that unit pulls it in again", async () => {
    const { agent, dir } = makeAgent();
    const app = (desired: "launched" | "loaded") =>
      spec("app.service", svc(dir, "app", "Wants=cache.service\nAfter=cache.service\n"), desired);
    const cache = (desired: "launched" | "loaded") => spec("cache.service", svc(dir, "cache", ""), desired);
    agent.reconcile([app("launched"), cache("launched")]);
    await waitState(agent, "app.service", "active", "running");
    const appPid = agent.state("app.service")?.mainPid;
    agent.reconcile([app("launched"), cache("loaded")]);
    await waitState(agent, "cache.service", "inactive", "dead");
    await agent.settled();
    expect(agent.state("cache.service")).toMatchObject({ active: "inactive", launched: false });
    expect(agent.state("app.service")).toMatchObject({ active: "active", mainPid: appPid, launched: true });
    // app stopped and started again: its start pulls cache in, as `systemctl start app` would.
    agent.reconcile([app("loaded"), cache("loaded")]);
    await waitState(agent, "app.service", "inactive", "dead");
    agent.reconcile([app("launched"), cache("loaded")]);
    await waitState(agent, "app.service", "active", "running");
    expect(agent.state("cache.service")?.active).toBe("active");
  });
});
