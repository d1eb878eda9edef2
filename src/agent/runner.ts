// The per-unit state machine: one service unit run as real processes with systemd's semantics (systemd.service(5)).
//
//   start:  [start limit] → start-pre (ExecStartPre…) → start (ExecStart) → start-post (ExecStartPost…) → running
//           (Type=simple: active as soon as the main process is spawned; Type=oneshot: every ExecStart= in order,
//           then active/exited with RemainAfterExit=yes, else straight on to stop)
//   stop:   stop (ExecStop…) → stop-sigterm (SIGTERM to the process group) → stop-sigkill after TimeoutStopSec →
//           stop-post (ExecStopPost…) → dead / failed → auto-restart (RestartSec) → start again, per Restart=
//
// Every step that awaits re-checks `gen`: a stop request or a start timeout bumps it, and the start sequence
// that was running gives up at its next step.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import {
  type CompiledExec,
  exitStatusText,
  parseEnvironmentFile,
  resolveArgv,
  shortSignalName,
  signalText,
} from "./exec-line.ts";
import type { Journal, JournalLine } from "./journal.ts";
import { groupAlive, groupRssBytes, killGroup, lookupGroup, lookupUser } from "./proc.ts";
import type { ServiceConfig } from "./service-config.ts";

export type ActiveState = "active" | "inactive" | "activating" | "deactivating" | "failed";
export type ExecStep = "ExecStartPre" | "ExecStart" | "ExecStartPost" | "ExecStop" | "ExecStopPost";

export interface StepRecord {
  step: ExecStep;
  command: string;
  pid: number | null;
  code: "exited" | "killed" | null;
  status: number | string | null;
  at: number;
}

export interface UnitState {
  name: string;
  hash: string;
  load: "loaded" | "error";
  active: ActiveState;
  sub: string;
  mainPid: number | null;
  since: number;
  steps: StepRecord[];
  memoryBytes: number | null;
  restarts: number;
  error?: string;
  /** "dependency" when the unit could not start for one of its Requires= (error says which, and why). */
  result?: string;
  /** Units this one's start waits for (After=/Requires= on units of this machine that are not up yet). */
  waitingFor?: string[];
  /** Container units only: the running container's id (null while none runs) and its image. */
  containerId?: string | null;
  image?: string;
}

/** What the agent needs from a unit, whatever runs it (processes now; containers are the next runner). */
export interface UnitRunner {
  readonly name: string;
  readonly hash: string;
  state(): UnitState;
  /** Starts the unit unless it is already starting or running. Never throws. */
  start(): void;
  /** Stops the unit (no restart follows); resolves once it is dead. Never rejects. */
  stop(): Promise<void>;
}

export interface RunnerContext {
  journal: Journal;
  now: () => number;
  logger: (line: string) => void;
  onChange: (s: UnitState) => void;
  /** Where spawned process groups are recorded, so a restarted agent can kill what a crash left behind. */
  groups?: { add(pgid: number, unit: string): void; remove(pgid: number): void };
}

/** systemd's service results (`Result=` / "Failed with result '…'"). */
export type ServiceResult = "success" | "exit-code" | "signal" | "timeout" | "resources" | "start-limit-hit";

export interface ExitInfo {
  code: "exited" | "killed";
  /** Exit status, or the signal's short name ("KILL"). */
  status: number | string;
}

interface Proc {
  pid: number | null;
  exit: Promise<ExitInfo>;
  exited: ExitInfo | null;
}

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const CLEAN_SIGNALS = new Set(["HUP", "INT", "TERM", "PIPE"]);
/** After SIGKILL, how long to wait for the group to vanish before giving up on it. */
const FINAL_KILL_WAIT_MS = 5_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function exitText(e: ExitInfo): string {
  return e.code === "exited"
    ? `code=exited, status=${exitStatusText(e.status as number)}`
    : `code=killed, status=${signalText(String(e.status))}`;
}

/** systemd's is_clean_exit: a daemon's main process may also die of SIGHUP/SIGINT/SIGTERM/SIGPIPE cleanly. */
export function isClean(e: ExitInfo, daemon: boolean): boolean {
  if (e.code === "exited") return e.status === 0;
  return daemon && CLEAN_SIGNALS.has(String(e.status));
}

