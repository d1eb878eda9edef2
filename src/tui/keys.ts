// The console's keys, each declared once: which key, in which views, its label, the action it triggers. The footer
// and the help are derived from this table (as k9s's KeyActions), and the reducer looks keys up in it, so a key
// remapped here (or by a config) changes what it does, what the footer says and what the help lists together.
import type { ViewName } from "./model.ts";

/** Where a key applies: one of the views, or the detail pane over them. */
export type Context = ViewName | "detail";

export type Action =
  | "quit"
  | "help"
  | "refresh"
  | "view.machines"
  | "view.units"
  | "view.keys"
  | "view.members"
  | "view.containers"
  | "view.next"
  | "view.previous"
  | "up"
  | "down"
  | "page.up"
  | "page.down"
  | "top"
  | "bottom"
  | "open"
  | "describe"
  | "back"
  | "filter"
  | "search"
  | "search.next"
  | "search.previous"
  | "follow"
  | "wrap"
  | "scroll.left"
  | "scroll.right"
  | "command"
  | "sort.left"
  | "sort.right"
  | "mark"
  | "journal"
  | "start"
  | "stop"
  | "unload"
  | "restart"
  | "destroy"
  | "delete"
  /** A config's hotkey: to a view, with a filter. */
  | "hotkey"
  /** A config's plugin: a shell command with the selected row in its environment. */
  | "plugin";

export interface KeyBinding {
  action: Action;
  /** Key names as keyName() gives them: a character ("j", "G", " " is "space"), or "enter", "esc", "up", … */
  keys: string[];
  /** The contexts it applies in ("all": every view and the detail pane). */
  where: Context[] | "all";
  /** The footer's word for it. */
  label: string;
  /** The help's line for it. */
  help: string;
  /** The help's line for consecutive bindings of the same group (1 2 3 4: "the views"), instead of one each. */
  group?: string;
  /** Shown in the footer (the keys an operator looks for; moving is assumed). */
  footer?: boolean;
  /** Changes the cluster: asks first (unless `confirm: false`) and is refused in read-only mode. */
  changes?: boolean;
  confirm?: boolean;
  /** action "hotkey": the view it opens and the filter it sets there. */
  hotkey?: { view: ViewName; filter: string };
  /** action "plugin": the shell command it runs. */
  command?: string;
  /** action "plugin": false gives the command the terminal (the console is suspended until it exits). */
  background?: boolean;
}

const VIEWS_ONLY: Context[] = ["machines", "units", "keys", "members", "containers"];

