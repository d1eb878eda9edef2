// The console's key table and UI reducer as data (no terminal): every key declared once, the footer and the help
// derived from the table, the selection following its row, questions naming their targets, marks, read-only.
import { describe, expect, it } from "vitest";
import { headerStatus } from "../src/tui/header.ts";
import {
  bindingFor,
  conflicts,
  footerText,
  helpLines,
  KEY_TABLE,
  type KeyBinding,
  keyName,
} from "../src/tui/keys.ts";
import type { Row, ViewName } from "../src/tui/model.ts";
import { type MouseEvent, parseMouse } from "../src/tui/mouse.ts";
import type { PaneContent } from "../src/tui/pane.ts";
import {
  type Effect,
  initialState,
  questionLine,
  reduce,
  type Screen,
  selectedIndex,
  type UiState,
} from "../src/tui/reducer.ts";

const unitRow = (name: string, machine = "m1"): Row => ({
  id: name,
  key: `${name} ${machine}`,
  cells: [name, "launched"],
});

/** A screen whose rows are whatever the test sets, filtered as the console filters (by any cell). */
function screenOf(
  rows: Partial<Record<ViewName, Row[]>>,
  bindings: readonly KeyBinding[] = KEY_TABLE,
  pane: PaneContent = { lines: [], offset: 0 },
) {
  const data = { ...rows };
  const screen: Screen = {
    rows: (view, filter) =>
      (data[view] ?? []).filter((r) => !filter || r.cells.some((c) => c.includes(filter))),
    keyDir: "/a/b",
    columns: () => ["UNIT", "ACTIVE"],
    pageSize: 10,
    helpLength: 25,
    bindings,
    pane: () => pane,
    paneHeight: 10,
    contexts: [],
    rowAt: (line) => (line >= 4 ? line - 4 : null),
  };
  return { screen, data };
}

/** Presses `keys` one after the other; the state and every effect asked for. */
function press(state: UiState, screen: Screen, ...keys: string[]) {
  const effects: Effect[] = [];
  for (const name of keys) {
    const r = reduce(state, { type: "key", name }, screen);
    state = r.state;
    effects.push(...r.effects);
  }
  return { state, effects };
}

const units = ["a.service", "b.service", "c.service"].map((n) => unitRow(n));