/** A unit that could not be loaded: it only reports its error. */
export class BrokenUnit implements UnitRunner {
  private readonly since: number;
  constructor(
    readonly name: string,
    readonly hash: string,
    private readonly error: string,
    now: number,
  ) {
    this.since = now;
  }
  state(): UnitState {
    return {
      name: this.name,
      hash: this.hash,
      load: "error",
      active: "inactive",
      sub: "dead",
      mainPid: null,
      since: this.since,
      steps: [],
      memoryBytes: null,
      restarts: 0,
      error: this.error,
    };
  }
  start(): void {}
  async stop(): Promise<void> {}
}

export class ServiceRunner implements UnitRunner {
  readonly name: string;
  private active: ActiveState = "inactive";
  private sub = "dead";
  private mainPid: number | null = null;
  private since: number;
  private readonly steps = new Map<ExecStep, StepRecord>();
  private restarts = 0;

  private gen = 0;
  private result: ServiceResult = "success";
  private lastMainExit: ExitInfo | null = null;
  private mainExitedDuringStart: ExitInfo | null = null;
  /** Process group of the main process, kept after it exits so that leftovers can be killed. */
  private mainPgid: number | null = null;
  private main: Proc | null = null;
  private control: { proc: Proc; pgid: number | null } | null = null;
  private stopping: Promise<void> | null = null;
  private stopRequested = false;
  private startAfterStop = false;
  private restartTimer: ReturnType<typeof setTimeout> | null = null;
  private startTimer: ReturnType<typeof setTimeout> | null = null;
  private startTimes: number[] = [];
  private env: Record<string, string> = {};
  private lastEmitted = "";

  constructor(
    readonly hash: string,
    private readonly cfg: ServiceConfig,
    private readonly ctx: RunnerContext,
  ) {
    this.name = cfg.name;
    this.since = ctx.now();
    for (const w of cfg.warnings) this.log(`${this.name}: ${w}`);
  }

  // -------------------------------------------------------------------------------------------------------------
  // State

  state(): UnitState {
    const running = this.mainPgid !== null && (this.active === "active" || this.active === "activating");
    // Memory is read from /proc only when someone looks at it: most states (reports, change events) never do.
    const pgid = running ? this.mainPgid : null;
    let memory: number | null | undefined;
    return {
      name: this.name,
      hash: this.hash,
      load: "loaded",
      active: this.active,
      sub: this.sub,
      mainPid: this.mainPid,
      since: this.since,
      steps: [...this.steps.values()].map((s) => ({ ...s })),
      get memoryBytes(): number | null {
        if (memory === undefined) memory = pgid === null ? null : groupRssBytes(pgid);
        return memory;
      },
      restarts: this.restarts,
    };
  }

  private set(active: ActiveState, sub: string, mainPid: number | null = this.mainPid): void {
    if (active !== this.active) this.since = this.ctx.now();
    this.active = active;
    this.sub = sub;
    this.mainPid = mainPid;
    const key = `${active}/${sub}/${mainPid}`;
    if (key === this.lastEmitted) return;
    this.lastEmitted = key;
    try {
      this.ctx.onChange(this.state());
    } catch (e) {
      this.ctx.logger(`agent: state-change callback failed: ${(e as Error).message}`);
    }
  }

  private log(text: string, stream: JournalLine["stream"] = "berth", pid?: number | null): void {
    const line: JournalLine = { at: this.ctx.now(), unit: this.name, stream, text };
    if (pid) line.pid = pid;
    this.ctx.journal.append(line);
    if (stream === "berth") this.ctx.logger(text);
  }