export const KEY_TABLE: readonly KeyBinding[] = [
  {
    action: "open",
    keys: ["enter"],
    where: ["machines", "units", "keys", "members", "containers", "detail"],
    label: "open",
    help: "machine: its units; unit or container: the unit's status; key: its value or directory; member: its Raft state",
    footer: true,
  },
  {
    action: "describe",
    keys: ["i"],
    where: ["machines", "members", "containers"],
    label: "info",
    help: "machine: its metadata, health and units; member: its Raft state and lag; container: its machine",
    footer: true,
  },
  {
    action: "journal",
    keys: ["l"],
    where: ["units", "containers"],
    label: "journal",
    help: "follow the unit's journal live",
    footer: true,
  },
  {
    action: "start",
    keys: ["s"],
    where: ["units"],
    label: "start",
    help: "start the unit (or the marked ones)",
    footer: true,
    changes: true,
    confirm: false,
  },
  {
    action: "stop",
    keys: ["x"],
    where: ["units"],
    label: "stop",
    help: "stop the unit(s), asks first",
    footer: true,
    changes: true,
  },
  {
    action: "restart",
    keys: ["R"],
    where: ["units"],
    label: "restart",
    help: "stop, then start the unit(s), asks first",
    footer: true,
    changes: true,
  },
  {
    action: "unload",
    keys: ["u"],
    where: ["units"],
    label: "unload",
    help: "unload the unit(s), asks first",
    footer: true,
    changes: true,
  },
  {
    action: "destroy",
    keys: ["d"],
    where: ["units"],
    label: "destroy",
    help: "destroy the unit(s), asks first",
    footer: true,
    changes: true,
  },
  {
    action: "delete",
    keys: ["d"],
    where: ["keys"],
    label: "delete",
    help: "delete the key(s) (a directory: all below it), asks first",
    footer: true,
    changes: true,
  },
  {
    action: "mark",
    keys: ["space"],
    where: ["units", "keys"],
    label: "mark",
    help: "mark the row for a bulk action (again: unmark)",
    footer: true,
  },
  {
    action: "filter",
    keys: ["/"],
    where: VIEWS_ONLY,
    label: "filter",
    help: "filter the rows (Enter keeps it, Esc clears it)",
    footer: true,
  },
  {
    action: "command",
    keys: [":"],
    where: VIEWS_ONLY,
    label: "command",
    help: ":units :machines :keys /path :members :containers :sort COLUMN :q (Tab completes)",
    footer: true,
  },
  {
    action: "sort.left",
    keys: ["<"],
    where: VIEWS_ONLY,
    label: "sort ←",
    help: "sort by the column to the left",
    group: "sort by the column to the left / right (:sort COLUMN)",
  },
  {
    action: "sort.right",
    keys: [">"],
    where: VIEWS_ONLY,
    label: "sort →",
    help: "sort by the column to the right",
    group: "sort by the column to the left / right (:sort COLUMN)",
  },
  {
    action: "back",
    keys: ["esc", "left", "h", "backspace"],
    where: VIEWS_ONLY,
    label: "back",
    help: "back: clear marks or filter, go up a key directory",
    footer: true,
  },
  {
    action: "back",
    keys: ["esc", "backspace"],
    where: ["detail"],
    label: "back",
    help: "close the pane (status, journal, value, detail)",
    footer: true,
  },
  {
    action: "follow",
    keys: ["f"],
    where: ["detail"],
    label: "follow",
    help: "pane: pause or resume following the journal's end",
    footer: true,
  },
  {
    action: "search",
    keys: ["/"],
    where: ["detail"],
    label: "search",
    help: "pane: search (Enter finds the next line matching; text or regex)",
    footer: true,
  },
  {
    action: "search.next",
    keys: ["n"],
    where: ["detail"],
    label: "next",
    help: "pane: the next match",
    group: "pane: the next / previous match",
  },
  {
    action: "search.previous",
    keys: ["N"],
    where: ["detail"],
    label: "previous",
    help: "pane: the previous match",
    group: "pane: the next / previous match",
  },
  {
    action: "wrap",
    keys: ["w"],
    where: ["detail"],
    label: "wrap",
    help: "pane: wrap long lines (again: cut them, ← → scroll sideways)",
    footer: true,
  },
  {
    action: "scroll.left",
    keys: ["left"],
    where: ["detail"],
    label: "scroll ←",
    help: "pane: scroll left",
    group: "pane: scroll sideways",
  },
  {
    action: "scroll.right",
    keys: ["right"],
    where: ["detail"],
    label: "scroll →",
    help: "pane: scroll right",
    group: "pane: scroll sideways",
  },
  {
    action: "view.machines",
    keys: ["1"],
    where: "all",
    label: "machines",
    help: "the Machines view",
    group: "the Machines, Units, Keys, Members, Containers views",
  },
  {
    action: "view.units",
    keys: ["2"],
    where: "all",
    label: "units",
    help: "the Units view",
    group: "the Machines, Units, Keys, Members, Containers views",
  },
  {
    action: "view.keys",
    keys: ["3"],
    where: "all",
    label: "keys",
    help: "the Keys view",
    group: "the Machines, Units, Keys, Members, Containers views",
  },
  {
    action: "view.members",
    keys: ["4"],
    where: "all",
    label: "members",
    help: "the Members view",
    group: "the Machines, Units, Keys, Members, Containers views",
  },
  {
    action: "view.containers",
    keys: ["5"],
    where: "all",
    label: "containers",
    help: "the Containers view",
    group: "the Machines, Units, Keys, Members, Containers views",
  },
  {
    action: "view.next",
    keys: ["tab"],
    where: "all",
    label: "next view",
    help: "the next view",
    group: "the next / previous view",
  },
  {
    action: "view.previous",
    keys: ["shift-tab"],
    where: "all",
    label: "previous view",
    help: "the previous view",
    group: "the next / previous view",
  },
  {
    action: "up",
    keys: ["up", "k"],
    where: "all",
    label: "up",
    help: "move up",
    group: "up / down (a pane: scroll)",
  },
  {
    action: "down",
    keys: ["down", "j"],
    where: "all",
    label: "down",
    help: "move down",
    group: "up / down (a pane: scroll)",
  },
  {
    action: "page.up",
    keys: ["pageup"],
    where: "all",
    label: "page up",
    help: "a page up",
    group: "a page up / down (a pane too)",
  },
  {
    action: "page.down",
    keys: ["pagedown"],
    where: "all",
    label: "page down",
    help: "a page down",
    group: "a page up / down (a pane too)",
  },
  {
    action: "top",
    keys: ["g", "home"],
    where: "all",
    label: "top",
    help: "the first row",
    group: "the first / last row (a pane: its top / its end, following)",
  },
  {
    action: "bottom",
    keys: ["G", "end"],
    where: "all",
    label: "bottom",
    help: "the last row",
    group: "the first / last row (a pane: its top / its end, following)",
  },
  { action: "refresh", keys: ["r"], where: "all", label: "refresh", help: "refresh now" },
  {
    action: "help",
    keys: ["?"],
    where: "all",
    label: "help",
    help: "this help",
    footer: true,
  },
  { action: "quit", keys: ["q", "ctrl-c"], where: "all", label: "quit", help: "quit", footer: true },
];

