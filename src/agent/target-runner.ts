// A .target unit (systemd.target(5)): it runs nothing. The agent starts it once the units it wants or requires are
// started (a target orders itself after them: deps.ts, install.ts), so it is active exactly when they are up.
import { processlessState, type RunnerContext, type UnitRunner, type UnitState } from "./unit-types.ts";

export class TargetRunner implements UnitRunner {
  private active: "active" | "inactive" = "inactive";
  private since: number;

  constructor(
    readonly name: string,
    readonly hash: string,
    private readonly ctx: RunnerContext,
  ) {
    this.since = ctx.now();
  }

  state(): UnitState {
    return processlessState({
      name: this.name,
      hash: this.hash,
      active: this.active,
      sub: this.active === "active" ? "active" : "dead",
      since: this.since,
    });
  }

  start(): void {
    this.set("active");
  }

  async stop(): Promise<void> {
    this.set("inactive");
  }

  async kill(): Promise<void> {
    this.set("inactive");
  }

  private set(a: "active" | "inactive"): void {
    if (this.active === a) return;
    this.active = a;
    this.since = this.ctx.now();
    this.ctx.onChange(this.state());
  }
}
