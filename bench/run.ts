// `npm run bench`: every benchmark, printed as tables with the goals next to the numbers.
// Usage: bun bench/run.ts [raft] [placement] [etcd] [busy] [failover] [memory] [sched] [agent] [flood] [tunnel]
//        [--seconds N] [--units N] [--runs N] [--faults crash,silent,lost] [--loss-units N]
//        bun bench/run.ts snapshot [--keys N] [--store-mib N]   (only when named: minutes, and GiBs of memory)
//        bun bench/run.ts console [--units N] [--idle-seconds N]   (only when named: loading 10,000 units takes minutes)
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SSHD } from "../test/support/sshd.ts";
import { benchAgent, formatAgent } from "./agent.ts";
import { benchBusy, busyHeader, formatBusy } from "./busy.ts";
import { benchConsole, consoleHeader, formatConsole } from "./console.ts";
import { benchCompare, compareHeader, etcdInstalledOrInstallable, formatCompare } from "./etcd-compare.ts";
import {
  benchFailover,
  type FailoverFault,
  failoverHeader,
  formatFailover,
  formatMachineLoss,
  machineLossHeader,
} from "./failover.ts";
import { benchFlood, floodFooter, formatFlood } from "./flood.ts";
import { measureFdatasync } from "./fsync.ts";
import { benchMachineLoss } from "./machine-loss.ts";
import { benchMemory, formatMemory, formatProbe, memoryHeader } from "./memory.ts";
import { benchPlacement } from "./placement.ts";
import { benchRaft } from "./raft.ts";
import { measureWireRtt } from "./rtt.ts";
import { benchSchedE2E, formatSchedE2E } from "./sched-e2e.ts";
import { benchSnapshotCatchUp, benchSnapshotFill } from "./snapshot.ts";
import { benchTunnel, formatTunnel } from "./tunnel.ts";

const args = process.argv.slice(2);
const secondsArg = args.indexOf("--seconds");
const seconds = secondsArg >= 0 ? Number(args[secondsArg + 1]) : 3;
const unitsArg = args.indexOf("--units");
const units = unitsArg >= 0 ? Number(args[unitsArg + 1]) : 1000;
const numberArg = (flag: string, fallback: number) => {
  const i = args.indexOf(flag);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const wanted = args.filter((a, i) => !a.startsWith("--") && !args[i - 1]?.startsWith("--"));
const run = (name: string) => wanted.length === 0 || wanted.includes(name);

function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => c.padStart(widths[i]!)).join("  ")).join("\n");
}

const f = (n: number, d = 2) => n.toFixed(d);

if (run("raft")) {
  const dir = mkdtempSync(join(tmpdir(), "berth-bench-fsync-"));
  const fsync = await measureFdatasync(dir, { samples: 300, bytes: 4096 });
  // The three members' fdatasyncs overlap on the same disk (and, on ext4, in the same journal).
  const fsync3 = await measureFdatasync(dir, { samples: 200, bytes: 4096, writers: 3 });
  rmSync(dir, { recursive: true, force: true });
  const rtt = await measureWireRtt({ samples: 3000 });
  const floorMs = 1.5 * (fsync.p50Ms + rtt.p50Ms);
  console.log(
    `\nRaft: 3 members, one process, TCP on loopback, WAL with fdatasync, 256-byte entries, ${seconds} s per row`,
  );
  console.log(
    `fdatasync of a 4 KiB append on this disk: p50 ${f(fsync.p50Ms, 3)} ms, p99 ${f(fsync.p99Ms, 3)} ms; ` +
      `wire round trip on loopback (ping-pong, src/wire): p50 ${f(rtt.p50Ms, 3)} ms, p99 ${f(rtt.p99Ms, 3)} ms\n` +
      `fdatasync with 3 writers at once on separate files (the cluster's case): p50 ${f(fsync3.p50Ms, 3)} ms, ` +
      `p99 ${f(fsync3.p99Ms, 3)} ms\n`,
  );
  const rows = await benchRaft({ seconds });
  console.log(
    table(
      ["in flight", "commits", "commits/s", "p50 ms", "p99 ms", "p50 / fdatasync", "goal"],
      rows.map((r) => [
        r.inFlight,
        r.commits,
        Math.round(r.commitsPerSec),
        f(r.p50Ms),
        f(r.p99Ms),
        f(r.p50Ms / fsync.p50Ms, 1),
        r.inFlight === 256
          ? `>= 20000/s: ${r.commitsPerSec >= 20000 ? "met" : "MISSED"}`
          : r.inFlight === 1
            ? `p50 <= 1.5 x (fdatasync + RTT) = ${f(floorMs, 3)} ms: ${r.p50Ms <= floorMs ? "met" : "MISSED"}`
            : "",
      ]),
    ),
  );
}

