// `npm run bench -- memory`: resident memory of a node, Berth vs etcd 3.4, and where Berth's bytes go.
// Each system as 3 members on loopback (bench/etcd-compare.ts starts them, defaults for both): RSS of every member
// idle, then after 20,000 and 100,000 distinct keys of 256 bytes (written over the etcd-v2 HTTP API, 64 in flight,
// round-robin over the members). Berth's unit supervisors (one per member, no unit running) are shown on their own.
// The floor: an empty program compiled with the binary's own `bun build` flags. The breakdown comes from
// bench/memory-probe.ts (each structure built at the bench's size in a fresh bun process, measured with heapStats).
// Usage: bun bench/memory.ts [--keys N]
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { COMPILE_ENV, COMPILE_FLAGS } from "../scripts/build-binary.ts";
import { supervisorPid } from "../src/agent/supervisor.ts";
import {
  type Cluster,
  ensureBerth,
  ensureEtcd,
  httpOnce,
  killStarted,
  startBerth,
  startEtcd,
  stopCluster,
  waitReady,
} from "./etcd-compare.ts";
import type { ProbeRow } from "./memory-probe.ts";

const ROOT = resolve(import.meta.dirname, "..");
const MiB = 1024 * 1024;
/** Seconds a cluster idles before its idle RSS is read (start-up allocations settled, a GC or two done). */
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 10);
/** Seconds after the last write before RSS is read (the allocator's 10 s purge interval, see runtime-options.ts). */
const SETTLE_S = Number(process.env.BENCH_SETTLE_S ?? 12);
const VALUE = "v".repeat(256);

export interface Rss {
  /** Resident set, and its anonymous (heap, JIT code) and file-backed (the mapped executable) parts, in bytes. */
  rss: number;
  anon: number;
  file: number;
}

export function readRss(pid: number): Rss {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile") + kb("RssShmem") };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Idle RSS of an empty program compiled with the binary's flags: what any Bun executable costs. */
async function floor(dir: string): Promise<Rss> {
  const src = join(dir, "empty.ts");
  const bin = join(dir, "empty");
  writeFileSync(src, "setInterval(() => {}, 1 << 30);\n");
  execFileSync(process.execPath, ["build", ...COMPILE_FLAGS, src, "--outfile", bin], {
    env: { ...process.env, ...COMPILE_ENV },
    stdio: "ignore",
  });
  const proc = spawn(bin, [], { stdio: "ignore" });
  try {
    await sleep(IDLE_S * 300);
    return readRss(proc.pid!);
  } finally {
    proc.kill("SIGKILL"); // the process spawned just above, by its PID
  }
}

/** Writes keys [from, to) of /bench/mem/k<i> with 256-byte values, 64 in flight, round-robin over the members. */
async function fill(c: Cluster, from: number, to: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const body = `value=${VALUE}`;
  let next = from;
  try {
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < to) {
          const k = next++;
          for (let attempt = 0; ; attempt++) {
            const r = await httpOnce(
              agent,
              c.httpUrls[k % 3]!,
              "PUT",
              `/v2/keys/bench/mem/k${k}`,
              body,
              10_000,
            );
            if (r.status >= 200 && r.status < 300) break;
            if (attempt >= 5) throw new Error(`${c.name}: PUT k${k} failed: ${r.error ?? r.status}`);
            await sleep(200);
          }
        }
      }),
    );
  } finally {
    agent.destroy();
  }
}

export interface MemoryRow {
  stage: string;
  etcd: Rss[];
  berth: Rss[];
  supervisors: Rss[];
}

export interface MemoryResult {
  floor: Rss;
  rows: MemoryRow[];
  probe: ProbeRow[];
}

function supervisors(c: Cluster): number[] {
  return ["n1", "n2", "n3"].flatMap((m) => supervisorPid(join(c.dir, m, "agent")) ?? []);
}

/** The stages of one system: idle, then after each key count; RSS of its members (and supervisors, Berth). */
async function measureSystem(
  c: Cluster,
  stages: number[],
  progress: (s: string) => void,
): Promise<{ members: Rss[][]; supervisors: Rss[][] }> {
  const members: Rss[][] = [];
  const sups: Rss[][] = [];
  const read = () => {
    members.push(c.procs.map((p) => readRss(p.pid!)));
    if (c.name === "berth") sups.push(supervisors(c).map(readRss));
  };
  await waitReady(c);
  await sleep(IDLE_S * 1000);
  read();
  let written = 0;
  for (const keys of stages) {
    progress(`${c.name}: writing keys ${written}..${keys}`);
    await fill(c, written, keys);
    written = keys;
    await sleep(SETTLE_S * 1000);
    read();
  }
  return { members, supervisors: sups };
}

function runProbe(keys: number): ProbeRow[] {
  const out = execFileSync(process.execPath, [join(ROOT, "bench/memory-probe.ts"), "--keys", String(keys)], {
    encoding: "utf8",
  });
  return JSON.parse(out) as ProbeRow[];
}

