// The chaos run: 5 real nodes behind fault-injecting peer proxies, concurrent in-process clients recording a
// history of reads / writes / CAS, a nemesis (SIGKILL + restart, SIGSTOP/SIGCONT, partitions), then the
// linearizability checker, a watch-completeness check and a TTL-expiry check.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { BerthClient } from "../../src/client/client.ts";
import type { KvResult, KvWriteRequest } from "../../src/client/protocol.ts";
import type { KvNode } from "../../src/kv/types.ts";
import { ChaosCluster } from "./cluster.ts";
import type { Operation, OpKind, OpStatus } from "./history.ts";
import { type CheckResult, checkHistory, formatHistory } from "./linearizability.ts";
import type { BlockMode } from "./proxy.ts";

export interface ChaosOptions {
  timeSec: number;
  seed?: number;
  nodes?: number;
  clients?: number;
  keys?: number;
  tickMs?: number;
  electionTicks?: number;
  log?: (line: string) => void;
  /** Self-test: rewrite one late ok read to return an overwritten value, which the checker must reject. */
  injectStaleRead?: boolean;
  /** Directory for failing histories (default test/chaos/failures). */
  failureDir?: string;
}

export interface WatchReport {
  ok: boolean;
  events: number;
  resubscribes: number;
  problems: string[];
}

export interface TtlReport {
  ok: boolean;
  writes: number;
  acked: number;
  reads: number;
  boundMs: number;
  maxOvershootMs: number | null;
  problems: string[];
}

export interface ChaosReport {
  seed: number;
  ops: Operation[];
  counts: Record<string, number>;
  faults: Record<string, number>;
  faultLog: string[];
  check: CheckResult;
  checkMs: number;
  watch: WatchReport;
  ttl: TtlReport;
  failureFile: string | null;
  ok: boolean;
  summary: string;
}

const PREFIX = "/chaos";
const TTL_SEC = 1;

/** mulberry32: a small seeded PRNG so a run's nemesis schedule and op mix are reproducible-ish. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ErrLike {
  code?: string;
  message?: string;
  data?: { errorCode?: number };
}

type Classified = { status: OpStatus | "omit"; value?: string | null };

/** Maps an error to what it proves about the op (see the brief: only compare failures are definite). */
export function classify(kind: OpKind, err: unknown): Classified {
  const e = err as ErrLike;
  if (e.code === "kv") {
    const ec = e.data?.errorCode;
    if (kind === "read" && ec === 100) return { status: "ok", value: null };
    // cas: 101 compare failed, 100 key absent (prevValue on a missing key), 105 exists (prevExist=false).
    if (kind === "cas" && (ec === 101 || ec === 100 || ec === 105)) return { status: "fail" };
    return { status: "unknown" };
  }
  if (e.code === "bad_request") return { status: "omit" };
  return { status: "unknown" };
}

interface TtlWrite {
  key: string;
  value: string;
  invokedAt: number;
  ackedAt: number | null;
}

interface TtlRead {
  key: string;
  invokedAt: number;
  completedAt: number;
  value: string | null;
}

interface WatchEvent {
  key: string;
  action: string;
  value: string | undefined;
  modifiedIndex: number;
  at: number;
}

export interface RegisterOp {
  op: Operation;
  /** The op certainly never reached the log (refused before proposing): left out of the history. */
  omit: boolean;
  /** The connection is gone ("unavailable"): the caller reconnects. */
  reconnect: boolean;
  /** code/errorCode of a failed call, for the error tally; null when the call succeeded. */
  errorTag: string | null;
}

/**
 * One read, write or compare-and-swap on a register key, recorded for the linearizability checker. `lastSeen` is
 * this client's view of each key (a cas expects it); `value` is a fresh unique value for writes and cas.
 */
