// The console's screen as Ink draws it (ink-testing-library, no terminal, no cluster): the footer and the help
// come from the key table, read-only shows in the header and refuses, a bulk question lists the marked units.
// The data comes from a stand-in for the console's source that records the actions asked of it.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { render } from "ink-testing-library";
import { createElement } from "react";
import { afterEach, describe, expect, it } from "vitest";
import { App } from "../src/tui/app.tsx";
import { DEFAULT_CONFIG } from "../src/tui/config.ts";
import { KEY_TABLE } from "../src/tui/keys.ts";
import { reportNodeProblem } from "../src/tui/local-cluster.ts";
import { EMPTY_SNAPSHOT, filterPrepared, tableFor } from "../src/tui/model.ts";
import type { ConsoleSource, SourceState } from "../src/tui/source.ts";
import { unitInfo } from "./support/fixtures.ts";

function fakeSource(units: string[]) {
  const calls: string[] = [];
  const listeners = new Set<(s: SourceState) => void>();
  let state: SourceState = {
    snapshot: { ...EMPTY_SNAPSHOT, units: units.map((n) => unitInfo(n)), updatedAt: 1 },
    journal: null,
    endpoint: "unix:///test.sock",
    error: null,
    unreachableSince: null,
  };
  const record =
    (what: string) =>
    async (...args: unknown[]) => {
      calls.push(`${what} ${JSON.stringify(args)}`);
    };
  const source = {
    get current() {
      return state;
    },
    onChange: (l: (s: SourceState) => void) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    refresh: record("refresh"),
    setKeyDir: () => {},
    setDetail: () => {},
    follow: () => {},
    stopFollowing: () => {},
    showContainers: () => {},
    setDesired: record("setDesired"),
    destroy: record("destroy"),
    restart: record("restart"),
    deleteKey: record("deleteKey"),
  } as unknown as ConsoleSource;
  /** What a poll would change: the screen hears of it as it hears of the real source's. */
  const emit = (patch: Partial<SourceState>) => {
    state = { ...state, ...patch };
    for (const l of listeners) l(state);
  };
  return { source, calls, emit };
}

const tick = () => new Promise((r) => setTimeout(r, 20));

let unmount: (() => void) | null = null;
afterEach(() => {
  unmount?.();
  unmount = null;
});

async function open(props: {
  units: string[];
  readonly?: boolean;
  bindings?: typeof KEY_TABLE;
  localCluster?: string;
}) {
  const { source, calls, emit } = fakeSource(props.units);
  const config = { ...DEFAULT_CONFIG, bindings: props.bindings ?? KEY_TABLE, refreshMs: 20 };
  const r = render(
    createElement(App, {
      source,
      label: "",
      readonly: props.readonly,
      config,
      localCluster: props.localCluster,
    }),
  );
  unmount = r.unmount;
  const press = async (...keys: string[]) => {
    for (const k of keys) {
      r.stdin.write(k);
      await tick();
    }
  };
  await tick();
  await press("2");
  const update = async (patch: Partial<SourceState>) => {
    emit(patch);
    await tick();
  };
  return { frame: () => r.lastFrame() ?? "", press, calls, update };
}

