// The client protocol spoken on a node's client address (msgpack frames, see src/wire/): method names, their
// parameters and results. The CLI, the console and the SSH tunnel all use this one connection: requests and
// responses, plus server-pushed streams for watches (and later unit states and logs).
import type { KvEvent, KvWriteRequest } from "../kv/types.ts";

/** An etcd-v2 style write (the store's write semantics: src/kv/requests.ts). */
export type { KvWriteRequest };

/** One line of a unit's journal, as the agent keeps it (src/agent/journal.ts). */
export interface JournalLine {
  /** ms since the epoch */
  at: number;
  unit: string;
  /** "berth" for the agent's own lines about the unit. */
  stream: "stdout" | "stderr" | "berth";
  text: string;
  /** The process that wrote the line (stdout/stderr of an Exec step, or a container's main process); for "berth"
   * lines the process that runs the agent (the supervisor), as systemd's own lines carry systemd[1]. */
  pid?: number;
  /** journald's SYSLOG_IDENTIFIER: the basename of the Exec line's program ("sh"), "berth" for the agent's lines. */
  ident?: string;
  /** The machine's host name: set by the node that reads the journal, not stored. */
  hostname?: string;
}

export type Consistency = "linearizable" | "local";

export interface KvGetParams {
  key: string;
  recursive?: boolean;
  sorted?: boolean;
  consistency?: Consistency;
}

export interface KvWatchParams {
  key: string;
  recursive?: boolean;
  /** Start from this store index (served from the last 1000 events); else from the next change. */
  sinceIndex?: number;
  /** Keep watching after the first event. */
  forever?: boolean;
}

/** Every KV answer carries the indexes etcd puts in its X-Etcd-Index / X-Raft-Index / X-Raft-Term headers. */
export interface KvResult {
  event: KvEvent;
  etcdIndex: number;
  raftIndex: number;
  raftTerm: number;
}

export interface MemberInfo {
  name: string;
  /** Stable id derived from the name, shown like etcd's member ids. */
  id: string;
  peerAddr: string;
  clientAddr: string | null;
  httpAddr: string | null;
  role: "voter" | "learner";
  isLeader: boolean;
}

export interface MemberHealth {
  name: string;
  clientAddr: string | null;
  healthy: boolean;
  detail: string;
  /** The member's clock minus the cluster's time (the median of the members' clocks), as the answering node measured it. */
  clockSkewMs?: number;
  raftIndex?: number;
  raftTerm?: number;
}

export interface NodeStatus {
  name: string;
  version: string;
  leader: string | null;
  role: string;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  etcdIndex: number;
  clusterId: string;
  startedAt: string;
  /** Set while the member's disk is full and it refuses writes (error no_space). */
  diskFull?: string;
}

// ---- Units and machines (fleet's model: desired state set by clients, placement by the leader's engine,
// current state reported by the agent of the machine a unit is scheduled on).

export type DesiredState = "inactive" | "loaded" | "launched";

/** A unit file as the CLI sends it: the text, or none for an instance of a template the cluster already has. */
export interface UnitSubmission {
  name: string;
  text?: string;
}

/** One row of `list-unit-files`. */
export interface UnitInfo {
  name: string;
  /** SHA-1 of the canonical unit file (fleet's hash), 40 hex. */
  hash: string;
  desired: DesiredState;
  /** fleet's derived state: inactive (not scheduled), loaded (scheduled), launched (running where scheduled);
   * null for global units, which have no single target. */
  current: DesiredState | null;
  global: boolean;
  /** Machine ids the unit is scheduled on (one, except for global units). */
  machines: string[];
  description: string | null;
  /** Why the engine could not place the unit (fleet was silent here), or null. */
  unplaceable: string | null;
}

/** A machine: every Berth node is one. */
export interface MachineInfo {
  /** 32 hex digits, stable, kept in the node's data directory. */
  id: string;
  /** The node's member name. */
  name: string;
  publicIp: string | null;
  metadata: Record<string, string>;
  /** The agent TTL the machine's own lease is sized by (it fences its units before it runs out): the leader waits
   * at least this long before declaring it lost, whatever its own TTL. Absent in records of older nodes. */
  agentTtlMs?: number;
  /** up, or lost while its node does not answer; draining (`berth machine drain`: it still holds units) and
   * drained (it holds none) in machines.list answers. A lost machine is "lost", drained or not. */
  state: MachineState;
}

export type MachineState = "up" | "lost" | "draining" | "drained";

/** `berth machine drain|undrain`: the machine, and the units it still holds (scheduled there, being stopped there,
 * or reported by its agent). */
export interface DrainStatus {
  machine: MachineInfo;
  units: string[];
}