describe("console key table", () => {
  it("binds no key twice in one view, and every action once", () => {
    expect(conflicts(KEY_TABLE)).toEqual([]);
    const actions = KEY_TABLE.map((b) => `${b.action} ${JSON.stringify(b.where)}`);
    expect(new Set(actions).size).toBe(actions.length);
    // A table that binds a key twice is found out.
    const twice = [
      ...KEY_TABLE,
      { ...KEY_TABLE.find((b) => b.action === "stop")!, action: "start" as const },
    ];
    expect(conflicts(twice).map((c) => c.text)).toEqual(["x is bound to both stop and start in units"]);
  });

  it("restart has a default key, and every action that changes the cluster asks first (but start)", () => {
    expect(bindingFor(KEY_TABLE, "units", "R")?.action).toBe("restart");
    const changing = KEY_TABLE.filter((b) => b.changes).map((b) => [b.action, b.confirm !== false]);
    expect(changing).toEqual([
      ["start", false],
      ["stop", true],
      ["restart", true],
      ["unload", true],
      ["destroy", true],
      ["delete", true],
    ]);
  });

  it("names keys as the table spells them", () => {
    expect(keyName("", { return: true })).toBe("enter");
    expect(keyName("", { tab: true, shift: true })).toBe("shift-tab");
    expect(keyName("c", { ctrl: true })).toBe("ctrl-c");
    expect(keyName("", { delete: true })).toBe("backspace");
    expect(keyName(" ", {})).toBe("space");
    expect(keyName("G", { shift: true })).toBe("G");
  });

  it("derives the footer and the help from the table: a remapped key shows where it is bound", () => {
    expect(footerText(KEY_TABLE, "units", 200)).toBe(
      "Enter open  l journal  s start  x stop  R restart  u unload  d destroy  Space mark  / filter  : command  Esc back  1-5 view  ? help  q quit",
    );
    expect(footerText(KEY_TABLE, "detail", 200)).toBe(
      "Enter open  Esc back  f follow  / search  w wrap  ? help  q quit",
    );
    const remapped = KEY_TABLE.map((b) => (b.action === "stop" ? { ...b, keys: ["S"] } : b));
    expect(footerText(remapped, "units", 200)).toContain("S stop");
    expect(helpLines(remapped).find((l) => l.includes("stop the unit"))).toMatch(/^S\s+stop the unit/);
    expect(bindingFor(remapped, "units", "x")).toBeUndefined();
  });

  it("keeps help and quit in a narrow footer, dropping the view's keys from the end", () => {
    const footer = footerText(KEY_TABLE, "units", 60);
    expect(footer.length).toBeLessThanOrEqual(60);
    expect(footer).toMatch(/^Enter open {2}l journal .*\? help {2}q quit$/);
    expect(footerText(KEY_TABLE, "units", 15)).toBe("? help  q quit");
  });

  it("lists the help one line per key or group of keys, wrapped to the width, every line readable at 60", () => {
    const wide = helpLines(KEY_TABLE);
    expect(wide).toContain("1 2 3 4 5          the Machines, Units, Keys, Members, Containers views");
    expect(wide.find((l) => l.startsWith("R "))).toMatch(/^R\s+stop, then start the unit\(s\), asks first$/);
    const narrow = helpLines(KEY_TABLE, false, 60);
    expect(narrow.every((l) => l.length <= 60)).toBe(true);
    // Nothing lost to the wrapping: the words of every line are there.
    expect(narrow.join(" ").split(/\s+/)).toEqual(wide.join(" ").split(/\s+/));
  });

  it("leaves the actions that change the cluster out of the footer in read-only mode, and says so in the help", () => {
    const footer = footerText(KEY_TABLE, "units", 200, true);
    for (const word of ["start", "stop", "restart", "unload", "destroy"]) expect(footer).not.toContain(word);
    expect(helpLines(KEY_TABLE, true, 200).filter((l) => l.endsWith("(off: read-only)"))).toHaveLength(6);
  });
});

