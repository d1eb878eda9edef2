// `berth backup`: a stopped node's data directory copied into a new one that starts as a cluster of one (etcdctl
// backup for v2, then etcd --force-new-cluster). The source is read under its data-directory lock, so no node can
// start on it meanwhile, and one that runs makes the backup refuse.
import { createHash } from "node:crypto";
import { copyFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { checkDataFormat } from "../datadir/format.ts";
import { lockDataDir } from "../datadir/lock.ts";
import { decodeCommand } from "../kv/commands.ts";
import { KvStore } from "../kv/store.ts";
import { decodeSnapshotEnvelope } from "../raft/driver.ts";
import { FileRaftStorage } from "../raft/storage/file.ts";
import { newClusterId, requireEmptyDir, rewriteForNewCluster, writeNewDataDir } from "./new-cluster.ts";

export interface BackupResult {
  name: string;
  peerAddr: string;
  index: number;
  keys: number;
  clusterId: string;
}

export async function backupDataDir(dataDir: string, backupDir: string): Promise<BackupResult> {
  await requireEmptyDir(backupDir, "--backup-dir");
  checkDataFormat(dataDir);
  const saved = await readFile(join(dataDir, "node.json"), "utf8").catch(() => {
    throw new Error(`--data-dir ${dataDir} holds no node.json: not a berth node's data directory`);
  });
  const config = JSON.parse(saved) as Record<string, unknown>;
  const name = String(config.name ?? "");
  const peerAddr = String(config["peer-addr"] ?? "");
  if (!name || !peerAddr) throw new Error(`${join(dataDir, "node.json")} names no member or peer address`);
  const lock = await lockDataDir(dataDir);
  try {
    const { store, index } = await committedState(dataDir);
    const members = new Map([[name, peerAddr]]);
    const payload = store.snapshot();
    const clusterId = newClusterId(members, createHash("sha256").update(payload).digest("hex"));
    const { app, keys } = rewriteForNewCluster(payload, clusterId, Date.now());
    await writeNewDataDir({ dataDir: backupDir, members, index, app });
    // The node's saved flags and the cluster secret come along; it is now the only member.
    config["initial-cluster"] = `${name}=${peerAddr}`;
    config.join = false;
    await writeFile(join(backupDir, "node.json"), `${JSON.stringify(config, null, 2)}\n`, { mode: 0o644 });
    await copyFile(join(dataDir, "cluster-secret"), join(backupDir, "cluster-secret")).catch(() => {});
    return { name, peerAddr, index, keys, clusterId };
  } finally {
    await lock.release();
  }
}

/** The store as of the last committed entry the data directory holds: its snapshot, then the committed log. */
async function committedState(dataDir: string): Promise<{ store: KvStore; index: number }> {
  const storage = await FileRaftStorage.open(join(dataDir, "raft"), { preallocate: false });
  try {
    const { hardState, snapshot, entries } = await storage.load();
    const store = new KvStore();
    let index = 0;
    if (snapshot) {
      store.restore(decodeSnapshotEnvelope(snapshot.data).app);
      index = snapshot.meta.index;
    }
    for (const e of entries) {
      if (e.index > hardState.commit) break;
      index = e.index;
      if (e.type !== "normal" || e.data.length === 0) continue;
      try {
        store.apply(decodeCommand(e.data));
      } catch {
        // An entry every replica failed to apply (see KvStateMachine): skipped here too.
      }
    }
    return { store, index };
  } finally {
    await storage.close();
  }
}
