// The part of a unit's state machine that does not care what runs it: start limits, the start timeout, the
// stop-then-dead sequence, Restart= with its journal lines, and the active/sub state the agent sees.
// ServiceRunner (processes) and ContainerRunner (a Docker container) fill in how a run starts and how it stops.
//
// `gen` counts runs: a stop request, a start timeout or a failed start bumps it, and a start sequence that was
// running gives up at its next check.
import { exitText, failureResult, isClean } from "./exit-status.ts";
import type { JournalLine } from "./journal.ts";
import { StartLimit, shouldRestart } from "./restart-rules.ts";
import type { ServiceConfig } from "./service-config.ts";
import { UnitOutput } from "./unit-output.ts";
import type {
  ActiveState,
  ExitInfo,
  RunnerContext,
  ServiceResult,
  StepRecord,
  UnitRunner,
  UnitState,
} from "./unit-types.ts";

/** Why a run is being taken down; each runner decides what its stop sequence does for each. */
export type TeardownReason =
  | "start-failed"
  | "start-timeout"
  | "stop-while-starting"
  | "stop"
  /** The main process (or container) exited, or a oneshot finished. */
  | "exited";

const isStartFailure = (reason: TeardownReason): boolean =>
  reason === "start-failed" || reason === "start-timeout";

export abstract class UnitLifecycle implements UnitRunner {
  readonly name: string;
  protected active: ActiveState = "inactive";
  protected sub = "dead";
  protected mainPid: number | null = null;
  /** The last run of each Exec line (keyed by the line, so every ExecStartPre= keeps its own), in first-run order. */
  protected readonly steps = new Map<unknown, StepRecord>();
  protected gen = 0;
  protected result: ServiceResult = "success";
  protected stopping: Promise<void> | null = null;
  protected stopRequested = false;
  private since: number;
  private restarts = 0;
  private startAfterStop = false;
  private restartTimer: ReturnType<typeof setTimeout> | null = null;
  private startTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly startLimit: StartLimit;
  /** The unit's stdout/stderr into the journal, rate-limited (LogRateLimitIntervalSec=/LogRateLimitBurst=). */
  protected readonly output: UnitOutput;
  private lastEmitted = "";
  /** Set by kill(): this runner never starts, stops gracefully or restarts again. */
  private killed = false;

  constructor(
    readonly hash: string,
    protected readonly svc: ServiceConfig,
    protected readonly ctx: RunnerContext,
    warnings: readonly string[],
  ) {
    this.name = svc.name;
    this.since = ctx.now();
    this.startLimit = new StartLimit(svc.startLimitIntervalMs, svc.startLimitBurst);
    this.output = new UnitOutput(
      this.name,
      { intervalMs: svc.logRateLimitIntervalMs, burst: svc.logRateLimitBurst },
      (l) => this.log(l.text, l.stream, l.pid),
      ctx.now,
      // The node's mirror hears of the new count (/metrics), at most once per rate-limit window.
      () => this.emitState(),
    );
    for (const w of warnings) this.log(`${this.name}: ${w}`);
  }

  // -------------------------------------------------------------------------------------------------------------
  // What a runner provides

  /** Brings a run up, from "start limit passed, timer armed" to active (or to failStart). Checks `gen` after awaits. */
  protected abstract startSequence(gen: number): Promise<void>;
  /** Takes the current run down, and must end by calling enterDead(reason). */
  protected abstract stopSequence(reason: TeardownReason): Promise<void>;
  /** Reads the run's memory use; called when state() is taken, the reader only when the figure is looked at. */
  protected abstract memoryReader(): () => number | null;
  /** Fields only this kind of runner reports. */
  protected extraState(): Partial<UnitState> {
    return {};
  }
  /** Kills every process (or the container) of the run at once: the fence's path, no ExecStop. */
  protected abstract killEverything(): Promise<void>;
  /** journald's SYSLOG_IDENTIFIER for output of process `pid` (the program's basename); undefined: none known. */
  protected identOf(_pid: number | null): string | undefined {
    return undefined;
  }
  /** Anything besides active/sub/mainPid whose change is worth an onChange event. */
  protected changeKey(): string {
    return "";
  }

  // -------------------------------------------------------------------------------------------------------------
  // State

