// The console's UI state and how keys change it, as a pure function: (state, event, what the screen shows) ->
// (next state, effects to run). The screen component only renders the state and runs the effects (calls to the
// cluster), so what every key does is tested as data.
import { type Command, complete, parseCommand } from "./commands.ts";
import { type Action, bindingFor, type Context, type KeyBinding } from "./keys.ts";
import { parentDir, type Row, VIEWS, type ViewName } from "./model.ts";
import type { MouseEvent } from "./mouse.ts";
import {
  findLine,
  initialPane,
  movePane,
  type PaneContent,
  type PaneKind,
  type PaneMove,
  type PaneState,
  paneTop,
} from "./pane.ts";
import { columnNamed, type Sort } from "./sort.ts";

/** A pane over the table: a unit's status, its live journal, a key's value, a machine's or a member's detail. */
export interface Detail {
  kind: PaneKind;
  id: string;
}

/** What an action acts on: a unit name or a key (and whether it is a directory). */
export interface Target {
  id: string;
  dir?: boolean;
}

export type UnitOp = "start" | "stop" | "unload" | "restart" | "destroy";

export type Effect =
  | { kind: "exit" }
  | { kind: "refresh" }
  | { kind: "units"; op: UnitOp; names: string[] }
  | { kind: "deleteKeys"; targets: Target[] }
  | { kind: "keyDir"; dir: string }
  | { kind: "detail"; detail: Detail | null }
  | { kind: "prepareFilter" }
  /** Switch to the cluster the console config names `name` (:ctx). */
  | { kind: "context"; name: string }
  /** A config's plugin; not `background`: it has the terminal until it exits (the console steps aside). */
  | { kind: "plugin"; label: string; command: string; env: Record<string, string>; background: boolean };

export interface Question {
  /** "Stop", "Destroy", …: the verb the question and the footer line start with. */
  verb: string;
  targets: Target[];
  effect: Effect;
}

export interface Message {
  text: string;
  tone: "info" | "error";
}

/**
 * The selection is a row's key (it follows the row when rows are inserted above it); when that row goes, the first
 * row of the same unit or key (`id`: a unit placed on another machine), else the position it had (`index`).
 */
export interface Selection {
  key: string | null;
  id?: string;
  index: number;
}

export interface UiState {
  view: ViewName;
  selected: Record<ViewName, Selection>;
  detail: Detail | null;
  /** Where the detail pane is scrolled, what it searches for. */
  pane: PaneState;
  filter: string;
  editingFilter: boolean;
  /** The `:` command line being typed (without the ":"), or null. */
  command: string | null;
  /** The column each view is sorted by (null: the view's own order). */
  sort: Record<ViewName, Sort | null>;
  question: Question | null;
  help: boolean;
  /** The first help line shown (the help scrolls where the terminal is too short for it). */
  helpTop: number;
  message: Message | null;
  /** Marked rows per view (unit names, keys), in the order they were marked. */
  marks: Record<ViewName, Target[]>;
  /** Every action that changes the cluster is refused. */
  readonly: boolean;
  /** Quitting asks this first (`npm start`: quitting stops the local cluster), or null: q quits. */
  quitQuestion: string | null;
}

export interface Screen {
  /** The rows the view shows with `filter` and `sort` applied (the table as drawn). */
  rows: (view: ViewName, filter: string, sort: Sort | null) => Row[];
  /** The titles of the view's columns (as shown). */
  columns: (view: ViewName) => string[];
  keyDir: string;
  /** Rows a PgUp/PgDn moves (the rows the body shows). */
  pageSize: number;
  /** Lines the help has at this width. */
  helpLength: number;
  bindings: readonly KeyBinding[];
  /** The table row (index in the rows shown) drawn on the screen's `line`, or null: where a click lands. */
  rowAt: (line: number) => number | null;
  /** The clusters the console config names (:ctx NAME). */
  contexts: string[];
  /** The detail pane's lines (while one shows), and how many of them it shows at once. */
  pane: () => PaneContent;
  paneHeight: number;
}

