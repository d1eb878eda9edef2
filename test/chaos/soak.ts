// Soak: `npm run soak -- --minutes N` (default 30; not in CI). Five real nodes behind fault-injecting proxies run
// the chaos KV load and nemesis continuously, plus unit churn (units submitted, launched and destroyed). Every node's
// RSS (VmRSS) and open fd count are sampled (every 30 s, every 5 s for runs of 5 minutes or less) and printed as a
// table; at the end the growth gets a verdict (test/chaos/growth.ts: warm-up left out, then the last third of the
// samples against the first), and the KV history is checked for linearizability in windows: each window's
// clients use fresh keys, so every window's history is independent and checked on its own.
// n4 and n5 are never killed or paused (only partitioned), so their samples cover the whole run in one process.
import { readdirSync, readFileSync } from "node:fs";
import { BerthClient } from "../../src/client/client.ts";
import { ChaosCluster } from "./cluster.ts";
import { growthOf, WARMUP_SHARE } from "./growth.ts";
import { prng, registerOp, runNemesis, sleep } from "./harness.ts";
import type { Operation } from "./history.ts";
import { checkHistory } from "./linearizability.ts";
import { killMarked } from "./units.ts";

function flag(name: string): string | undefined {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

const minutes = Number(flag("minutes") ?? 30);
const seed = Number(flag("seed") ?? Math.floor(Math.random() * 2 ** 31));
const sampleMs = minutes <= 5 ? 5_000 : 30_000;
const windowMs = minutes <= 5 ? 30_000 : 60_000;
const N_CLIENTS = 5;
const KEYS = 3;
const RSS_LIMIT = 0.2;
const FD_LIMIT = 10;

interface Sample {
  at: number;
  pid: Record<string, number | null>;
  rssKb: Record<string, number | null>;
  fds: Record<string, number | null>;
}

function readRssKb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function readFds(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

async function main(): Promise<number> {
  const rand = prng(seed);
  const token = `soak${seed.toString(16)}`;
  console.log(
    `soak: ${minutes} min, seed ${seed}, sample every ${sampleMs / 1000}s, lin. windows ${windowMs / 1000}s`,
  );
  const cluster = await ChaosCluster.start(5, { extraArgs: ["--agent-ttl=2s"] });
  const names = cluster.nodes.map((n) => n.name);
  const t0 = performance.now();
  const elapsed = () => performance.now() - t0;
  const endAt = t0 + minutes * 60_000;
  const ops: (Operation & { window: number })[] = [];
  const faults: Record<string, number> = {};
  const faultLog: string[] = [];
  const samples: Sample[] = [];
  const churn = { submitted: 0, destroyed: 0, errors: 0 };
  const closers: (() => void)[] = [];
  let stop = false;
  let nextOp = 0;
  let uniq = 0;
  let keepDir = false;
  let exit = 0;

  const connect = async (endpoints: string[], name: string) => {
    const c = await BerthClient.connect({ endpoints, timeoutMs: 1000, name });
    closers.push(() => c.close());
    return c;
  };

  // ---- KV clients: the chaos harness's op mix, on keys of the current window ------------------------------------
  const clientLoop = async (ci: number) => {
    const crand = prng(seed * 31 + ci);
    const node = names[ci % names.length]!;
    let client: BerthClient | null = null;
    let lastSeen = new Map<string, string | null>();
    let lastWindow = -1;
    while (!stop) {
      if (!client) {
        try {
          client = await connect([cluster.endpoint(node)], `soak-c${ci}`);
        } catch {
          await sleep(200);
          continue;
        }
      }
      const window = Math.floor(elapsed() / windowMs);
      if (window !== lastWindow) {
        lastSeen = new Map();
        lastWindow = window;
      }
      const r = crand();
      const { op, omit, reconnect } = await registerOp(client, {
        id: nextOp++,
        client: ci,
        key: `/soak/w${window}/k${Math.floor(crand() * KEYS)}`,
        kind: r < 0.5 ? "read" : r < 0.75 ? "write" : "cas",
        value: `c${ci}-${uniq++}`,
        lastSeen,
        now: () => Math.round(elapsed()),
      });
      if (reconnect) {
        client.close();
        client = null;
      }
      if (!omit) ops.push({ ...op, window });
      await sleep(5 + crand() * 25);
    }
    client?.close();
  };

  // ---- unit churn: keep a handful of units alive, replacing one every few seconds ------------------------------
  const churnLoop = async () => {
    let client: BerthClient | null = null;
    const alive: string[] = [];
    let i = 0;
    while (!stop) {
      try {
        client ??= await connect(
          names.map((n) => cluster.endpoint(n)),
          "soak-churn",
        );
        const name = `churn-${i++}.service`;
        const text = `[Service]\nExecStart=/bin/sh -c "while true; do sleep 1; done" berth-chaos-${token}-%n\n`;
        await client.call("units.submit", { units: [{ name, text }] }, 5000);
        await client.call("units.setDesired", { names: [name], desired: "launched" }, 5000);
        churn.submitted++;
        alive.push(name);
        if (alive.length > 6) {
          const old = alive.shift()!;
          await client.call("units.destroy", { names: [old] }, 5000);
          churn.destroyed++;
        }
      } catch {
        churn.errors++;
        client?.close();
        client = null;
      }
      await sleep(2000 + rand() * 2000);
    }
    client?.close();
  };

  // ---- sampler ---------------------------------------------------------------------------------------------
  const sample = () => {
    const s: Sample = { at: Math.round(elapsed() / 1000), pid: {}, rssKb: {}, fds: {} };
    for (const n of names) {
      const pid = cluster.pid(n);
      s.pid[n] = pid;
      s.rssKb[n] = pid ? readRssKb(pid) : null;
      s.fds[n] = pid ? readFds(pid) : null;
    }
    samples.push(s);
    const cells = names.map((n) => {
      const restarted = samples.length > 1 && samples[samples.length - 2]!.pid[n] !== s.pid[n] ? "*" : " ";
      const rss = s.rssKb[n] === null ? "-" : `${(s.rssKb[n]! / 1024).toFixed(0)}M`;
      return `${rss}/${s.fds[n] ?? "-"}${restarted}`.padStart(11);
    });
    console.log(
      `${String(s.at).padStart(6)}s ${cells.join(" ")}  ops=${ops.length} units+${churn.submitted}`,
    );
  };
  const samplerLoop = async () => {
    while (!stop) {
      sample();
      const next = samples.length * sampleMs;
      await sleep(Math.max(0, next - elapsed()));
    }
  };

  try {
    console.log(
      `  time   ${names.map((n) => `${n} rss/fd`.padStart(11)).join(" ")}   (* = new process since last sample)`,
    );
    const loops = Promise.all([
      ...Array.from({ length: N_CLIENTS }, (_, i) => clientLoop(i)),
      churnLoop(),
      samplerLoop(),
    ]);
    const now = () => `+${(elapsed() / 1000).toFixed(1)}s`;
    await runNemesis({
      cluster,
      rand,
      victims: ["n1", "n2", "n3"],
      fault: (kind, detail) => {
        faults[kind] = (faults[kind] ?? 0) + 1;
        faultLog.push(`${now()} ${kind} ${detail}`);
      },
      note: (line) => faultLog.push(`${now()} ${line}`),
      endAt,
    });
    cluster.net.heal();
    for (const n of names) {
      cluster.resume(n);
      cluster.revive(n);
    }
    await cluster.waitHealthy(30_000);
    await sleep(1000);
    stop = true;
    sample();
    for (const c of closers) c();
    await Promise.race([loops, sleep(5000)]);

    // ---- growth ------------------------------------------------------------------------------------------
    console.log(
      `\nfaults: ${Object.entries(faults)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`,
    );
    console.log(
      `unit churn: ${churn.submitted} launched, ${churn.destroyed} destroyed, ${churn.errors} errors`,
    );
    let flat = true;
    console.log(
      `growth (first ${WARMUP_SHARE * 100}% of each process's samples left out as warm-up; avg of the first vs the last third of the rest):`,
    );
    for (const n of names) {
      const pids = new Set(samples.map((s) => s.pid[n]).filter((p) => p !== null));
      // Samples of the node's last process only: a restart resets memory, which would hide growth.
      const lastPid = samples[samples.length - 1]!.pid[n];
      const own = samples.filter((s) => s.pid[n] === lastPid && s.rssKb[n] !== null);
      const rss = growthOf(own.map((s) => [s.at, s.rssKb[n]! / 1024] as const));
      const fds = growthOf(own.map((s) => [s.at, s.fds[n] ?? 0] as const));
      const head = `  ${n}: ${pids.size} process(es); last one over ${own.length} samples:`;
      if (!rss || !fds) {
        console.log(`${head} too few samples to judge`);
        continue;
      }
      const nodeFlat = rss.change < RSS_LIMIT && fds.later - fds.earlier < FD_LIMIT;
      if (!nodeFlat) flat = false;
      const signed = (x: number, digits: number) => `${x >= 0 ? "+" : ""}${x.toFixed(digits)}`;
      console.log(
        `${head} RSS ${rss.earlier.toFixed(1)}M -> ${rss.later.toFixed(1)}M (${signed(rss.change * 100, 1)}%, ` +
          `slope ${signed(rss.slopePerHour, 1)} MB/h), fds ${fds.earlier.toFixed(1)} -> ${fds.later.toFixed(1)} ` +
          `(${signed(fds.later - fds.earlier, 1)})  ${nodeFlat ? "flat" : "GROWING"}`,
      );
    }
    console.log(
      `verdict: ${flat ? "flat" : "GROWING"} (limits: RSS < ${RSS_LIMIT * 100}%, fds < +${FD_LIMIT})`,
    );

    // ---- linearizability, window by window -------------------------------------------------------------------
    const windows = [...new Set(ops.map((o) => o.window))].sort((a, b) => a - b);
    let linOk = true;
    for (const w of windows) {
      const wops = ops.filter((o) => o.window === w);
      const started = performance.now();
      const check = checkHistory(wops, { timeoutMs: 30_000, shrinkMs: 5_000 });
      const ms = Math.round(performance.now() - started);
      const okCount = wops.filter((o) => o.result.status === "ok").length;
      const verdict =
        check.ok === true
          ? "ok"
          : check.ok === false
            ? `VIOLATION on ${check.key}\n${check.explanation}`
            : `UNKNOWN (timed out on ${check.key})`;
      if (check.ok === false) linOk = false;
      console.log(`  window ${w}: ${wops.length} ops (${okCount} ok) linearizability ${verdict} in ${ms} ms`);
    }
    console.log(
      `linearizability: ${linOk ? "ok" : "VIOLATION"} over ${windows.length} windows, ${ops.length} ops`,
    );
    exit = flat && linOk ? 0 : 1;
    if (!linOk) keepDir = true;
    if (faultLog.length <= 40) for (const f of faultLog) console.log(`  ${f}`);
    return exit;
  } finally {
    stop = true;
    for (const c of closers) {
      try {
        c();
      } catch {}
    }
    await cluster.stop(keepDir);
    killMarked(cluster, token);
    if (keepDir) console.log(`soak: node data and logs kept in ${cluster.dir}`);
  }
}

process.exit(await main());
