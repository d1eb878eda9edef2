// The journal's rate limit (journald's RateLimitIntervalSec=/RateLimitBurst=, a unit's LogRateLimit*=) on a fake
// clock, the "Suppressed N messages" line, and the line reader's bounded work per event-loop turn.
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DockerDemux } from "../src/agent/docker-demux.ts";
import { DEFAULT_READ_LIMITS, pipeLines } from "../src/agent/lines.ts";
import { LogRateLimit } from "../src/agent/log-rate-limit.ts";
import { loadServiceConfig } from "../src/agent/service-config.ts";
import { type OutputLine, UnitOutput } from "../src/agent/unit-output.ts";

const turn = () => new Promise<void>((r) => setImmediate(r));

describe("LogRateLimit", () => {
  it("keeps a burst per window, counts the rest, and hands the count out once the window is over", () => {
    const rl = new LogRateLimit(1000, 3);
    expect([0, 1, 2].map((t) => rl.admit(100 + t))).toEqual([true, true, true]);
    expect(rl.suppressing(103)).toBe(true);
    expect([3, 4, 5, 6].map((t) => rl.admit(100 + t))).toEqual([false, false, false, false]);
    rl.drop(10);
    expect(rl.windowEnd()).toBe(1100);
    // Not before the window (opened by the first line, at 100) is over.
    expect(rl.takeSuppressed(1099)).toBe(0);
    expect(rl.admit(1099)).toBe(false);
    expect(rl.takeSuppressed(1100)).toBe(15);
    expect(rl.takeSuppressed(1100)).toBe(0);
    // A new window opens at the next line, with a whole burst again.
    expect(rl.suppressing(1100)).toBe(false);
    expect(rl.windowEnd()).toBe(null);
    expect([0, 1, 2, 3].map((t) => rl.admit(5000 + t))).toEqual([true, true, true, false]);
    expect(rl.windowEnd()).toBe(6000);
    expect(rl.takeSuppressed(6000)).toBe(1);
  });

  it("is off with an interval or a burst of 0", () => {
    for (const rl of [new LogRateLimit(0, 3), new LogRateLimit(1000, 0)]) {
      for (let i = 0; i < 100; i++) expect(rl.admit(i)).toBe(true);
      expect(rl.suppressing(100)).toBe(false);
      expect(rl.takeSuppressed(10_000)).toBe(0);
    }
  });
});

describe("UnitOutput", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("writes the suppressed count when the window ends, even if the unit fell silent", () => {
    vi.useFakeTimers({ now: 50_000 });
    const out: OutputLine[] = [];
    const o = new UnitOutput("flood.service", { intervalMs: 30_000, burst: 2 }, (l) => out.push(l), Date.now);
    for (let i = 0; i < 5; i++) o.line("stdout", `line ${i}`, 42);
    expect(out).toEqual([
      { stream: "stdout", text: "line 0", pid: 42 },
      { stream: "stdout", text: "line 1", pid: 42 },
    ]);
    vi.advanceTimersByTime(29_000);
    expect(out).toHaveLength(2);
    vi.advanceTimersByTime(1_001);
    expect(out[2]).toEqual({ stream: "berth", text: "Suppressed 3 messages from flood.service" });
    // The next window: the count is not written twice, and new lines are kept again.
    o.line("stderr", "again");
    expect(out.slice(3)).toEqual([{ stream: "stderr", text: "again" }]);
  });

  it("writes the count before the first line of the next window when the unit writes on", () => {
    vi.useFakeTimers({ now: 0 });
    const out: string[] = [];
    const o = new UnitOutput("u.service", { intervalMs: 1000, burst: 1 }, (l) => out.push(l.text), Date.now);
    o.line("stdout", "a");
    o.line("stdout", "b");
    vi.setSystemTime(1000); // the clock moves on, the timer has not fired yet
    o.line("stdout", "c");
    vi.advanceTimersByTime(5000);
    expect(out).toEqual(["a", "Suppressed 1 messages from u.service", "c"]);
  });

  it("adds up what it suppressed and says so after each Suppressed line (the node's metrics hear of it)", () => {
    vi.useFakeTimers({ now: 0 });
    const told: number[] = [];
    const o: UnitOutput = new UnitOutput(
      "u.service",
      { intervalMs: 1000, burst: 1 },
      () => {},
      Date.now,
      () => told.push(o.suppressed),
    );
    for (let i = 0; i < 4; i++) o.line("stdout", "x");
    expect(o.suppressed).toBe(0); // counted once the window is over, as the journal line says
    vi.advanceTimersByTime(1001);
    o.line("stdout", "y");
    o.line("stdout", "z");
    vi.advanceTimersByTime(1001);
    expect(told).toEqual([3, 4]);
  });
});