if (run("placement")) {
  console.log("\nPlacement: one reconcile() from scratch (pure, deterministic)\n");
  const rows = benchPlacement();
  console.log(
    table(
      ["machines", "units", "ms"],
      rows.map((r) => [r.machines, r.units, f(r.ms, 1)]),
    ),
  );
}

if (run("sched")) {
  console.log(
    `\nScheduling end to end: ${units} units on 3 real nodes (dist/berth, defaults: agent TTL 5 s, tick 100 ms); ` +
      "a SIGKILLed node and supervisor leave their units running, a machine lost takes them with it (node and unit processes " +
      "SIGKILLed, then the node restarted with its data dir; active = the `since` its new machine's agent reports)\n",
  );
  const r = await benchSchedE2E({ units, progress: (l) => console.error(`  [sched] ${l}`) });
  console.log(table(...formatSchedE2E(r)));
}

if (run("agent")) {
  console.log(
    "\nAgent: berth start -> ACTIVE=active and kill -9 -> restarted, 3 real nodes (dist/berth, defaults), " +
      "container units on a private dockerd (network none)\n" +
      "scheduled = the schedule record seen on a kv.watch; active = the agent's own `since` of ACTIVE=active\n",
  );
  const r = await benchAgent({ progress: (l) => console.error(`  [agent] ${l}`) });
  console.log(table(...formatAgent(r)));
}

if (run("flood")) {
  console.log(
    "\nA unit flooding its journal: `yes` (default rate limit, 10000 lines / 30 s) on a follower of 3 real nodes " +
      "(dist/berth, tick 50 ms, agent TTL 5 s), linearizable kv gets through that node every 20 ms: 10 s without " +
      "the unit, then 60 s with it\n",
  );
  const r = await benchFlood({ progress: (l) => console.error(`  [flood] ${l}`) });
  console.log(table(...formatFlood(r)));
  console.log(floodFooter(r));
}

if (wanted.length === 0 && !existsSync(SSHD)) {
  console.log(`\n--tunnel bench skipped: no OpenSSH server (${SSHD}); \`npm run setup\` installs it`);
} else if (run("tunnel")) {
  console.log(
    `\n--tunnel: one node (dist/berth), 256-byte values, directly and through a private OpenSSH server on loopback ` +
      `(ssh2 client, one SSH connection), ${seconds} s per row\n`,
  );
  console.log(table(...formatTunnel(await benchTunnel({ seconds }))));
}

// The etcd comparison: run when asked for by name, or in the default run when etcd is installed or installable.
if (wanted.includes("etcd") || (wanted.length === 0 && etcdInstalledOrInstallable())) {
  const rows = await benchCompare({ seconds });
  console.log(`\n${compareHeader(seconds)}\n`);
  console.log(formatCompare(rows));
} else if (wanted.length === 0) {
  console.log(
    "\netcd comparison skipped: etcd is not installed and cannot be installed here (needs root and apt-get)",
  );
}

if (run("busy")) {
  const busySeconds = 3 * seconds;
  const rows = await benchBusy({ seconds: busySeconds });
  console.log(`\n${busyHeader(busySeconds)}\n`);
  console.log(table(...formatBusy(rows)));
}

