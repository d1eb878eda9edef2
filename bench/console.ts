// `npm run bench -- console`: `berth console` in a real terminal (tmux, 200x50) against a 3-node cluster (dist/berth,
// on the same cores) holding N units (default 10,000: 1,000 running `sleep`, the rest loaded), with the console's
// defaults (direct connection to the unix sockets, 1 s refresh). Measured from outside, as an operator sees it:
// a key sent with tmux send-keys until capture-pane shows the change it makes (polled every 5 ms), the console
// process's CPU while the cluster is idle (/proc/PID/stat) and its RSS, and the bytes it writes to the terminal
// (tmux pipe-pane), idle and per key. Goals: issue 22.
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import type { BerthClient } from "../src/client/client.ts";
import { BINARY, clientFor, TestCluster } from "../test/support/cluster.ts";
import { waitFor } from "../test/support/processes.ts";
import { TestTerminal } from "../test/support/terminal.ts";

const COLUMNS = 200;
const ROWS = 50;
const TEMPLATE = "sleep@.service";
const unitName = (i: number) => `sleep@${i}.service`;

export interface ConsoleBenchResult {
  units: number;
  running: number;
  loadMs: number;
  loadBefore: number[];
  loadAfter: number[];
  firstDrawMs: number;
  firstFrameMs: number;
  viewSwitchMs: number[];
  moveMs: number[];
  moveBytes: number[];
  filterMs: number[];
  filterBytes: number[];
  statusMs: number;
  idleSeconds: number;
  idleCpuPercent: number;
  idleBytes: number;
  rssMiB: number;
  peakRssMiB: number;
}

const r0 = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(" ");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Milliseconds until the screen satisfies `ok`, polled every 5 ms. */
async function untilScreen(
  t: TestTerminal,
  ok: (screen: string) => boolean,
  what: string,
  timeoutMs = 60_000,
) {
  const t0 = performance.now();
  let last = "";
  while (performance.now() - t0 < timeoutMs) {
    last = t.screen();
    if (ok(last)) return performance.now() - t0;
    await sleep(5);
  }
  throw new Error(`the screen never showed ${what} within ${timeoutMs} ms\n${last}`);
}

