// The at-most-once probes of the units chaos run (test/chaos/probes.ts) record exactly the overlaps: a second copy
// that finds the lock taken is a double run; a copy killed (whole group, or only its sleep) is not, and releases the
// lock. The docker-run probe's container lives no longer than its client's process group.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildProbeImage, ProbeKit } from "./chaos/probes.ts";
import { type PrivateDocker, requireDocker, startPrivateDocker } from "./support/docker.ts";
import { waitFor } from "./support/processes.ts";

const children: ChildProcess[] = [];
let probes: ProbeKit;

/** Runs a shell command in its own process group, as the agent runs a unit. */
function unit(command: string): ChildProcess {
  const c = spawn("/bin/sh", ["-c", command], { detached: true, stdio: "ignore" });
  children.push(c);
  return c;
}
const exited = (c: ChildProcess) =>
  new Promise<number | null>((r) =>
    c.exitCode !== null ? r(c.exitCode) : c.once("exit", (code) => r(code)),
  );

describe("at-most-once probes", () => {
  beforeAll(() => {
    probes = new ProbeKit();
  });
  afterEach(() => {
    for (const c of children.splice(0))
      try {
        process.kill(-c.pid!, "SIGKILL");
      } catch {}
  });
  afterAll(() => probes.remove());

  it("records a second copy as a double run, and a killed copy as nothing", async () => {
    const first = unit(probes.execStart("a", "marker"));
    await waitFor("the first copy holds the lock", () => {
      if (first.exitCode !== null || first.signalCode !== null)
        throw new Error(`the first copy exited: ${first.exitCode ?? first.signalCode}`);
      return probes.held("a");
    });
    const second = unit(probes.execStart("a", "marker"));
    expect(await exited(second)).toBe(1);
    expect(probes.doubles()).toHaveLength(1);
    expect(probes.doubles()[0]).toMatch(/^\d+\.\d+ a double run \(pid \d+\)$/);

    // Only the sleep killed (the shell lives on): flock fails, but not because the lock was taken.
    const sleepPid = Number(
      execFileSync("pgrep", ["-g", String(first.pid), "-x", "sleep"], {
        encoding: "utf8",
      }),
    );
    process.kill(sleepPid, "SIGTERM");
    expect(await exited(first)).toBe(0);
    expect(probes.held("a")).toBe(false);

    const third = unit(probes.execStart("a", "marker"));
    await waitFor("a new copy holds the lock", () => probes.held("a"));
    process.kill(-third.pid!, "SIGKILL");
    await exited(third);
    await waitFor("the lock released", () => !probes.held("a"));
    expect(probes.doubles()).toHaveLength(1);
  });

  describe("docker-run probe (private dockerd)", () => {
    let d: PrivateDocker;
    beforeAll(async () => {
      requireDocker();
      d = await startPrivateDocker();
      buildProbeImage(d);
    }, 40_000);
    afterAll(async () => {
      await d?.stop();
    }, 30_000);

    it("holds the lock in its container against a host copy, and its container dies with the client", async () => {
      const client = unit(probes.dockerRunCommand(d.socket, "dr", "m1"));
      await waitFor("the container holds the lock", () => probes.held("dr"), 20_000);
      expect(d.cli("ps", "--filter", "label=berth-probe=m1", "--format", "{{.Names}}")).toBe(
        probes.containerName("dr", "m1"),
      );
      const before = probes.doubles().length;
      expect(await exited(unit(probes.execStart("dr", "marker")))).toBe(1);
      expect(probes.doubles()).toHaveLength(before + 1);

      process.kill(-client.pid!, "SIGKILL");
      await waitFor("the lock released", () => !probes.held("dr"), 10_000);
      await waitFor(
        "the container gone",
        () => d.cli("ps", "-q", "--filter", "label=berth-probe=m1") === "",
        10_000,
      );
    }, 40_000);
  });
});
