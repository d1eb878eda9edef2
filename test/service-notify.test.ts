// Type=notify through the compiled binary, whose unit supervisor has notify sockets (Bun's FFI, see
// src/agent/notify-socket.ts; under Node the agent has none): the real systemd-notify (its READY=1, then a
// BARRIER=1 carrying a file descriptor it waits on) under NotifyAccess=all, a main process sending READY=1 and
// STATUS= itself (socat), STATUS= in `berth status`, a watchdog that stops pinging killed and restarted per
// Restart=on-watchdog, and READY=1 from a child refused under NotifyAccess=main, so the start times out.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { UnitStatus } from "../src/client/protocol.ts";
import { TestCluster, waitFor } from "./support/cluster.ts";

/** A main process that is socat itself, sending what `script` prints to NOTIFY_SOCKET (abstract: "@name"). */
const socatMain = (script: string): string =>
  `ExecStart=/bin/sh -c 'exec socat -u SYSTEM:"${script}" ABSTRACT-SENDTO:$\${NOTIFY_SOCKET#@}'`;

const UNITS: Record<string, string> = {
  "sdnotify.service": `[Service]
Type=notify
NotifyAccess=all
ExecStart=/bin/sh -c 'sleep 0.2; systemd-notify --ready --status="ready via systemd-notify"; echo notify rc=$$?; exec sleep 1000'
`,
  "selfnotify.service": `[Service]
Type=notify
${socatMain("sleep 0.2; echo READY=1; echo STATUS=socat is serving; exec sleep 1000")}
`,
  "watchdog.service": `[Service]
Type=notify
WatchdogSec=1
Restart=on-watchdog
RestartSec=100ms
${socatMain("echo READY=1; for i in 1 2 3; do sleep 0.3; echo WATCHDOG=1; done; exec sleep 1000")}
`,
  "childready.service": `[Service]
Type=notify
TimeoutStartSec=1
ExecStart=/bin/sh -c 'echo READY=1 | socat - ABSTRACT-SENDTO:$\${NOTIFY_SOCKET#@}; exec sleep 1000'
`,
};

describe("Type=notify on a node (the compiled binary)", () => {
  let cluster: TestCluster;
  let dir: string;
  const status = async (name: string): Promise<UnitStatus> => {
    const r = await cluster.cli(["status", name, "--output=json"]);
    if (r.code !== 0) throw new Error(`berth status ${name} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as UnitStatus;
  };
  const start = (name: string) => cluster.cli(["start", join(dir, name)], cluster.endpoints(), 30_000);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-notify-"));
    for (const [name, text] of Object.entries(UNITS)) writeFileSync(join(dir, name), text);
    cluster = await TestCluster.start(1);
  }, 60_000);
  afterAll(async () => {
    for (const name of Object.keys(UNITS)) await cluster?.cli(["destroy", name]);
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("is started by the real systemd-notify under NotifyAccess=all, whose barrier returns", async () => {
    const r = await start("sdnotify.service");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const text = (await cluster.cli(["status", "sdnotify.service"])).stdout;
    expect(text).toMatch(/Active: active \(running\)/);
    expect(text).toContain('Status: "ready via systemd-notify"');
    // systemd-notify waits until the descriptor of its BARRIER=1 message is closed (else fails after 5 s).
    await waitFor("systemd-notify's exit status", async () =>
      (await cluster.cli(["status", "sdnotify.service"])).stdout.includes("notify rc=0"),
    );
  }, 30_000);

  it("is started by READY=1 from its main process, and shows its STATUS=", async () => {
    const r = await start("selfnotify.service");
    expect(r.code).toBe(0);
    const s = await status("selfnotify.service");
    expect([s.state?.active, s.state?.sub]).toEqual(["active", "running"]);
    expect(s.state?.statusText).toBe("socat is serving");
    expect(s.mainCommand).toBe("socat");
  }, 30_000);

  it("kills a unit whose watchdog pings stop, and restarts it per Restart=on-watchdog", async () => {
    expect((await start("watchdog.service")).code).toBe(0);
    const s = await waitFor(
      "a restart after the watchdog",
      async () => {
        const s = await status("watchdog.service");
        return (s.state?.restarts ?? 0) >= 1 && s.state?.active === "active" ? s : null;
      },
      15_000,
    );
    const lines = s.journal.map((l) => l.text);
    expect(lines).toContain("watchdog.service: Watchdog timeout (limit 1s)!");
    expect(lines).toContain("watchdog.service: Failed with result 'watchdog'.");
  }, 30_000);

  it("refuses READY=1 from a child under NotifyAccess=main, so the start times out and fails", async () => {
    const r = await start("childready.service");
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/Result: timeout/);
    const s = await status("childready.service");
    expect([s.state?.active, s.state?.result]).toEqual(["failed", "timeout"]);
    expect(s.journal.map((l) => l.text).join("\n")).toMatch(
      /Got notification message from PID \d+, but reception only permitted for main PID \d+/,
    );
  }, 30_000);
});