describe("console reducer", () => {
  it("moves the selection, and it follows its row when rows are inserted above it", () => {
    const { screen, data } = screenOf({ units });
    let { state } = press(initialState({ view: "units" }), screen, "j");
    expect(state.selected.units).toEqual({ key: "b.service m1", id: "b.service", index: 1 });
    // Two units sort above b.service: the selection is still b.service, now the fourth row.
    data.units = [unitRow("0.service"), unitRow("00.service"), ...units];
    expect(selectedIndex(state.selected.units, data.units)).toBe(3);
    ({ state } = press(state, screen, "x"));
    expect(state.question?.targets).toEqual([{ id: "b.service" }]);
    const { effects } = press(state, screen, "y");
    expect(effects).toEqual([{ kind: "units", op: "stop", names: ["b.service"] }]);
  });

  it("tells a unit's rows on two machines apart; when its row goes, the unit's other row, else the position", () => {
    const { screen, data } = screenOf({
      units: [unitRow("a.service", "m1"), unitRow("a.service", "m2"), unitRow("b.service")],
    });
    const { state } = press(initialState({ view: "units" }), screen, "j");
    expect(selectedIndex(state.selected.units, data.units!)).toBe(1);
    expect(press(state, screen, "j").state.selected.units.key).toBe("b.service m1");
    // Its row gone, the selection goes to the unit's other row; the unit gone, it stays where it was.
    data.units = [unitRow("a.service", "m1"), unitRow("b.service"), unitRow("c.service")];
    expect(selectedIndex(state.selected.units, data.units)).toBe(0);
    data.units = [unitRow("b.service"), unitRow("c.service"), unitRow("d.service")];
    expect(selectedIndex(state.selected.units, data.units)).toBe(1);
    // A unit that moves to another machine (a new row key) stays selected.
    data.units = [unitRow("a.service", "m1"), unitRow("b.service", "m1")];
    const b = press(initialState({ view: "units" }), screen, "j");
    data.units = [unitRow("0.service"), unitRow("a.service", "m1"), unitRow("b.service", "m3")];
    expect(selectedIndex(b.state.selected.units, data.units)).toBe(2);
  });

  it("asks before stop, unload, restart, destroy and delete, naming the target; n cancels, y runs", () => {
    const { screen } = screenOf({
      units,
      keys: [
        { id: "/a/b/k", cells: ["k", "v"] },
        { id: "/a/b/d", dir: true, cells: ["d/"] },
      ],
    });
    const start = initialState({ view: "units" });
    for (const [key, verb, op] of [
      ["x", "Stop", "stop"],
      ["u", "Unload", "unload"],
      ["R", "Restart", "restart"],
      ["d", "Destroy", "destroy"],
    ] as const) {
      const asked = press(start, screen, key);
      expect(asked.effects).toEqual([]);
      expect(questionLine(asked.state.question!)).toBe(`${verb} a.service? (y/n)`);
      const no = press(asked.state, screen, "n");
      expect(no.effects).toEqual([]);
      expect(no.state.message?.text).toBe("cancelled");
      expect(press(asked.state, screen, "y").effects).toEqual([{ kind: "units", op, names: ["a.service"] }]);
    }
    // Start asks nothing.
    expect(press(start, screen, "s").effects).toEqual([{ kind: "units", op: "start", names: ["a.service"] }]);
    const keys = press(initialState({ view: "keys" }), screen, "j", "d");
    expect(questionLine(keys.state.question!)).toBe("Delete /a/b/d/ and everything below it? (y/n)");
    expect(press(keys.state, screen, "y").effects).toEqual([
      { kind: "deleteKeys", targets: [{ id: "/a/b/d", dir: true }] },
    ]);
  });

  it("marks rows with Space and acts on all of them, the question listing them", () => {
    const { screen } = screenOf({ units });
    let { state } = press(initialState({ view: "units" }), screen, "space", "j", "space");
    expect(state.marks.units).toEqual([{ id: "a.service" }, { id: "c.service" }]);
    ({ state } = press(state, screen, "d"));
    expect(questionLine(state.question!)).toBe("Destroy a.service, c.service? (y/n)");
    expect(questionLine(state.question!, 30)).toBe("Destroy a.service and 1 more? (y/n)");
    const yes = press(state, screen, "y");
    expect(yes.effects).toEqual([{ kind: "units", op: "destroy", names: ["a.service", "c.service"] }]);
    expect(yes.state.marks.units).toEqual([]);
    // Space again unmarks; Esc clears every mark.
    expect(press(initialState({ view: "units" }), screen, "space", "k", "space").state.marks.units).toEqual(
      [],
    );
    expect(press(state, screen, "n", "esc").state.marks.units).toEqual([]);
  });

  it("refuses every action that changes the cluster in read-only mode, and still moves and opens", () => {
    const { screen } = screenOf({ units, keys: [{ id: "/a/b/k", cells: ["k", "v"] }] });
    for (const [view, key] of [
      ["units", "s"],
      ["units", "x"],
      ["units", "R"],
      ["units", "u"],
      ["units", "d"],
      ["keys", "d"],
    ] as const) {
      const r = press(initialState({ view, readonly: true }), screen, key, "y");
      expect(r.effects).toEqual([]);
      expect(r.state.question).toBeNull();
      expect(r.state.message?.text).toMatch(/^read-only: \w+ is disabled/);
    }
    const r = press(initialState({ view: "units", readonly: true }), screen, "j", "enter");
    expect(r.effects).toEqual([{ kind: "detail", detail: { kind: "unit", id: "b.service" } }]);
  });

  it("filters as typed, Enter keeps the filter, Esc clears it; Enter on a machine lists its units", () => {
    const machines = [{ id: "aaaaaaaa1111", cells: ["aaaaaaaa...", "n1"] }];
    const { screen } = screenOf({ units: [...units, unitRow("x.service", "aaaaaaaa1111")], machines });
    const typed = press(initialState({ view: "units" }), screen, "/", "b", "enter");
    expect(typed.effects).toEqual([{ kind: "prepareFilter" }]);
    expect(typed.state).toMatchObject({
      filter: "b",
      editingFilter: false,
      selected: { units: { key: "b.service m1" } },
    });
    expect(press(typed.state, screen, "esc").state.filter).toBe("");
    const opened = press(initialState(), screen, "enter");
    expect(opened.state).toMatchObject({ view: "units", filter: "aaaaaaaa" });
  });

  it("opens panes and key directories, goes back, switches views, quits", () => {
    const { screen } = screenOf({ units, keys: [{ id: "/a/b/d", dir: true, cells: ["d/"] }] });
    const detail = press(initialState({ view: "units" }), screen, "l");
    expect(detail.effects).toEqual([{ kind: "detail", detail: { kind: "journal", id: "a.service" } }]);
    expect(press(detail.state, screen, "esc").effects).toEqual([{ kind: "detail", detail: null }]);
    // In the pane, the table's keys do nothing.
    expect(press(detail.state, screen, "x").state.question).toBeNull();
    expect(press(initialState({ view: "keys" }), screen, "enter").effects).toEqual([
      { kind: "keyDir", dir: "/a/b/d" },
    ]);
    expect(press(initialState({ view: "keys" }), screen, "h").effects).toEqual([
      { kind: "keyDir", dir: "/a" },
    ]);
    expect(press(initialState(), screen, "3").state.view).toBe("keys");
    expect(press(initialState(), screen, "shift-tab").state.view).toBe("containers");
    expect(press(initialState(), screen, "q").effects).toEqual([{ kind: "exit" }]);
    // Help: the moving keys scroll it (as far as its last page), any other key closes it.
    const help = press(initialState(), screen, "?");
    expect(help.state.help).toBe(true);
    expect(press(help.state, screen, "j", "j", "k").state).toMatchObject({ help: true, helpTop: 1 });
    expect(press(help.state, screen, "pagedown", "pagedown").state.helpTop).toBe(15);
    expect(press(help.state, screen, "G", "q", "?").state).toMatchObject({ help: true, helpTop: 0 });
    expect(press(help.state, screen, "q")).toMatchObject({ state: { help: false }, effects: [] });
  });
});

