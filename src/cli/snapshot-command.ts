// `berth snapshot save|status|restore` (etcdctl snapshot save/status, etcdutl snapshot restore) and `berth backup`
// (etcdctl backup for v2): saving a running cluster's state, checking a saved file, starting a new cluster from it.
import { constants as fsc } from "node:fs";
import { open, readFile, rename, rm } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import {
  newClusterId,
  requireEmptyDir,
  rewriteForNewCluster,
  writeNewDataDir,
} from "../backup/new-cluster.ts";
import { backupDataDir } from "../backup/offline.ts";
import {
  decodeSnapshotFile,
  encodeSnapshotFile,
  SnapshotFileError,
  type SnapshotHeader,
} from "../backup/snapshot-file.ts";
import { DataFormatError } from "../datadir/format.ts";
import { DataDirLockedError } from "../datadir/lock.ts";
import { KvStore } from "../kv/store.ts";
import { CLIENT_FLAGS, outputFormat, withClient } from "./client-command.ts";
import type { Command, CommandGroup } from "./command.ts";
import { CliError, EXIT, UsageError } from "./exit-codes.ts";
import type { FlagSpec, Parsed } from "./flags.ts";
import { parseHostPort, parseInitialCluster } from "./node-config.ts";
import { printJson, renderTable } from "./output.ts";

/** A whole store takes longer to send than a key: the save waits at least this long. */
const SAVE_TIMEOUT_MS = 120_000;

function oneFile(parsed: Parsed): string {
  if (parsed.positionals.length !== 1) throw new UsageError("expected FILE");
  return parsed.positionals[0]!;
}

/** Written beside the target, synced, renamed over it: a failed save leaves no half file under FILE. */
async function writeFileDurably(file: string, bytes: Buffer): Promise<void> {
  const tmp = `${file}.part`;
  try {
    const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC, 0o600);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    const dir = await open(dirname(resolve(file)), fsc.O_RDONLY);
    await dir.sync().finally(() => dir.close());
  } catch (err) {
    await rm(tmp, { force: true });
    throw new CliError(`writing ${file}: ${(err as Error).message}`);
  }
}

/** The file's header and payload, checked; a damaged file is a usage error naming what is wrong (exit 2). */
async function readSnapshot(file: string) {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    throw new UsageError(`${file}: ${(err as Error).message}`);
  }
  try {
    const decoded = decodeSnapshotFile(buf, file);
    const store = new KvStore();
    try {
      store.restore(decoded.payload);
    } catch (err) {
      throw new SnapshotFileError(`${file} holds no readable store: ${(err as Error).message}`);
    }
    return { ...decoded, keys: store.keyCount, size: buf.length };
  } catch (err) {
    if (err instanceof SnapshotFileError) throw new UsageError(err.message);
    throw err;
  }
}

const save: Command = {
  name: "save",
  summary: "save the whole store of a running cluster to FILE (admin or etcd root)",
  usage: "FILE",
  description: `
Asks one member (the first endpoint that answers, leader or follower) for its whole store at a linearizable read
point: every write acknowledged before the command started is in the file. The file carries the cluster id, the
Raft index and term, and a sha256 checksum; \`berth snapshot status FILE\` checks it. It holds every key, the
registry under /_berth and the v2 auth records: keep it as secret as the cluster secret.`,
  flags: CLIENT_FLAGS,
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      const file = oneFile(parsed);
      const saved = await ctx.client.call("snapshot.save", {}, Math.max(ctx.timeoutMs, SAVE_TIMEOUT_MS));
      const { data, ...header } = saved;
      const bytes = encodeSnapshotFile(header satisfies SnapshotHeader, data);
      await writeFileDurably(file, bytes);
      const { hash, keys } = await readSnapshot(file);
      if (ctx.output === "json")
        printJson({ file, hash, ...header, totalKeys: keys, totalSize: bytes.length });
      else
        process.stdout.write(
          `Snapshot saved at ${file} (member ${header.member}, index ${header.index}, ${keys} keys, ` +
            `${bytes.length} bytes, sha256 ${hash})\n`,
        );
      return EXIT.ok;
    }),
};

const OUTPUT_FLAG: FlagSpec = CLIENT_FLAGS.find((f) => f.name === "output")!;

const status: Command = {
  name: "status",
  summary: "check a snapshot file and show its hash, index, keys and size",
  usage: "FILE",
  description: `
Reads FILE and verifies its checksum (a damaged file: exit 2 saying so). HASH is the start of the sha256 of the
file's contents (the whole of it with -o json), INDEX the Raft index, ETCD INDEX the store's index.`,
  flags: [OUTPUT_FLAG],
  async run(parsed) {
    const output = outputFormat(parsed.flags);
    const file = oneFile(parsed);
    const { header, hash, keys, size } = await readSnapshot(file);
    const row = {
      hash,
      index: header.index,
      term: header.term,
      etcdIndex: header.etcdIndex,
      totalKeys: keys,
      totalSize: size,
      clusterId: header.clusterId,
      member: header.member,
      version: header.version,
      savedAt: new Date(header.savedAt).toISOString(),
    };
    if (output === "json") printJson(row);
    else
      process.stdout.write(
        `${renderTable(
          [row],
          [
            { header: "HASH", value: (r) => r.hash.slice(0, 16) },
            { header: "INDEX", value: (r) => String(r.index) },
            { header: "ETCD INDEX", value: (r) => String(r.etcdIndex) },
            { header: "TOTAL KEYS", value: (r) => String(r.totalKeys) },
            { header: "TOTAL SIZE", value: (r) => String(r.totalSize) },
            { header: "CLUSTER ID", value: (r) => r.clusterId },
          ],
        )}\n`,
      );
    return EXIT.ok;
  },
};