/** The name of a key as Ink reports it (the subset of Ink's Key the console reads). */
export interface InkKey {
  upArrow?: boolean;
  downArrow?: boolean;
  leftArrow?: boolean;
  rightArrow?: boolean;
  pageUp?: boolean;
  pageDown?: boolean;
  home?: boolean;
  end?: boolean;
  return?: boolean;
  escape?: boolean;
  ctrl?: boolean;
  shift?: boolean;
  tab?: boolean;
  backspace?: boolean;
  delete?: boolean;
  meta?: boolean;
}

export function keyName(input: string, key: InkKey): string {
  if (key.ctrl && input) return `ctrl-${input}`;
  if (key.return) return "enter";
  if (key.escape) return "esc";
  if (key.tab) return key.shift ? "shift-tab" : "tab";
  if (key.upArrow) return "up";
  if (key.downArrow) return "down";
  if (key.leftArrow) return "left";
  if (key.rightArrow) return "right";
  if (key.pageUp) return "pageup";
  if (key.pageDown) return "pagedown";
  if (key.home) return "home";
  if (key.end) return "end";
  // Terminals send DEL (0x7f) for Backspace, which Ink reports as delete.
  if (key.backspace || key.delete) return "backspace";
  if (input === " ") return "space";
  return input;
}

const applies = (b: KeyBinding, where: Context) => b.where === "all" || b.where.includes(where);

/** The binding of key `name` in `where`, if any. */
export function bindingFor(
  table: readonly KeyBinding[],
  where: Context,
  name: string,
): KeyBinding | undefined {
  return table.find((b) => applies(b, where) && b.keys.includes(name));
}

export interface Conflict {
  text: string;
  /** The two bindings that claim the key (the earlier in the table first). */
  bindings: [KeyBinding, KeyBinding];
}