describe("console containers, machine and member details, quitting npm start", () => {
  const M = "aaaaaaaa1111";
  const { screen } = screenOf({
    machines: [{ id: M, cells: ["aaaaaaaa...", "n1"] }],
    members: [{ id: "n1", cells: ["n1", "leader"] }],
    containers: [
      { id: "web.service", key: `${M} 0123`, machine: M, cells: ["aaaaaaaa.../n1", "0123"] },
      { id: M, machine: M, cells: ["aaaaaaaa.../n1", "-", "-", "unreachable: down"] },
    ],
  });

  it("opens the Containers view with 5 and :containers; Enter shows a container's unit, i its machine", () => {
    expect(press(initialState(), screen, "5").state.view).toBe("containers");
    expect(press(initialState(), screen, ":", "c", "o", "n", "enter").state).toMatchObject({
      view: "containers",
      command: null,
    });
    const at = initialState({ view: "containers" });
    expect(press(at, screen, "enter").effects).toEqual([
      { kind: "detail", detail: { kind: "unit", id: "web.service" } },
    ]);
    expect(press(at, screen, "l").effects).toEqual([
      { kind: "detail", detail: { kind: "journal", id: "web.service" } },
    ]);
    expect(press(at, screen, "i").effects).toEqual([{ kind: "detail", detail: { kind: "machine", id: M } }]);
    // A machine that did not answer has no unit: Enter shows the machine, l does nothing.
    expect(press(at, screen, "j", "enter").effects).toEqual([
      { kind: "detail", detail: { kind: "machine", id: M } },
    ]);
    expect(press(at, screen, "j", "l").effects).toEqual([]);
  });

  it("shows a machine's detail with i and a member's with Enter or i; Esc closes them", () => {
    const machine = press(initialState(), screen, "i");
    expect(machine.state.detail).toEqual({ kind: "machine", id: M });
    expect(press(machine.state, screen, "esc").state.detail).toBeNull();
    for (const key of ["enter", "i"])
      expect(press(initialState({ view: "members" }), screen, key).state.detail).toEqual({
        kind: "member",
        id: "n1",
      });
    // Enter on a machine still lists its units.
    expect(press(initialState(), screen, "enter").state).toMatchObject({ view: "units", filter: "aaaaaaaa" });
  });

  it("asks before quitting under npm start (q and :q), and quits on y; Ctrl-C quits at once", () => {
    const start = initialState({ quitQuestion: "Quit and stop the local cluster" });
    for (const keys of [["q"], [":", "q", "enter"]]) {
      const asked = press(start, screen, ...keys);
      expect(asked.effects).toEqual([]);
      expect(questionLine(asked.state.question!)).toBe("Quit and stop the local cluster? (y/n)");
      expect(press(asked.state, screen, "n").effects).toEqual([]);
      expect(press(asked.state, screen, "y").effects).toEqual([{ kind: "exit" }]);
    }
    expect(press(start, screen, "ctrl-c").effects).toEqual([{ kind: "exit" }]);
    expect(press(initialState({ readonly: true, quitQuestion: "Quit" }), screen, "q", "y").effects).toEqual([
      { kind: "exit" },
    ]);
  });
});

