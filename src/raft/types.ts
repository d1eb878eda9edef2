// Types shared by the pure Raft core, its storage and its transport.
// Node ids are the members' names ("n1"); they are unique for the life of a cluster.

export type NodeId = string;

/** "normal" carries state-machine data (empty data = the leader's no-op); "conf" carries an encoded ConfChange. */
export type EntryType = "normal" | "conf";

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

export interface HardState {
  term: number;
  vote: NodeId | null;
  commit: number;
}

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: null, commit: 0 });

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export type ConfChangeType = "addVoter" | "addLearner" | "promote" | "remove";

/** One-server-at-a-time membership change; `context` carries the member's peer address for the transport. */
export interface ConfChange {
  type: ConfChangeType;
  id: NodeId;
  context?: string;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  confState: ConfState;
}

export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export type MessageType =
  | "app"
  | "appResp"
  | "vote"
  | "voteResp"
  | "preVote"
  | "preVoteResp"
  | "heartbeat"
  | "heartbeatResp"
  | "snap"
  | "timeoutNow"
  | "readIndex"
  | "readIndexResp";

/** A Raft message; a flat shape with optional fields (as etcd-io/raft's) so it encodes compactly. */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** app: term of the entry before `entries`; vote: candidate's last log term. */
  logTerm?: number;
  /** app: index before `entries`; appResp: last matching index; vote: candidate's last index. */
  index?: number;
  entries?: Entry[];
  commit?: number;
  reject?: boolean;
  /** appResp reject: follower's last index (hint for fast back-off); rejectTerm: term at that hint. */
  rejectHint?: number;
  rejectTerm?: number;
  snapshot?: Snapshot;
  /** readIndex/heartbeat: opaque request context echoed back. */
  context?: Uint8Array;
  /** vote: a campaign started by leadership transfer, which voters honour even inside a leader lease. */
  force?: boolean;
}

export interface ReadState {
  index: number;
  context: Uint8Array;
}

export interface RecoveryReport {
  /** Human-readable lines: what was found, truncated or repaired. */
  notes: string[];
  truncatedBytes: number;
}

/** What a storage holds durably: the state a node restarts from. */
export interface StoredState {
  hardState: HardState;
  snapshot: Snapshot | null;
  entries: Entry[];
  report: RecoveryReport;
}

/** The disk holding the log or snapshots is full (ENOSPC, EDQUOT). Unlike other I/O errors the storage stays
 * usable: the failed call left nothing behind, and retrying it succeeds once space frees. */
export class StorageFullError extends Error {
  readonly code = "no_space";
}

export function isNoSpace(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
}

/** Durable storage behind the driver. Every method returns only once data is on disk (fsync), but see save(). */
export interface RaftStorage {
  load(): Promise<StoredState>;
  /**
   * Persist the hard state (when given) and entries. Entries are contiguous; when the first one's index is at or
   * below the last stored index, the stored suffix from that index on is replaced (a follower's conflicting tail).
   * With `sync` false (a Ready that need not be synced: only its commit index changed) the data is written but not
   * flushed: it survives the process, not necessarily the machine; the next synced save flushes it.
   */
  save(hardState: HardState | null, entries: Entry[], sync?: boolean): Promise<void>;
  /** Persist a snapshot; afterwards the log up to snap.meta.index may be dropped. */
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  // save() and saveSnapshot() reject with StorageFullError when the disk has no room: nothing of that call is
  // stored, no partial record or temporary file is left, and the same call may be made again once space frees.
  /** Drop log segments that hold only entries at or below `index` (which a saved snapshot covers). */
  compact(index: number): Promise<void>;
  close(): Promise<void>;
}