export async function registerOp(
  client: BerthClient,
  o: {
    id: number;
    client: number;
    key: string;
    kind: OpKind;
    value: string;
    lastSeen: Map<string, string | null>;
    now: () => number;
  },
): Promise<RegisterOp> {
  const { key, kind, lastSeen } = o;
  const op: Operation = {
    id: o.id,
    client: o.client,
    key,
    kind,
    input: {},
    invokedAt: 0,
    completedAt: null,
    result: { status: "unknown" },
  };
  let req: KvWriteRequest | null = null;
  if (kind === "write") {
    op.input = { value: o.value };
    req = { method: "PUT", key, value: o.value };
  } else if (kind === "cas") {
    const expect = lastSeen.has(key) ? lastSeen.get(key)! : null;
    op.input = { expect, next: o.value };
    req =
      expect === null
        ? { method: "PUT", key, value: o.value, prevExist: false }
        : { method: "PUT", key, value: o.value, prevValue: expect };
  }
  op.invokedAt = o.now();
  try {
    const res =
      kind === "read"
        ? await client.call("kv.get", { key, consistency: "linearizable" }, 3000)
        : await client.call("kv.write", req!, 3000);
    op.completedAt = o.now();
    if (kind === "read") {
      const v = res.event.node.value ?? null;
      op.result = { status: "ok", value: v };
      lastSeen.set(key, v);
    } else {
      op.result = { status: "ok" };
      lastSeen.set(key, o.value);
    }
    return { op, omit: false, reconnect: false, errorTag: null };
  } catch (err) {
    const c = classify(kind, err);
    const e = err as ErrLike;
    const errorTag = `${e.code ?? "?"}${e.data?.errorCode ? `/${e.data.errorCode}` : ""}`;
    let reconnect = false;
    if (c.status === "unknown") {
      op.result = { status: "unknown" };
      op.completedAt = null;
      reconnect = e.code === "unavailable";
    } else if (c.status !== "omit") {
      op.completedAt = o.now();
      op.result = c.value === undefined ? { status: c.status } : { status: c.status, value: c.value };
      if (kind === "read") lastSeen.set(key, null);
    }
    // After a compare failure learn the current value so the next cas has a chance.
    if (c.status === "fail" && kind === "cas") lastSeen.delete(key);
    return { op, omit: c.status === "omit", reconnect, errorTag };
  }
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const rand = prng(seed);
  const size = opts.nodes ?? 5;
  const nClients = opts.clients ?? 5;
  const keys = Array.from({ length: opts.keys ?? 3 }, (_, i) => `${PREFIX}/k${i}`);
  const ttlKeys = [`${PREFIX}/ttl/t0`, `${PREFIX}/ttl/t1`];
  const tickMs = opts.tickMs ?? 50;
  const electionMs = tickMs * (opts.electionTicks ?? 10);
  const ttlBoundMs = TTL_SEC * 1000 + 2 * electionMs;

  log(`chaos: seed=${seed} nodes=${size} clients=${nClients} keys=${keys.length} time=${opts.timeSec}s`);
  const cluster = await ChaosCluster.start(size, { tickMs });
  const t0 = performance.now();
  const now = () => Math.round(performance.now() - t0);
  const ops: Operation[] = [];
  const ttlWrites: TtlWrite[] = [];
  const ttlReads: TtlRead[] = [];
  const watchEvents: WatchEvent[] = [];
  const faults: Record<string, number> = {};
  const errorTally: Record<string, number> = {};
  const faultLog: string[] = [];
  const closers: (() => void)[] = [];
  let nextOp = 0;
  let uniq = 0;
  let stopClients = false;
  let watchResubscribes = 0;
  const watchProblems: string[] = [];
  // The watch goes through the last node, which the nemesis never kills or pauses (it may be partitioned).
  const watchNode = cluster.nodes[size - 1]!.name;
  let keepDir = false;

  try {
    // ---- watch -----------------------------------------------------------------------------------------
    let watchStop = false;
    let lastWatchIndex = 0;
    const watchLoop = (async () => {
      let since: number | undefined;
      while (!watchStop) {
        let client: BerthClient | null = null;
        try {
          client = await BerthClient.connect({
            endpoints: [cluster.endpoint(watchNode)],
            timeoutMs: 2000,
            name: "chaos-watch",
          });
          const c = client;
          closers.push(() => c.close());
          const sub = client.subscribe("kv.watch", {
            key: PREFIX,
            recursive: true,
            forever: true,
            ...(since !== undefined ? { sinceIndex: since } : {}),
          });
          closers.push(() => sub.close());
          for await (const r of sub as AsyncIterable<KvResult>) {
            const ev = r.event;
            const idx = ev.node.modifiedIndex;
            watchEvents.push({
              key: ev.node.key,
              action: ev.action,
              value: ev.node.value,
              modifiedIndex: idx,
              at: now(),
            });
            lastWatchIndex = Math.max(lastWatchIndex, idx);
            since = lastWatchIndex + 1;
            if (watchStop) break;
          }
          if (!watchStop) {
            watchResubscribes++;
            watchProblems.push(`watch stream ended without error at index ${lastWatchIndex}`);
          }
        } catch (err) {
          if (watchStop) break;
          const e = err as ErrLike;
          if (e.code === "kv" && e.data?.errorCode === 401) {
            watchProblems.push(`watch resubscribe from ${since} refused: history cleared (401)`);
            since = undefined;
          }
          watchResubscribes++;
          await sleep(100);
        } finally {
          client?.close();
        }
      }
    })();
    // Let the subscription register before any write.
    await sleep(300);

    // ---- clients ---------------------------------------------------------------------------------------
    const clientLoop = async (ci: number) => {
      const nodeName = cluster.nodes[ci % size]!.name;
      const crand = prng(seed * 31 + ci);
      const cpick = <T>(xs: readonly T[]): T => xs[Math.floor(crand() * xs.length)]!;
      const lastSeen = new Map<string, string | null>();
      let client: BerthClient | null = null;
      while (!stopClients) {
        if (!client) {
          try {
            client = await BerthClient.connect({
              endpoints: [cluster.endpoint(nodeName)],
              timeoutMs: 1000,
              name: `chaos-c${ci}`,
            });
            const c = client;
            closers.push(() => c.close());
          } catch {
            await sleep(200);
            continue;
          }
        }
        const r = crand();
        // A slice of the traffic exercises TTL keys (kept out of the linearizability history).
        if (r < 0.08) {
          const key = cpick(ttlKeys);
          const invokedAt = now();
          try {
            const res = await client.call("kv.get", { key, consistency: "linearizable" }, 3000);
            ttlReads.push({ key, invokedAt, completedAt: now(), value: res.event.node.value ?? null });
          } catch (err) {
            const e = err as ErrLike;
            if (e.code === "kv" && e.data?.errorCode === 100)
              ttlReads.push({ key, invokedAt, completedAt: now(), value: null });
            else if (e.code === "unavailable") {
              client.close();
              client = null;
            }
          }
          continue;
        }
        const kind: OpKind = r < 0.5 ? "read" : r < 0.75 ? "write" : "cas";
        const { op, omit, reconnect, errorTag } = await registerOp(client, {
          id: nextOp++,
          client: ci,
          key: cpick(keys),
          kind,
          value: `c${ci}-${uniq++}`,
          lastSeen,
          now,
        });
        if (errorTag) errorTally[errorTag] = (errorTally[errorTag] ?? 0) + 1;
        if (reconnect) {
          client.close();
          client = null;
        }
        if (!omit) ops.push(op);
        await sleep(5 + crand() * 25);
      }
      client?.close();
    };

    const ttlLoop = async () => {
      const nodeName = cluster.nodes[0]!.name;
      let client: BerthClient | null = null;
      let i = 0;
      while (!stopClients) {
        if (!client) {
          try {
            client = await BerthClient.connect({
              endpoints: [cluster.endpoint(nodeName), ...cluster.nodes.map((n) => cluster.endpoint(n.name))],
              timeoutMs: 1000,
              name: "chaos-ttl",
            });
            const c = client;
            closers.push(() => c.close());
          } catch {
            await sleep(200);
            continue;
          }
        }
        const w: TtlWrite = {
          key: ttlKeys[i % ttlKeys.length]!,
          value: `ttl-${i}`,
          invokedAt: now(),
          ackedAt: null,
        };
        i++;
        ttlWrites.push(w);
        try {
          await client.call("kv.write", { method: "PUT", key: w.key, value: w.value, ttl: TTL_SEC }, 3000);
          w.ackedAt = now();
        } catch (err) {
          const e = err as ErrLike;
          if (e.code === "unavailable") {
            client.close();
            client = null;
          }
        }
        await sleep(600 + rand() * 600);
      }
      client?.close();
    };

    // ---- nemesis ---------------------------------------------------------------------------------------
    const fault = (kind: string, detail: string) => {
      faults[kind] = (faults[kind] ?? 0) + 1;
      faultLog.push(`+${(now() / 1000).toFixed(1)}s ${kind} ${detail}`);
    };
    const victims = cluster.nodes.filter((n) => n.name !== watchNode).map((n) => n.name);
    const nemesis = (endAt: number) =>
      runNemesis({
        cluster,
        rand,
        victims,
        fault,
        note: (line) => faultLog.push(`+${(now() / 1000).toFixed(1)}s ${line}`),
        endAt,
      });

    const endAt = performance.now() + opts.timeSec * 1000;
    const clientsDone = Promise.all([
      ...Array.from({ length: nClients }, (_, i) => clientLoop(i)),
      ttlLoop(),
    ]);
    await nemesis(endAt);
    // ---- recovery ----------------------------------------------------------------------------------------
    cluster.net.heal();
    for (const n of cluster.nodes) {
      cluster.resume(n.name);
      cluster.revive(n.name);
    }
    log(`chaos: nemesis done at +${(now() / 1000).toFixed(1)}s; healed, waiting for health`);
    await cluster.waitHealthy(30_000);
    // A little fault-free traffic after recovery: every key should be writable again.
    await sleep(1000);
    stopClients = true;
    await clientsDone;
    // Wait out the last TTL so its expiry event is in the history.
    await sleep(TTL_SEC * 1000 + 2 * electionMs);

    // ---- final state, watch catch-up ------------------------------------------------------------------------
    const finalNodes = new Map<string, KvNode>();
    {
      const c = await BerthClient.connect({
        endpoints: cluster.nodes.map((n) => cluster.endpoint(n.name)),
        timeoutMs: 3000,
        name: "chaos-final",
      });
      try {
        for (const key of keys) {
          try {
            const r = await c.call("kv.get", { key, consistency: "linearizable" }, 5000);
            finalNodes.set(key, r.event.node);
          } catch (err) {
            if ((err as ErrLike).data?.errorCode !== 100) throw err;
          }
        }
      } finally {
        c.close();
      }
    }
    const maxFinal = Math.max(0, ...[...finalNodes.values()].map((n) => n.modifiedIndex));
    const watchDeadline = Date.now() + 10_000;
    while (lastWatchIndex < maxFinal && Date.now() < watchDeadline) await sleep(100);
    watchStop = true;
    for (const close of closers) close();
    await Promise.race([watchLoop, sleep(2000)]);

    // ---- checks ------------------------------------------------------------------------------------------
    if (opts.injectStaleRead) injectStaleRead(ops);
    const checkStart = performance.now();
    const check = checkHistory(ops, { timeoutMs: 60_000, shrinkMs: 10_000 });
    const checkMs = Math.round(performance.now() - checkStart);
    const watch = checkWatch(ops, watchEvents, finalNodes, keys, watchProblems, watchResubscribes);
    const ttl = checkTtl(ttlWrites, ttlReads, ttlBoundMs);

    const counts: Record<string, number> = {};
    for (const op of ops) {
      const k = `${op.kind}/${op.result.status}`;
      counts[k] = (counts[k] ?? 0) + 1;
    }
    const ok = check.ok === true && watch.ok && ttl.ok;
    let failureFile: string | null = null;
    if (!ok) {
      keepDir = true;
      const dir = opts.failureDir ?? resolve(import.meta.dirname, "failures");
      mkdirSync(dir, { recursive: true });
      failureFile = join(dir, `chaos-${seed}-${Date.now()}.json`);
      writeFileSync(
        failureFile,
        JSON.stringify(
          { seed, check, watch, ttl, faultLog, dataDir: cluster.dir, ops, ttlWrites, ttlReads, watchEvents },
          null,
          1,
        ),
      );
    }
    faultLog.push(
      `client errors by code: ${Object.entries(errorTally)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`,
    );
    const summary = formatSummary({
      seed,
      counts,
      faults,
      faultLog,
      check,
      checkMs,
      watch,
      ttl,
      failureFile,
      ops,
    });
    return { seed, ops, counts, faults, faultLog, check, checkMs, watch, ttl, failureFile, ok, summary };
  } finally {
    stopClients = true;
    for (const close of closers) {
      try {
        close();
      } catch {}
    }
    await cluster.stop(keepDir);
    if (keepDir) log(`chaos: node data and logs kept in ${cluster.dir}`);
  }
}

