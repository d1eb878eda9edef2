// A .timer unit on its machine (systemd.timer(5), as systemd's timer.c): while active it waits for the next elapse
// of its OnCalendar= and monotonic values and then starts its unit (Unit=) on this machine through the agent.
//
//   OnActiveSec=      from the timer's activation        one-shot: disabled once it has elapsed
//   OnBootSec=        from the machine's boot            (/proc/uptime), one-shot: a timer started long after
//   OnStartupSec=     from the agent's start             the boot elapses at once, as in systemd
//   OnUnitActiveSec=  from the unit's last activation (or the timer's last trigger, whichever is later)
//   OnUnitInactiveSec= from the unit's last deactivation (or the last trigger)
//   OnCalendar=       the next calendar event after the last trigger (or the activation)
//
// Persistent=yes: the last trigger is kept in the cluster's registry (the agent bridge writes it from this
// runner's state), so a timer that moved, or whose machine was down, fires at once when an OnCalendar= event
// passed meanwhile. States as systemd shows them: active (waiting), active (running) while the unit it started
// runs, active (elapsed) when nothing is left to wait for, inactive (dead).
import { readFileSync } from "node:fs";
import { nextElapse } from "./calendar.ts";
import type { TimerMemory } from "./leftovers.ts";
import type { TimerConfig } from "./timer-config.ts";
import { processlessState, type RunnerContext, type UnitRunner, type UnitState } from "./unit-types.ts";

export interface TimerHooks {
  /** Starts the unit on this machine (as `systemctl start`); false, with why, when it cannot. */
  trigger(unit: string): true | string;
  /** Calls back on each state change of a unit of this machine; returns the unsubscribe. */
  watch(unit: string, cb: (s: UnitState) => void): () => void;
  /** The unit's state on this machine, or null. */
  unitState(unit: string): UnitState | null;
  /** Persistent=: the last trigger the cluster recorded for this timer (ms since the epoch), if any. */
  stamp: number | null;
  /** When the machine booted (ms since the epoch, from /proc/uptime). */
  bootTime: number;
  /** When the agent started (OnStartupSec= counts from it). */
  startupTime: number;
  /** A random number in [0, 1) (RandomizedDelaySec=); Math.random by default. */
  random?: () => number;
  /** The state a previous agent saved while the timer was started: the first start resumes it. */
  resume?: TimerMemory | null;
}

/** When this machine booted (ms since the epoch), from /proc/uptime; the agent's clock start where it is missing. */
export function machineBootTime(now = Date.now()): number {
  try {
    const up = Number.parseFloat(readFileSync("/proc/uptime", "utf8").split(" ")[0] ?? "");
    if (Number.isFinite(up)) return now - up * 1000;
  } catch {}
  return now;
}

/** setTimeout's longest delay; a later elapse is waited for in steps. */
const MAX_DELAY_MS = 2 ** 31 - 1;
const ONE_SHOT = new Set(["OnActiveSec", "OnBootSec", "OnStartupSec"]);

export class TimerRunner implements UnitRunner {
  readonly name: string;
  private active: "inactive" | "active" = "inactive";
  private sub: "dead" | "waiting" | "running" | "elapsed" = "dead";
  private since: number;
  private activatedAt = 0;
  private lastTrigger: number | null = null;
  private next: number | null = null;
  private disabled = new Set<number>();
  /** When the unit last left, and last entered, the inactive state (systemd's inactive_exit/enter timestamps). */
  private unitActiveAt: number | null = null;
  private unitInactiveAt: number | null = null;
  private unitUp = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private unwatch: (() => void) | null = null;
  /** Between start() and stop() (also once it went inactive by itself): what a later supervisor resumes. */
  private started = false;
  /** OnStartupSec='s base: the agent's start, or the one of the agent whose timer this resumed. */
  private startupTime: number;
  private resume: TimerMemory | null;

  constructor(
    readonly hash: string,
    private readonly config: TimerConfig,
    private readonly ctx: RunnerContext,
    private readonly hooks: TimerHooks,
  ) {
    this.name = config.name;
    this.since = ctx.now();
    this.startupTime = hooks.startupTime;
    this.resume = hooks.resume ?? null;
  }

  state(): UnitState {
    return {
      ...processlessState({
        name: this.name,
        hash: this.hash,
        active: this.active,
        sub: this.sub,
        since: this.since,
      }),
      timer: {
        unit: this.config.unit,
        nextElapse: this.next,
        lastTrigger: this.lastTrigger,
        persistent: this.config.persistent,
      },
    };
  }

  start(): void {
    if (this.active === "active") return;
    const now = this.ctx.now();
    this.active = "active";
    this.started = true;
    const resume = this.resume;
    this.resume = null;
    if (resume !== null) {
      // A supervisor that crashed had started it: it goes on where that one left it, as systemd's timers do across
      // a daemon-reexec (a one-shot value that elapsed stays done).
      this.activatedAt = resume.activatedAt;
      this.startupTime = resume.startupTime;
      this.lastTrigger = resume.lastTrigger;
      this.disabled = new Set(resume.disabled);
      this.unitActiveAt = resume.unitActiveAt;
      this.unitInactiveAt = resume.unitInactiveAt;
    } else {
      this.activatedAt = now;
      // systemd forgets the last trigger when a timer starts, except the stamp Persistent= keeps.
      this.lastTrigger = this.config.persistent ? this.hooks.stamp : null;
      this.disabled.clear();
    }
    this.since = this.activatedAt;
    const u = this.hooks.unitState(this.config.unit);
    this.unitUp = u !== null && (u.active === "active" || u.active === "activating");
    if (this.unitUp) this.unitActiveAt = u!.since;
    this.unwatch = this.hooks.watch(this.config.unit, (s) => this.unitChanged(s));
    this.enterWaiting();
  }