if (run("failover")) {
  const runs = numberArg("--runs", 10);
  // --faults crash,silent,lost picks goals 1, 2, 3 (all by default).
  const faultsArg = args.indexOf("--faults");
  const faults = faultsArg >= 0 ? args[faultsArg + 1]!.split(",") : ["crash", "silent", "lost"];
  const progress = (l: string) => console.error(`  [failover] ${l}`);
  const writeFaults = faults.filter((f): f is FailoverFault => f === "crash" || f === "silent");
  const rows = writeFaults.length > 0 ? await benchFailover({ runs, faults: writeFaults, progress }) : [];
  const loss = faults.includes("lost")
    ? await benchMachineLoss({ runs, units: numberArg("--loss-units", 30), progress })
    : null;
  const [headers, body] = formatFailover(rows);
  if (loss) body.push(...formatMachineLoss(loss));
  const headers1and2 = rows.length > 0 ? `\n${failoverHeader(runs)}` : "";
  console.log(`${headers1and2}${loss ? `\n${machineLossHeader(loss)}` : ""}\n`);
  console.log(table(headers, body));
}

// Memory against etcd: by name, or in the default run when etcd is installed or installable.
if (wanted.includes("memory") || (wanted.length === 0 && etcdInstalledOrInstallable())) {
  const r = await benchMemory({
    keys: numberArg("--keys", 100_000),
    progress: (l) => console.error(`  [memory] ${l}`),
  });
  console.log(`\n${memoryHeader(r)}\n`);
  console.log(table(...formatMemory(r)));
  console.log("");
  console.log(table(...formatProbe(r.probe)));
}

if (wanted.includes("snapshot")) {
  const keys = numberArg("--keys", 1_000_000);
  const storeMiB = numberArg("--store-mib", 1024);
  // --keys 0 or --store-mib 0 leaves that half out.
  const fill = keys > 0 ? await benchSnapshotFill(keys) : null;
  if (fill) {
    console.log(
      `\nSnapshots during a fill: 3 members (100 ms ticks, 1 s election timeout), ${keys} keys of 100 bytes from 64 writers, ` +
        "a snapshot every 10,000 entries on every member\n",
    );
    console.log(
      table(
        [
          "keys",
          "seconds",
          "retried writes",
          "elections",
          "snapshots",
          "last MiB",
          "slowest status ms",
          "stalls >= 1 s",
          "peak RSS MiB",
          "goal",
        ],
        [
          [
            fill.keys,
            f(fill.seconds, 1),
            fill.retries,
            fill.elections,
            fill.snapshots,
            fill.lastSnapshotMiB,
            fill.worstStallMs,
            fill.loggedStalls ? `${fill.loggedStalls} (max ${fill.worstLoggedStallMs} ms)` : "0",
            fill.peakRssMiB,
            "0 elections",
          ],
        ],
      ),
    );
  }
  const cu = storeMiB > 0 ? await benchSnapshotCatchUp(storeMiB * 1024 * 1024) : null;
  if (cu) {
    console.log(
      `\nA new member catching up: one member holding ${cu.storeMiB} MiB of 16 KiB values, then a second joins\n`,
    );
    console.log(
      table(
        [
          "store MiB",
          "fill s",
          "retried writes",
          "catch-up s",
          "via snapshot",
          "leader RSS MiB",
          "member RSS MiB",
          "goal",
        ],
        [
          [
            cu.storeMiB,
            f(cu.fillSeconds, 1),
            cu.fillRetries,
            f(cu.catchUpSeconds, 1),
            cu.viaSnapshot ? "yes" : "no",
            cu.leaderPeakRssMiB,
            cu.memberPeakRssMiB,
            "catches up from >= 1 GiB",
          ],
        ],
      ),
    );
  }
}

if (wanted.includes("console")) {
  const r = await benchConsole({
    units: numberArg("--units", 10_000),
    idleSeconds: numberArg("--idle-seconds", 60),
    progress: (l) => console.error(`  [console] ${l}`),
  });
  console.log(`\n${consoleHeader(r)}\n`);
  console.log(table(...formatConsole(r)));
}