describe("pipeLines", () => {
  const sink = (dropping = () => false) => {
    const lines: string[] = [];
    let dropped = 0;
    return {
      lines,
      dropped: () => dropped,
      sink: { line: (t: string) => lines.push(t), dropping, dropped: (n: number) => (dropped += n) },
    };
  };

  it("cuts lines (CRLF too), cuts over-long ones, and passes the unterminated rest at the end", async () => {
    const s = new PassThrough();
    const k = sink();
    pipeLines(s, k.sink, { ...DEFAULT_READ_LIMITS, lineMaxBytes: 8 });
    s.write("one\r\ntw");
    await turn();
    s.write("o\n0123456789");
    await turn();
    s.end("\nend");
    await new Promise((r) => s.on("end", r));
    await turn();
    expect(k.lines).toEqual(["one", "two", "01234567", "89", "end"]);
  });

  it("cuts at most linesPerTurn lines per event-loop turn", async () => {
    const s = new PassThrough();
    const k = sink();
    pipeLines(s, k.sink, { ...DEFAULT_READ_LIMITS, linesPerTurn: 3 });
    s.write(Buffer.from("y\n".repeat(10)));
    expect(k.lines).toHaveLength(3);
    await turn();
    expect(k.lines).toHaveLength(6);
    await turn();
    await turn();
    expect(k.lines).toHaveLength(10);
  });

  it("only counts the lines while they are dropped", async () => {
    const s = new PassThrough();
    let dropping = false;
    const k = sink(() => dropping);
    pipeLines(s, k.sink);
    s.write("a\nb\n");
    await turn();
    dropping = true;
    s.write(`${"y\n".repeat(1000)}partial`);
    await new Promise((r) => setTimeout(r, DEFAULT_READ_LIMITS.droppingPauseMs + 10));
    dropping = false;
    s.write(" rest\nc\n");
    await turn();
    expect(k.lines).toEqual(["a", "b", " rest", "c"]);
    expect(k.dropped()).toBe(1000);
  });
});

describe("LogRateLimitIntervalSec= and LogRateLimitBurst=", () => {
  const load = (extra: string) =>
    loadServiceConfig("a.service", `[Service]\nExecStart=/bin/true\n${extra}`, {
      hostname: "h",
      machineId: "m",
    });

  it("default to journald's 30 s and 10000, and are read per unit", () => {
    expect(load("")).toMatchObject({ logRateLimitIntervalMs: 30_000, logRateLimitBurst: 10_000 });
    expect(load("LogRateLimitIntervalSec=2s\nLogRateLimitBurst=500\n")).toMatchObject({
      logRateLimitIntervalMs: 2000,
      logRateLimitBurst: 500,
    });
    expect(load("LogRateLimitIntervalSec=0\n")).toMatchObject({ logRateLimitIntervalMs: 0 });
    expect(() => load("LogRateLimitBurst=many\n")).toThrow(/LogRateLimitBurst=many is not a number/);
    expect(() => load("LogRateLimitIntervalSec=soon\n")).toThrow(/LogRateLimitIntervalSec/);
  });
});

describe("DockerDemux", () => {
  const frame = (type: number, text: string) => {
    const payload = Buffer.from(text);
    const h = Buffer.alloc(8);
    h[0] = type;
    h.writeUInt32BE(payload.length, 4);
    return Buffer.concat([h, payload]);
  };

  it("splits frames (cut anywhere) into stdout and stderr", async () => {
    const out = new PassThrough();
    const err = new PassThrough();
    const d = new DockerDemux(out, err);
    const all = Buffer.concat([frame(1, "out 1\n"), frame(2, "err 1\n"), frame(1, "out 2\n")]);
    const cuts = [0, 3, 9, 17, all.length];
    for (let i = 1; i < cuts.length; i++) d.write(all.subarray(cuts[i - 1], cuts[i]));
    await new Promise<void>((r) => d.end(r));
    expect(out.read()?.toString()).toBe("out 1\nout 2\n");
    expect(err.read()?.toString()).toBe("err 1\n");
  });

  it("takes no more input while an output is full (the engine's stream is paused, nothing piles up)", async () => {
    const out = new PassThrough({ highWaterMark: 16 });
    const err = new PassThrough();
    const d = new DockerDemux(out, err);
    let taken = 0;
    for (let i = 0; i < 10; i++) d.write(frame(1, "x".repeat(64)), () => taken++);
    await turn();
    // The first frame fills stdout: it is not taken as done, and nothing more is passed on, until stdout drains.
    expect(taken).toBe(0);
    expect(out.readableLength).toBeLessThanOrEqual(64);
    let read = 0;
    out.on("data", (c: Buffer) => (read += c.length));
    await new Promise((r) => setTimeout(r, 20));
    expect(taken).toBe(10);
    expect(read).toBe(640);
  });
});