/** One row of `list-units`: what the agent of one machine reports for one unit. */
export interface UnitStateRow {
  name: string;
  machine: string;
  hash: string;
  load: string;
  active: string;
  sub: string;
  mainPid: number | null;
  since: number;
  /** Set when the state could not be reported by a live agent (machine lost) or the unit is waiting to be placed;
   * "destroyed" for a destroyed unit its agent has not finished stopping. */
  note?: string;
  /** Whether the agent issued the unit's start; missing from older nodes' reports. */
  launched?: boolean;
  /** Why it failed (systemd's Result=), when failed. */
  result?: string;
  /** Why it could not be loaded, or the failed dependency. */
  error?: string;
  /** Type=oneshot without RemainAfterExit=: inactive after its start means it ran. */
  oneshot?: boolean;
}

// ---- Unit status and journal (served from the agent of the machine running the unit, through any node).

/** One Exec line run by a unit (systemctl status's "Process:" lines). */
export interface UnitStepRecord {
  step: "ExecStartPre" | "ExecStart" | "ExecStartPost" | "ExecStop" | "ExecStopPost";
  command: string;
  pid: number | null;
  code: "exited" | "killed" | null;
  /** Exit status, or the signal's short name ("KILL"). */
  status: number | string | null;
  at: number;
}

/** Everything the agent knows about one unit on its machine. */
export interface AgentUnitState {
  name: string;
  hash: string;
  load: "loaded" | "error";
  active: "active" | "inactive" | "activating" | "deactivating" | "failed";
  sub: string;
  mainPid: number | null;
  /** When the active state last changed (ms since the epoch). */
  since: number;
  steps: UnitStepRecord[];
  memoryBytes: number | null;
  restarts: number;
  error?: string;
  /** Why it failed (systemd's Result=: exit-code, signal, timeout, start-limit-hit, dependency...), when failed. */
  result?: string;
  /** The directory of the unit's cgroup on its machine, while it has one. */
  cgroup?: string;
  /** The last STATUS= the unit sent over its notify socket (sd_notify). */
  statusText?: string;
  /** Timer units: the unit it starts, its next elapse and last trigger (ms since the epoch, or null). */
  timer?: { unit: string; nextElapse: number | null; lastTrigger: number | null; persistent: boolean };
  /** Socket and path units: the unit they start and (sockets) their "Listen:" lines. */
  triggers?: { unit: string; listen?: string[] };
}

/** One process of a unit, as systemctl's CGroup: tree lists it. */
export interface UnitProcess {
  pid: number;
  /** The command line (argv joined by spaces), or the command name in brackets when it has none. */
  command: string;
}

/** `berth status`: one entry per unit and machine it is scheduled on. */
export interface UnitStatus {
  name: string;
  description: string | null;
  /** Machine id. */
  machine: string;
  /** The member name of that machine's node. */
  machineName: string;
  publicIp: string | null;
  state: AgentUnitState;
  /** The main process's command name (/proc/PID/comm on its machine), when it runs. */
  mainCommand: string | null;
  /** The unit's processes (its cgroup's, else the main process), by pid; missing from older nodes' answers. */
  processes?: UnitProcess[];
  /** Where the unit's file lives: its key in the cluster's registry (systemctl's "Loaded: loaded (PATH; ...)"). */
  path?: string;
  /** The machine's host name, for journal lines (missing from older nodes' answers). */
  hostname?: string;
  /** The last 10 journal lines. */
  journal: JournalLine[];
}

// ---- Containers per machine (`berth list-machines --containers`), from each machine's agent and Docker engine.

/** One container a machine's agent manages (or a leftover labelled with the machine). */
export interface MachineContainer {
  /** The unit that runs it ("" for a labelled container without a unit label). */
  unit: string;
  /** The first 12 hex digits, as `docker ps` shows it; null while the unit has no container (starting, failed). */
  containerId: string | null;
  image: string;
  /** The container's name, state ("running", "exited", ...) and status text ("Up 5 seconds") and creation time
   * (ms since the epoch) as the engine reports them; null when the engine did not answer. */
  name: string | null;
  state: string | null;
  status: string | null;
  created: number | null;
  /** The unit's active and sub state on the agent ("-" for a container the agent does not run). */
  active: string;
  sub: string;
}

/** One machine's containers. */
export interface MachineContainers {
  machine: string;
  machineName: string;
  publicIp: string | null;
  containers: MachineContainer[];
  /** The machine's node could not be asked (unreachable, agent not running): containers is empty. */
  error?: string;
  /** The machine answered, but its Docker engine did not: containers carry the agent's view only. */
  engineError?: string;
}

