// The console's `:` commands, sorting and filters as data: completion, what each command does through the reducer,
// sorting by a column (numbers as numbers, the selection kept), regex and inverse filters.
import { describe, expect, it } from "vitest";
import { candidates, complete, parseCommand } from "../src/tui/commands.ts";
import { KEY_TABLE } from "../src/tui/keys.ts";
import { filterRows, type Row, type TableData } from "../src/tui/model.ts";
import { initialState, reduce, type Screen, selectedIndex, type UiState } from "../src/tui/reducer.ts";
import { type Sort, sortRows } from "../src/tui/sort.ts";

const table: TableData = {
  columns: [{ title: "UNIT" }, { title: "ACTIVE" }],
  rows: [
    ["web@10.service", "active"],
    ["web@2.service", "failed"],
    ["db.service", "active"],
    ["cache.service", "inactive"],
  ].map(([unit, active]) => ({ id: unit!, cells: [unit!, active!] })),
};

const screen: Screen = {
  rows: (view, filter, sort) => (view === "units" ? filterRows(sortRows(table, sort), filter).rows : []),
  columns: () => table.columns.map((c) => c.title),
  keyDir: "/",
  pageSize: 10,
  helpLength: 20,
  pane: () => ({ lines: [], offset: 0 }),
  paneHeight: 10,
  contexts: [],
  rowAt: (line) => (line >= 4 ? line - 4 : null),
  bindings: KEY_TABLE,
};

function press(state: UiState, ...keys: string[]) {
  const effects: unknown[] = [];
  for (const name of keys) {
    const r = reduce(state, { type: "key", name }, screen);
    state = r.state;
    effects.push(...r.effects);
  }
  return { state, effects };
}
const type = (text: string) => [...text].map((c) => (c === " " ? "space" : c));
const ids = (rows: Row[]) => rows.map((r) => r.id);

describe("console commands", () => {
  it("complete command names and :sort's columns with Tab", () => {
    expect(complete("u", ["UNIT"])).toBe("units ");
    expect(complete("m", ["UNIT"])).toBe("m"); // machines or members
    expect(complete("me", ["UNIT"])).toBe("members ");
    expect(complete("q", ["UNIT"])).toBe("q");
    expect(complete("sort a", ["UNIT", "ACTIVE"])).toBe("sort active ");
    expect(complete("so ", ["UNIT", "ACTIVE"])).toBe("so ");
    expect(candidates("m")).toEqual([":machines", ":members"]);
  });

  it("parse into what they do, with a clear error for what is not a command", () => {
    expect(parseCommand("units")).toEqual({ kind: "view", view: "units" });
    expect(parseCommand("mach")).toEqual({ kind: "view", view: "machines" });
    expect(parseCommand("keys /a/b")).toEqual({ kind: "view", view: "keys", keyDir: "/a/b" });
    expect(parseCommand("q")).toEqual({ kind: "quit" });
    expect(parseCommand("sort active desc")).toEqual({ kind: "sort", column: "active", desc: true });
    expect(parseCommand("m")).toEqual({ kind: "error", text: ":m is ambiguous (machines, members)" });
    expect(parseCommand("pods")).toMatchObject({
      kind: "error",
      text: expect.stringMatching(/^no command :pods/),
    });
    expect(parseCommand("keys a")).toEqual({ kind: "error", text: ":keys a: a path starts with /" });
  });

  it("are typed after :, completed with Tab, run with Enter, and Esc leaves them", () => {
    const typed = press(initialState(), ":", "u", "n", "tab");
    expect(typed.state.command).toBe("units ");
    expect(press(typed.state, "enter").state).toMatchObject({ view: "units", command: null });
    expect(press(initialState(), ":", "u", "esc").state).toMatchObject({ view: "machines", command: null });
    const keys = press(initialState(), ":", ...type("keys /a/b"), "enter");
    expect(keys.state.view).toBe("keys");
    expect(keys.effects).toContainEqual({ kind: "keyDir", dir: "/a/b" });
    expect(press(initialState(), ":", "q", "enter").effects).toEqual([{ kind: "exit" }]);
    expect(press(initialState(), ":", "x", "enter").state.message?.tone).toBe("error");
  });
});

