// A new cluster from a saved state (`berth snapshot restore`, `berth backup`), as etcdutl's snapshot restore: a
// fresh data directory holding a Raft snapshot at the state's index, whose members are the ones given, not the
// old cluster's. Every member of the new cluster is restored from the same file with the same flags, so what is
// written here depends on those alone (never on --name): the members start from identical replicas.
import { createHash } from "node:crypto";
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { KvCommand } from "../kv/commands.ts";
import { KvStore } from "../kv/store.ts";
import { encodeSnapshotEnvelope } from "../raft/driver.ts";
import { FileRaftStorage } from "../raft/storage/file.ts";
import { CLUSTER_ID_KEY, MACHINES_DIR, MEMBERS_DIR, STATES_DIR } from "../sched/registry.ts";

/**
 * What belongs to the old cluster's members and machines, not to the cluster's data: each new member publishes its
 * addresses, each machine registers anew (a restored data directory gets a new machine id, so the old machines'
 * records would only stand for machines that never return), and unit states are reported again by the agents that
 * run them. Units, unit files, schedules (the engine moves units off machines that are gone), timer stamps, keys
 * and the v2 auth records stay.
 */
const OLD_CLUSTER_DIRS = [MEMBERS_DIR, MACHINES_DIR, STATES_DIR];

/** The new cluster's id: the same for every member restored from one state with one --initial-cluster. */
export function newClusterId(members: ReadonlyMap<string, string>, stateHash: string): string {
  const list = [...members].map(([n, a]) => `${n}=${a}`).sort();
  return createHash("sha256")
    .update(`berth-restore:${list.join(",")}:${stateHash}`)
    .digest("hex")
    .slice(0, 16);
}

/**
 * The store of `payload` (KvStore.snapshot()) with the old cluster's member and machine records removed and the
 * new cluster id. `now` stamps the rewrites (the time the state was saved, so every member computes the same).
 */
export function rewriteForNewCluster(
  payload: Uint8Array,
  clusterId: string,
  now: number,
): { app: Uint8Array; keys: number } {
  const store = new KvStore();
  store.restore(payload);
  const writes: KvCommand[] = [
    ...OLD_CLUSTER_DIRS.map((key): KvCommand => ({ op: "delete", key, dir: true, recursive: true, now })),
    { op: "set", key: CLUSTER_ID_KEY, value: clusterId, dir: false, ttl: null, refresh: false, now },
  ];
  for (const w of writes) store.apply(w); // a directory that is not there is no error here
  return { app: store.snapshot(), keys: store.keyCount };
}

export interface NewDataDir {
  dataDir: string;
  /** The new cluster's members and their peer addresses (--initial-cluster). */
  members: ReadonlyMap<string, string>;
  /** The Raft index the state reflects: the new log starts after it. */
  index: number;
  /** The store's snapshot bytes (rewriteForNewCluster). */
  app: Uint8Array;
}

/** Refuses a data directory that holds anything: a restore never writes over a member's data. */
export async function requireEmptyDir(dir: string, flag: string): Promise<void> {
  const entries = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return [];
    throw err;
  });
  if (entries.length > 0) throw new Error(`${flag} ${dir} already exists and is not empty`);
}

/**
 * Writes DATA_DIR/raft: a Raft snapshot at `index` (term 1) whose voters are `members`, and a hard state committing
 * it. A node started on it loads the snapshot as if its log had been compacted there, and elects a leader among
 * the new members; it gets a new machine id at its first start.
 */
export async function writeNewDataDir(d: NewDataDir): Promise<void> {
  await mkdir(d.dataDir, { recursive: true, mode: 0o700 });
  // Not preallocated: the node extends the segment to its own --wal-segment-size when it opens it.
  const storage = await FileRaftStorage.open(join(d.dataDir, "raft"), { preallocate: false });
  try {
    await storage.load();
    const voters = [...d.members.keys()].sort();
    const data = encodeSnapshotEnvelope(new Map(d.members), d.app);
    await storage.saveSnapshot({
      meta: { index: d.index, term: 1, confState: { voters, learners: [] } },
      data,
    });
    await storage.save({ term: 1, vote: null, commit: d.index }, []);
  } finally {
    await storage.close();
  }
}
