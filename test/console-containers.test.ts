// `berth console` in a real terminal (tmux) against a real node whose [Container] unit runs on a private Docker
// engine (test/support/docker.ts): :ctx between the clusters its config names, the Containers view, machine and
// member details, and the header once the node is killed: UNREACHABLE, the last data shown as stale.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BINARY, freePort, TestCluster } from "./support/cluster.ts";
import {
  buildBusyboxImage,
  type PrivateDocker,
  requireDocker,
  startPrivateDocker,
} from "./support/docker.ts";
import { TestTerminal } from "./support/terminal.ts";

const UNIT = `[Unit]
Description=busybox loop in a container

[Container]
Image=local/busybox
Network=none
Exec=sh -c "while true; do echo tick; sleep 1; done"
`;

describe("berth console: containers, details, a dead cluster (1 node, private dockerd)", () => {
  requireDocker();
  let d: PrivateDocker | undefined;
  let cluster: TestCluster | undefined;
  let term: TestTerminal | null = null;

  beforeAll(async () => {
    d = await startPrivateDocker();
    buildBusyboxImage(d);
    cluster = await TestCluster.start(1, {
      extraArgs: [`--docker-socket=${d.socket}`, "--metadata=role=web"],
    });
  }, 60_000);
  afterEach(() => {
    term?.stop();
    term = null;
  });
  afterAll(async () => {
    await cluster?.stop();
    await d?.stop();
  }, 60_000);

  it(":ctx switches to a cluster the config names: nothing of the last one stays on the screen", async () => {
    const c = cluster!;
    const config = join(c.dir, "console-ctx.json");
    const nowhere = `127.0.9.9:${await freePort("127.0.9.9")}`;
    writeFileSync(
      config,
      JSON.stringify({ contexts: { live: { endpoint: c.endpoints() }, dead: { endpoint: nowhere } } }),
    );
    term = TestTerminal.start([BINARY, "console", `--endpoint=${nowhere}`, `--console-config=${config}`]);
    const t = term;
    await t.waitForScreen(/not connected[\s\S]*cannot reach the cluster/);
    t.keys(":", "ctx l", "Tab", "Enter");
    await t.waitForScreen(/ctx live[\s\S]*n1\s+127\.0\.0\.1\s+up/);
    expect(t.screen()).toContain("switched to live");
    t.keys(":", "ctx dead", "Enter");
    await t.waitForScreen((s) => /ctx dead/.test(s) && /no data yet/.test(s) && !/n1\s+127\.0\.0\.1/.test(s));
    t.keys(":", "ctx nowhere", "Enter");
    await t.waitForScreen("no context nowhere (the console config names live, dead)");
    t.keys("q");
    expect(await t.exitCode()).toBe(0);
  }, 60_000);

  it("lists the container with its image, state and unit; i shows the machine, Enter the unit; stale when the node dies", async () => {
    const c = cluster!;
    const file = join(c.dir, "loop.service");
    writeFileSync(file, UNIT);
    expect((await c.cli(["start", file], c.endpoints(), 60_000)).code).toBe(0);
    term = TestTerminal.start([BINARY, "console", `--endpoint=${c.endpoints()}`, "--refresh=300ms"]);
    const t = term;
    await t.waitForScreen(/n1\s+127\.0\.0\.1\s+up/);
    t.keys(":", "containers", "Enter");
    await t.waitForScreen(/MACHINE\s+CONTAINER\s+IMAGE\s+STATE\s+UNIT\s+NAME/);
    await t.waitForScreen(/\w{8}\.\.\.\/n1\s+[0-9a-f]{12}\s+local\/busybox\s+Up [^\n]*loop\.service/, 30_000);
    t.keys("i");
    await t.waitForScreen(
      /Machine \w{32}[\s\S]*State: up[\s\S]*role=web[\s\S]*Units \(1\):\s+loop\.service {2}active \(running\)/,
    );
    t.keys("Escape");
    await t.waitForScreen(/MACHINE\s+CONTAINER/);
    t.keys("Enter");
    await t.waitForScreen(/loop\.service - busybox loop in a container[\s\S]*Active: active \(running\)/);
    t.keys("4");
    await t.waitForScreen(/n1\s+leader/);
    t.keys("Enter");
    await t.waitForScreen(/Member n1[\s\S]*Role: leader[\s\S]*Index: \d+[\s\S]*Lag: 0 \(the leader\)/);
    expect(t.screen()).not.toContain("UNREACHABLE");

    // The cluster dies: the header says so, the last data stays, marked stale.
    t.keys("Escape", "1");
    await t.waitForScreen(/MACHINE\s+NAME/);
    await c.crash("n1");
    await t.waitForScreen(/UNREACHABLE.*stale: data of \d\d:\d\d:\d\d/, 15_000);
    expect(t.screen()).toMatch(/n1\s+127\.0\.0\.1\s+up/);
    t.keys("q");
    expect(await t.exitCode()).toBe(0);
  }, 120_000);
});
