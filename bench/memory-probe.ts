// Where a node's bytes go, structure by structure: run by bench/memory.ts as its own `bun` process (so nothing else
// is on its heap), it loads what a node loads and builds each in-memory structure at the size a node holds after
// the memory bench's writes, and prints the JavaScript heap each one adds (bun:jsc heapStats after a full GC) as
// JSON. Usage: bun bench/memory-probe.ts [--keys N]
import { heapStats } from "bun:jsc";
import { decodeCommand, encodeCommand, type KvCommand } from "../src/kv/commands.ts";
import { KvStore } from "../src/kv/store.ts";
import { EVENT_HISTORY_SIZE } from "../src/kv/types.ts";
import { RaftLog } from "../src/raft/log.ts";
import type { Entry } from "../src/raft/types.ts";

export interface ProbeRow {
  what: string;
  heapMiB: number;
  /** What the process's anonymous resident memory grew by (heap pages, allocator slack, malloc'd buffers). */
  anonMiB?: number;
  /** Per key or entry, where the structure has a count. */
  bytesEach?: number;
  note?: string;
}

const MiB = 1024 * 1024;

function heap(): number {
  Bun.gc(true);
  return heapStats().heapSize;
}

function rssAnon(): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(require("node:fs").readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

export async function probe(keys: number, snapshotEvery: number): Promise<ProbeRow[]> {
  const rows: ProbeRow[] = [];
  const h0 = heap();
  const a0 = rssAnon();
  // What `berth node` loads: the command table (every command's flags and help), then the node itself (which the
  // node command imports when it runs).
  await import("../src/cli/commands.ts");
  await import("../src/node/node.ts");
  const h1 = heap();
  rows.push({
    what: "modules: the `berth` import graph (code, closures, top-level data)",
    heapMiB: (h1 - h0) / MiB,
    anonMiB: (rssAnon() - a0) / MiB,
    note: "the anonymous growth includes bytecode, which is outside the JS heap",
  });

  const value = "v".repeat(256);
  const store = new KvStore();
  const now = Date.now();
  const put = (i: number): KvCommand => ({
    op: "set",
    key: `/bench/mem/k${i}`,
    value,
    dir: false,
    ttl: null,
    refresh: false,
    now,
  });
  const h2 = heap();
  const a2 = rssAnon();
  // Through the Raft entry's encoding, as a member applies it (each value its own string, not one shared literal).
  for (let i = 0; i < keys; i++) store.apply(decodeCommand(encodeCommand(put(i))));
  const h3 = heap();
  rows.push({
    what: `kv store: ${keys} keys of 256 bytes (tree nodes, values, the watch history of ${EVENT_HISTORY_SIZE} events)`,
    heapMiB: (h3 - h2) / MiB,
    anonMiB: (rssAnon() - a2) / MiB,
    bytesEach: (h3 - h2) / keys,
  });

  // The watch history alone: the last EVENT_HISTORY_SIZE events each hold the event's node copy (and its value).
  const small = new KvStore();
  const h4 = heap();
  for (let i = 0; i < EVENT_HISTORY_SIZE; i++) small.apply(decodeCommand(encodeCommand(put(i))));
  const h5 = heap();
  rows.push({
    what: `  beside it: ${EVENT_HISTORY_SIZE} keys with their ${EVENT_HISTORY_SIZE} history events (the history: the excess per key)`,
    heapMiB: (h5 - h4) / MiB,
    bytesEach: (h5 - h4) / EVENT_HISTORY_SIZE,
  });

  // The Raft log a member keeps in memory: at most snapshot-count entries after its last snapshot.
  const entries: Entry[] = [];
  const h6 = heap();
  const a6 = rssAnon();
  for (let i = 1; i <= snapshotEvery; i++)
    entries.push({ term: 1, index: i, type: "normal", data: encodeCommand(put(i)) });
  const log = new RaftLog(null, entries, snapshotEvery);
  const h7 = heap();
  rows.push({
    what: `raft log in memory: ${snapshotEvery} entries (snapshot-count), 256-byte PUTs`,
    heapMiB: (h7 - h6) / MiB,
    anonMiB: (rssAnon() - a6) / MiB,
    bytesEach: (h7 - h6) / snapshotEvery,
  });

  // The snapshot a member takes every snapshot-count entries: its bytes exist while it is written out.
  const h8 = heap();
  const a8 = rssAnon();
  const snap = store.snapshot();
  const h9 = heap();
  rows.push({
    what: `kv snapshot of ${keys} keys (transient, while a snapshot is written)`,
    heapMiB: (h9 - h8) / MiB,
    anonMiB: (rssAnon() - a8) / MiB,
    note: `${(snap.byteLength / MiB).toFixed(1)} MiB encoded`,
  });
  void log;
  return rows;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const num = (flag: string, fallback: number) => {
    const i = args.indexOf(flag);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const rows = await probe(num("--keys", 100_000), num("--snapshot-count", 10_000));
  console.log(JSON.stringify(rows));
}
