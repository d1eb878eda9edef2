// .timer and .target units on a real agent, with real processes: a timer starts its service again and again
// (OnActiveSec= then OnUnitActiveSec=), OnBootSec= counts from the machine's boot, a Persistent= stamp from the
// cluster makes a missed OnCalendar= event fire at once, and a target starts the units WantedBy= it.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { agentHarness, lineCount, SLEEPER, spec } from "./support/agent.ts";

const harness = agentHarness({ tmpPrefix: "berth-timers-", waitMs: 8000 });
const { waitFor, waitState } = harness;

/** A oneshot service that appends a line to `file` each time it runs. */
const counter = (file: string): string =>
  `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo run >> ${file}'\n`;
const runs = lineCount;

describe(".timer units", () => {
  it("starts its service repeatedly (OnActiveSec= then OnUnitActiveSec=) and shows when it fires next", async () => {
    const { agent, dir } = harness.makeAgent();
    const file = join(dir, "runs");
    agent.reconcile([
      spec("tick.timer", "[Timer]\nOnActiveSec=0.2s\nOnUnitActiveSec=0.3s\nAccuracySec=1ms\n"),
      spec("tick.service", counter(file), "loaded"),
    ]);
    const waiting = await waitState(agent, "tick.timer", "active", "waiting");
    expect(waiting.timer?.unit).toBe("tick.service");
    expect(waiting.timer?.nextElapse).toBeGreaterThan(Date.now() - 1000);
    await waitFor("three runs of tick.service", () => runs(file) >= 3, 8000);
    // The service ran and is inactive again in between (it is only "loaded": the timer started it each time).
    const svc = await waitState(agent, "tick.service", "inactive");
    expect(svc.load).toBe("loaded");
    expect(agent.state("tick.timer")?.timer?.lastTrigger).toBeGreaterThan(0);
    // Stopped, the timer starts nothing more.
    agent.reconcile([
      spec("tick.timer", "[Timer]\nOnActiveSec=0.2s\nOnUnitActiveSec=0.3s\nAccuracySec=1ms\n", "loaded"),
      spec("tick.service", counter(file), "loaded"),
    ]);
    await waitState(agent, "tick.timer", "inactive", "dead");
    const after = runs(file);
    await new Promise((r) => setTimeout(r, 800));
    expect(runs(file)).toBeLessThanOrEqual(after + 1);
  });

  it("Unit= names the unit it starts; a unit not on this machine is reported, the timer keeps waiting", async () => {
    const { agent, dir } = harness.makeAgent();
    const file = join(dir, "runs");
    agent.reconcile([
      spec("a.timer", "[Timer]\nOnActiveSec=0.1s\nOnUnitInactiveSec=0.3s\nUnit=work.service\n"),
      spec("work.service", counter(file), "loaded"),
      spec("lost.timer", "[Timer]\nOnActiveSec=0.1s\nUnit=elsewhere.service\n"),
    ]);
    await waitFor("two runs of work.service", () => runs(file) >= 2, 8000);
    const journal = (await agent.journal("lost.timer", { lines: 10 })).map((l) => l.text).join("\n");
    expect(journal).toContain("Failed to start elsewhere.service: the unit is not loaded on this machine");
    // OnActiveSec= is one-shot: with nothing else to wait for the timer has elapsed.
    await waitState(agent, "lost.timer", "active", "elapsed");
  });

  it("OnBootSec= counts from the machine's boot: on a machine booted long ago it fires at once", async () => {
    const { agent, dir } = harness.makeAgent(undefined, { bootTime: Date.now() - 3_600_000 });
    const file = join(dir, "runs");
    agent.reconcile([
      spec("boot.timer", "[Timer]\nOnBootSec=15min\n"),
      spec("boot.service", counter(file), "loaded"),
    ]);
    await waitFor("boot.service ran", () => runs(file) >= 1, 8000);
    await waitState(agent, "boot.timer", "active", "elapsed");
    expect(runs(file)).toBe(1);
  });

  it("Persistent=: a calendar event missed since the cluster's stamp fires at once; without the stamp it waits", async () => {
    const { agent, dir } = harness.makeAgent();
    const file = join(dir, "runs");
    const timer = "[Timer]\nOnCalendar=hourly\nPersistent=yes\n";
    agent.reconcile([
      { ...spec("p.timer", timer), lastTrigger: Date.now() - 2 * 3_600_000 },
      spec("p.service", counter(file), "loaded"),
      spec("q.timer", timer.replace("p.", "q.")),
      spec("q.service", counter(`${file}-q`), "loaded"),
    ]);
    await waitFor("p.service ran", () => runs(file) >= 1, 8000);
    const p = await waitState(agent, "p.timer", "active", "waiting");
    expect(p.timer?.persistent).toBe(true);
    expect(p.timer?.lastTrigger).toBeGreaterThan(Date.now() - 60_000);
    expect(p.timer?.nextElapse).toBeGreaterThan(Date.now());
    const q = await waitState(agent, "q.timer", "active", "waiting");
    expect(q.timer?.lastTrigger).toBeNull();
    expect(runs(`${file}-q`)).toBe(0);
  });
});

describe(".target units and [Install]", () => {
  it("a target starts the units WantedBy=/RequiredBy= it and is active once they are", async () => {
    const { agent } = harness.makeAgent();
    agent.reconcile([
      spec("app.target", "[Unit]\nDescription=The app\n"),
      spec("web.service", `[Service]\nExecStart=${SLEEPER}\n[Install]\nWantedBy=app.target\n`, "loaded"),
      spec(
        "db.service",
        `[Service]\nExecStartPre=/bin/sleep 0.3\nExecStart=${SLEEPER}\n[Install]\nRequiredBy=app.target\n`,
        "loaded",
      ),
      spec("other.service", `[Service]\nExecStart=${SLEEPER}\n`, "loaded"),
    ]);
    const t = await waitState(agent, "app.target", "active", "active");
    // Active only once what it wants is started: db took 0.3 s.
    const db = agent.state("db.service")!;
    expect(db.active).toBe("active");
    expect(t.since).toBeGreaterThanOrEqual(db.since);
    await waitState(agent, "web.service", "active", "running");
    expect(agent.state("other.service")?.active).toBe("inactive");
    // Stopped, the target no longer pulls them in: the agent stops what no launched unit needs (agent.ts).
    agent.reconcile([
      spec("app.target", "[Unit]\nDescription=The app\n", "loaded"),
      spec("web.service", `[Service]\nExecStart=${SLEEPER}\n[Install]\nWantedBy=app.target\n`, "loaded"),
      spec(
        "db.service",
        `[Service]\nExecStartPre=/bin/sleep 0.3\nExecStart=${SLEEPER}\n[Install]\nRequiredBy=app.target\n`,
        "loaded",
      ),
      spec("other.service", `[Service]\nExecStart=${SLEEPER}\n`, "loaded"),
    ]);
    await waitState(agent, "app.target", "inactive", "dead");
    await waitState(agent, "db.service", "inactive");
  });
});