const restore: Command = {
  name: "restore",
  summary: "write a new member's data directory from a snapshot file (a new cluster)",
  usage: "FILE --name NAME --data-dir DIR --initial-cluster NAME=HOST:PORT,...",
  description: `
As etcdutl snapshot restore: run it once per member of the new cluster, with the same FILE and --initial-cluster
and each member's --name and --data-dir, then start every member with berth node (its --name, --peer-addr as in
--initial-cluster, and the new cluster's --cluster-secret-file). The new cluster has a new cluster id and the
members given; it keeps every key, the v2 users and roles, the units, their schedules and timer stamps. Members'
addresses, machines and unit states of the old cluster are dropped: every node registers its machine anew, and
units placed on the old machines are placed again, so a unit that was running runs again once.
Stop the old cluster's units first: their supervisors (berth supervise) run on until their node's lease fences
them, and a unit restored elsewhere would meanwhile run twice. The data directory must not exist or be empty.`,
  flags: [
    { name: "name", type: "string", description: "this member's name in --initial-cluster", value: "NAME" },
    { name: "data-dir", type: "string", description: "the new member's data directory", value: "DIR" },
    {
      name: "initial-cluster",
      type: "string",
      description: "every member of the new cluster and its peer address",
      value: "NAME=HOST:PORT,...",
    },
    OUTPUT_FLAG,
  ],
  async run(parsed) {
    const output = outputFormat(parsed.flags);
    const file = oneFile(parsed);
    const f = parsed.flags;
    const [name, dataDir, raw] = [f.name, f["data-dir"], f["initial-cluster"]];
    if (typeof name !== "string" || typeof dataDir !== "string" || typeof raw !== "string")
      throw new UsageError("berth snapshot restore needs --name, --data-dir and --initial-cluster");
    const entry = raw
      .split(",")
      .map((s) => s.trim())
      .find((p) => p.startsWith(`${name}=`));
    if (!entry) throw new UsageError(`--initial-cluster does not list this member (--name ${name})`);
    const members = parseInitialCluster(
      raw,
      name,
      parseHostPort(entry.slice(name.length + 1), "--initial-cluster"),
      false,
    );
    const { header, payload, hash } = await readSnapshot(file);
    await requireEmptyDir(dataDir, "--data-dir").catch((err: Error) => {
      throw new UsageError(err.message);
    });
    const clusterId = newClusterId(members, hash);
    const { app, keys } = rewriteForNewCluster(payload, clusterId, header.savedAt);
    await writeNewDataDir({ dataDir, members, index: header.index, app });
    const result = {
      name,
      dataDir,
      clusterId,
      index: header.index,
      totalKeys: keys,
      members: Object.fromEntries(members),
    };
    if (output === "json") printJson(result);
    else
      process.stdout.write(
        `restored ${file} into ${dataDir} for member ${name} of the new cluster ${clusterId} ` +
          `(${members.size} members, index ${header.index}, ${keys} keys)\n`,
      );
    return EXIT.ok;
  },
};

export const snapshotCommands: CommandGroup = {
  name: "snapshot",
  summary: "save a running cluster's store, check a saved file, restore it as a new cluster",
  subcommands: [save, status, restore],
};

export const backupCommand: Command = {
  name: "backup",
  summary: "copy a stopped node's data directory into one that starts as a cluster of one",
  usage: "--data-dir DIR --backup-dir DIR2",
  description: `
As etcdctl backup (v2) followed by etcd --force-new-cluster: reads the stopped node's data directory (refused
while a node runs on it), and writes DIR2 holding its committed state as a new cluster whose only member is that
node (same name and peer address, a new cluster id; node.json and the cluster secret copied). Start it with
berth node --data-dir DIR2. Machines, member addresses and unit states are dropped as by snapshot restore.`,
  flags: [
    { name: "data-dir", type: "string", description: "the stopped node's data directory", value: "DIR" },
    { name: "backup-dir", type: "string", description: "where the copy goes (new or empty)", value: "DIR2" },
    OUTPUT_FLAG,
  ],
  async run(parsed) {
    const output = outputFormat(parsed.flags);
    const [src, dst] = [parsed.flags["data-dir"], parsed.flags["backup-dir"]];
    if (typeof src !== "string" || typeof dst !== "string")
      throw new UsageError("berth backup needs --data-dir and --backup-dir");
    let r: Awaited<ReturnType<typeof backupDataDir>>;
    try {
      r = await backupDataDir(src, dst);
    } catch (err) {
      if (err instanceof DataFormatError) throw new UsageError(err.message);
      if (err instanceof DataDirLockedError)
        throw new CliError(
          `--data-dir ${src}: ${err.message}; stop that node first (backup reads a stopped node)`,
        );
      throw new CliError((err as Error).message);
    }
    if (output === "json") printJson({ dataDir: src, backupDir: dst, ...r, totalKeys: r.keys });
    else
      process.stdout.write(
        `backed up ${src} into ${dst}: member ${r.name} (${r.peerAddr}) alone in the new cluster ${r.clusterId} ` +
          `(index ${r.index}, ${r.keys} keys)\n`,
      );
    return EXIT.ok;
  },
};