describe("console detail pane: scrollback, following, search, wrap", () => {
  // A journal of 30 lines whose first 100 were dropped (numbers 100-129), 10 shown at once.
  const content: PaneContent = { lines: Array.from({ length: 30 }, (_, i) => `line ${i}`), offset: 100 };
  const { screen } = screenOf({ units }, KEY_TABLE, content);
  const journal = () => press(initialState({ view: "units" }), screen, "l").state;

  it("follows the end until a moving key pauses it; G and f resume, g goes to the first line kept", () => {
    expect(journal().pane.top).toBeNull();
    expect(press(journal(), screen, "k").state.pane.top).toBe(119);
    expect(press(journal(), screen, "pageup", "pageup", "pageup").state.pane.top).toBe(100);
    expect(press(journal(), screen, "g").state.pane.top).toBe(100);
    expect(press(journal(), screen, "g", "G").state.pane.top).toBeNull();
    expect(press(journal(), screen, "f").state.pane.top).toBe(120);
    expect(press(journal(), screen, "f", "f").state.pane.top).toBeNull();
    expect(press(journal(), screen, "g", "j", "j").state.pane.top).toBe(102);
    // A status, a key's value: from their first line.
    expect(press(initialState({ view: "units" }), screen, "enter").state.pane.top).toBe(0);
    // Esc still closes the pane; the table's keys do nothing there.
    expect(press(journal(), screen, "esc").state.detail).toBeNull();
  });

  it("searches with /, n and N (wrapping around), says when nothing matches, Esc drops the search", () => {
    const found = press(journal(), screen, "/", ..."line 7", "enter").state;
    expect(found.pane).toMatchObject({ top: 107, search: "line 7", editingSearch: false });
    const twos = press(journal(), screen, "/", ..."2", "enter").state;
    expect(twos.pane.top).toBe(120); // from the first line shown: "line 20"
    expect(press(twos, screen, "n").state.pane.top).toBe(121);
    // Past the last line with a 2 (129: its top stays at the end), round to the first one (102).
    const round = press(twos, screen, ...Array(10).fill("n")).state.pane;
    expect(round).toMatchObject({ top: 102, match: 102 });
    expect(press(twos, screen, ...Array(9).fill("n")).state.pane.match).toBe(129);
    expect(press(twos, screen, "N").state.pane.top).toBe(112);
    const none = press(journal(), screen, "/", ..."nothing", "enter").state;
    expect(none.message).toEqual({ text: "no line matches /nothing", tone: "error" });
    expect(none.pane.top).toBeNull();
    expect(press(journal(), screen, "/", "x", "esc").state.pane).toMatchObject({
      search: "",
      editingSearch: false,
    });
    // A regex, as the filter takes it.
    expect(press(journal(), screen, "/", ..."^line 1[5-9]$", "enter").state.pane.top).toBe(115);
  });

  it("wraps long lines with w, else scrolls sideways with ← →", () => {
    const right = press(journal(), screen, "right", "right", "left", "right").state.pane;
    expect(right).toMatchObject({ left: 16, wrap: false });
    const wrapped = press(journal(), screen, "right", "w").state.pane;
    expect(wrapped).toMatchObject({ left: 0, wrap: true });
    expect(press(journal(), screen, "w", "right").state.pane.left).toBe(0);
  });
});