/** Makes the last ok read of some key return the value of the first ok write of that key (long overwritten). */
function injectStaleRead(ops: Operation[]): void {
  for (const op of [...ops].reverse()) {
    if (op.kind !== "read" || op.result.status !== "ok") continue;
    const first = ops.find((w) => w.key === op.key && w.kind === "write" && w.result.status === "ok");
    if (!first || first.input.value === op.result.value) continue;
    op.result = { status: "ok", value: first.input.value ?? null };
    return;
  }
}

function checkWatch(
  ops: Operation[],
  events: WatchEvent[],
  finalNodes: Map<string, KvNode>,
  keys: string[],
  problems: string[],
  resubscribes: number,
): WatchReport {
  const out = [...problems.filter((p) => !p.startsWith("watch stream ended"))];
  const keySet = new Set(keys);
  const seenIdx = new Set<number>();
  let prev = 0;
  for (const e of events) {
    if (seenIdx.has(e.modifiedIndex))
      out.push(`event at index ${e.modifiedIndex} (${e.key}) delivered twice`);
    else if (e.modifiedIndex < prev)
      out.push(`event at index ${e.modifiedIndex} (${e.key}) arrived after index ${prev} (out of order)`);
    seenIdx.add(e.modifiedIndex);
    prev = Math.max(prev, e.modifiedIndex);
  }
  const seenValues = new Map<string, WatchEvent>();
  for (const e of events)
    if (keySet.has(e.key) && e.value !== undefined) seenValues.set(`${e.key}\0${e.value}`, e);
  let missing = 0;
  for (const op of ops) {
    if (op.result.status !== "ok" || op.kind === "read") continue;
    const value = op.kind === "write" ? op.input.value : op.input.next;
    if (!seenValues.has(`${op.key}\0${value}`)) {
      missing++;
      if (missing <= 5)
        out.push(`acknowledged ${op.kind} #${op.id} ${op.key}=${value} never seen by the watch`);
    }
  }
  if (missing > 5) out.push(`... ${missing} acknowledged writes missing from the watch in all`);
  for (const [key, node] of finalNodes) {
    const last = [...events].reverse().find((e) => e.key === key);
    if (!last || last.modifiedIndex !== node.modifiedIndex || last.value !== node.value)
      out.push(
        `final ${key}=${node.value}@${node.modifiedIndex} but the watch's last event for it is ` +
          (last ? `${last.value}@${last.modifiedIndex}` : "none"),
      );
  }
  return { ok: out.length === 0, events: events.length, resubscribes, problems: out };
}

