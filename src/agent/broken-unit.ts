// The stand-in for a unit file that could not be loaded: the agent still lists it, with its error.
import type { UnitRunner, UnitState } from "./unit-types.ts";

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
  async kill(): Promise<void> {}
}