  state(): UnitState {
    const read = this.memoryReader();
    // Memory is read only when someone looks at it: most states (reports, change events) never do.
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
        if (memory === undefined) memory = read();
        return memory;
      },
      restarts: this.restarts,
      journalSuppressed: this.output.suppressed,
      // Why the last run failed (exit-code, signal, timeout, start-limit-hit), as systemctl's "Result:".
      ...(this.active === "failed" ? { result: this.result } : {}),
      ...this.extraState(),
    };
  }

  protected set(active: ActiveState, sub: string, mainPid: number | null = this.mainPid): void {
    if (active !== this.active) this.since = this.ctx.now();
    this.active = active;
    this.sub = sub;
    this.mainPid = mainPid;
    // The result too: a unit failed by its exit and then by its start limit is failed/failed both times.
    const key = `${active}/${sub}/${mainPid}/${this.result}/${this.changeKey()}`;
    if (key === this.lastEmitted) return;
    this.lastEmitted = key;
    this.emitState();
  }

  private emitState(): void {
    try {
      this.ctx.onChange(this.state());
    } catch (e) {
      this.ctx.logger(`agent: state-change callback failed: ${(e as Error).message}`);
    }
  }

  /** inactive/dead after a success, failed/failed otherwise. */
  private settle(r: ServiceResult): void {
    this.set(r === "success" ? "inactive" : "failed", r === "success" ? "dead" : "failed", null);
  }

  protected log(text: string, stream: JournalLine["stream"] = "berth", pid?: number | null): void {
    const line: JournalLine = { at: this.ctx.now(), unit: this.name, stream, text };
    if (pid) line.pid = pid;
    const ident = stream === "berth" ? "berth" : this.identOf(pid ?? null);
    if (ident) line.ident = ident;
    this.ctx.journal.append(line);
    if (stream === "berth") this.ctx.logger(text);
  }

  protected get desc(): string {
    return this.svc.description;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Start

  start(): void {
    if (this.killed) return;
    if (this.stopping !== null) {
      this.startAfterStop = true;
      return;
    }
    if (this.active === "active" || this.active === "activating") return;
    this.launch();
  }

  private launch(): void {
    if (!this.startLimit.admit(this.ctx.now())) {
      this.result = "start-limit-hit";
      this.log(`${this.name}: Start request repeated too quickly.`);
      this.log(`${this.name}: Failed with result 'start-limit-hit'.`);
      this.log(`Failed to start ${this.desc}.`);
      // systemd: sub-state failed, the reason in Result= ("failed (Result: start-limit-hit)" in status).
      this.set("failed", "failed", null);
      return;
    }
    const gen = ++this.gen;
    this.stopRequested = false;
    this.result = "success";
    if (Number.isFinite(this.svc.timeoutStartMs)) {
      this.startTimer = setTimeout(() => this.onStartTimeout(gen), this.svc.timeoutStartMs);
    }
    void this.startSequence(gen);
  }

  protected failStart(gen: number, result: ServiceResult): Promise<void> {
    if (gen !== this.gen) return Promise.resolve();
    this.clearStartTimer();
    if (this.result === "success") this.result = result;
    ++this.gen;
    return this.teardown("start-failed");
  }

  protected clearStartTimer(): void {
    if (this.startTimer !== null) clearTimeout(this.startTimer);
    this.startTimer = null;
  }

  private onStartTimeout(gen: number): void {
    this.startTimer = null;
    if (gen !== this.gen || this.active !== "activating") return;
    this.log(`${this.name}: ${this.sub} operation timed out. Terminating.`);
    this.result = "timeout";
    ++this.gen;
    void this.teardown("start-timeout");
  }

  // -------------------------------------------------------------------------------------------------------------
  // Exit and stop

  /** The main process (or container) ended on its own: note why, then take the run down. */
  protected mainExited(e: ExitInfo, daemon: boolean): void {
    this.log(`${this.name}: Main process exited, ${exitText(e)}`);
    // A result set before (the watchdog's) is the reason, not the signal it sent.
    if (!isClean(e, daemon) && this.result === "success") this.result = failureResult(e);
    void this.teardown("exited");
  }

  /** SIGTERM was not enough within TimeoutStopSec=: systemd's line, and the run's result becomes timeout. */
  protected stopTimedOut(): void {
    this.log(`${this.name}: State 'stop-sigterm' timed out. Killing.`);
    if (this.result === "success") this.result = "timeout";
  }

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
      return this.teardown("stop-while-starting");
    }
    return this.teardown("stop");
  }

  /**
   * The machine's lease ran out: everything of the run dies now (SIGKILL, `docker kill`), with no ExecStop, no
   * ExecStopPost and no restart, and the runner is done for good (the agent forgets it).
   */
  async kill(): Promise<void> {
    this.killed = true;
    this.stopRequested = true;
    this.startAfterStop = false;
    ++this.gen;
    this.clearStartTimer();
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.log(`${this.name}: Killing every process of the unit: this machine's lease on its units ran out.`);
    await this.killEverything().catch((e) =>
      this.ctx.logger(`${this.name}: kill failed: ${(e as Error).message}`),
    );
    this.set("failed", "fenced", null);
  }

  /** Runs the stop sequence as the one in flight; a start requested meanwhile follows once it is done. */
  protected teardown(reason: TeardownReason): Promise<void> {
    if (this.killed) return Promise.resolve();
    const p = this.stopSequence(reason).catch((e) => {
      this.ctx.logger(`${this.name}: stop failed: ${(e as Error).stack ?? e}`);
      this.settle(this.result);
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

  /** The run is over: systemd's journal lines for how it ended, then dead/failed or an auto-restart per Restart=. */
  protected enterDead(reason: TeardownReason): void {
    this.clearStartTimer();
    const r = this.result;
    if (r !== "success") this.log(`${this.name}: Failed with result '${r}'.`);
    else if (!this.stopRequested) this.log(`${this.name}: Deactivated successfully.`);
    if (this.stopRequested) this.log(`Stopped ${this.desc}.`);
    else if (isStartFailure(reason)) this.log(`Failed to start ${this.desc}.`);
    if (!this.stopRequested && shouldRestart(this.svc.restart, r)) {
      this.set("activating", "auto-restart", null);
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        if (this.stopRequested) return;
        this.restarts++;
        this.log(`${this.name}: Scheduled restart job, restart counter is at ${this.restarts}.`);
        this.log(`Stopped ${this.desc}.`);
        this.settle(r);
        this.launch();
      }, this.svc.restartMs);
      return;
    }
    this.settle(r);
  }
}
