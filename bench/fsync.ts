// fdatasync latency of a small append on the disk under `dir`: the floor under every Raft commit, since each
// save() is one write plus one fdatasync. Usage: bun bench/fsync.ts [dir] (default: a temp dir under the cwd,
// because os.tmpdir() may be a tmpfs where fsync costs nothing).
//
// With `writers` > 1, that many appenders run at once, each on its own file (as the three members of a cluster on
// one machine do): on ext4 their fdatasyncs meet in the one journal, so each may take longer than a lone one.
import { mkdtemp, open, rm } from "node:fs/promises";
import { join } from "node:path";

export interface FsyncResult {
  p50Ms: number;
  p99Ms: number;
}

export async function measureFdatasync(
  dir: string,
  opts: { samples: number; bytes: number; writers?: number },
): Promise<FsyncResult> {
  const writers = opts.writers ?? 1;
  const times: number[] = [];
  const writer = async (w: number) => {
    const path = join(dir, `fsync-bench-${process.pid}-${w}.dat`);
    const fh = await open(path, "w");
    const buf = Buffer.alloc(opts.bytes, 0xab);
    try {
      let pos = 0;
      for (let i = 0; i < opts.samples; i++) {
        const t0 = performance.now();
        await fh.write(buf, 0, buf.length, pos);
        await fh.datasync();
        times.push(performance.now() - t0);
        pos += buf.length;
      }
    } finally {
      await fh.close();
      await rm(path, { force: true });
    }
  };
  await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0;
  return { p50Ms: at(0.5), p99Ms: at(0.99) };
}

if (import.meta.main) {
  const parent = process.argv[2] ?? process.cwd();
  const dir = await mkdtemp(join(parent, ".berth-fsync-"));
  try {
    for (const bytes of [256, 4096, 65536]) {
      const r = await measureFdatasync(dir, { samples: 300, bytes });
      console.log(
        `${bytes} B append + fdatasync in ${parent}: p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms`,
      );
    }
    for (const writers of [2, 3]) {
      const r = await measureFdatasync(dir, { samples: 300, bytes: 4096, writers });
      console.log(
        `4096 B append + fdatasync, ${writers} writers at once on separate files: ` +
          `p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