function checkTtl(writes: TtlWrite[], reads: TtlRead[], boundMs: number): TtlReport {
  const problems: string[] = [];
  const byValue = new Map(writes.map((w) => [w.value, w]));
  let max: number | null = null;
  for (const r of reads) {
    if (r.value === null) continue;
    const w = byValue.get(r.value);
    if (!w) {
      problems.push(`read of ${r.key} returned ${r.value}, which no TTL write wrote`);
      continue;
    }
    if (w.ackedAt === null) continue;
    // The value was alive at some instant after the read's invocation; it was applied before the ack.
    const overshoot = r.invokedAt - (w.ackedAt + TTL_SEC * 1000);
    if (max === null || overshoot > max) max = overshoot;
    if (overshoot > boundMs - TTL_SEC * 1000)
      problems.push(
        `${r.key}=${r.value} (acked at +${w.ackedAt} ms) still readable at +${r.invokedAt} ms: ` +
          `${Math.round(r.invokedAt - w.ackedAt)} ms after the ack, bound ${boundMs} ms`,
      );
  }
  return {
    ok: problems.length === 0,
    writes: writes.length,
    acked: writes.filter((w) => w.ackedAt !== null).length,
    reads: reads.length,
    boundMs,
    maxOvershootMs: max === null ? null : Math.round(max),
    problems,
  };
}

