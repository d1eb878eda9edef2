// `berth console`'s Containers view in a real terminal (tmux) against a real node whose [Container] unit runs on a
// private Docker engine (test/support/docker.ts), its machine and member details, and the header once the node is
// killed: UNREACHABLE, the last data shown as stale.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BINARY, TestCluster } from "./support/cluster.ts";
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