describe("console sorting", () => {
  it("sorts by a column, numbers as numbers, keeping ties in order; :sort again turns it round", () => {
    expect(ids(sortRows(table, { column: 0, desc: false }).rows)).toEqual([
      "cache.service",
      "db.service",
      "web@2.service",
      "web@10.service",
    ]);
    expect(ids(sortRows(table, { column: 1, desc: false }).rows)).toEqual([
      "web@10.service",
      "db.service",
      "web@2.service",
      "cache.service",
    ]);
    const once = press(initialState({ view: "units" }), ":", ...type("sort unit"), "enter");
    expect(once.state.sort.units).toEqual({ column: 0, desc: false } satisfies Sort);
    const twice = press(once.state, ":", ...type("sort unit"), "enter");
    expect(twice.state.sort.units).toEqual({ column: 0, desc: true });
    expect(
      press(initialState({ view: "units" }), ":", ...type("sort host"), "enter").state.message?.text,
    ).toBe("no column HOST (UNIT, ACTIVE)");
  });

  it("< and > move the sort column, and the selection stays on its row", () => {
    const { state } = press(initialState({ view: "units" }), "j", ">");
    expect(state.sort.units).toEqual({ column: 0, desc: false });
    expect(
      screen.rows("units", "", state.sort.units)[
        selectedIndex(state.selected.units, screen.rows("units", "", state.sort.units))
      ]!.id,
    ).toBe("web@2.service");
    expect(press(state, ">").state.sort.units).toEqual({ column: 1, desc: false });
    expect(press(state, "<").state.sort.units).toEqual({ column: 1, desc: false });
  });
});

describe("console filters", () => {
  it("match text in any cell, a regular expression, or (with !) the rows that do not match", () => {
    expect(ids(filterRows(table, "web").rows)).toEqual(["web@10.service", "web@2.service"]);
    expect(ids(filterRows(table, "web@[0-9]\\.").rows)).toEqual(["web@2.service"]);
    expect(ids(filterRows(table, "^active$").rows)).toEqual(["web@10.service", "db.service"]);
    expect(ids(filterRows(table, "!web").rows)).toEqual(["db.service", "cache.service"]);
    expect(ids(filterRows(table, "!^active$").rows)).toEqual(["web@2.service", "cache.service"]);
    // Not a valid regex: the text as typed.
    expect(ids(filterRows(table, "web@1(").rows)).toEqual([]);
    expect(filterRows(table, "!").rows).toHaveLength(4);
  });

  it("typed through the reducer, an inverse filter keeps the rows that do not match", () => {
    const { state } = press(initialState({ view: "units" }), "/", "!", "w", "e", "b", "enter");
    expect(state.filter).toBe("!web");
    expect(ids(screen.rows("units", state.filter, null))).toEqual(["db.service", "cache.service"]);
  });
});

describe("console :ctx", () => {
  const withContexts: Screen = { ...screen, contexts: ["prod", "preprod", "lab"] };
  const run = (s: Screen, line: string) => {
    let r = reduce(initialState({ view: "units" }), { type: "key", name: ":" }, s);
    for (const ch of line) r = reduce(r.state, { type: "key", name: ch === " " ? "space" : ch }, s);
    return reduce(r.state, { type: "key", name: "enter" }, s);
  };

  it("parses and completes a context's name", () => {
    expect(parseCommand("ctx prod")).toEqual({ kind: "context", name: "prod" });
    expect(parseCommand("ctx")).toEqual({ kind: "error", text: "usage: :ctx NAME" });
    expect(complete("ct", [])).toBe("ctx ");
    expect(complete("ctx p", [], withContexts.contexts)).toBe("ctx pr");
    expect(complete("ctx pro", [], withContexts.contexts)).toBe("ctx prod ");
    expect(complete("ctx l", [], withContexts.contexts)).toBe("ctx lab ");
    expect(complete("ctx x", [], withContexts.contexts)).toBe("ctx x");
  });

  it("switches to a context the config names (the pane, marks and key directory left behind), refuses others", () => {
    const r = run(withContexts, "ctx lab");
    expect(r.effects).toEqual([
      { kind: "detail", detail: null },
      { kind: "keyDir", dir: "/" },
      { kind: "context", name: "lab" },
    ]);
    expect(r.state).toMatchObject({ command: null, message: { text: "switching to lab…" } });
    expect(run(withContexts, "ctx stage")).toMatchObject({
      effects: [],
      state: {
        message: { text: "no context stage (the console config names prod, preprod, lab)", tone: "error" },
      },
    });
    expect(run(screen, "ctx lab").state.message?.text).toMatch(
      /^no context lab: the console config names none/,
    );
  });
});