export type Event =
  | { type: "key"; name: string }
  | { type: "message"; message: Message }
  /** The wheel (as the up and down keys) or a left click on the screen's `line`. */
  | { type: "mouse"; event: MouseEvent };

export interface Result {
  state: UiState;
  effects: Effect[];
}

const perView = <T>(make: () => T): Record<ViewName, T> => ({
  machines: make(),
  units: make(),
  keys: make(),
  members: make(),
  containers: make(),
});

export function initialState(
  opts: { readonly?: boolean; view?: ViewName; quitQuestion?: string | null } = {},
): UiState {
  return {
    view: opts.view ?? "machines",
    selected: perView(() => ({ key: null, index: 0 })),
    detail: null,
    pane: initialPane("unit"),
    filter: "",
    editingFilter: false,
    command: null,
    sort: perView(() => null),
    question: null,
    help: false,
    helpTop: 0,
    message: null,
    marks: perView(() => []),
    readonly: opts.readonly === true,
    quitQuestion: opts.quitQuestion ?? null,
  };
}

/** A row's identity: unique in its table (a unit has a row per machine), unlike `id`, what actions act on. */
export function rowKey(row: Row): string {
  return row.key ?? row.id;
}

/** Each table's rows by key and by id (the first row of an id), built once per table. */
const positions = new WeakMap<Row[], { byKey: Map<string, number>; byId: Map<string, number> }>();

/** Where the selection is in `rows`: its row wherever it moved, or (gone) the position it had, kept in range. */
export function selectedIndex(sel: Selection, rows: Row[]): number {
  if (sel.key !== null) {
    let index = positions.get(rows);
    if (!index) {
      index = { byKey: new Map(), byId: new Map() };
      for (let i = rows.length - 1; i >= 0; i--) {
        index.byKey.set(rowKey(rows[i]!), i);
        index.byId.set(rows[i]!.id, i);
      }
      positions.set(rows, index);
    }
    const at = index.byKey.get(sel.key) ?? (sel.id === undefined ? undefined : index.byId.get(sel.id));
    if (at !== undefined) return at;
  }
  return Math.max(0, Math.min(sel.index, rows.length - 1));
}

function selectionOf(rows: Row[], index: number): Selection {
  const row = rows[index];
  return row ? { key: rowKey(row), id: row.id, index } : { key: null, index };
}

const VERBS: Record<UnitOp | "delete", string> = {
  start: "Start",
  stop: "Stop",
  unload: "Unload",
  restart: "Restart",
  destroy: "Destroy",
  delete: "Delete",
};

/** The question's one line: the verb and its targets, as many as `width` allows ("and N more"). */
export function questionLine(q: Question, width = Number.POSITIVE_INFINITY): string {
  const names = q.targets.map((t) => (t.dir ? `${t.id}/ and everything below it` : t.id));
  const end = "? (y/n)";
  for (let n = names.length; n > 0; n--) {
    const more = names.length - n;
    const text = `${q.verb} ${names.slice(0, n).join(", ")}${more ? ` and ${more} more` : ""}${end}`;
    if (text.length <= width || n === 1) return text;
  }
  return `${q.verb}${end}`;
}

export function reduce(state: UiState, event: Event, screen: Screen): Result {
  if (event.type === "message") return { state: { ...state, message: event.message }, effects: [] };
  if (event.type === "mouse") return onMouse(state, event.event, screen);
  return onKey(state, event.name, screen);
}

/**
 * The wheel moves as the up and down keys do (the selection, a pane, the help), whatever they are bound to; a left
 * click selects the row under it. Both do nothing while a prompt or a question waits for keys.
 */
