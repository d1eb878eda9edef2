// The per-unit state machine: one service unit run as real processes with systemd's semantics (systemd.service(5)).
//
//   start:  [start limit] → start-pre (ExecStartPre…) → start (ExecStart) → start-post (ExecStartPost…) → running
//           (Type=simple: active as soon as the main process is spawned; Type=oneshot: every ExecStart= in order,
//           then active/exited with RemainAfterExit=yes, else straight on to stop)
//   stop:   stop (ExecStop…) → stop-sigterm (KillSignal= per KillMode=) → stop-sigkill after TimeoutStopSec →
//           stop-post (ExecStopPost…) → dead / failed → auto-restart (RestartSec) → start again, per Restart=
//
// Every process of a run is born in the unit's cgroup (unit-cgroup.ts), so children that call setsid are found and
// killed too. Where the agent has no cgroups, a run is the main process's group and session and their children.
//
// Start limits, timeouts, Restart= and the state the agent sees are UnitLifecycle's (unit-lifecycle.ts); this
// file spawns, watches and kills the processes.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename } from "node:path";
import { dockerRunTarget, killDockerRunContainer } from "./docker-run.ts";
import { type CompiledExec, parseEnvironmentFile, resolveArgv, shortSignalName } from "./exec-line.ts";
import { exitText, isClean } from "./exit-status.ts";
import {
  groupAlive,
  groupRssBytes,
  killGroup,
  lookupGroup,
  lookupUser,
  rssBytesOf,
  sessionProcesses,
} from "./proc.ts";
import type { ServiceConfig } from "./service-config.ts";
import type { UnitCgroup } from "./unit-cgroup.ts";
import { type TeardownReason, UnitLifecycle } from "./unit-lifecycle.ts";
import type {
  ExecStep,
  ExitInfo,
  RunnerContext,
  ServiceResult,
  StepRecord,
  UnitState,
} from "./unit-types.ts";

