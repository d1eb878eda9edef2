// The whole host stalls (a VM migration, a swap storm): every node process and every unit process of a 3-node
// cluster (and each node's unit supervisor) is frozen with SIGSTOP for longer than the agent TTL, then thawed. Nothing was lost, so nothing may move:
// the leader must not count its own stall as the other machines' silence. Checked in the schedule, in the nodes'
// logs (no machine declared lost) and in the OS (the same unit processes, none restarted).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { supervisorPid } from "../src/agent/supervisor.ts";
import { TestCluster, waitFor } from "./support/cluster.ts";

const TTL_MS = 2000;
const FREEZE_MS = 7000;
const UNITS = ["stall-a.service", "stall-b.service", "stall-c.service", "stall-d.service"];

interface UnitRow {
  name: string;
  machine: string;
  active: string;
  sub: string;
}

/** Unit processes carrying this run's marker: the unit's name -> its main process (pid and process group). */
function unitProcesses(marker: string): Map<string, { pid: number; pgid: number }> {
  const out = new Map<string, { pid: number; pgid: number }>();
  for (const line of execFileSync("ps", ["-eo", "pid=,pgid=,args="], { encoding: "utf8" }).split("\n")) {
    const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const at = m[3]!.indexOf(marker);
    if (at < 0) continue;
    const unit = m[3]!.slice(at + marker.length).split(/\s/)[0]!;
    out.set(unit, { pid: Number(m[1]), pgid: Number(m[2]) });
  }
  return out;
}

describe("a stall of the whole host longer than the agent TTL", () => {
  let cluster: TestCluster;
  let dir: string;
  let supervisors: number[] = [];
  const marker = `berth-stall-${process.pid}-`;
  const rows = async (): Promise<UnitRow[]> => {
    const r = await cluster.cli(["list-units", "--output=json"]);
    if (r.code !== 0) throw new Error(`list-units exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as UnitRow[];
  };
  const settled = (list: UnitRow[]) =>
    UNITS.every((u) => list.some((r) => r.name === u && r.active === "active" && r.sub === "running"));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-stall-"));
    for (const u of UNITS)
      writeFileSync(
        join(dir, u),
        `[Service]\nExecStart=/bin/sh -c "while true; do sleep 1; done" ${marker}%n\n`,
      );
    cluster = await TestCluster.start(3, { extraArgs: [`--agent-ttl=${TTL_MS / 1000}s`] });
  }, 60_000);
  afterAll(async () => {
    // Nothing stays frozen whatever failed (a stopped process ignores SIGKILL only until it is continued).
    for (const p of unitProcesses(marker).values())
      try {
        process.kill(-p.pgid, "SIGCONT");
      } catch {}
    for (const n of cluster?.nodes ?? []) if (n.proc?.pid) n.proc.kill("SIGCONT");
    for (const pid of supervisors)
      try {
        process.kill(pid, "SIGCONT");
      } catch {}
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("moves no unit and restarts none", async () => {
    const start = await cluster.cli(
      ["start", ...UNITS.map((u) => join(dir, u))],
      cluster.endpoints(),
      60_000,
    );
    expect(start.code, start.stderr).toBe(0);
    const before = await waitFor("every unit running", async () => ((l) => settled(l) && l)(await rows()));
    const procsBefore = unitProcesses(marker);
    expect([...procsBefore.keys()].sort()).toEqual(UNITS);

    // Freeze the unit supervisors and nodes first (so no agent sees its units stop), then every unit's process
    // group; thaw the units, then the nodes, then the supervisors (whose lease ran out meanwhile: they must ask
    // the cluster, not fence).
    const nodePids = cluster.nodes.map((n) => n.proc!.pid!);
    supervisors = cluster.nodes.map((n) => supervisorPid(join(n.dataDir, "agent"))!);
    expect(supervisors.every((pid) => pid > 0)).toBe(true);
    for (const pid of supervisors) process.kill(pid, "SIGSTOP");
    for (const pid of nodePids) process.kill(pid, "SIGSTOP");
    for (const p of procsBefore.values()) process.kill(-p.pgid, "SIGSTOP");
    await new Promise((r) => setTimeout(r, FREEZE_MS));
    for (const p of procsBefore.values()) process.kill(-p.pgid, "SIGCONT");
    for (const pid of nodePids) process.kill(pid, "SIGCONT");
    for (const pid of supervisors) process.kill(pid, "SIGCONT");

    // Long enough for a wrong verdict to be acted on: machine lost, units rescheduled, started elsewhere.
    await new Promise((r) => setTimeout(r, 3 * TTL_MS));
    const after = await waitFor("every unit running again", async () =>
      ((l) => settled(l) && l)(await rows()),
    );
    const lost = cluster.nodes.flatMap((n) =>
      readFileSync(n.logFile, "utf8")
        .split("\n")
        .filter((l) => /machine \S+ \(\S+\) is lost/.test(l)),
    );
    const where = (l: UnitRow[]) => Object.fromEntries(l.map((r) => [r.name, r.machine]));
    expect(where(after)).toEqual(where(before));
    expect(unitProcesses(marker)).toEqual(procsBefore);
    expect(lost).toEqual([]);
  }, 90_000);
});