export async function benchMemory(opts: {
  keys?: number;
  progress?: (s: string) => void;
}): Promise<MemoryResult> {
  const progress = opts.progress ?? ((s: string) => console.error(s));
  const keys = opts.keys ?? 100_000;
  const stages = [...new Set([Math.min(20_000, keys), keys])];
  // BENCH_ONLY=berth (as in bench/etcd-compare.ts) skips etcd: for A/B runs of Berth builds (BERTH_BIN) and settings.
  const onlyBerth = process.env.BENCH_ONLY === "berth";
  const etcdBin = onlyBerth ? "" : ensureEtcd();
  ensureBerth();
  const parent = mkdtempSync(join(tmpdir(), "berth-bench-memory-"));
  let cluster: Cluster | null = null;
  const onSignal = () => {
    killStarted();
    // The members' supervisors are not this process's children: by the PIDs their agent directories record.
    if (cluster?.name === "berth")
      for (const pid of supervisors(cluster))
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
    rmSync(parent, { recursive: true, force: true });
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const floorRss = await floor(parent);
    progress(`floor: empty compiled program ${(floorRss.rss / MiB).toFixed(1)} MiB`);
    // One system at a time: each has both cores while it is written to.
    let etcd = { members: [[], ...stages.map(() => [])] as Rss[][], supervisors: [] as Rss[][] };
    if (!onlyBerth) {
      cluster = await startEtcd(etcdBin, parent);
      etcd = await measureSystem(cluster, stages, progress);
      await stopCluster(cluster);
    }
    cluster = await startBerth(parent);
    const berth = await measureSystem(cluster, stages, progress);
    await stopCluster(cluster);
    cluster = null;
    const names = ["idle", ...stages.map((k) => `${k.toLocaleString("en")} keys`)];
    return {
      floor: floorRss,
      rows: names.map((stage, i) => ({
        stage,
        etcd: etcd.members[i]!,
        berth: berth.members[i]!,
        supervisors: berth.supervisors[i]!,
      })),
      probe: runProbe(keys),
    };
  } finally {
    await stopCluster(cluster);
    rmSync(parent, { recursive: true, force: true });
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

const mb = (n: number) => (n / MiB).toFixed(1);
const mean = (xs: Rss[], f: (r: Rss) => number) => xs.reduce((a, r) => a + f(r), 0) / Math.max(1, xs.length);
const range = (xs: Rss[]) => {
  const v = xs.map((r) => r.rss / MiB);
  return `${Math.min(...v).toFixed(1)}-${Math.max(...v).toFixed(1)}`;
};

export function memoryHeader(r: MemoryResult): string {
  return (
    "Memory: RSS per member (MiB), 3 members each on loopback, defaults (etcd 3.4 --enable-v2; dist/berth); " +
    `read ${IDLE_S} s after start-up and ${SETTLE_S} s after the last write; keys /bench/mem/k<i> with 256-byte ` +
    `values over the etcd-v2 HTTP API; anon = heap and JIT code, file = the mapped executable.\n` +
    `Floor: an empty program compiled with the binary's bun build flags idles at ${mb(r.floor.rss)} MiB ` +
    `(anon ${mb(r.floor.anon)}, file ${mb(r.floor.file)}).`
  );
}

export function formatMemory(r: MemoryResult): [string[], (string | number)[][]] {
  const headers = [
    "stage",
    "etcd MiB (range)",
    "berth MiB (range)",
    "berth anon/file",
    "berth/etcd",
    "berth - floor",
    "supervisor MiB",
    "goal",
  ];
  const rows = r.rows.map((row, i) => {
    const e = mean(row.etcd, (x) => x.rss);
    const b = mean(row.berth, (x) => x.rss);
    const goal =
      i === 0
        ? `<= 45 MiB: ${b <= 45 * MiB ? "met" : "MISSED"}`
        : i === r.rows.length - 1
          ? `<= 1.3x etcd: ${b <= 1.3 * e ? "met" : "MISSED"}`
          : "";
    return [
      row.stage,
      `${mb(e)} (${range(row.etcd)})`,
      `${mb(b)} (${range(row.berth)})`,
      `${mb(mean(row.berth, (x) => x.anon))}/${mb(mean(row.berth, (x) => x.file))}`,
      (b / e).toFixed(2),
      mb(b - r.floor.rss),
      `${mb(mean(row.supervisors, (x) => x.rss))} (${range(row.supervisors)})`,
      goal,
    ];
  });
  return [headers, rows];
}

export function formatProbe(probe: ProbeRow[]): [string[], (string | number)[][]] {
  return [
    [
      "where Berth's bytes go (bench/memory-probe.ts: JS heap after a full GC, bun:jsc heapStats)",
      "heap MiB",
      "anon RSS MiB",
      "heap bytes each",
      "note",
    ],
    probe.map((p) => [
      p.what,
      p.heapMiB.toFixed(1),
      p.anonMiB !== undefined ? p.anonMiB.toFixed(1) : "",
      p.bytesEach !== undefined ? Math.round(p.bytesEach) : "",
      p.note ?? "",
    ]),
  ];
}