interface Proc {
  pid: number | null;
  exit: Promise<ExitInfo>;
  exited: ExitInfo | null;
}

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** After SIGKILL, how long to wait for the group to vanish before giving up on it. */
const FINAL_KILL_WAIT_MS = 5_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ServiceRunner extends UnitLifecycle {
  private lastMainExit: ExitInfo | null = null;
  private mainExitedDuringStart: ExitInfo | null = null;
  /** Process group of the main process, kept after it exits so that leftovers can be killed. */
  private mainPgid: number | null = null;
  private main: Proc | null = null;
  private control: { proc: Proc; pgid: number | null } | null = null;
  /** The unit's cgroup, from the first start until it is removed (empty) after a stop; null where none exists. */
  private cgroup: UnitCgroup | null = null;
  private env: Record<string, string> = {};

  constructor(
    hash: string,
    private readonly cfg: ServiceConfig,
    ctx: RunnerContext,
  ) {
    super(hash, cfg, ctx, cfg.warnings);
  }

  /** The program (basename of the Exec line's path) each recent process ran: the identifier of its journal lines. */
  private readonly programs = new Map<number, string>();

  protected override identOf(pid: number | null): string | undefined {
    return pid === null ? undefined : this.programs.get(pid);
  }

  /** The unit's cgroup directory while it has one: `berth status` lists its processes (systemctl's CGroup:). */
  protected override extraState(): Partial<UnitState> {
    return this.cgroup !== null ? { cgroup: this.cgroup.path } : {};
  }

  protected memoryReader(): () => number | null {
    const running = this.mainPgid !== null && (this.active === "active" || this.active === "activating");
    const pgid = running ? this.mainPgid : null;
    const cgroup = this.cgroup;
    if (cgroup !== null && running) return () => rssBytesOf(cgroup.pids());
    return () => (pgid === null ? null : groupRssBytes(pgid));
  }

  // -------------------------------------------------------------------------------------------------------------
  // Start

  protected async startSequence(gen: number): Promise<void> {
    const cfg = this.cfg;
    this.lastMainExit = null;
    this.mainExitedDuringStart = null;
    this.log(`Starting ${this.desc}...`);
    if (this.cgroup === null) {
      this.cgroup = this.ctx.cgroups?.group(this.name) ?? null;
      if (this.cgroup !== null) this.ctx.groups?.addCgroup(this.name, this.cgroup.dirs);
    }
    try {
      this.env = this.buildEnv();
    } catch (e) {
      this.set("activating", "start-pre");
      this.log(`${this.name}: Failed to load environment files: ${(e as Error).message}`);
      return this.failStart(gen, "resources");
    }

    if (cfg.execStartPre.length > 0) this.set("activating", "start-pre");
    for (const cmd of cfg.execStartPre) {
      const r = await this.runControl("ExecStartPre", cmd, gen);
      if (gen !== this.gen) return;
      if (!r.ok) return this.failStart(gen, r.result);
    }

    if (cfg.type === "oneshot") {
      this.set("activating", "start");
      for (const cmd of cfg.execStart) {
        const r = await this.runControl("ExecStart", cmd, gen, { asMain: true });
        if (gen !== this.gen) return;
        if (!r.ok) return this.failStart(gen, r.result);
      }
    } else {
      const cmd = cfg.execStart[0]!;
      const proc = this.spawnProc("ExecStart", cmd, {});
      if (proc.pid === null) {
        const e = await proc.exit;
        this.log(`${this.name}: Main process exited, ${exitText(e)}`);
        return this.failStart(gen, "exit-code");
      }
      this.main = proc;
      this.mainPgid = proc.pid;
      void proc.exit.then((e) => this.onMainExit(proc, e, gen));
      this.set(
        cfg.execStartPost.length > 0 ? "activating" : "active",
        cfg.execStartPost.length > 0 ? "start-post" : "running",
        proc.pid,
      );
    }

    if (cfg.execStartPost.length > 0) this.set("activating", "start-post");
    for (const cmd of cfg.execStartPost) {
      const r = await this.runControl("ExecStartPost", cmd, gen);
      if (gen !== this.gen) return;
      if (!r.ok) return this.failStart(gen, r.result);
    }
    this.clearStartTimer();

    if (cfg.type === "oneshot") {
      if (cfg.remainAfterExit) {
        this.set("active", "exited", null);
        this.log(`Finished ${this.desc}.`);
        return;
      }
      this.log(`Finished ${this.desc}.`);
      void this.teardown("exited");
      return;
    }
    if (this.mainExitedDuringStart !== null) {
      this.set("active", "running", null);
      this.log(`Started ${this.desc}.`);
      this.mainExited(this.mainExitedDuringStart, this.cfg.type !== "oneshot");
      return;
    }
    this.set("active", "running");
    this.log(`Started ${this.desc}.`);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Main process

  private onMainExit(proc: Proc, e: ExitInfo, gen: number): void {
    if (this.main === proc) this.main = null;
    this.lastMainExit = e;
    if (this.mainPid === proc.pid) this.set(this.active, this.sub, null);
    if (gen !== this.gen || this.stopping !== null) return;
    if (this.active === "activating") {
      this.mainExitedDuringStart = e;
      return;
    }
    this.mainExited(e, this.cfg.type !== "oneshot");
  }

  // -------------------------------------------------------------------------------------------------------------
  // Stop

  /**
   * ExecStop= (only for a run that got going: a stop request or an exit) → SIGTERM/SIGKILL to the main group →
   * ExecStopPost=; a control process still running (start timeout, stop while starting) is killed first.
   */
  protected async stopSequence(reason: TeardownReason): Promise<void> {
    const cfg = this.cfg;
    const gen = this.gen;
    const killControl = reason === "start-timeout" || reason === "stop-while-starting";
    const runExecStop = reason === "stop" || reason === "exited";
    if (killControl && this.control !== null) {
      this.set("deactivating", this.stopRequested ? "stop" : "stop-sigterm");
      await this.terminate(this.control.pgid, this.control.proc, Date.now() + cfg.timeoutStopMs);
    }
    if (runExecStop && cfg.execStop.length > 0) {
      this.set("deactivating", "stop");
      const deadline = Date.now() + cfg.timeoutStopMs;
      const extra: Record<string, string> = this.mainPid !== null ? { MAINPID: String(this.mainPid) } : {};
      for (const cmd of cfg.execStop) {
        const r = await this.runControl("ExecStop", cmd, gen, { env: extra, deadline });
        if (r.timedOut) {
          this.log(`${this.name}: Stopping timed out. Terminating.`);
          if (this.result === "success") this.result = "timeout";
          break;
        }
      }
    }
    await this.killMain(Date.now() + cfg.timeoutStopMs);
    if (cfg.execStopPost.length > 0) {
      this.set("deactivating", "stop-post", null);
      const deadline = Date.now() + cfg.timeoutStopMs;
      const e = this.lastMainExit;
      const extra: Record<string, string> = { SERVICE_RESULT: this.result };
      if (e !== null) {
        extra.EXIT_CODE = e.code;
        extra.EXIT_STATUS = String(e.status);
      }
      for (const cmd of cfg.execStopPost) {
        const r = await this.runControl("ExecStopPost", cmd, gen, { env: extra, deadline });
        if (r.timedOut) {
          if (this.result === "success") this.result = "timeout";
          break;
        }
      }
    }
    this.mainPgid = null;
    this.main = null;
    await this.removeCgroup();
    this.enterDead(reason);
  }

  /**
   * The fence: every process of the run dies now (its cgroup, else its process groups and session, stopped first),
   * and the container its `docker run` started, which the engine runs apart from the unit's processes.
   */
  protected async killEverything(): Promise<void> {
    const main = this.cfg.execStart[0];
    const container = main ? dockerRunTarget(resolveArgv(main, this.env), this.env) : null;
    if (this.cgroup !== null) this.cgroup.killAll();
    else {
      this.signalUnit("SIGSTOP");
      const control = this.control?.pgid ?? null;
      if (control !== null) killGroup(control, "SIGKILL");
      this.signalUnit("SIGKILL");
    }
    if (container !== null) await killDockerRunContainer(container, (l) => this.log(`${this.name}: ${l}`));
    await this.waitUntil(() => !this.unitAlive(), FINAL_KILL_WAIT_MS);
  }

  /**
   * Stops what is left of the run, per KillMode= (systemd.kill(5)): KillSignal= (+SIGCONT) to every process of the
   * unit (control-group) or to the main process (mixed, process); once `deadline` passes (result: timeout) SIGKILL
   * to every process (control-group, mixed) or to the main one (process). Mixed kills the rest as soon as the main
   * process is gone. KillMode=none, or SendSIGKILL=no at the deadline, leaves the processes running.
   */
  private async killMain(deadline: number): Promise<void> {
    const { killMode: mode, killSignal, sendSigkill } = this.cfg;
    const main = this.main;
    const mainPid = main?.pid ?? null;
    const wholeUnit = mode === "control-group" || mode === "mixed";
    if (mode === "none" || (main === null && !(wholeUnit && this.unitAlive()))) return;
    this.set("deactivating", "stop-sigterm");
    const toMain = (sig: NodeJS.Signals): void => {
      if (mainPid === null) return;
      try {
        process.kill(mainPid, sig);
      } catch {}
    };
    if (mode === "control-group") {
      this.signalUnit(killSignal);
      this.signalUnit("SIGCONT");
    } else {
      toMain(killSignal);
      toMain("SIGCONT");
    }
    const gone = (): boolean =>
      (main === null || main.exited !== null) && (mode !== "control-group" || !this.unitAlive());
    const inTime = await this.waitUntil(gone, deadline - Date.now());
    if (!inTime) {
      this.stopTimedOut();
      if (!sendSigkill) return;
      this.set("deactivating", "stop-sigkill");
    }
    if (mode === "process") {
      if (!inTime) toMain("SIGKILL");
    } else if (this.cgroup !== null) this.cgroup.killAll();
    else this.signalUnit("SIGKILL");
    const dead = (): boolean =>
      (main === null || main.exited !== null) && (mode === "process" || !this.unitAlive());
    await this.waitUntil(dead, FINAL_KILL_WAIT_MS);
  }

  /** Is anything of this run still running: its cgroup, else the main process's group and session. */
  private unitAlive(): boolean {
    if (this.cgroup !== null) return this.cgroup.alive();
    const pgid = this.mainPgid;
    return pgid !== null && (groupAlive(pgid) || sessionProcesses(pgid).length > 0);
  }

  /** Sends a signal to every process of the run (see unitAlive). */
  private signalUnit(sig: NodeJS.Signals): void {
    if (this.cgroup !== null) {
      this.cgroup.signal(sig);
      return;
    }
    const pgid = this.mainPgid;
    if (pgid === null) return;
    // Found before the signal: a child is found through its parent only while that parent lives.
    const rest = sessionProcesses(pgid);
    killGroup(pgid, sig);
    for (const pid of rest) {
      try {
        process.kill(pid, sig);
      } catch {}
    }
  }

  /**
   * After a stop: what ExecStopPost= left behind is killed (control-group, mixed), then the emptied cgroup is
   * removed; it is kept (and stays recorded) while KillMode= left processes in it.
   */
  private async removeCgroup(): Promise<void> {
    const cg = this.cgroup;
    if (cg === null) return;
    const wholeUnit = this.cfg.killMode === "control-group" || this.cfg.killMode === "mixed";
    if (wholeUnit) cg.killAll();
    else if (cg.alive()) return;
    if (!(await cg.remove())) return;
    if (this.cgroup === cg) this.cgroup = null;
    this.ctx.groups?.removeCgroup(this.name);
  }

  /** The unit's cgroup, for a supervisor that freezes or kills a whole unit (null where it has none). */
  unitCgroup(): UnitCgroup | null {
    return this.cgroup;
  }

  private async waitUntil(done: () => boolean, ms: number): Promise<boolean> {
    const until = Date.now() + Math.max(0, ms);
    for (;;) {
      if (done()) return true;
      if (Date.now() >= until) return false;
      await sleep(Math.min(20, Math.max(1, until - Date.now())));
    }
  }

  /** Terminates a control process's group: SIGTERM, then SIGKILL at the deadline. */
  private async terminate(pgid: number | null, proc: Proc | null, deadline: number) {
    if (pgid === null) {
      if (proc !== null) await proc.exit;
      return;
    }
    killGroup(pgid, "SIGTERM");
    killGroup(pgid, "SIGCONT");
    if (await this.waitGone(pgid, proc, deadline - Date.now())) return;
    killGroup(pgid, "SIGKILL");
    await this.waitGone(pgid, proc, FINAL_KILL_WAIT_MS);
  }

  private waitGone(pgid: number, proc: Proc | null, ms: number): Promise<boolean> {
    return this.waitUntil(() => (proc === null || proc.exited !== null) && !groupAlive(pgid), ms);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Processes

  private buildEnv(): Record<string, string> {
    const env: Record<string, string> = {
      PATH: DEFAULT_PATH,
      INVOCATION_ID: randomBytes(16).toString("hex"),
    };
    if (process.env.LANG !== undefined) env.LANG = process.env.LANG;
    if (this.cfg.user !== null) {
      const u = lookupUser(this.cfg.user);
      if (u !== null) Object.assign(env, { HOME: u.home, USER: u.name, LOGNAME: u.name, SHELL: u.shell });
    }
    Object.assign(env, this.cfg.environment);
    for (const ref of this.cfg.environmentFiles) {
      let text: string;
      try {
        text = readFileSync(ref.path, "utf8");
      } catch (e) {
        if (ref.optional && (e as NodeJS.ErrnoException).code === "ENOENT") continue;
        throw new Error(`${ref.path}: ${(e as Error).message}`);
      }
      Object.assign(env, parseEnvironmentFile(text));
    }
    return env;
  }

  /** Runs one control command (or a oneshot ExecStart) to completion, or until `deadline` (then kills it). */
  private async runControl(
    step: ExecStep,
    cmd: CompiledExec,
    gen: number,
    opts: { asMain?: boolean; env?: Record<string, string>; deadline?: number } = {},
  ): Promise<{ ok: boolean; result: ServiceResult; timedOut: boolean }> {
    const proc = this.spawnProc(step, cmd, opts.env ?? {});
    const pgid = proc.pid;
    this.control = { proc, pgid };
    if (opts.asMain && proc.pid !== null) {
      this.mainPgid = proc.pid;
      this.set(this.active, this.sub, proc.pid);
    }
    let timedOut = false;
    let e: ExitInfo;
    if (opts.deadline !== undefined && pgid !== null) {
      const raced = await Promise.race([
        proc.exit,
        sleep(Math.max(0, opts.deadline - Date.now())).then(() => null),
      ]);
      if (raced === null) {
        timedOut = true;
        await this.terminate(pgid, proc, Date.now());
        e = await proc.exit;
      } else e = raced;
    } else e = await proc.exit;
    if (this.control?.proc === proc) this.control = null;
    if (opts.asMain) {
      this.lastMainExit = e;
      if (this.mainPgid === proc.pid) this.mainPgid = null;
      if (this.mainPid === proc.pid && gen === this.gen) this.set(this.active, this.sub, null);
    }
    const ok = isClean(e, false);
    if (!ok && gen === this.gen) {
      const who = opts.asMain ? "Main process" : "Control process";
      this.log(`${this.name}: ${who} exited, ${exitText(e)}${cmd.ignoreFailure ? " (ignored)" : ""}`);
    }
    return {
      ok: ok || cmd.ignoreFailure,
      result: timedOut ? "timeout" : e.code === "exited" ? "exit-code" : "signal",
      timedOut,
    };
  }

  /** Spawns one Exec line in its own process group and the unit's cgroup, its output going to the journal. */
  private spawnProc(step: ExecStep, cmd: CompiledExec, extraEnv: Record<string, string>): Proc {
    const record: StepRecord = {
      step,
      // As systemctl shows it: the words after specifier expansion (%i of a template instance filled in).
      command: cmd.argv.join(" "),
      pid: null,
      code: null,
      status: null,
      at: this.ctx.now(),
    };
    this.steps.set(cmd, record);
    const failed = (status: number, why: string): Proc => {
      this.log(`${this.name}: Failed at step ${why} spawning ${cmd.path}`);
      const e: ExitInfo = { code: "exited", status };
      Object.assign(record, { code: e.code, status, at: this.ctx.now() });
      return { pid: null, exit: Promise.resolve(e), exited: e };
    };
    const env = { ...this.env, ...extraEnv };
    // Working directory (systemd.exec(5)): "-" = a missing directory is not an error; "~" = the user's home.
    let cwd = "/";
    const wd = this.cfg.workingDirectory;
    if (wd !== null) {
      const path = wd.path === "~" ? (env.HOME ?? "/") : wd.path;
      let isDir = false;
      try {
        isDir = statSync(path).isDirectory();
      } catch {
        isDir = false;
      }
      if (isDir) cwd = path;
      else if (!wd.optional) return failed(200, `CHDIR (${path})`);
    }
    // Credentials: only when User=/Group= name someone else, and not for "+"/"!"-prefixed lines.
    let uid: number | undefined;
    let gid: number | undefined;
    const privileged = cmd.fullPrivileges || cmd.noCredentialChange || cmd.ambientFallback;
    if (this.cfg.user !== null && !privileged) {
      const u = lookupUser(this.cfg.user);
      if (u === null) return failed(217, `USER (no such user ${this.cfg.user})`);
      if (u.uid !== process.getuid?.()) {
        uid = u.uid;
        gid = u.gid;
      }
    }
    if (this.cfg.group !== null && !privileged) {
      const g = lookupGroup(this.cfg.group);
      if (g === null) return failed(216, `GROUP (no such group ${this.cfg.group})`);
      if (g !== process.getgid?.()) gid = g;
    }
    const argv = resolveArgv(cmd, env);
    if (!cmd.path.includes("/") && !searchPath(cmd.path, env.PATH ?? DEFAULT_PATH)) {
      return failed(203, "EXEC (command not found)");
    }
    let child: ChildProcess;
    try {
      // detached: the child leads a new session and process group (setsid).
      const start = (): ChildProcess =>
        spawn(cmd.path, argv.slice(1), {
          argv0: argv[0] ?? cmd.path,
          cwd,
          env,
          detached: true,
          stdio: ["ignore", "pipe", "pipe"],
          ...(uid !== undefined ? { uid } : {}),
          ...(gid !== undefined ? { gid } : {}),
        });
      child = this.cgroup !== null ? this.cgroup.spawnInside(start) : start();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return failed(
        code === "EPERM" ? 217 : 203,
        `${code === "EPERM" ? "USER" : "EXEC"} (${(e as Error).message})`,
      );
    }
    const proc: Proc = {
      pid: child.pid ?? null,
      exit: Promise.resolve({ code: "exited", status: 0 }),
      exited: null,
    };
    record.pid = proc.pid;
    proc.exit = new Promise<ExitInfo>((resolve) => {
      const done = (e: ExitInfo): void => {
        if (proc.exited !== null) return;
        proc.exited = e;
        Object.assign(record, { code: e.code, status: e.status, at: this.ctx.now() });
        resolve(e);
      };
      child.once("error", (err) => {
        this.log(`${this.name}: Failed to execute ${cmd.path}: ${err.message}`);
        done({ code: "exited", status: (err as NodeJS.ErrnoException).code === "EPERM" ? 217 : 203 });
      });
      child.once("exit", (code, signal) => {
        done(
          code !== null
            ? { code: "exited", status: code }
            : { code: "killed", status: shortSignalName(signal ?? "KILL") },
        );
      });
    });
    // Recorded only now: proc.exit is the real exit promise from here on.
    const pgid = proc.pid;
    if (pgid !== null) {
      this.ctx.groups?.add(pgid, this.name);
      void proc.exit.then(() => this.ctx.groups?.remove(pgid));
    }
    if (child.pid !== undefined) {
      // Lines may arrive after the exit: keep the last few runs' programs, not every pid ever seen.
      if (this.programs.size >= 64) this.programs.delete(this.programs.keys().next().value!);
      this.programs.set(child.pid, basename(cmd.path));
    }
    if (child.stdout) this.output.read(child.stdout, "stdout", child.pid);
    if (child.stderr) this.output.read(child.stderr, "stderr", child.pid);
    return proc;
  }
}

function searchPath(name: string, path: string): boolean {
  return path.split(":").some((dir) => dir !== "" && existsSync(`${dir}/${name}`));
}