  async stop(): Promise<void> {
    this.started = false;
    this.ctx.groups?.removeTimer(this.name);
    if (this.active === "inactive") return;
    this.clear();
    this.active = "inactive";
    this.sub = "dead";
    this.next = null;
    this.since = this.ctx.now();
    this.emit();
  }

  async kill(): Promise<void> {
    await this.stop();
  }

  private clear(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.unwatch?.();
    this.unwatch = null;
  }

  private emit(): void {
    this.remember();
    this.ctx.onChange(this.state());
  }

  /**
   * Saves the state a later supervisor resumes, from the start until stop(): also once the timer went inactive
   * by itself (elapsed, RemainAfterElapse=no), which a fresh start would fire again.
   */
  private remember(): void {
    if (!this.started) return;
    this.ctx.groups?.saveTimer(this.name, {
      hash: this.hash,
      activatedAt: this.activatedAt,
      startupTime: this.startupTime,
      lastTrigger: this.lastTrigger,
      disabled: [...this.disabled],
      unitActiveAt: this.unitActiveAt,
      unitInactiveAt: this.unitInactiveAt,
    });
  }

  /** The next elapse of every value still armed (systemd's timer_enter_waiting); "elapsed" when none is left. */
  private enterWaiting(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const now = this.ctx.now();
    let next = Number.POSITIVE_INFINITY;
    this.config.monotonic.forEach((v, i) => {
      if (this.disabled.has(i)) return;
      const base = this.baseOf(v.base);
      if (base === null) return;
      const at = base + v.ms;
      // A one-shot value already past once the timer has fired is done with (systemd disables it).
      if (this.lastTrigger !== null && at <= now && ONE_SHOT.has(v.base)) {
        this.disabled.add(i);
        return;
      }
      next = Math.min(next, at);
    });
    for (const cal of this.config.calendars) {
      const at = nextElapse(cal, this.lastTrigger ?? this.activatedAt);
      if (at !== null) next = Math.min(next, at);
    }
    if (!Number.isFinite(next)) {
      this.next = null;
      if (this.config.remainAfterElapse) this.sub = "elapsed";
      else {
        this.clear();
        this.active = "inactive";
        this.sub = "dead";
        this.since = now;
      }
      this.emit();
      return;
    }
    this.next = next;
    this.sub = "waiting";
    const delay = (this.hooks.random ?? Math.random)() * this.config.randomizedDelayMs;
    this.arm(next + delay);
    this.emit();
  }

  private arm(at: number): void {
    const wait = Math.max(0, at - this.ctx.now());
    this.timer = setTimeout(
      () => {
        this.timer = null;
        if (this.active !== "active") return;
        if (this.ctx.now() < at) this.arm(at);
        else this.elapse();
      },
      Math.min(wait, MAX_DELAY_MS),
    );
    this.timer.unref?.();
  }

  private baseOf(base: TimerConfig["monotonic"][number]["base"]): number | null {
    const later = (a: number | null, b: number | null): number | null =>
      a === null ? b : b === null ? a : Math.max(a, b);
    switch (base) {
      case "OnActiveSec":
        return this.activatedAt;
      case "OnBootSec":
        return this.hooks.bootTime;
      case "OnStartupSec":
        return this.startupTime;
      case "OnUnitActiveSec":
        return later(this.unitActiveAt, this.lastTrigger);
      case "OnUnitInactiveSec":
        return later(this.unitInactiveAt, this.lastTrigger);
    }
  }

  /** Starts the unit (systemd's timer_enter_running); the timer runs until the unit is inactive again. */
  private elapse(): void {
    const unit = this.config.unit;
    this.lastTrigger = this.ctx.now();
    const r = this.hooks.trigger(unit);
    if (r !== true) {
      const text = `${this.name}: Failed to start ${unit}: ${r}`;
      this.ctx.journal.append({ at: this.ctx.now(), unit: this.name, stream: "berth", text });
      this.ctx.logger(text);
      this.enterWaiting();
      return;
    }
    this.next = null;
    this.sub = "running";
    this.emit();
  }

  private unitChanged(s: UnitState): void {
    const now = this.ctx.now();
    const up = s.active === "active" || s.active === "activating";
    if (up && !this.unitUp) this.unitActiveAt = now;
    if (!up && this.unitUp) this.unitInactiveAt = now;
    this.unitUp = up;
    if (this.active !== "active") return;
    if (this.sub === "running" && !up && s.waitingFor === undefined) this.enterWaiting();
    else if (this.sub === "waiting") this.enterWaiting();
  }
}