function formatSummary(r: {
  seed: number;
  counts: Record<string, number>;
  faults: Record<string, number>;
  faultLog: string[];
  check: CheckResult;
  checkMs: number;
  watch: WatchReport;
  ttl: TtlReport;
  failureFile: string | null;
  ops: Operation[];
}): string {
  const lines: string[] = [];
  lines.push(`seed ${r.seed}`);
  lines.push("ops            ok    fail  unknown");
  for (const kind of ["read", "write", "cas"]) {
    const c = (s: string) => String(r.counts[`${kind}/${s}`] ?? 0).padStart(6);
    lines.push(`  ${kind.padEnd(10)}${c("ok")}${c("fail")}${c("unknown")}`);
  }
  lines.push(`  total     ${String(r.ops.length).padStart(6)}`);
  lines.push(
    `faults: ${Object.entries(r.faults)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")}`,
  );
  for (const f of r.faultLog) lines.push(`  ${f}`);
  const verdict =
    r.check.ok === true
      ? `ok (${r.check.keys} keys, ${r.check.ops} ops)`
      : r.check.ok === false
        ? `VIOLATION on ${r.check.key}`
        : `UNKNOWN (search timed out on ${r.check.key})`;
  lines.push(`linearizability: ${verdict} in ${r.checkMs} ms`);
  if (r.check.ok === false) lines.push(r.check.explanation);
  lines.push(
    `watch: ${r.watch.ok ? "ok" : "FAILED"} (${r.watch.events} events, ${r.watch.resubscribes} resubscribes)`,
  );
  for (const p of r.watch.problems) lines.push(`  ${p}`);
  lines.push(
    `ttl: ${r.ttl.ok ? "ok" : "FAILED"} (${r.ttl.acked}/${r.ttl.writes} writes acked, ${r.ttl.reads} reads, ` +
      `max overshoot past ttl ${r.ttl.maxOvershootMs ?? "n/a"} ms, allowed ${r.ttl.boundMs - TTL_SEC * 1000} ms)`,
  );
  for (const p of r.ttl.problems.slice(0, 10)) lines.push(`  ${p}`);
  if (r.failureFile) lines.push(`failing history kept in ${r.failureFile}`);
  return lines.join("\n");
}

