// A supervisor that crashes alone (SIGKILL; its node lives on) leaves its units running. The next supervisor takes
// over its lease and, on its first reconcile, adopts each service still wanted here with the same hash — same
// process, output read on from the FIFOs it writes to, nothing written meanwhile lost — and kills the others. When
// no renewal comes, the units die when the old lease would have ended. The real binary (FIFOs need Bun's FFI),
// driven by this test acting as its node.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JournalLine, UnitSpec, UnitState } from "../src/agent/agent.ts";
import { monotonicMs } from "../src/agent/lease.ts";
import { runs } from "../src/agent/main-pid.ts";
import { SUPERVISOR_SOCKET } from "../src/agent/supervisor.ts";
import { Connection } from "../src/wire/connection.ts";
import { BINARY, requireBinary } from "./support/cluster.ts";
import { freePort, killUnitProcesses, signalAndWait, waitFor } from "./support/processes.ts";

const FENCE_MS = 2000;

/** Running, not a zombie: a killed orphan waits for PID 1 to reap it. */
const alive = runs;

const dial = (path: string) =>
  new Promise<Socket>((resolve, reject) => {
    const s = connect(path);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });

const spec = (name: string, hash: string, execStart: string): UnitSpec => ({
  name,
  hash,
  text: `[Service]\nExecStart=${execStart}\n`,
  desired: "launched",
});

/** Counts on stdout, one line every 50 ms: a gap in the journal's numbers would be output lost. */
const COUNTER = spec(
  "counter.service",
  "h1",
  `/bin/sh -c 'i=0; while :; do i=$((i+1)); echo "n=$i"; sleep 0.05; done'`,
);
const DROPPED = spec("dropped.service", "h1", "/bin/sleep 1000");
const CHANGED = spec("changed.service", "h1", "/bin/sleep 1000");
/** A oneshot that ran and remains active: the next supervisor must not run it again. */
const once = (file: string): UnitSpec => ({
  name: "once.service",
  hash: "h1",
  text: `[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'echo ran >> ${file}'\n`,
  desired: "launched",
});
/** A timer whose only value elapses once, and the oneshot it starts (which appends to `file`). */
const oneShotTimer = (name: string, file: string, timer: string): UnitSpec[] => [
  { name: `${name}.timer`, hash: "h1", text: `[Timer]\nOnActiveSec=200ms\n${timer}`, desired: "launched" },
  {
    name: `${name}.service`,
    hash: "h1",
    text: `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo ran >> ${file}'\n`,
    desired: "loaded",
  },
];
/** A Type=forking daemon: its main process is not the one the supervisor started. */
const forking = (pidFile: string): UnitSpec => ({
  name: "forked.service",
  hash: "h1",
  text: `[Service]\nType=forking\nPIDFile=${pidFile}\nExecStart=/bin/sh -c 'sleep 1000 & echo $! > ${pidFile}'\n`,
  desired: "launched",
});
/** A service activated by a socket unit: it holds the listening socket the crashed supervisor made. */
const ACTIVATED = spec("web.service", "h1", "/bin/sleep 1000");
const webSocket = (port: number): UnitSpec => ({
  name: "web.socket",
  hash: "h1",
  text: `[Socket]\nListenStream=127.0.0.1:${port}\n`,
  desired: "launched",
});

/** One supervisor process and this test as its node. */
class Supervised {
  readonly states = new Map<string, UnitState>();
  conn: Connection | null = null;
  private renewals: ReturnType<typeof setInterval> | null = null;

  constructor(
    readonly child: ChildProcess,
    private readonly agentDir: string,
  ) {}

  static start(agentDir: string): Supervised {
    const child = spawn(
      BINARY,
      ["supervise", `--agent-dir=${agentDir}`, "--machine-id=m1", `--fence=${FENCE_MS}ms`],
      { stdio: "ignore", detached: true },
    );
    return new Supervised(child, agentDir);
  }

  async connect(): Promise<void> {
    const socket = await waitFor("the supervisor's socket", () =>
      dial(join(this.agentDir, SUPERVISOR_SOCKET)),
    );
    const conn = new Connection(socket, { label: "test node" });
    conn.serve({
      request: async () => true,
      notify: (method, params) => {
        if (method === "state") this.states.set((params as UnitState).name, params as UnitState);
      },
    });
    await conn.request("hello", {}, { timeoutMs: 5000 });
    this.conn = conn;
  }

  /** Renews the lease as a healthy node does (every 300 ms). */
  renew(): void {
    const once = () => this.conn?.notify("lease", { issuedAt: monotonicMs() });
    once();
    this.renewals = setInterval(once, 300);
  }

  reconcile(specs: UnitSpec[]): void {
    this.conn!.notify("reconcile", { specs });
  }

  async journal(name: string): Promise<JournalLine[]> {
    return (await this.conn!.request(
      "journal",
      { name, lines: 10_000 },
      { timeoutMs: 5000 },
    )) as JournalLine[];
  }

  running(name: string): number | null {
    const s = this.states.get(name);
    return s?.active === "active" ? s.mainPid : null;
  }

  close(): void {
    if (this.renewals !== null) clearInterval(this.renewals);
    this.conn?.close();
  }
}

