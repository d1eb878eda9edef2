// The harness shared by the process-agent tests: agents stopped, unit process groups killed and temp dirs
// removed after each test, plus polling for states.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import { Agent, type AgentOptions, type UnitSpec, type UnitState } from "../../src/agent/agent.ts";
import { processState } from "../../src/agent/proc.ts";
import { detectPlacement } from "../../src/agent/unit-cgroup.ts";
import { sweepAgentCgroups } from "./cgroups.ts";
import { waitFor as sharedWaitFor } from "./processes.ts";

/** A long-running main process that exits promptly on SIGTERM. */
export const SLEEPER = "/bin/sh -c 'while :; do sleep 0.05; done'";

/** A process that exists and is not a zombie (orphans wait for PID 1 to reap them). */
export function alive(pid: number): boolean {
  const state = processState(pid);
  return state !== null && state !== "Z";
}

export const spec = (
  name: string,
  text: string,
  desired: UnitSpec["desired"] = "launched",
  hash = "h1",
): UnitSpec => ({
  name,
  hash,
  text,
  desired,
});

export interface AgentHarness {
  /** A temp dir removed after the test. */
  tmp(): string;
  /**
   * An agent on `dir` (machine m1abc), stopped after the test, its unit cgroups removed; `events` collects its
   * state changes. `extra` adds agent options.
   */
  makeAgent(dir?: string, extra?: Partial<AgentOptions>): { agent: Agent; dir: string; events: UnitState[] };
  /** For a test that stops `agent` itself: it is not stopped again after the test. */
  release(agent: Agent): void;
  /** A process group to SIGKILL after the test (main processes are tracked already). */
  killAfterTest(pgid: number): void;
  /** waitFor of ./processes.ts, polling every 20 ms, `waitMs` by default. */
  waitFor<T>(what: string, f: () => T | undefined | null | false, ms?: number): Promise<T>;
  waitState(agent: Agent, name: string, active: string, sub?: string, ms?: number): Promise<UnitState>;
}

/** Registers the cleanup (afterEach) for one test file; `waitMs` is the default for waitFor and waitState. */
export function agentHarness(opts: { tmpPrefix: string; waitMs: number }): AgentHarness {
  const agents: Agent[] = [];
  const dirs: string[] = [];
  const pgids = new Set<number>();
  /** Data directories of the agents made, with where their unit cgroups go. */
  const cgroupOwners: { dataDir: string; placement: AgentOptions["cgroups"] }[] = [];

  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.stop()));
    // Units that outlived a stop (or an agent that was never stopped) must not leak into the next test.
    for (const pgid of pgids) {
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {}
    }
    pgids.clear();
    for (const o of cgroupOwners.splice(0)) sweepAgentCgroups(o.placement ?? null, o.dataDir);
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), opts.tmpPrefix));
    dirs.push(d);
    return d;
  };

  const makeAgent = (dir = tmp(), extra: Partial<AgentOptions> = {}) => {
    const dataDir = join(dir, "data");
    cgroupOwners.push({
      dataDir,
      placement: extra.cgroups === undefined ? detectPlacement() : extra.cgroups,
    });
    const agent = new Agent({ machineId: "m1abc", hostname: "node-1", dataDir, ...extra });
    const events: UnitState[] = [];
    agent.onStateChange((s) => {
      events.push(s);
      if (s.mainPid !== null) pgids.add(s.mainPid);
    });
    agents.push(agent);
    return { agent, dir, events };
  };

  // The shared wait, polling often: an in-process agent's states can be brief (auto-restart between two runs).
  const waitFor = <T>(what: string, f: () => T | undefined | null | false, ms = opts.waitMs) =>
    sharedWaitFor(what, f, ms, 20);

  const waitState = (agent: Agent, name: string, active: string, sub?: string, ms = opts.waitMs) =>
    waitFor(
      `${name} to be ${active}/${sub ?? "*"}`,
      () => {
        const s = agent.state(name);
        if (s && s.active === active && (sub === undefined || s.sub === sub)) return s;
        throw new Error(`now ${s?.active}/${s?.sub}`);
      },
      ms,
    );

  return {
    tmp,
    makeAgent,
    release: (agent) => void agents.splice(agents.indexOf(agent), 1),
    killAfterTest: (pgid) => void pgids.add(pgid),
    waitFor,
    waitState,
  };
}

/** How many non-empty lines a file holds (0 when it does not exist): how often a unit that appends a line ran. */
export function lineCount(file: string): number {
  return existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l !== "").length
    : 0;
}
