// The shapes every unit runner shares with the agent: what a unit reports and what it is given to run.

import type { Journal } from "./journal.ts";
import type { MainRecord, TimerMemory } from "./leftovers.ts";
import type { NotifySocketOpener } from "./notify-socket.ts";
import type { OutputFifos } from "./output-fifo.ts";
import type { UnitCgroups } from "./unit-cgroup.ts";

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
  /** Journal lines the unit's rate limit dropped, counted once their window is over (absent: older supervisor). */
  journalSuppressed?: number;
  error?: string;
  /** "dependency" when the unit could not start for one of its Requires= (error says which, and why). */
  result?: string;
  /** Units this one's start waits for (After=/Requires= on units of this machine that are not up yet). */
  waitingFor?: string[];
  /** Set by the agent: whether it has issued the unit's start (and not taken it back since). */
  launched?: boolean;
  /** Set by the agent for Type=oneshot without RemainAfterExit=: inactive after a successful run is done. */
  oneshot?: boolean;
  /** The last STATUS= the unit sent over its notify socket (systemctl's "Status:"). */
  statusText?: string;
  /** Process units: the directory of the unit's cgroup while it has one (unit-cgroup.ts). */
  cgroup?: string;
  /** Timer units only: the unit it starts, its next elapse and last trigger (ms since the epoch, or null). */
  timer?: TimerInfo;
  /** Socket and path units: the unit they start, and (sockets) what they listen on. */
  triggers?: TriggerInfo;
  /** Container units only: the running container's id (null while none runs) and its image. */
  containerId?: string | null;
  image?: string;
}

/** The state of a loaded unit that runs no process of its own (a target, a timer, a socket or path unit). */
export function processlessState(
  u: Pick<UnitState, "name" | "hash" | "active" | "sub" | "since">,
): UnitState {
  return { ...u, load: "loaded", mainPid: null, steps: [], memoryBytes: null, restarts: 0 };
}

export interface TimerInfo {
  unit: string;
  nextElapse: number | null;
  lastTrigger: number | null;
  /** Persistent=yes: the agent bridge keeps lastTrigger in the registry. */
  persistent: boolean;
}

export interface TriggerInfo {
  unit: string;
  /** As systemctl's "Listen:" lines: "127.0.0.1:8080 (Stream)". */
  listen?: string[];
}

/** What the agent needs from a unit, whatever runs it (processes or a container). */
export interface UnitRunner {
  readonly name: string;
  readonly hash: string;
  state(): UnitState;
  /** Starts the unit unless it is already starting or running. Never throws. */
  start(): void;
  /** Stops the unit (no restart follows); resolves once it is dead. Never rejects. */
  stop(): Promise<void>;
  /** Kills everything of the unit at once (no ExecStop, no restart); the runner is not used again. Never rejects. */
  kill(): Promise<void>;
}

export interface RunnerContext {
  journal: Journal;
  now: () => number;
  logger: (line: string) => void;
  onChange: (s: UnitState) => void;
  /** Where spawned process groups and unit cgroups are recorded, so a restarted agent can kill what a crash left behind. */
  groups?: {
    add(pgid: number, unit: string): void;
    remove(pgid: number): void;
    addCgroup(unit: string, dirs: string[]): void;
    removeCgroup(unit: string): void;
    /** A service's main process, so that a later supervisor can adopt the running unit (leftovers.ts). */
    addMain(unit: string, main: Omit<MainRecord, "startTime">): void;
    removeMain(unit: string, pid: number): void;
    /** A started timer's state, so that a later supervisor resumes it (leftovers.ts). */
    saveTimer(unit: string, memory: TimerMemory): void;
    removeTimer(unit: string): void;
  };
  /** FIFOs for main processes' output, made in `dir`; null or missing: pipes (output-fifo.ts). */
  outputFifos?: { fifos: OutputFifos; dir: string } | null;
  /** Whether a timer, path or socket unit started this unit (it runs for that trigger, not on its own). */
  triggered?: () => boolean;
  /** The agent's unit cgroups; null or missing where none can be made (units are then tracked by session). */
  cgroups?: UnitCgroups | null;
  /** Opens a unit's notify socket (NOTIFY_SOCKET); null or missing where this runtime has none (notify-socket.ts). */
  notifySocket?: NotifySocketOpener | null;
  /**
   * The listening sockets of the socket units of this machine that activate the service (socket-runner.ts), passed
   * to its ExecStart= as LISTEN_FDS; empty when there are none.
   */
  listenFds?: (service: string) => ListenFds;
}

/** Descriptors passed from fd 3 on, with their names (LISTEN_FDNAMES). */
export interface ListenFds {
  fds: number[];
  names: string[];
}

/** systemd's service results (`Result=` / "Failed with result '…'"). */
export type ServiceResult =
  | "success"
  | "exit-code"
  | "signal"
  | "timeout"
  | "resources"
  | "start-limit-hit"
  /** No WATCHDOG=1 within WatchdogSec=. */
  | "watchdog"
  /** Type=notify: the main process exited cleanly without sending READY=1. */
  | "protocol";

export interface ExitInfo {
  code: "exited" | "killed";
  /** Exit status, or the signal's short name ("KILL"). */
  status: number | string;
}
