// The supervisor on its own, in this process: a node connects, hands it a lease and a unit, and goes away; the
// lease runs out, the unit is killed, and the supervisor ends — even though its directory was removed meanwhile
// (a disk or directory gone must not keep units running, nor keep the supervisor alive).
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { UnitState } from "../src/agent/agent.ts";
import { monotonicMs } from "../src/agent/lease.ts";
import { runSupervisor, SUPERVISOR_PROTOCOL, SUPERVISOR_SOCKET } from "../src/agent/supervisor.ts";
import { detectPlacement } from "../src/agent/unit-cgroup.ts";
import { Connection } from "../src/wire/connection.ts";
import { sweepAgentCgroups } from "./support/cgroups.ts";
import { waitFor } from "./support/processes.ts";

const dial = (path: string) =>
  new Promise<Socket>((resolve, reject) => {
    const s = connect(path);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("berth supervise", () => {
  it("kills its units when the lease runs out and exits, with its directory gone", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-supervise-"));
    const agentDir = join(dir, "agent");
    let mainPid: number | null = null;
    try {
      const exited = runSupervisor({ agentDir, machineId: "m1", hostname: "h1", fenceMs: 500 });
      const socket = await waitFor("the supervisor's socket", () => dial(join(agentDir, SUPERVISOR_SOCKET)));
      const conn = new Connection(socket, { label: "test node" });
      const states = new Map<string, UnitState>();
      conn.serve({
        request: async () => {
          throw new Error("no read point: this node is cut off");
        },
        notify: (method, params) => {
          if (method === "state") states.set((params as UnitState).name, params as UnitState);
        },
      });
      const hello = (await conn.request("hello", {}, { timeoutMs: 5000 })) as { protocol?: number };
      // Versioned: a node upgraded in place can tell what the running supervisor speaks.
      expect(hello.protocol).toBe(SUPERVISOR_PROTOCOL);
      conn.notify("lease", { issuedAt: monotonicMs() });
      conn.notify("reconcile", {
        specs: [
          {
            name: "s.service",
            hash: "h1",
            text: "[Service]\nExecStart=/bin/sleep 1000\n",
            desired: "launched",
          },
        ],
      });
      mainPid = await waitFor("the unit running", () => states.get("s.service")?.mainPid ?? null);
      conn.close();
      rmSync(dir, { recursive: true, force: true });
      await waitFor("the unit killed by the fence", () => !alive(mainPid!), 5000);
      // The supervisor ends once no node and no unit is left for 10 s.
      await Promise.race([
        exited,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error("the supervisor did not exit")), 20_000),
        ),
      ]);
      expect(existsSync(agentDir)).toBe(false);
    } finally {
      if (mainPid !== null && alive(mainPid)) process.kill(mainPid, "SIGKILL");
      sweepAgentCgroups(detectPlacement(), agentDir);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 40_000);

  it("asks its node to reconcile anew when a reconcile came while it held no lease", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-supervise-"));
    const agentDir = join(dir, "agent");
    try {
      const exited = runSupervisor({ agentDir, machineId: "m1", hostname: "h1", fenceMs: 500 });
      const socket = await waitFor("the supervisor's socket", () => dial(join(agentDir, SUPERVISOR_SOCKET)));
      const conn = new Connection(socket, { label: "test node" });
      const notes: string[] = [];
      const states = new Map<string, UnitState>();
      conn.serve({
        request: async () => {
          throw new Error("no read point: this node is cut off");
        },
        notify: (method, params) => {
          notes.push(method);
          if (method === "state") states.set((params as UnitState).name, params as UnitState);
        },
      });
      await conn.request("hello", {}, { timeoutMs: 5000 });
      // The node's read point came too late (a busy machine): the lease lapsed before this reconcile arrived.
      conn.notify("reconcile", {
        specs: [
          {
            name: "s.service",
            hash: "h1",
            text: "[Service]\nExecStart=/bin/sleep 1000\n",
            desired: "launched",
          },
        ],
      });
      await new Promise((r) => setTimeout(r, 200));
      expect(states.size).toBe(0);
      expect(notes).not.toContain("unfenced");
      // A renewal arrives: the reconcile it ignored is not lost, the node is asked for a fresh one.
      conn.notify("lease", { issuedAt: monotonicMs() });
      await waitFor("the node asked to reconcile anew", () => notes.includes("unfenced"), 5000);
      expect(states.size).toBe(0);
      conn.close();
      await exited;
    } finally {
      sweepAgentCgroups(detectPlacement(), agentDir);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 40_000);
});
