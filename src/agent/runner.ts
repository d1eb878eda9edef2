// The per-unit state machine: one service unit run as real processes with systemd's semantics (systemd.service(5)).
//
//   start:  [start limit] → start-pre (ExecStartPre…) → start (ExecStart) → start-post (ExecStartPost…) → running
//           (Type=simple: active as soon as the main process is spawned; Type=oneshot: every ExecStart= in order,
//           then active/exited with RemainAfterExit=yes, else straight on to stop; Type=forking: once the started
//           process exits, its daemon found by PIDFile= or GuessMainPID= (main-pid.ts) being the main process;
//           Type=notify: once the main process sends READY=1 to its notify socket (notify-socket.ts))
//   running: WatchdogSec= → stop-watchdog (WatchdogSignal=, SIGKILL after TimeoutStopSec) when no WATCHDOG=1 came
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
import { closeSync, existsSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import type { Readable } from "node:stream";
import { dockerRunTarget, killDockerRunContainer } from "./docker-run.ts";
import { type CompiledExec, parseEnvironmentFile, resolveArgv, shortSignalName } from "./exec-line.ts";
import { untilGone } from "./exit-poll.ts";
import { exitText, isClean } from "./exit-status.ts";
import type { Leftover } from "./leftovers.ts";
import { guessMainPid, readPidFile, runs } from "./main-pid.ts";
import { type NotifyMessage, type NotifySocket, notifyFields } from "./notify-socket.ts";
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
import { UnitCgroup } from "./unit-cgroup.ts";
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
  /**
   * Not Berth's child, so its exit status is unknown: a Type=forking daemon (or none found: pid null), or a main
   * process adopted from a previous supervisor.
   */
  foreign?: boolean;
  /** The FIFOs its stdout and stderr go to (output-fifo.ts), when they are FIFOs. */
  output?: { stdout: string; stderr: string };
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
  /** The run's notify socket (NotifyAccess= other than none), closed when the run is over. */
  private notify: NotifySocket | null = null;
  /** The last STATUS= accepted; kept after the run, until the next start. */
  private statusText: string | null = null;
  /** Wakes a Type=notify start waiting for READY=1 (also on the main process's exit). */
  private wakeStart: (() => void) | null = null;
  private ready = false;
  private watchdogTimer: ReturnType<typeof setTimeout> | null = null;
  /** The watchdog fired in this run: the stop skips ExecStop=, as systemd's stop-watchdog does. */
  private watchdogFired = false;
  /** The FIFOs the run's ExecStart= process writes to (a Type=forking daemon inherits them); null: pipes. */
  private startOutput: { stdout: string; stderr: string } | null = null;

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
    return {
      ...(this.cgroup !== null ? { cgroup: this.cgroup.path } : {}),
      ...(this.statusText !== null ? { statusText: this.statusText } : {}),
    };
  }

  protected override changeKey(): string {
    return this.statusText ?? "";
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
    this.statusText = null;
    this.ready = false;
    this.watchdogFired = false;
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
    if (cfg.notifyAccess !== "none") {
      const why = this.openNotifySocket();
      if (why !== null) {
        this.set("activating", "start-pre");
        this.log(`${this.name}: ${why}`);
        return this.failStart(gen, "resources");
      }
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
    } else if (cfg.type === "forking") {
      this.set("activating", "start");
      // The started process is the main one until it exits; then its daemon is.
      const r = await this.runControl("ExecStart", cfg.execStart[0]!, gen, { asMain: true });
      if (gen !== this.gen) return;
      if (!r.ok) return this.failStart(gen, r.result);
      const found = await this.findForkedMain(gen);
      if (gen !== this.gen) return;
      if (found === "gone") return this.failStart(gen, "resources");
      this.adoptMain(found, gen);
    } else {
      const cmd = cfg.execStart[0]!;
      const watchdog: Record<string, string> =
        cfg.watchdogMs > 0 ? { WATCHDOG_USEC: String(cfg.watchdogMs * 1000) } : {};
      const proc = this.spawnProc("ExecStart", cmd, watchdog);
      if (proc.pid === null) {
        const e = await proc.exit;
        this.log(`${this.name}: Main process exited, ${exitText(e)}`);
        return this.failStart(gen, "exit-code");
      }
      this.main = proc;
      this.mainPgid = proc.pid;
      void proc.exit.then((e) => this.onMainExit(proc, e, gen));
      this.armWatchdog(gen);
      if (cfg.type === "notify") {
        this.set("activating", "start", proc.pid);
        await this.untilReadyOrExit();
        if (gen !== this.gen) return;
        // Set by onMainExit meanwhile (the compiler cannot see it).
        const e = this.mainExitedDuringStart as ExitInfo | null;
        if (!this.ready && e !== null) {
          this.log(`${this.name}: Main process exited, ${exitText(e)}`);
          return this.failStart(
            gen,
            isClean(e, true) ? "protocol" : e.code === "exited" ? "exit-code" : "signal",
          );
        }
      }
      this.set(
        cfg.execStartPost.length > 0 ? "activating" : "active",
        cfg.execStartPost.length > 0 ? "start-post" : "running",
        proc.pid,
      );
      this.recordMain(proc, proc.pid);
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
        // Done, and not to be done again by a supervisor taking over after a crash of this one.
        this.ctx.groups?.addMain(this.name, {
          hash: this.hash,
          pid: 0,
          pgid: 0,
          output: null,
          remained: true,
          ...this.triggeredMark(),
        });
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
    if (proc.pid !== null) this.ctx.groups?.removeMain(this.name, proc.pid);
    this.lastMainExit = e;
    if (this.mainPid === proc.pid) this.set(this.active, this.sub, null);
    this.clearWatchdog();
    if (gen !== this.gen || this.stopping !== null) return this.wake();
    if (this.active === "activating") {
      this.mainExitedDuringStart = e;
      return this.wake();
    }
    if (proc.foreign) {
      // Not Berth's child: systemd too only sees that it is gone, and stops the unit as a success.
      this.log(
        proc.pid !== null
          ? `${this.name}: Main process ${proc.pid} is gone (not a child of Berth, its exit status is unknown).`
          : `${this.name}: The unit's last process is gone.`,
      );
      void this.teardown("exited");
      return;
    }
    this.mainExited(e, this.cfg.type !== "oneshot");
  }

  // -------------------------------------------------------------------------------------------------------------
  // Type=forking

  /**
   * The daemon after the started process exited: PIDFile= (waited for until the start timeout, as systemd does),
   * else GuessMainPID= from the cgroup; null when none is known (the unit then runs while its cgroup has processes),
   * "gone" when the PID file names no running process.
   */
  private async findForkedMain(gen: number): Promise<number | null | "gone"> {
    const path = this.cfg.pidFile;
    if (path !== null) {
      let pid = readPidFile(path);
      while (pid === null) {
        await sleep(20);
        if (gen !== this.gen) return null;
        pid = readPidFile(path);
      }
      if (runs(pid)) return pid;
      this.log(`${this.name}: New main PID ${pid} does not exist or is a zombie.`);
      return "gone";
    }
    if (!this.cfg.guessMainPid || this.cgroup === null) return null;
    const pid = guessMainPid(this.cgroup.pids());
    if (pid === null)
      this.log(`${this.name}: Supervising the unit without a main PID (none could be guessed).`);
    return pid;
  }

  /** Watches the forked daemon (by polling: it is not our child), or the unit's processes when none is known. */
  private adoptMain(pid: number | null, gen: number): void {
    const proc: Proc = {
      pid,
      exit: Promise.resolve({ code: "exited", status: 0 }),
      exited: null,
      foreign: true,
      // The daemon inherited the started process's output, unless it closed it.
      ...(this.startOutput !== null ? { output: this.startOutput } : {}),
    };
    this.watchForeign(proc, gen);
    this.armWatchdog(gen);
    const post = this.cfg.execStartPost.length > 0;
    this.set(post ? "activating" : "active", post ? "start-post" : "running", pid);
    if (pid !== null) this.recordMain(proc, pid);
  }

  /** Makes a process that is not our child the main one: its exit is seen by polling. */
  private watchForeign(proc: Proc, gen: number): void {
    const pid = proc.pid;
    const gone = pid !== null ? () => !runs(pid) : () => !this.unitAlive();
    proc.exit = untilGone(gone).then(() => {
      proc.exited = { code: "exited", status: 0 };
      return proc.exited;
    });
    this.main = proc;
    if (pid !== null) this.mainPgid = pid;
    void proc.exit.then((e) => this.onMainExit(proc, e, gen));
  }

  /**
   * Records the running main process, so that a supervisor taking over after this one crashed can adopt the unit;
   * only one whose output goes to FIFOs can be (pipes die with this process) and not under a watchdog (its notify
   * socket dies with it too).
   */
  private recordMain(proc: Proc, pgid: number): void {
    if (proc.pid === null || proc.exited !== null || proc.output === undefined) return;
    if (this.cfg.watchdogMs > 0) return;
    this.ctx.groups?.addMain(this.name, {
      hash: this.hash,
      pid: proc.pid,
      pgid,
      output: proc.output,
      ...this.triggeredMark(),
    });
  }

  private triggeredMark(): { triggered?: true } {
    return this.ctx.triggered?.() ? { triggered: true } : {};
  }

  /**
   * Takes over a main process that a previous supervisor left running (leftovers.ts): the unit is active/running
   * with it, its output read on from its FIFOs, its exit seen by polling — it is not our child, so its exit status
   * is unknown, and systemd too counts such an exit as a success. False when it is gone already.
   */
  adopt(left: Leftover): boolean {
    if (this.active !== "inactive") return false;
    if (left.remained) {
      if (this.cfg.type !== "oneshot" || !this.cfg.remainAfterExit) return false;
      this.log(`${this.name}: Ran before the previous supervisor's crash and remains active; not run again.`);
      this.set("active", "exited", null);
      return true;
    }
    if (!runs(left.pid)) return false;
    const gen = ++this.gen;
    this.result = "success";
    this.cgroup = left.cgroup !== null ? new UnitCgroup(left.cgroup) : null;
    try {
      this.env = this.buildEnv();
    } catch {
      this.env = {};
    }
    const main = this.cfg.execStart[0];
    if (main !== undefined) this.programs.set(left.pid, basename(main.path));
    const fifos = this.ctx.outputFifos?.fifos;
    if (left.output !== null && fifos !== undefined) {
      const out = fifos.open(left.output.stdout);
      const err = fifos.open(left.output.stderr);
      if (out !== null) this.output.read(out, "stdout", left.pid);
      if (err !== null) this.output.read(err, "stderr", left.pid);
    }
    const proc: Proc = {
      pid: left.pid,
      exit: Promise.resolve({ code: "exited", status: 0 }),
      exited: null,
      foreign: true,
      ...(left.output !== null ? { output: left.output } : {}),
    };
    this.watchForeign(proc, gen);
    this.mainPgid = left.pgid;
    this.log(`${this.name}: Adopted main process ${left.pid}, left running by a previous supervisor.`);
    this.set("active", "running", left.pid);
    return true;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Notify socket (sd_notify) and watchdog

  /** Opens the run's notify socket into NOTIFY_SOCKET; returns why it cannot, or null. */
  private openNotifySocket(): string | null {
    this.notify?.close();
    this.notify = null;
    const open = this.ctx.notifySocket;
    const what = `Type=${this.cfg.type}, NotifyAccess=${this.cfg.notifyAccess}`;
    if (!open) return `${what} needs a notify socket, which only Berth's binary offers (through Bun's FFI).`;
    try {
      this.notify = open((m) => this.onNotify(m));
    } catch (e) {
      return `Failed to open the notify socket: ${(e as Error).message}`;
    }
    this.env.NOTIFY_SOCKET = this.notify.address;
    return null;
  }

  private closeNotifySocket(): void {
    this.notify?.close();
    this.notify = null;
  }

  /** Why a message from `pid` is refused (systemd's words), or null when NotifyAccess= lets it in. */
  private notifyRefusal(pid: number | null): string | null {
    const access = this.cfg.notifyAccess;
    const from = `Got notification message from PID ${pid ?? "?"}`;
    const main = this.mainPid;
    const control = this.control?.proc.pid ?? null;
    if (pid === null) return `${from}, without credentials: ignoring it.`;
    if (access === "none") return `${from}, but reception is disabled.`;
    if (access === "main" || access === "exec") {
      if (pid === main || (access === "exec" && pid === control)) return null;
      const who = access === "main" ? "main PID" : "main PID and control PID";
      return `${from}, but reception only permitted for ${who}${main === null ? " which is currently not known" : ` ${main}`}`;
    }
    if (pid === main || pid === control) return null;
    const ofUnit =
      this.cgroup !== null
        ? this.cgroup.pids().includes(pid)
        : this.mainPgid !== null && sessionProcesses(this.mainPgid).includes(pid);
    return ofUnit ? null : `${from}, which is not a process of the unit: ignoring it.`;
  }

  private onNotify(m: NotifyMessage): void {
    const refused = this.notifyRefusal(m.pid);
    if (refused !== null) {
      this.log(`${this.name}: ${refused}`);
      return;
    }
    const f = notifyFields(m.text);
    const status = f.get("STATUS");
    if (status !== undefined) {
      this.statusText = status === "" ? null : status;
      this.set(this.active, this.sub);
    }
    if (f.get("READY") === "1" && !this.ready) {
      this.ready = true;
      this.wake();
    }
    const dog = f.get("WATCHDOG");
    if (dog === "1") this.armWatchdog(this.gen);
    else if (dog === "trigger") this.onWatchdogTimeout(this.gen);
  }

  private untilReadyOrExit(): Promise<void> {
    if (this.ready || this.mainExitedDuringStart !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.wakeStart = resolve;
    });
  }

  private wake(): void {
    const w = this.wakeStart;
    this.wakeStart = null;
    w?.();
  }

  /** (Re)starts the watchdog: WatchdogSec= from now. */
  private armWatchdog(gen: number): void {
    this.clearWatchdog();
    if (this.cfg.watchdogMs <= 0) return;
    this.watchdogTimer = setTimeout(() => this.onWatchdogTimeout(gen), this.cfg.watchdogMs);
  }

  private clearWatchdog(): void {
    if (this.watchdogTimer !== null) clearTimeout(this.watchdogTimer);
    this.watchdogTimer = null;
  }

  /** No WATCHDOG=1 in time: WatchdogSignal= per KillMode=, SIGKILL after TimeoutStopSec=; the exit does the rest. */
  private onWatchdogTimeout(gen: number): void {
    this.clearWatchdog();
    if (gen !== this.gen || this.stopping !== null || this.watchdogFired) return;
    this.watchdogFired = true;
    this.log(`${this.name}: Watchdog timeout (limit ${this.cfg.watchdogMs / 1000}s)!`);
    if (this.result === "success") this.result = "watchdog";
    this.set("deactivating", "stop-watchdog");
    const main = this.main;
    const sig = this.cfg.watchdogSignal;
    if (this.cfg.killMode === "control-group" || main?.pid == null) this.signalUnit(sig);
    else {
      try {
        process.kill(main.pid, sig);
      } catch {}
    }
    void (async () => {
      const inTime = await this.waitUntil(
        () => main === null || main.exited !== null,
        this.cfg.timeoutStopMs,
      );
      if (inTime || gen !== this.gen || !this.cfg.sendSigkill) return;
      this.log(`${this.name}: State 'stop-watchdog' timed out. Killing.`);
      if (this.cgroup !== null) this.cgroup.killAll();
      else this.signalUnit("SIGKILL");
    })();
  }

  // -------------------------------------------------------------------------------------------------------------
  // Stop

  /**
   * ExecStop= (only for a run that got going: a stop request or an exit) → SIGTERM/SIGKILL to the main group →
   * ExecStopPost=; a control process still running (start timeout, stop while starting) is killed first.
   */
  protected async stopSequence(reason: TeardownReason): Promise<void> {
    const cfg = this.cfg;
    if (this.active === "active" && this.sub === "exited") this.ctx.groups?.removeMain(this.name, 0);
    const gen = this.gen;
    const killControl = reason === "start-timeout" || reason === "stop-while-starting";
    const runExecStop = (reason === "stop" || reason === "exited") && !this.watchdogFired;
    this.clearWatchdog();
    this.wake();
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
    this.closeNotifySocket();
    await this.removeCgroup();
    this.enterDead(reason);
  }

  /**
   * The fence: every process of the run dies now (its cgroup, else its process groups and session, stopped first),
   * and the container its `docker run` started, which the engine runs apart from the unit's processes.
   */
  protected async killEverything(): Promise<void> {
    this.clearWatchdog();
    this.closeNotifySocket();
    this.wake();
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
    // Socket activation (sd_listen_fds(3)): the listening sockets of this service's socket units from fd 3 on,
    // for ExecStart= only (as systemd). LISTEN_PID must be the service's own PID, known only once it runs: a shell
    // sets it and execs the command in its place (argv[0] is then the command's path).
    const listen = step === "ExecStart" ? this.ctx.listenFds?.(this.name) : undefined;
    let path = cmd.path;
    let args = argv.slice(1);
    let argv0 = argv[0] ?? cmd.path;
    delete env.LISTEN_PID;
    if (listen !== undefined && listen.fds.length > 0) {
      env.LISTEN_FDS = String(listen.fds.length);
      env.LISTEN_FDNAMES = listen.names.join(":");
      args = ["-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"', cmd.path, ...args];
      path = argv0 = "/bin/sh";
    } else {
      delete env.LISTEN_FDS;
      delete env.LISTEN_FDNAMES;
    }
    const fifo = step === "ExecStart" && this.cfg.type !== "oneshot" ? this.outputFifos() : null;
    let child: ChildProcess;
    try {
      // detached: the child leads a new session and process group (setsid).
      const start = (): ChildProcess =>
        spawn(path, args, {
          argv0,
          cwd,
          env,
          detached: true,
          stdio: [
            "ignore",
            fifo?.stdout.childFd ?? "pipe",
            fifo?.stderr.childFd ?? "pipe",
            ...(listen?.fds ?? []),
          ],
          ...(uid !== undefined ? { uid } : {}),
          ...(gid !== undefined ? { gid } : {}),
        });
      child = this.cgroup !== null ? this.cgroup.spawnInside(start) : start();
    } catch (e) {
      fifo?.stdout.stream.destroy();
      fifo?.stderr.stream.destroy();
      const code = (e as NodeJS.ErrnoException).code;
      return failed(
        code === "EPERM" ? 217 : 203,
        `${code === "EPERM" ? "USER" : "EXEC"} (${(e as Error).message})`,
      );
    } finally {
      // The child holds its FIFOs read-write; our copies of those ends would keep them from ever ending.
      if (fifo !== null) for (const f of [fifo.stdout, fifo.stderr]) closeSync(f.childFd);
    }
    const output = fifo !== null ? { stdout: fifo.stdout.path, stderr: fifo.stderr.path } : null;
    if (step === "ExecStart") this.startOutput = output;
    const proc: Proc = {
      pid: child.pid ?? null,
      exit: Promise.resolve({ code: "exited", status: 0 }),
      exited: null,
      ...(output !== null ? { output } : {}),
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
    const stdout = fifo?.stdout.stream ?? child.stdout;
    const stderr = fifo?.stderr.stream ?? child.stderr;
    if (stdout) this.output.read(stdout, "stdout", child.pid);
    if (stderr) this.output.read(stderr, "stderr", child.pid);
    return proc;
  }

  /** A FIFO each for a main process's stdout and stderr, or null (none in this runtime, or they cannot be made). */
  private outputFifos(): Record<
    "stdout" | "stderr",
    { path: string; childFd: number; stream: Readable }
  > | null {
    const o = this.ctx.outputFifos;
    if (!o) return null;
    const made: { path: string; childFd: number; stream: Readable }[] = [];
    try {
      const id = randomBytes(6).toString("hex");
      for (const kind of ["out", "err"]) {
        const path = join(o.dir, `${id}.${kind}`);
        made.push({ path, ...o.fifos.make(path) });
      }
      return { stdout: made[0]!, stderr: made[1]! };
    } catch (e) {
      for (const m of made) {
        closeSync(m.childFd);
        m.stream.destroy();
      }
      this.log(
        `${this.name}: output into pipes (a supervisor crash restarts the unit): ${(e as Error).message}`,
      );
      return null;
    }
  }
}

function searchPath(name: string, path: string): boolean {
  return path.split(":").some((dir) => dir !== "" && existsSync(`${dir}/${name}`));
}