describe("console mouse", () => {
  const { screen } = screenOf({ units }, KEY_TABLE, {
    lines: Array.from({ length: 30 }, (_, i) => `line ${i}`),
    offset: 0,
  });
  const mouse = (state: UiState, ...events: MouseEvent[]) => {
    for (const event of events) state = reduce(state, { type: "mouse", event }, screen).state;
    return state;
  };
  const at = (state: UiState) => selectedIndex(state.selected.units, units);

  it("reads SGR reports: the wheel, a left click on a line; a release or another button is ignored", () => {
    expect(parseMouse("[<64;10;5M")).toEqual({ kind: "wheel.up" });
    expect(parseMouse("\x1b[<65;10;5M")).toEqual({ kind: "wheel.down" });
    expect(parseMouse("[<0;10;5M")).toEqual({ kind: "click", line: 4 });
    expect(parseMouse("[<0;10;5m")).toEqual({ kind: "ignored" });
    expect(parseMouse("[<2;10;5M")).toEqual({ kind: "ignored" });
    expect(parseMouse("j")).toBeNull();
  });

  it("moves the selection with the wheel, selects the clicked row, scrolls a pane; waits while a prompt is open", () => {
    const start = initialState({ view: "units" });
    expect(at(mouse(start, { kind: "wheel.down" }, { kind: "wheel.down" }))).toBe(2);
    expect(at(mouse(start, { kind: "wheel.down" }, { kind: "wheel.up" }))).toBe(0);
    expect(at(mouse(start, { kind: "click", line: 5 }))).toBe(1);
    // A click off the rows (the header, past the last row) selects nothing else.
    expect(at(mouse(start, { kind: "click", line: 5 }, { kind: "click", line: 1 }))).toBe(1);
    expect(at(mouse(start, { kind: "click", line: 30 }))).toBe(0);
    // The wheel follows the key table: up remapped to "K" still scrolls.
    const remapped = KEY_TABLE.map((b) => (b.action === "up" ? { ...b, keys: ["K"] } : b));
    const s2 = { ...screen, bindings: remapped };
    expect(
      selectedIndex(
        reduce(
          reduce(start, { type: "mouse", event: { kind: "wheel.down" } }, s2).state,
          { type: "mouse", event: { kind: "wheel.up" } },
          s2,
        ).state.selected.units,
        units,
      ),
    ).toBe(0);
    const journal = press(start, screen, "l").state;
    expect(mouse(journal, { kind: "wheel.up" }).pane.top).toBe(19);
    expect(mouse(journal, { kind: "click", line: 5 })).toBe(journal);
    const filtering = press(start, screen, "/").state;
    expect(mouse(filtering, { kind: "wheel.down" }, { kind: "click", line: 6 })).toBe(filtering);
  });
});

describe("console header", () => {
  it("fits one line: the endpoint cut from the left first, then the parts from the right", () => {
    const parts = ["leader n1", "machines 3/3 up", "units 10000"];
    const endpoint = "unix:///tmp/berth-test-abcdef/n1/berth.sock";
    expect(headerStatus(endpoint, parts, 200)).toBe(`  ${endpoint}  leader n1  machines 3/3 up  units 10000`);
    const at66 = headerStatus(endpoint, parts, 66);
    expect(at66).toBe("  …t-abcdef/n1/berth.sock  leader n1  machines 3/3 up  units 10000");
    expect(at66.length).toBe(66);
    expect(headerStatus(endpoint, parts, 40)).toBe("  leader n1  machines 3/3 up");
  });
});