function onMouse(state: UiState, event: MouseEvent, screen: Screen): Result {
  const none: Result = { state, effects: [] };
  if (state.editingFilter || state.command !== null || state.question || state.pane.editingSearch)
    return none;
  if (event.kind === "click") {
    if (state.help || state.detail) return none;
    const at = screen.rowAt(event.line);
    if (at === null) return none;
    const rows = screen.rows(state.view, state.filter, state.sort[state.view]);
    if (!rows[at]) return none;
    return {
      state: { ...state, selected: { ...state.selected, [state.view]: selectionOf(rows, at) } },
      effects: [],
    };
  }
  const action = event.kind === "wheel.up" ? "up" : "down";
  const where: Context = state.detail ? "detail" : state.view;
  const key = screen.bindings.find(
    (b) => b.action === action && (b.where === "all" || b.where.includes(where)),
  )?.keys[0];
  return key === undefined ? none : onKey(state, key, screen);
}

function onKey(state: UiState, name: string, screen: Screen): Result {
  const done = (patch: Partial<UiState>, ...effects: Effect[]): Result => ({
    state: { ...state, ...patch },
    effects,
  });
  const none: Result = { state, effects: [] };
  if (name === "ctrl-c") return { state, effects: [{ kind: "exit" }] };

  const { view } = state;
  const rowsOf = (v: ViewName, filter: string, sort = state.sort[v]) => screen.rows(v, filter, sort);
  const rows = rowsOf(view, state.filter);
  const sel = selectedIndex(state.selected[view], rows);
  const row: Row | undefined = rows[sel];
  const select = (i: number, inRows = rows) => {
    const index = Math.max(0, Math.min(i, inRows.length - 1));
    return { ...state.selected, [view]: selectionOf(inRows, index) };
  };

  if (state.pane.editingSearch) {
    const pane = state.pane;
    if (name === "esc") return done({ pane: { ...pane, search: "", editingSearch: false, match: null } });
    if (name === "enter") return findNext({ ...pane, editingSearch: false }, false, true);
    let search = pane.search;
    if (name === "backspace") search = search.slice(0, -1);
    else if (name === "space") search += " ";
    else if ([...name].length === 1) search += name;
    else return none;
    return done({ pane: { ...pane, search } });
  }
  if (state.editingFilter) {
    if (name === "enter") return done({ editingFilter: false });
    if (name === "esc") return done({ filter: "", editingFilter: false });
    let filter = state.filter;
    if (name === "backspace") filter = filter.slice(0, -1);
    else if (name === "space") filter += " ";
    else if ([...name].length === 1) filter += name;
    else return none;
    return done({ filter, selected: select(0, rowsOf(view, filter)) });
  }
  if (state.command !== null) {
    const line = state.command;
    if (name === "esc" || (name === "backspace" && line === "")) return done({ command: null });
    if (name === "backspace") return done({ command: line.slice(0, -1) });
    if (name === "tab") return done({ command: complete(line, screen.columns(view), screen.contexts) });
    if (name === "space") return done({ command: `${line} ` });
    if ([...name].length === 1) return done({ command: line + name });
    if (name !== "enter") return none;
    return runCommand(parseCommand(line));
  }
  if (state.question) {
    const q = state.question;
    if (name === "y" || name === "Y") return done({ question: null, marks: clearMarks(state) }, q.effect);
    return done({ question: null, message: { text: "cancelled", tone: "info" } });
  }
  if (state.help) {
    // The keys that move a table scroll the help; any other key closes it.
    const last = Math.max(0, screen.helpLength - screen.pageSize);
    const scroll = (top: number) => done({ helpTop: Math.max(0, Math.min(top, last)) });
    switch (bindingFor(screen.bindings, "machines", name)?.action) {
      case "up":
        return scroll(state.helpTop - 1);
      case "down":
        return scroll(state.helpTop + 1);
      case "page.up":
        return scroll(state.helpTop - screen.pageSize);
      case "page.down":
        return scroll(state.helpTop + screen.pageSize);
      case "top":
        return scroll(0);
      case "bottom":
        return scroll(last);
      default:
        return done({ help: false });
    }
  }

  const where: Context = state.detail ? "detail" : view;
  const binding = bindingFor(screen.bindings, where, name);
  if (!binding) return none;
  if (binding.changes && state.readonly)
    return done({
      message: { text: `read-only: ${binding.label} is disabled (--readonly)`, tone: "error" },
    });
  if (state.detail) {
    const moves: Partial<Record<Action, PaneMove>> = {
      up: "up",
      down: "down",
      "page.up": "page.up",
      "page.down": "page.down",
      top: "top",
      bottom: "bottom",
      follow: "follow",
      "scroll.left": "left",
      "scroll.right": "right",
    };
    const move = moves[binding.action];
    if (move) return done({ pane: movePane(state.pane, move, screen.pane(), screen.paneHeight) });
  }
  return act(binding.action, binding);

  /**
   * The pane at the next line matching its search, from the line found last (or the first line shown; `here`: a
   * new search, where that line counts too).
   */
  function findNext(pane: PaneState, backwards: boolean, here = false): Result {
    if (!pane.search) return done({ pane });
    const content = screen.pane();
    const from = !here && pane.match !== null ? pane.match : paneTop(pane, content, screen.paneHeight);
    const at = findLine(content, pane.search, here ? from - 1 : from, backwards);
    if (at === null)
      return done({
        pane: { ...pane, match: null },
        message: { text: `no line matches /${pane.search}`, tone: "error" },
      });
    return done({ pane: { ...pane, top: at, match: at }, message: null });
  }

  function act(action: Action, b: KeyBinding): Result {
    switch (action) {
      case "quit":
        return quit();
      case "help":
        return done({ help: true, helpTop: 0 });
      case "refresh":
        return { state, effects: [{ kind: "refresh" }] };
      case "view.machines":
      case "view.units":
      case "view.keys":
      case "view.members":
      case "view.containers":
        return switchView(action.slice(5) as ViewName);
      case "view.next":
      case "view.previous": {
        const i = VIEWS.findIndex((v) => v.name === view);
        const step = action === "view.next" ? 1 : VIEWS.length - 1;
        return switchView(VIEWS[(i + step) % VIEWS.length]!.name);
      }
      case "up":
        return done({ selected: select(sel - 1) });
      case "down":
        return done({ selected: select(sel + 1) });
      case "page.up":
        return done({ selected: select(sel - screen.pageSize) });
      case "page.down":
        return done({ selected: select(sel + screen.pageSize) });
      case "top":
        return done({ selected: select(0) });
      case "bottom":
        return done({ selected: select(rows.length - 1) });
      case "filter":
        return done({ filter: "", editingFilter: true }, { kind: "prepareFilter" });
      case "search":
        return done({ pane: { ...state.pane, search: "", editingSearch: true } });
      case "search.next":
        return findNext(state.pane, false);
      case "search.previous":
        return findNext(state.pane, true);
      case "wrap":
        return done({ pane: { ...state.pane, wrap: !state.pane.wrap, left: 0 } });
      case "follow":
      case "scroll.left":
      case "scroll.right":
        return none; // handled above, in a pane
      case "command":
        return done({ command: "" });
      case "sort.left":
      case "sort.right": {
        const count = screen.columns(view).length;
        const current = state.sort[view]?.column;
        const column =
          current === undefined
            ? action === "sort.left"
              ? count - 1
              : 0
            : (current + (action === "sort.left" ? count - 1 : 1)) % count;
        return sortBy({ column, desc: false });
      }
      case "back":
        if (state.detail) return done({ detail: null }, { kind: "detail", detail: null });
        if (state.marks[view].length > 0) return done({ marks: clearMarks(state) });
        if (state.filter) return done({ filter: "", selected: select(sel, rowsOf(view, "")) });
        if (view === "keys") return openKeyDir(parentDir(screen.keyDir));
        return none;
      case "open":
        if (state.detail) return done({ detail: null }, { kind: "detail", detail: null });
        if (!row) return none;
        if (view === "machines") {
          // The machine's units: the Units view filtered by its id prefix (as its MACHINE column shows it).
          const filter = row.id.slice(0, 8);
          return done({
            view: "units",
            filter,
            selected: { ...state.selected, units: selectionOf(rowsOf("units", filter), 0) },
          });
        }
        if (view === "units") return openDetail({ kind: "unit", id: row.id });
        if (view === "keys") return row.dir ? openKeyDir(row.id) : openDetail({ kind: "key", id: row.id });
        if (view === "members") return openDetail({ kind: "member", id: row.id });
        // A container: its unit's status (a leftover without a unit, or a machine not answering: the machine).
        if (view === "containers")
          return openDetail({ kind: row.id === row.machine ? "machine" : "unit", id: row.id });
        return none;
      case "describe":
        if (!row) return none;
        if (view === "members") return openDetail({ kind: "member", id: row.id });
        if (view === "machines") return openDetail({ kind: "machine", id: row.id });
        if (view === "containers") return openDetail({ kind: "machine", id: row.machine ?? row.id });
        return none;
      case "journal":
        return row && row.id !== row.machine ? openDetail({ kind: "journal", id: row.id }) : none;
      case "mark": {
        if (!row) return none;
        const marks = state.marks[view];
        const next = marks.some((t) => t.id === row.id)
          ? marks.filter((t) => t.id !== row.id)
          : [...marks, { id: row.id, ...(row.dir ? { dir: true } : {}) }];
        return done({ marks: { ...state.marks, [view]: next }, selected: select(sel + 1) });
      }
      case "start":
      case "stop":
      case "unload":
      case "restart":
      case "destroy":
      case "delete": {
        const targets = targetsOf(state, row);
        if (targets.length === 0) return none;
        const effect: Effect =
          action === "delete"
            ? { kind: "deleteKeys", targets }
            : { kind: "units", op: action, names: targets.map((t) => t.id) };
        if (b.confirm === false) return done({ marks: clearMarks(state) }, effect);
        return done({ question: { verb: VERBS[action], targets, effect } });
      }
      case "hotkey": {
        const { view: next, filter } = b.hotkey!;
        return done(
          {
            view: next,
            detail: null,
            filter,
            editingFilter: false,
            selected: { ...state.selected, [next]: selectionOf(rowsOf(next, filter), 0) },
          },
          { kind: "detail", detail: null },
        );
      }
      case "plugin": {
        const effect: Effect = {
          kind: "plugin",
          label: b.label,
          command: b.command!,
          env: pluginEnv(state, row),
          background: b.background !== false,
        };
        if (b.confirm) return done({ question: { verb: b.label, targets: targetsOf(state, row), effect } });
        return done({}, effect);
      }
    }
  }

  function runCommand(c: Command): Result {
    const closed = { ...state, command: null };
    switch (c.kind) {
      case "none":
        return { state: closed, effects: [] };
      case "error":
        return { state: { ...closed, message: { text: c.text, tone: "error" } }, effects: [] };
      case "quit": {
        const r = quit();
        return { ...r, state: { ...r.state, command: null } };
      }
      case "help":
        return { state: { ...closed, help: true, helpTop: 0 }, effects: [] };
      case "view": {
        const r = switchView(c.view);
        if (c.keyDir === undefined) return { ...r, state: { ...r.state, command: null } };
        const k = openKeyDir(c.keyDir);
        return {
          state: { ...r.state, ...k.state, view: "keys", command: null },
          effects: [...r.effects, ...k.effects],
        };
      }
      case "context": {
        if (!screen.contexts.includes(c.name))
          return {
            state: {
              ...closed,
              message: {
                text:
                  screen.contexts.length === 0
                    ? `no context ${c.name}: the console config names none ("contexts": {"NAME": {"endpoint": …}})`
                    : `no context ${c.name} (the console config names ${screen.contexts.join(", ")})`,
                tone: "error",
              },
            },
            effects: [],
          };
        // Another cluster: its panes, marks and key directory mean nothing there.
        const r = switchView(view);
        return {
          state: {
            ...r.state,
            command: null,
            marks: perView(() => []),
            message: { text: `switching to ${c.name}…`, tone: "info" },
          },
          effects: [...r.effects, { kind: "keyDir", dir: "/" }, { kind: "context", name: c.name }],
        };
      }
      case "sort": {
        const column = columnNamed({ columns: screen.columns(view).map((title) => ({ title })) }, c.column);
        if (column < 0)
          return {
            state: {
              ...closed,
              message: {
                text: `no column ${c.column.toUpperCase()} (${screen.columns(view).join(", ")})`,
                tone: "error",
              },
            },
            effects: [],
          };
        const current = state.sort[view];
        const desc = c.desc ?? (current?.column === column ? !current.desc : false);
        const r = sortBy({ column, desc });
        return { ...r, state: { ...r.state, command: null } };
      }
    }
  }

  /** Quits, or asks first (the question names what quitting stops). Ctrl-C quits without asking. */
  function quit(): Result {
    if (state.quitQuestion === null) return { state, effects: [{ kind: "exit" }] };
    return done({ question: { verb: state.quitQuestion, targets: [], effect: { kind: "exit" } } });
  }

  /** The view sorted by `sort`, the selection kept on its row. */
  function sortBy(sort: Sort): Result {
    const sorted = rowsOf(view, state.filter, sort);
    const key = state.selected[view];
    const at = row ? sorted.findIndex((r) => rowKey(r) === rowKey(row)) : 0;
    return done({
      sort: { ...state.sort, [view]: sort },
      selected: { ...state.selected, [view]: at >= 0 ? selectionOf(sorted, at) : key },
    });
  }

  function switchView(next: ViewName): Result {
    return done(
      { view: next, detail: null, filter: "", editingFilter: false },
      { kind: "detail", detail: null },
    );
  }

  function openDetail(d: Detail): Result {
    return done({ detail: d, pane: initialPane(d.kind) }, { kind: "detail", detail: d });
  }

  function openKeyDir(dir: string): Result {
    // A filter typed for one directory's names means nothing in the next; so do its marks and selection.
    return done(
      {
        filter: "",
        selected: { ...state.selected, keys: { key: null, index: 0 } },
        marks: { ...state.marks, keys: [] },
      },
      { kind: "keyDir", dir },
    );
  }
}

/** What a plugin's command finds in its environment: the view, the selected row, the marked ones. */
function pluginEnv(state: UiState, row: Row | undefined): Record<string, string> {
  const env: Record<string, string> = {
    BERTH_VIEW: state.view,
    BERTH_MARKED: state.marks[state.view].map((t) => t.id).join(" "),
  };
  if (!row) return env;
  if (state.view === "units" || state.view === "containers") {
    env.BERTH_UNIT = row.id;
    if (row.machine) env.BERTH_MACHINE = row.machine;
  } else if (state.view === "machines") env.BERTH_MACHINE = row.id;
  else if (state.view === "keys") env.BERTH_KEY = row.id;
  else env.BERTH_MEMBER = row.id;
  return env;
}

/** What an action acts on: the marked rows, or the selected one. */
function targetsOf(state: UiState, row: Row | undefined): Target[] {
  const marks = state.marks[state.view];
  if (marks.length > 0) return marks;
  return row ? [{ id: row.id, ...(row.dir ? { dir: true } : {}) }] : [];
}

function clearMarks(state: UiState): Record<ViewName, Target[]> {
  return state.marks[state.view].length === 0 ? state.marks : { ...state.marks, [state.view]: [] };
}