/** Keys bound twice in one context (a table with any is refused: which one would win is a guess). */
export function conflicts(table: readonly KeyBinding[]): Conflict[] {
  const out: Conflict[] = [];
  const contexts: Context[] = [...VIEWS_ONLY, "detail"];
  for (const c of contexts) {
    const seen = new Map<string, KeyBinding>();
    for (const b of table.filter((b) => applies(b, c)))
      for (const k of b.keys) {
        const other = seen.get(k);
        if (!other) seen.set(k, b);
        else if (!out.some((x) => x.bindings[0] === other && x.bindings[1] === b))
          out.push({
            text: `${displayKey(k)} is bound to both ${nameOf(other)} and ${nameOf(b)} in ${c}`,
            bindings: [other, b],
          });
      }
  }
  return out;
}

function nameOf(b: KeyBinding): string {
  return b.action === "plugin" || b.action === "hotkey" ? `${b.action} "${b.label}"` : b.action;
}

const NAMED_KEYS = new Set([
  "enter",
  "esc",
  "space",
  "tab",
  "shift-tab",
  "up",
  "down",
  "left",
  "right",
  "pageup",
  "pagedown",
  "home",
  "end",
  "backspace",
]);

/** A key name keyName() can give: one character, a named key, or ctrl- and a letter. */
export function isKeyName(name: string): boolean {
  return [...name].length === 1 ? name !== " " : NAMED_KEYS.has(name) || /^ctrl-[a-z]$/.test(name);
}

export const KEY_NAMES_HELP = `one character, ctrl-a … ctrl-z, or ${[...NAMED_KEYS].join(", ")}`;

export function displayKey(name: string): string {
  return (
    {
      enter: "Enter",
      esc: "Esc",
      space: "Space",
      tab: "Tab",
      "shift-tab": "Shift-Tab",
      up: "↑",
      down: "↓",
      left: "←",
      right: "→",
      pageup: "PgUp",
      pagedown: "PgDn",
      home: "Home",
      end: "End",
      backspace: "Backspace",
    }[name] ?? (name.startsWith("ctrl-") ? `Ctrl-${name.slice(5).toUpperCase()}` : name)
  );
}

/**
 * The footer for `where` in `width` columns: the context's keys, then help and quit. When it does not fit, keys are
 * dropped from the end of the context's list first: help and quit stay visible at any width they fit in.
 */
export function footerText(
  table: readonly KeyBinding[],
  where: Context,
  width: number,
  readonly = false,
): string {
  const shown = table.filter((b) => b.footer && applies(b, where) && !(readonly && b.changes));
  const item = (b: KeyBinding) => `${displayKey(b.keys[0]!)} ${b.label}`;
  const last = shown.filter((b) => b.action === "help" || b.action === "quit").map(item);
  const first = shown.filter((b) => b.action !== "help" && b.action !== "quit").map(item);
  const views = where === "detail" ? [] : ["1-5 view"];
  let items = [...first, ...views, ...last];
  while (items.join("  ").length > width && items.length > last.length)
    items = [...items.slice(0, items.length - last.length - 1), ...last];
  return items.join("  ");
}

/**
 * The help: a line per binding (or group of bindings), its keys then what it does, the text wrapped under itself
 * where `width` is too narrow for it.
 */
export function helpLines(table: readonly KeyBinding[], readonly = false, width = 100): string[] {
  const entries: { keys: string[]; text: string }[] = [];
  for (const b of table) {
    const prev = entries.at(-1);
    const off = readonly && b.changes ? " (off: read-only)" : "";
    if (b.group && prev?.text === b.group) prev.keys.push(...b.keys.map(displayKey));
    else entries.push({ keys: b.keys.map(displayKey), text: `${b.group ?? b.help}${off}` });
  }
  const keysWidth = Math.max(...entries.map((e) => e.keys.join(" ").length));
  const textWidth = Math.max(20, width - keysWidth - 2);
  const out: string[] = [];
  for (const e of entries) {
    const lines = wrap(e.text, textWidth);
    out.push(`${e.keys.join(" ").padEnd(keysWidth)}  ${lines[0]}`);
    for (const more of lines.slice(1)) out.push(`${" ".repeat(keysWidth)}  ${more}`);
  }
  return out;
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}
