// `npm run bench`: every benchmark, printed as tables with the goals next to the numbers.
// Usage: bun bench/run.ts [raft] [placement] [--seconds N]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { measureFdatasync } from "./fsync.ts";
import { benchPlacement } from "./placement.ts";
import { benchRaft } from "./raft.ts";

const args = process.argv.slice(2);
const secondsArg = args.indexOf("--seconds");
const seconds = secondsArg >= 0 ? Number(args[secondsArg + 1]) : 3;
const wanted = args.filter((a, i) => !a.startsWith("--") && i !== secondsArg + 1);
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
  rmSync(dir, { recursive: true, force: true });
  console.log(
    `\nRaft: 3 members, one process, TCP on loopback, WAL with fdatasync, 256-byte entries, ${seconds} s per row`,
  );
  console.log(
    `fdatasync of a 4 KiB append on this disk: p50 ${f(fsync.p50Ms, 3)} ms, p99 ${f(fsync.p99Ms, 3)} ms\n`,
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
            ? "p50 <= 1.5 x (fdatasync + RTT)"
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