/** The counter's numbers in the journal, in order. */
const counts = (lines: JournalLine[]) =>
  lines
    .map((l) => /^n=(\d+)$/.exec(l.text)?.[1])
    .filter((n) => n !== undefined)
    .map(Number);

describe("a supervisor that crashed alone", () => {
  let dir: string;
  let agentDir: string;
  const started: Supervised[] = [];

  beforeAll(() => {
    requireBinary();
    dir = mkdtempSync(join(tmpdir(), "berth-adopt-"));
    agentDir = join(dir, "agent");
  });
  afterAll(async () => {
    for (const s of started) {
      s.close();
      if (s.child.exitCode === null && s.child.signalCode === null) await signalAndWait(s.child, "SIGKILL");
    }
    killUnitProcesses(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  /** The supervisor saves its record a turn after a start: a crash within that turn forgets the unit. */
  const recorded = (unit: string): boolean => {
    try {
      return unit in JSON.parse(readFileSync(join(agentDir, "unit-mains.json"), "utf8"));
    } catch {
      return false;
    }
  };
  const launch = (): Supervised => {
    const s = Supervised.start(agentDir);
    started.push(s);
    return s;
  };

  it("has its running services adopted by the next supervisor, output and all; what is not wanted is killed", async () => {
    const socket = webSocket(await freePort());
    const first = launch();
    await first.connect();
    first.renew();
    const onceFile = join(dir, "once-ran");
    const ONCE = once(onceFile);
    const FORKED = forking(join(dir, "forked.pid"));
    first.reconcile([COUNTER, DROPPED, CHANGED, socket, ACTIVATED, ONCE, FORKED]);
    const pid = (name: string) => waitFor(`${name} running`, () => first.running(name), 15_000);
    const [counter, dropped, changed] = [
      await pid(COUNTER.name),
      await pid(DROPPED.name),
      await pid(CHANGED.name),
    ];
    const web = await pid(ACTIVATED.name);
    const daemon = await pid(FORKED.name);
    await waitFor("the oneshot done", () => first.states.get(ONCE.name)?.sub === "exited");
    await waitFor(
      "the counter's first lines",
      async () => counts(await first.journal(COUNTER.name)).length > 5,
    );

    first.close();
    await signalAndWait(first.child, "SIGKILL");
    // The counter writes on meanwhile, into its FIFO.
    await new Promise((r) => setTimeout(r, 500));
    expect(alive(counter) && alive(dropped) && alive(changed)).toBe(true);

    const second = launch();
    await second.connect();
    second.renew();
    second.reconcile([COUNTER, { ...CHANGED, hash: "h2" }, socket, ACTIVATED, ONCE, FORKED]);
    expect(await waitFor("the counter adopted", () => second.running(COUNTER.name), 10_000)).toBe(counter);
    const restarted = await waitFor("the changed unit started afresh", () => {
      const p = second.running(CHANGED.name);
      return p !== null && p !== changed ? p : null;
    });
    expect(alive(restarted)).toBe(true);
    expect(alive(changed)).toBe(false);
    expect(alive(dropped)).toBe(false);
    // The socket-activated service is started afresh, after its socket unit could bind its address again.
    await waitFor(
      "the socket unit listening again",
      () => second.states.get(socket.name)?.active === "active",
    );
    const web2 = await waitFor("the activated service started afresh", () => {
      const p = second.running(ACTIVATED.name);
      return p !== null && p !== web ? p : null;
    });
    expect(alive(web)).toBe(false);
    expect(alive(web2)).toBe(true);
    expect(second.states.get(ONCE.name)).toMatchObject({ active: "active", sub: "exited" });
    expect(await waitFor("the daemon adopted", () => second.running(FORKED.name))).toBe(daemon);
    expect(readFileSync(onceFile, "utf8")).toBe("ran\n");

    // Every number, from before the crash through the time no supervisor read the FIFO to now, in order.
    const seen = await waitFor("the counter's lines after the adoption", async () => {
      const n = counts(await second.journal(COUNTER.name));
      return n.length > 30 ? n : null;
    });
    expect(
      seen.slice(1).every((n, i) => n === seen[i]! + 1),
      seen.join(" "),
    ).toBe(true);
    const log = (await second.journal(COUNTER.name)).map((l) => l.text).join("\n");
    expect(log).toContain(`Adopted main process ${counter}`);

    // Not our child, yet its end is seen.
    process.kill(counter, "SIGTERM");
    await waitFor(
      "the adopted unit's exit seen",
      () => second.states.get(COUNTER.name)?.active === "inactive",
    );
  }, 60_000);

  /** Runs one unit under a connected, renewed supervisor, then SIGKILLs the supervisor; the unit's pid. */
  const crashWithUnit = async (s: Supervised): Promise<number> => {
    const unit = spec("probe.service", "h1", "/bin/sleep 1000");
    s.reconcile([unit]);
    const pid = await waitFor("the unit running", () => s.running(unit.name));
    await waitFor("the unit's main process recorded", () => recorded(unit.name));
    s.close();
    await signalAndWait(s.child, "SIGKILL");
    return pid;
  };

  it("kills the units it took over when its lease ends without a renewal", async () => {
    const pid = await crashWithUnit(started.at(-1)!);

    // Its successor hears from no node: the unit runs on under the old lease, then the fence falls.
    const third = launch();
    await new Promise((r) => setTimeout(r, 300));
    expect(alive(pid)).toBe(true);
    await waitFor("the unit killed when the lease ran out", () => !alive(pid), FENCE_MS + 3000, 20);
    third.close();
    await signalAndWait(third.child, "SIGKILL");
  }, 30_000);

  it("kills the units it took over when told to stop (SIGTERM) before a reconcile adopted them", async () => {
    const fourth = launch();
    await fourth.connect();
    fourth.renew();
    const pid = await crashWithUnit(fourth);

    const fifth = launch();
    (await waitFor("the next supervisor's socket", () => dial(join(agentDir, SUPERVISOR_SOCKET)))).destroy();
    expect(alive(pid)).toBe(true);
    await signalAndWait(fifth.child, "SIGTERM");
    expect(alive(pid)).toBe(false);
  }, 30_000);

  it("resumes the timers it had started, through a second crash: a one-shot value that elapsed does not elapse again, the service it started runs on", async () => {
    const eighth = launch();
    await eighth.connect();
    eighth.renew();
    // One stays active (elapsed), one goes inactive once elapsed (RemainAfterElapse=no), and one's service runs on.
    const [stays, goes, busy] = [join(dir, "stays-ran"), join(dir, "goes-ran"), join(dir, "busy-ran")];
    const [busyTimer, busyOneshot] = oneShotTimer("busy", busy, "");
    const busyService = {
      ...busyOneshot!,
      text: `[Service]\nExecStart=/bin/sh -c 'echo ran >> ${busy}; exec sleep 1000'\n`,
    };
    const timers = [
      ...oneShotTimer("stays", stays, ""),
      ...oneShotTimer("goes", goes, "RemainAfterElapse=no\n"),
      busyTimer!,
      busyService,
    ];
    eighth.reconcile(timers);
    const busyPid = await waitFor("the timer's long service running", () => eighth.running(busyService.name));
    await waitFor("its main process recorded", () => recorded(busyService.name));
    await waitFor("both timers elapsed", () => {
      const [a, b] = [eighth.states.get("stays.timer"), eighth.states.get("goes.timer")];
      return a?.sub === "elapsed" && b?.active === "inactive" && b.since > 0;
    });
    await waitFor("both services ran", () => {
      try {
        return readFileSync(stays, "utf8") === "ran\n" && readFileSync(goes, "utf8") === "ran\n";
      } catch {
        return false;
      }
    });
    await waitFor("the timers recorded", () => {
      try {
        const saved = JSON.parse(readFileSync(join(agentDir, "unit-timers.json"), "utf8"));
        return saved["stays.timer"]?.lastTrigger > 0 && saved["goes.timer"]?.lastTrigger > 0;
      } catch {
        return false;
      }
    });
    eighth.close();
    await signalAndWait(eighth.child, "SIGKILL");
    // A supervisor that crashes too before its first reconcile forgets none of it.
    const between = launch();
    await between.connect();
    between.close();
    await signalAndWait(between.child, "SIGKILL");

    const ninth = launch();
    await ninth.connect();
    ninth.renew();
    ninth.reconcile(timers);
    await waitFor("the timer resumed", () => ninth.states.get("stays.timer")?.sub === "elapsed");
    // Started afresh, each would have fired 200 ms after the reconcile.
    await new Promise((r) => setTimeout(r, 1500));
    expect(readFileSync(stays, "utf8")).toBe("ran\n");
    expect(readFileSync(goes, "utf8")).toBe("ran\n");
    expect(ninth.states.get("goes.timer")?.active).toBe("inactive");
    // The service the timer started runs on, adopted (before: killed, and not started again).
    expect(ninth.running(busyService.name)).toBe(busyPid);
    expect(readFileSync(busy, "utf8")).toBe("ran\n");
    ninth.close();
    await signalAndWait(ninth.child, "SIGTERM");
  }, 30_000);

  it("adopts nothing recorded in an earlier boot (its times since boot and its oneshots mean nothing now)", async () => {
    const sixth = launch();
    await sixth.connect();
    sixth.renew();
    const pid = await crashWithUnit(sixth);
    // As if the machine had rebooted since: the lease's end was saved in an earlier boot, on a clock that has
    // started anew (the processes would be gone; here they are not, and must be killed).
    const lease = join(agentDir, "lease-until");
    writeFileSync(lease, readFileSync(lease, "utf8").replace(/^\S+/, "an-earlier-boot"));

    const seventh = launch();
    await seventh.connect();
    seventh.renew();
    seventh.reconcile([spec("probe.service", "h1", "/bin/sleep 1000")]);
    const fresh = await waitFor("the unit started afresh", () => {
      const p = seventh.running("probe.service");
      return p !== null && p !== pid ? p : null;
    });
    expect(alive(pid)).toBe(false);
    expect(alive(fresh)).toBe(true);
    seventh.close();
  }, 30_000);
});
