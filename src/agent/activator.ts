// What .socket and .path units share (systemd's socket.c and path.c): they wait for an event on their machine
// (a connection, a datagram, a file change), then start their unit through the agent (as a timer does, see
// timer-runner.ts for the hooks) and show `running` until it is inactive again, then wait again. Each polls its
// descriptors every ACTIVATION_POLL_MS (activation.ts); a trigger beyond TriggerLimitBurst= within
// TriggerLimitIntervalSec= fails the unit (result `trigger-limit-hit`), as does a unit that cannot be started
// (result `resources`). Without the runtime's activation seam (under Node) the unit fails to start, saying so.
import { ACTIVATION_POLL_MS, type Activation } from "./activation.ts";
import type { TimerHooks } from "./timer-runner.ts";
import { TriggerCounter, type TriggerLimit } from "./trigger-config.ts";
import {
  processlessState,
  type RunnerContext,
  type TriggerInfo,
  type UnitRunner,
  type UnitState,
} from "./unit-types.ts";

export type ActivatorHooks = Pick<TimerHooks, "trigger" | "watch" | "unitState">;

export abstract class Activator implements UnitRunner {
  protected active: "inactive" | "active" | "failed" = "inactive";
  protected sub = "dead";
  private since: number;
  private result: string | undefined;
  private error: string | undefined;
  private poller: ReturnType<typeof setInterval> | null = null;
  private unwatch: (() => void) | null = null;
  private readonly counter: TriggerCounter;

  constructor(
    readonly name: string,
    readonly hash: string,
    /** The unit it starts. */
    protected readonly unit: string,
    limit: TriggerLimit,
    protected readonly ctx: RunnerContext,
    protected readonly hooks: ActivatorHooks,
    protected readonly activation: Activation | null,
  ) {
    this.since = ctx.now();
    this.counter = new TriggerCounter(limit);
  }

  /** The sub-state while waiting for an event: `listening` for a socket, `waiting` for a path. */
  protected abstract readonly waitingSub: string;
  /** Opens what the unit waits on; throws saying why it cannot. */
  protected abstract open(activation: Activation): void;
  /** Closes it again. */
  protected abstract close(): void;
  /** Called every poll while waiting: true when the unit is to be started now. */
  protected abstract poll(): boolean;
  /** Entering the wait (at start and after the unit went inactive); true when the unit is to be started at once. */
  protected abstract arm(initial: boolean): boolean;
  /** Leaving the wait while the unit runs (a path unit stops watching). */
  protected disarm(): void {}
  protected abstract info(): TriggerInfo;

  state(): UnitState {
    return {
      ...processlessState({
        name: this.name,
        hash: this.hash,
        active: this.active,
        sub: this.sub,
        since: this.since,
      }),
      ...(this.active === "failed" && this.result !== undefined ? { result: this.result } : {}),
      ...(this.error !== undefined ? { error: this.error } : {}),
      triggers: this.info(),
    };
  }

  start(): void {
    if (this.active === "active") return;
    this.result = undefined;
    this.error = undefined;
    this.counter.reset();
    if (this.activation === null) {
      this.fail(
        "resources",
        `${this.name}: needs socket activation and inotify, which only Berth's binary offers`,
      );
      return;
    }
    try {
      this.open(this.activation);
    } catch (e) {
      this.fail("resources", `${this.name}: ${(e as Error).message}`);
      return;
    }
    this.set("active", this.waitingSub);
    this.unwatch = this.hooks.watch(this.unit, (s) => this.unitChanged(s));
    this.poller = setInterval(() => this.tick(), ACTIVATION_POLL_MS);
    this.enterWaiting(true);
  }

  async stop(): Promise<void> {
    if (this.active === "inactive") return;
    this.teardown();
    this.set("inactive", "dead");
  }

  async kill(): Promise<void> {
    await this.stop();
  }

  protected log(text: string): void {
    this.ctx.journal.append({ at: this.ctx.now(), unit: this.name, stream: "berth", text });
    this.ctx.logger(text);
  }

  private teardown(): void {
    if (this.poller !== null) clearInterval(this.poller);
    this.poller = null;
    this.unwatch?.();
    this.unwatch = null;
    if (this.active === "active") this.close();
  }

  private fail(result: string, why: string): void {
    this.log(why);
    this.log(`${this.name}: Failed with result '${result}'.`);
    this.teardown();
    this.result = result;
    this.error = why.replace(`${this.name}: `, "");
    this.set("failed", "failed");
  }

  private set(active: Activator["active"], sub: string): void {
    if (this.active !== active) this.since = this.ctx.now();
    this.active = active;
    this.sub = sub;
    this.ctx.onChange(this.state());
  }

  private unitUp(): boolean {
    const s = this.hooks.unitState(this.unit);
    return s !== null && s.active !== "inactive" && s.active !== "failed";
  }

  /** systemd's *_enter_listening / path_enter_waiting: running while the unit is up, else armed again. */
  private enterWaiting(initial: boolean): void {
    if (this.active !== "active") return;
    if (this.unitUp()) {
      this.disarm();
      if (this.sub !== "running") this.set("active", "running");
      return;
    }
    if (this.arm(initial)) return this.enterRunning();
    if (this.sub !== this.waitingSub) this.set("active", this.waitingSub);
  }

  /** Starts the unit (systemd's *_enter_running). */
  private enterRunning(): void {
    if (!this.counter.allow(this.ctx.now())) {
      this.fail("trigger-limit-hit", `${this.name}: Trigger limit hit, refusing further activation.`);
      return;
    }
    const r = this.hooks.trigger(this.unit);
    if (r !== true) {
      this.fail("resources", `${this.name}: Failed to queue service startup job: ${this.unit}: ${r}`);
      return;
    }
    this.disarm();
    this.set("active", "running");
  }

  private tick(): void {
    if (this.active !== "active" || this.sub !== this.waitingSub) return;
    if (this.poll()) this.enterRunning();
  }

  private unitChanged(s: UnitState): void {
    if (this.active !== "active") return;
    const up = s.active !== "inactive" && s.active !== "failed";
    if (up && this.sub !== "running") {
      this.disarm();
      this.set("active", "running");
    } else if (!up && this.sub === "running" && s.waitingFor === undefined) this.enterWaiting(false);
  }
}