/** The selected row: the line in reverse video below the header and the view tabs. */
function selectedLine(t: TestTerminal): string {
  const lines = t.styledScreen().split("\n").slice(3);
  return (lines.find((l) => l.includes("\x1b[7m")) ?? "").replace(/\x1b\[[0-9;]*m/g, "");
}

function cpuTicks(pid: number): number {
  // Fields after the command (which may hold spaces): state is the 3rd field, utime and stime the 14th and 15th.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

function memoryMiB(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

async function loadUnits(c: BerthClient, units: number, running: number, progress: (l: string) => void) {
  await c.call("units.submit", {
    units: [
      { name: TEMPLATE, text: "[Unit]\nDescription=bench %i\n[Service]\nExecStart=/bin/sleep 100000\n" },
    ],
  });
  const names = Array.from({ length: units }, (_, i) => unitName(i));
  for (let i = 0; i < names.length; i += 500)
    await c.call("units.submit", { units: names.slice(i, i + 500).map((name) => ({ name })) }, 60_000);
  progress(`submitted ${units} units`);
  const setDesired = async (batch: string[], desired: "loaded" | "launched") => {
    if (batch.length > 0) await c.call("units.setDesired", { names: batch, desired }, 60_000);
  };
  for (let i = 0; i < names.length; i += 500) {
    const batch = names.slice(i, i + 500);
    await setDesired(
      batch.filter((_, j) => i + j >= running),
      "loaded",
    );
    await setDesired(
      batch.filter((_, j) => i + j < running),
      "launched",
    );
  }
  progress("desired states set; waiting for the agents to report them");
  await waitFor(
    `${units} units loaded, ${running} of them active`,
    async () => {
      const states = await c.call("units.states", {}, 60_000);
      const placed = states.filter((s) => s.machine !== "-" && s.load === "loaded").length;
      const active = states.filter((s) => s.active === "active").length;
      progress(`  ${placed}/${units} loaded, ${active}/${running} active`);
      return placed >= units && active >= running;
    },
    30 * 60_000,
    5000,
  );
}

export async function benchConsole(opts: {
  units: number;
  idleSeconds: number;
  progress: (line: string) => void;
}): Promise<ConsoleBenchResult> {
  const { units, progress } = opts;
  const running = Math.min(units, Math.round(units / 10));
  const loadBefore = loadavg();
  const cluster = await TestCluster.start(3);
  let term: TestTerminal | null = null;
  try {
    const client = await clientFor(cluster, "n1", 60_000);
    const l0 = performance.now();
    try {
      await loadUnits(client, units, running, progress);
    } finally {
      client.close();
    }
    const loadMs = performance.now() - l0;
    progress(`cluster loaded in ${(loadMs / 1000).toFixed(0)} s; starting the console`);
    await sleep(5000); // the agents' last reports settle

    const t0 = performance.now();
    term = TestTerminal.start([BINARY, "console", `--endpoint=${cluster.endpoints()}`], {
      columns: COLUMNS,
      rows: ROWS,
    });
    const t = term;
    t.recordOutput();
    // The first frame at all (the binary's start and Ink's, before any answer), then the first with the units.
    const firstDrawMs = await untilScreen(t, (s) => s.includes("Berth console"), "the first frame");
    const counted = new RegExp(`units (${units}|${units + 1})\\b`);
    await untilScreen(t, (s) => counted.test(s) && /n3\s+127\.0\.0\.3\s+up/.test(s), "data");
    const firstFrameMs = performance.now() - t0;
    const pid = t.programPid();
    await sleep(2000);

    const viewSwitchMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      t.keys("2");
      viewSwitchMs.push(await untilScreen(t, (s) => /UNIT\s+DESIRED[\s\S]*sleep@/.test(s), "the Units view"));
      t.keys("1");
      viewSwitchMs.push(
        await untilScreen(t, (s) => /MACHINE\s+NAME[\s\S]*n1\s/.test(s), "the Machines view"),
      );
    }
    t.keys("2");
    await untilScreen(t, (s) => /UNIT\s+DESIRED[\s\S]*sleep@/.test(s), "the Units view");
    await sleep(300);

    const moveMs: number[] = [];
    const moveBytes: number[] = [];
    for (let i = 0; i < 60; i++) {
      const before = selectedLine(t);
      const bytes = t.outputBytes();
      t.keys("j");
      moveMs.push(await untilScreen(t, () => selectedLine(t) !== before, "the selection moved"));
      await sleep(40);
      moveBytes.push(t.outputBytes() - bytes);
    }

    const filterMs: number[] = [];
    const filterBytes: number[] = [];
    t.keys("/"); // opening the prompt prepares the filter: counted with the characters
    filterMs.push(await untilScreen(t, (s) => s.includes("/▏"), "the filter prompt"));
    const wanted = unitName(5);
    for (let i = 1; i <= wanted.length; i++) {
      const typed = wanted.slice(0, i);
      const bytes = t.outputBytes();
      t.keys("-l", typed.at(-1)!);
      filterMs.push(await untilScreen(t, (s) => s.includes(`/${typed}▏`), `the filter /${typed}`));
      await sleep(40);
      filterBytes.push(t.outputBytes() - bytes);
    }
    t.keys("Enter");
    await untilScreen(t, (s) => !s.includes("▏"), "the filter kept");
    t.keys("g", "Enter");
    const statusMs = await untilScreen(t, (s) => /Active: active \(running\)/.test(s), "the unit's status");
    t.keys("Escape");
    await untilScreen(t, (s) => /UNIT\s+DESIRED/.test(s), "the Units view again");
    t.keys("Escape");
    await untilScreen(t, (s) => /sleep@1\.service/.test(s), "the filter cleared");

    progress(`idle for ${opts.idleSeconds} s`);
    await sleep(3000);
    const ticks0 = cpuTicks(pid);
    const bytes0 = t.outputBytes();
    const i0 = performance.now();
    await sleep(opts.idleSeconds * 1000);
    const idleCpuPercent = ((cpuTicks(pid) - ticks0) / 100 / ((performance.now() - i0) / 1000)) * 100;
    const idleBytes = t.outputBytes() - bytes0;
    const rssMiB = memoryMiB(pid, "VmRSS");
    const peakRssMiB = memoryMiB(pid, "VmHWM");
    progress(`samples (ms): views ${r0(viewSwitchMs)}; j ${r0(moveMs)}; filter ("/" first) ${r0(filterMs)}`);
    t.keys("q");
    await t.exitCode();
    return {
      units,
      running,
      loadMs,
      loadBefore,
      loadAfter: loadavg(),
      firstDrawMs,
      firstFrameMs,
      viewSwitchMs,
      moveMs,
      moveBytes,
      filterMs,
      filterBytes,
      statusMs,
      idleSeconds: opts.idleSeconds,
      idleCpuPercent,
      idleBytes,
      rssMiB,
      peakRssMiB,
    };
  } finally {
    term?.stop();
    await cluster.stop();
  }
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

export function consoleHeader(r: ConsoleBenchResult): string {
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(" ");
  return (
    `Console: berth console in tmux ${COLUMNS}x${ROWS}, direct connection (unix sockets), default 1 s refresh, ` +
    `against 3 real nodes (dist/berth) on the same machine with ${r.units} units (${r.running} running sleep, ` +
    `the rest loaded, one template); loaded in ${(r.loadMs / 1000).toFixed(0)} s; "idle" = no cluster changes; ` +
    `latency = send-keys until capture-pane shows the change (polled every 5 ms)\n` +
    `load average before ${load(r.loadBefore)}, after ${load(r.loadAfter)}`
  );
}

export function formatConsole(r: ConsoleBenchResult): [string[], (string | number)[][]] {
  const ms = (n: number) => n.toFixed(0);
  const met = (ok: boolean) => (ok ? "met" : "MISSED");
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return [
    ["measure", "samples", "p50", "p95", "max", "bytes written", "goal"],
    [
      ["first frame, before any answer (ms)", 1, ms(r.firstDrawMs), "", "", "", ""],
      [
        "first frame with the units counted (ms)",
        1,
        ms(r.firstFrameMs),
        "",
        "",
        "",
        `< 300: ${met(r.firstFrameMs < 300)}`,
      ],
      [
        "view switch 1 <-> 2 (ms)",
        r.viewSwitchMs.length,
        ms(pct(r.viewSwitchMs, 50)),
        ms(pct(r.viewSwitchMs, 95)),
        ms(Math.max(...r.viewSwitchMs)),
        "",
        `< 100 p95: ${met(pct(r.viewSwitchMs, 95) < 100)}`,
      ],
      [
        "j in the Units view (ms)",
        r.moveMs.length,
        ms(pct(r.moveMs, 50)),
        ms(pct(r.moveMs, 95)),
        ms(Math.max(...r.moveMs)),
        `${avg(r.moveBytes).toFixed(0)} / key`,
        `< 50 p95: ${met(pct(r.moveMs, 95) < 50)}`,
      ],
      [
        "filter character (ms)",
        r.filterMs.length,
        ms(pct(r.filterMs, 50)),
        ms(pct(r.filterMs, 95)),
        ms(Math.max(...r.filterMs)),
        `${avg(r.filterBytes).toFixed(0)} / key`,
        `< 50 p95: ${met(pct(r.filterMs, 95) < 50)}`,
      ],
      ["Enter: a unit's status shown (ms)", 1, ms(r.statusMs), "", "", "", "(was 8,300)"],
      [
        `idle CPU over ${r.idleSeconds} s (% of a core)`,
        1,
        r.idleCpuPercent.toFixed(2),
        "",
        "",
        `${((r.idleBytes / r.idleSeconds) * 60).toFixed(0)} / idle minute`,
        `< 2%, 0 bytes: ${met(r.idleCpuPercent < 2 && r.idleBytes === 0)}`,
      ],
      [
        "RSS at the end / peak (MiB)",
        1,
        r.rssMiB.toFixed(0),
        "",
        r.peakRssMiB.toFixed(0),
        "",
        `< 150: ${met(r.peakRssMiB < 150)}`,
      ],
    ],
  ];
}