export { formatHistory };

/** The leader's name as some live, unpaused node reports it, or null. */
export async function leaderName(cluster: ChaosCluster): Promise<string | null> {
  for (const n of cluster.nodes) {
    if (!cluster.isUp(n) || n.paused) continue;
    let c: BerthClient | null = null;
    try {
      c = await BerthClient.connect({
        endpoints: [cluster.endpoint(n.name)],
        timeoutMs: 500,
        name: "chaos-nem",
      });
      const s = await c.call("node.status", {}, 500);
      if (s.leader) return s.leader;
    } catch {
    } finally {
      c?.close();
    }
  }
  return null;
}

export interface NemesisOptions {
  cluster: ChaosCluster;
  rand: () => number;
  /** Nodes that may be killed or paused (all nodes may be partitioned). */
  victims: string[];
  fault: (kind: string, detail: string) => void;
  note: (line: string) => void;
  endAt: number;
  /** Checked between faults: stop early when true. */
  stop?: () => boolean;
  /** Multiplies how long a kill, pause or partition lasts (default 1). */
  holdScale?: number;
}

/** SIGKILL + restart, SIGSTOP/SIGCONT and partitions (leader-isolating or split), one at a time until endAt. */
export async function runNemesis(o: NemesisOptions): Promise<void> {
  const { cluster, rand, victims, fault, note } = o;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const size = cluster.nodes.length;
  const done = () => performance.now() >= o.endAt || (o.stop?.() ?? false);
  const hold = (ms: number) => sleep(ms * (o.holdScale ?? 1));
  while (!done()) {
    await sleep(700 + rand() * 800);
    if (done()) break;
    const r = rand();
    if (r < 0.3) {
      const leader = await leaderName(cluster);
      const victim = leader && victims.includes(leader) && rand() < 0.5 ? leader : pick(victims);
      fault("kill", `${victim}${victim === leader ? " (leader)" : ""}`);
      await cluster.kill(victim);
      await hold(800 + rand() * 1500);
      cluster.revive(victim);
      note(`restart ${victim}`);
    } else if (r < 0.5) {
      const leader = await leaderName(cluster);
      const victim = leader && victims.includes(leader) && rand() < 0.5 ? leader : pick(victims);
      fault("pause", `${victim}${victim === leader ? " (leader)" : ""}`);
      cluster.pause(victim);
      await hold(800 + rand() * 1500);
      cluster.resume(victim);
      note(`resume ${victim}`);
    } else {
      const mode: BlockMode = rand() < 0.5 ? "drop" : "blackhole";
      const names = cluster.nodes.map((n) => n.name);
      let groups: string[][];
      let label: string;
      const leader = r < 0.7 ? await leaderName(cluster) : null;
      if (leader) {
        groups = [[leader], names.filter((n) => n !== leader)];
        label = "partition-leader";
      } else {
        const shuffled = [...names].sort(() => rand() - 0.5);
        const cut = Math.floor(size / 2);
        groups = [shuffled.slice(0, cut), shuffled.slice(cut)];
        label = "partition-split";
      }
      fault(label, `${groups.map((g) => g.join(",")).join(" | ")} (${mode})`);
      cluster.net.partition(groups, mode);
      await hold(1000 + rand() * 2000);
      // Evidence that the proxies really cut the network: who leads while the partition holds.
      const during = await leaderName(cluster);
      note(`leader during partition: ${during ?? "none"}`);
      cluster.net.heal();
      note("heal");
    }
  }
}