  private get desc(): string {
    return this.cfg.description;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Start

  start(): void {
    if (this.stopping !== null) {
      this.startAfterStop = true;
      return;
    }
    if (this.active === "active" || this.active === "activating") return;
    void this.launch();
  }

  private async launch(): Promise<void> {
    const cfg = this.cfg;
    const now = this.ctx.now();
    this.startTimes = this.startTimes.filter((t) => now - t < cfg.startLimitIntervalMs);
    if (this.startTimes.length >= cfg.startLimitBurst) {
      this.result = "start-limit-hit";
      this.log(`${this.name}: Start request repeated too quickly.`);
      this.log(`${this.name}: Failed with result 'start-limit-hit'.`);
      this.log(`Failed to start ${this.desc}.`);
      this.set("failed", "start-limit-hit", null);
      return;
    }
    this.startTimes.push(now);
    const gen = ++this.gen;
    this.stopRequested = false;
    this.result = "success";
    this.lastMainExit = null;
    this.mainExitedDuringStart = null;
    this.log(`Starting ${this.desc}...`);
    if (Number.isFinite(cfg.timeoutStartMs)) {
      this.startTimer = setTimeout(() => this.onStartTimeout(gen), cfg.timeoutStartMs);
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
      void this.pipeline({ runExecStop: true, startFailure: false });
      return;
    }
    if (this.mainExitedDuringStart !== null) {
      this.set("active", "running", null);
      this.log(`Started ${this.desc}.`);
      this.handleMainExit(this.mainExitedDuringStart);
      return;
    }
    this.set("active", "running");
    this.log(`Started ${this.desc}.`);
  }

  private failStart(gen: number, result: ServiceResult): Promise<void> {
    if (gen !== this.gen) return Promise.resolve();
    this.clearStartTimer();
    if (this.result === "success") this.result = result;
    ++this.gen;
    return this.pipeline({ runExecStop: false, startFailure: true });
  }

  private clearStartTimer(): void {
    if (this.startTimer !== null) clearTimeout(this.startTimer);
    this.startTimer = null;
  }

  private onStartTimeout(gen: number): void {
    this.startTimer = null;
    if (gen !== this.gen || this.active !== "activating") return;
    this.log(`${this.name}: ${this.sub} operation timed out. Terminating.`);
    this.result = "timeout";
    ++this.gen;
    void this.pipeline({ runExecStop: false, startFailure: true, killControl: true });
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
    this.handleMainExit(e);
  }

  private handleMainExit(e: ExitInfo): void {
    this.log(`${this.name}: Main process exited, ${exitText(e)}`);
    if (!isClean(e, this.cfg.type !== "oneshot")) this.result = e.code === "exited" ? "exit-code" : "signal";
    void this.pipeline({ runExecStop: true, startFailure: false });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Stop

  async stop(): Promise<void> {
    this.stopRequested = true;
    this.startAfterStop = false;
    if (this.restartTimer !== null) {
      clearTimeout(this.restartTimer);
      this.restartTimer = null;
      this.set("inactive", "dead", null);
      this.log(`Stopped ${this.desc}.`);
      return;
    }
    if (this.stopping !== null) return this.stopping;
    if (this.active === "inactive" || this.active === "failed") return;
    this.log(`Stopping ${this.desc}...`);
    if (this.active === "activating") {
      ++this.gen;
      this.clearStartTimer();
      return this.pipeline({ runExecStop: false, startFailure: false, killControl: true });
    }
    return this.pipeline({ runExecStop: true, startFailure: false });
  }

  private pipeline(opts: {
    runExecStop: boolean;
    startFailure: boolean;
    killControl?: boolean;
  }): Promise<void> {
    const p = this.runPipeline(opts).catch((e) => {
      this.ctx.logger(`${this.name}: stop failed: ${(e as Error).stack ?? e}`);
      this.set(
        this.result === "success" ? "inactive" : "failed",
        this.result === "success" ? "dead" : "failed",
        null,
      );
    });
    this.stopping = p;
    void p.finally(() => {
      if (this.stopping === p) this.stopping = null;
      if (this.startAfterStop) {
        this.startAfterStop = false;
        this.start();
      }
    });
    return p;
  }

  private async runPipeline(opts: { runExecStop: boolean; startFailure: boolean; killControl?: boolean }) {
    const cfg = this.cfg;
    const gen = this.gen;
    if (opts.killControl && this.control !== null) {
      this.set("deactivating", this.stopRequested ? "stop" : "stop-sigterm");
      await this.terminate(this.control.pgid, this.control.proc, Date.now() + cfg.timeoutStopMs, false);
    }
    if (opts.runExecStop && cfg.execStop.length > 0) {
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
    this.enterDead(opts.startFailure);
  }

  /** SIGTERM (+SIGCONT) to the main process group, SIGKILL once `deadline` passes (result: timeout). */
  private async killMain(deadline: number): Promise<void> {
    const pgid = this.mainPgid;
    if (pgid === null) return;
    const main = this.main;
    if (!groupAlive(pgid) && main === null) return;
    await this.terminate(pgid, main, deadline, true);
  }

  /** Terminates a process group: SIGTERM, then SIGKILL at the deadline. `track` reflects it in the sub state. */
  private async terminate(pgid: number | null, proc: Proc | null, deadline: number, track: boolean) {
    if (pgid === null) {
      if (proc !== null) await proc.exit;
      return;
    }
    if (track) this.set("deactivating", "stop-sigterm");
    killGroup(pgid, "SIGTERM");
    killGroup(pgid, "SIGCONT");
    if (await this.waitGone(pgid, proc, deadline - Date.now())) return;
    if (track) {
      this.log(`${this.name}: State 'stop-sigterm' timed out. Killing.`);
      if (this.result === "success") this.result = "timeout";
      this.set("deactivating", "stop-sigkill");
    }
    killGroup(pgid, "SIGKILL");
    await this.waitGone(pgid, proc, FINAL_KILL_WAIT_MS);
  }

  private async waitGone(pgid: number, proc: Proc | null, ms: number): Promise<boolean> {
    const until = Date.now() + Math.max(0, ms);
    for (;;) {
      const procDone = proc === null || proc.exited !== null;
      if (procDone && !groupAlive(pgid)) return true;
      if (Date.now() >= until) return false;
      await sleep(Math.min(20, Math.max(1, until - Date.now())));
    }
  }

  private enterDead(startFailure: boolean): void {
    this.clearStartTimer();
    this.mainPgid = null;
    this.main = null;
    const r = this.result;
    if (r !== "success") this.log(`${this.name}: Failed with result '${r}'.`);
    else if (!this.stopRequested) this.log(`${this.name}: Deactivated successfully.`);
    if (this.stopRequested) this.log(`Stopped ${this.desc}.`);
    else if (startFailure) this.log(`Failed to start ${this.desc}.`);
    if (!this.stopRequested && this.shouldRestart(r)) {
      this.set("activating", "auto-restart", null);
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        if (this.stopRequested) return;
        this.restarts++;
        this.log(`${this.name}: Scheduled restart job, restart counter is at ${this.restarts}.`);
        this.log(`Stopped ${this.desc}.`);
        this.set(r === "success" ? "inactive" : "failed", r === "success" ? "dead" : "failed", null);
        void this.launch();
      }, this.cfg.restartMs);
      return;
    }
    this.set(r === "success" ? "inactive" : "failed", r === "success" ? "dead" : "failed", null);
  }

  /** systemd.service(5)'s Restart= table, by service result. */
  private shouldRestart(r: ServiceResult): boolean {
    if (r === "start-limit-hit") return false;
    switch (this.cfg.restart) {
      case "always":
        return true;
      case "on-success":
        return r === "success";
      case "on-failure":
        return r !== "success";
      case "on-abnormal":
        return r === "signal" || r === "timeout";
      case "on-abort":
        return r === "signal";
      default:
        return false;
    }
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
        await this.terminate(pgid, proc, Date.now(), false);
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

  /** Spawns one Exec line in its own process group, its output going to the journal line by line. */
  private spawnProc(step: ExecStep, cmd: CompiledExec, extraEnv: Record<string, string>): Proc {
    const record: StepRecord = {
      step,
      command: cmd.command,
      pid: null,
      code: null,
      status: null,
      at: this.ctx.now(),
    };
    this.steps.set(step, record);
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
      child = spawn(cmd.path, argv.slice(1), {
        argv0: argv[0] ?? cmd.path,
        cwd,
        env,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        ...(uid !== undefined ? { uid } : {}),
        ...(gid !== undefined ? { gid } : {}),
      });
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
    if (child.stdout) pipeLines(child.stdout, (t) => this.log(t, "stdout", child.pid));
    if (child.stderr) pipeLines(child.stderr, (t) => this.log(t, "stderr", child.pid));
    return proc;
  }
}

function searchPath(name: string, path: string): boolean {
  return path.split(":").some((dir) => dir !== "" && existsSync(`${dir}/${name}`));
}

/** Calls onLine for each complete line of a stream (and the unterminated rest at its end). */
export function pipeLines(stream: Readable, onLine: (text: string) => void): void {
  const decoder = new StringDecoder("utf8");
  let buf = "";
  stream.on("data", (chunk: Buffer) => {
    buf += decoder.write(chunk);
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      onLine(buf.slice(0, nl).replace(/\r$/, ""));
      buf = buf.slice(nl + 1);
      nl = buf.indexOf("\n");
    }
  });
  stream.on("end", () => {
    buf += decoder.end();
    if (buf !== "") onLine(buf);
    buf = "";
  });
  stream.on("error", () => {});
}