describe("console screen", () => {
  it("prepares the Units table (rows, filter texts) after the data changes, before its view is opened", async () => {
    const { source, emit } = fakeSource([]);
    const r = render(
      createElement(App, {
        source,
        label: "",
        config: { ...DEFAULT_CONFIG, bindings: KEY_TABLE, refreshMs: 20 },
      }),
    );
    unmount = r.unmount;
    await tick();
    const units = Array.from({ length: 500 }, (_, i) => unitInfo(`u${i}.service`));
    emit({ snapshot: { ...source.current.snapshot, units, updatedAt: 2 } });
    await new Promise((done) => setTimeout(done, 200));
    expect(r.lastFrame()).toContain("units 500");
    expect(r.lastFrame()).not.toContain("u1.service"); // the Machines view still shows
    expect(filterPrepared(tableFor("units", source.current.snapshot, Date.now()))).toBe(true);
  });

  it("draws the footer from the key table, and a remapped key where it is bound", async () => {
    const c = await open({ units: ["a.service"] });
    expect(c.frame()).toContain("x stop  R restart  u unload  d destroy  Space mark");
    expect(c.frame()).toMatch(/\? help {2}q quit\s*$/);
    await c.press("?");
    expect(c.frame()).toMatch(/R\s+stop, then start the unit/);
    unmount?.();
    const remapped = KEY_TABLE.map((b) => (b.action === "stop" ? { ...b, keys: ["S"] } : b));
    const d = await open({ units: ["a.service"], bindings: remapped });
    expect(d.frame()).toContain("S stop");
    await d.press("S");
    expect(d.frame()).toContain("Stop a.service? (y/n)");
  });

  it("in read-only mode says so in the header and refuses every action", async () => {
    const c = await open({ units: ["a.service"], readonly: true });
    expect(c.frame().split("\n")[0]).toContain("READ-ONLY");
    for (const k of ["s", "x", "R", "u", "d"]) {
      await c.press(k, "y");
      expect(c.frame()).toMatch(/read-only: \w+ is disabled/);
    }
    expect(c.calls).toEqual([]);
  });

  it("lists the marked units in the question, and acts on all of them after y", async () => {
    const c = await open({ units: ["a.service", "b.service", "c.service"] });
    await c.press(" ", "j", " ", "x");
    expect(c.frame()).toContain("2 marked");
    expect(c.frame()).toMatch(/Stop these 2\?\n\s+a\.service\n\s+c\.service/);
    expect(c.frame()).toContain("Stop a.service, c.service? (y/n)");
    await c.press("y");
    expect(c.calls).toEqual(['setDesired [["a.service","c.service"],"loaded"]']);
    expect(c.frame()).toContain("stopped a.service, c.service");
  });

  it("says UNREACHABLE in the header and draws the last data as stale while polls fail; live again after", async () => {
    const c = await open({ units: ["a.service"] });
    expect(c.frame().split("\n")[0]).not.toContain("UNREACHABLE");
    await c.update({ endpoint: null, error: "connect ECONNREFUSED", unreachableSince: Date.now() });
    const header = c.frame().split("\n")[0]!;
    expect(header).toContain("UNREACHABLE");
    expect(header).toMatch(/stale: data of \d\d:\d\d:\d\d/);
    expect(c.frame()).toContain("a.service");
    await c.update({ endpoint: "unix:///test.sock", error: null, unreachableSince: null });
    expect(c.frame().split("\n")[0]).not.toMatch(/UNREACHABLE|stale/);
  });

  it("under npm start shows the nodes that failed or exited, and asks before quitting", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-render-"));
    try {
      const file = join(dir, "node-problems");
      writeFileSync(file, "");
      const c = await open({ units: ["a.service"], localCluster: file });
      expect(c.frame()).not.toContain("DOWN");
      reportNodeProblem(file, "n2 exited (code 2): see logs/n2.log: address in use");
      await new Promise((r) => setTimeout(r, 100));
      expect(c.frame().split("\n")[0]).toContain("1 NODE DOWN");
      expect(c.frame()).toContain("n2 exited (code 2): see logs/n2.log: address in use");
      await c.press("q");
      expect(c.frame()).toContain("Quit and stop the local cluster? (y/n)");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("draws the journal pane: following, paused by a moving key, a search marked, a long line wrapped", async () => {
    const c = await open({ units: ["a.service"] });
    const lines = Array.from({ length: 200 }, (_, i) => ({
      at: Date.UTC(2026, 0, 1, 0, 0, i % 60),
      unit: "a.service",
      stream: "stdout" as const,
      text: i === 150 ? `needle ${"x".repeat(300)} end-of-long-line` : `line ${i}`,
    }));
    await c.press("l");
    await c.update({ journal: { unit: "a.service", lines, dropped: 9_800, ended: null } });
    expect(c.frame()).toMatch(
      /line 199\n-- following a\.service, lines \d+-10000 of 10000, f pauses, Esc: back --/,
    );
    await c.press("k");
    expect(c.frame()).toMatch(/-- paused a\.service, lines \d+-9999 of 10000, f or G follows/);
    expect(c.frame()).not.toContain("line 199");
    await c.press("/", "n", "e", "e", "d", "l", "e", "\r");
    expect(c.frame()).toMatch(/\nJan 01 00:00:30 a\.service: needle x+…\n/);
    expect(c.frame()).not.toContain("end-of-long-line");
    await c.press("w");
    expect(c.frame()).toContain("end-of-long-line");
    await c.press("G");
    expect(c.frame()).toContain("line 199");
  });
});