/** Methods: name -> [params, result]. */
export interface ClientMethods {
  "kv.get": [KvGetParams, KvResult];
  "kv.write": [KvWriteRequest, KvResult];
  "cluster.members": [Record<string, never>, MemberInfo[]];
  "cluster.health": [Record<string, never>, MemberHealth[]];
  "cluster.add": [{ name: string; peerAddr: string; learner?: boolean }, MemberInfo[]];
  "cluster.remove": [{ name: string }, MemberInfo[]];
  "cluster.promote": [{ name: string }, MemberInfo[]];
  "cluster.move-leader": [{ name: string }, MemberInfo[]];
  "node.status": [Record<string, never>, NodeStatus];
  /** The connection acts as this etcd v2 user from now on (auth_failed: unknown user or wrong password). */
  "auth.login": [{ name: string; password: string }, { user: string | null }];
  /** Stores unit files (desired state inactive). Same content again is a no-op; other content needs `replace`. */
  "units.submit": [{ units: UnitSubmission[]; replace?: boolean }, UnitInfo[]];
  /** Sets the desired state of known units (error not_found naming the unknown ones, nothing changed then). Going
   * down (loaded, inactive) also stops the launched units bound to them (Requires=/BindsTo=/PartOf= on the same
   * machine): those are in the result too, desired loaded. */
  "units.setDesired": [{ names: string[]; desired: DesiredState }, UnitInfo[]];
  /** `stopped`: units bound to a destroyed one (Requires=/BindsTo=/PartOf=), now desired loaded. */
  "units.destroy": [{ names: string[] }, { destroyed: string[]; stopped?: string[] }];
  "units.list": [Record<string, never>, UnitInfo[]];
  "units.cat": [{ name: string }, { name: string; text: string }];
  "units.states": [Record<string, never>, UnitStateRow[]];
  "machines.list": [Record<string, never>, MachineInfo[]];
  /** Records under /_berth left out of the scheduler's view because they could not be read (key, why). */
  "registry.problems": [Record<string, never>, { key: string; problem: string }[]];
  /** Drains (drain: true) or undrains a machine (id, id prefix or member name); idempotent. */
  "machines.drain": [{ machine: string; drain: boolean }, DrainStatus];
  /** Changes a machine's metadata at run time (keys set, keys removed, or every change dropped with reset). */
  "machines.setMetadata": [
    { machine: string; set?: Record<string, string>; unset?: string[]; reset?: boolean },
    MachineInfo,
  ];
  /** Where a machine's drain stands (the units it still holds). */
  "machines.drainStatus": [{ machine: string }, DrainStatus];
  /** Unknown units: not_found; a unit placed nowhere (or not known to its machine's agent): not_loaded. */
  "units.status": [{ names: string[] }, UnitStatus[]];
  /** The last `lines` lines (default 10) of a unit's journal, from the machine running it. */
  "units.journal": [{ name: string; lines?: number }, JournalLine[]];
  /** The containers every machine's agent manages (or one machine's: id, id prefix or member name). */
  "machines.containers": [{ machine?: string }, MachineContainers[]];
  /** The whole store at a linearizable read point of the answering member (admin or etcd root only). */
  "snapshot.save": [Record<string, never>, SavedSnapshot];
}

/** `berth snapshot save`: the store's snapshot bytes (src/kv/store.ts) and where they were taken. */
export interface SavedSnapshot {
  /** The cluster it was saved from (/_berth/cluster-id). */
  clusterId: string;
  /** The Raft index the state reflects (every entry up to it applied). */
  index: number;
  /** The Raft term when it was taken. */
  term: number;
  /** The store's own index (etcd's X-Etcd-Index). */
  etcdIndex: number;
  /** The member that answered. */
  member: string;
  /** Berth's version there. */
  version: string;
  /** When it was taken (ms since the epoch). */
  savedAt: number;
  data: Uint8Array;
}

/** Streams: name -> [params, item]. */
export interface ClientStreams {
  "kv.watch": [KvWatchParams, KvResult];
  /** The last `lines` lines (default 10), then new lines as they are written. */
  "units.journal.follow": [{ name: string; lines?: number }, JournalLine];
}

/**
 * Error codes a node answers with (in RemoteError.code). KV errors carry etcd's error document in `data`.
 * "unavailable": no leader / no quorum / node shutting down; "timeout": the request did not complete in time.
 */
export type ErrorCode =
  | "kv"
  | "unavailable"
  | "no_space"
  | "timeout"
  | "bad_request"
  | "not_found"
  | "conflict"
  | "not_loaded"
  | "unknown_method"
  | "permission_denied"
  | "auth_failed"
  | "internal";
