// What the node needs from whatever runs this machine's units: the Agent itself (tests, benchmarks) or the
// supervisor process that owns them across node restarts (supervisor-link.ts).
import type { JournalLine, UnitSpec, UnitState } from "./agent.ts";

export interface UnitHost {
  /** The units this machine should hold now (the agent converges on them). */
  reconcile(specs: UnitSpec[]): void;
  /** A unit's last known state (memoryBytes may be null: status() reads it). */
  state(name: string): UnitState | null;
  states(): UnitState[];
  /** A unit's state with the figures that cost a read (memory). */
  status(name: string): Promise<UnitState | null>;
  onStateChange(cb: (s: UnitState) => void): void;
  /** A unit the host no longer holds (its state() is null from now on). */
  onForget(cb: (name: string) => void): void;
  journal(name: string, opts: { lines: number }): Promise<JournalLine[]>;
  /** Calls onLine for each new journal line of `name`; returns the cancel. */
  followJournal(name: string, onLine: (l: JournalLine) => void): () => void;
}

/** A UnitHost in another process that holds the machine's lease (the supervisor, through supervisor-link.ts). */
export interface LeasedUnitHost extends UnitHost {
  /** A read point issued at `issuedAt` (lease.ts's clock) was confirmed: the units may run until the fence. */
  renewLease(issuedAt: number): void;
  /** The lease is held again after a fence: reconcile afresh. */
  onUnfenced(cb: () => void): void;
  /** A new supervisor took over (or the link reconnected): reconcile afresh. */
  onReset(cb: () => void): void;
  /** Lets go of the units without stopping them. */
  close(): void;
  /** The units' states are known (connected to the supervisor): until then nothing is reconciled or reported. */
  connected(): boolean;
}
