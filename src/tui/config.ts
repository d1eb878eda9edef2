// The console's configuration file (JSON): keys remapped, hotkeys, plugins, the view it opens on, the refresh
// interval, the columns each view shows, colours, read-only. Read from --console-config, BERTH_CONSOLE_CONFIG, or
// ~/.config/berth/console.json ($XDG_CONFIG_HOME/berth/console.json) when it exists. Anything it cannot use is an
// error naming the file and the line, not a silent default.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { durationMs } from "../format/time.ts";
import { parseJsonWithLines } from "./json-lines.ts";
import {
  type Action,
  type Context,
  conflicts,
  isKeyName,
  KEY_NAMES_HELP,
  KEY_TABLE,
  type KeyBinding,
} from "./keys.ts";
import {
  containersTable,
  EMPTY_SNAPSHOT,
  keysTable,
  machinesTable,
  membersTable,
  unitsTable,
  VIEWS,
  type ViewName,
} from "./model.ts";

/** Colours by what they show (undefined: the terminal's own colour). */
export interface Theme {
  title: string | undefined;
  good: string | undefined;
  bad: string | undefined;
  warn: string | undefined;
  marked: string | undefined;
  readonly: string | undefined;
  filter: string | undefined;
  question: string | undefined;
  error: string | undefined;
  message: string | undefined;
}

export const DEFAULT_THEME: Theme = {
  title: "cyan",
  good: "green",
  bad: "red",
  warn: "yellow",
  marked: "magenta",
  readonly: "yellow",
  filter: "yellow",
  question: "yellow",
  error: "red",
  message: "green",
};

export interface ConsoleConfig {
  /** The file it came from, or null (no file: the defaults). */
  file: string | null;
  readonly: boolean;
  view: ViewName;
  refreshMs: number | null;
  bindings: readonly KeyBinding[];
  /** The columns (titles, in order) a view shows; a view not named shows all of its own. */
  columns: Partial<Record<ViewName, string[]>>;
  theme: Theme;
  /** Report the mouse (wheel, clicks); false leaves the terminal's own selection of text alone. */
  mouse: boolean;
  /** Clusters `:ctx NAME` switches to: each one's connection settings, as the client flags name them. */
  contexts: Record<string, ContextSettings>;
}

/**
 * A context's connection settings: client flag name -> value (a list for endpoint and ssh-identity), and
 * password-env: the name of the environment variable that holds the password of `username`.
 */
export type ContextSettings = Record<string, string | string[] | boolean>;

/**
 * What a context may set: the client flags that say where a cluster is and how to reach it (the rest, such as
 * --request-timeout, stay as the console was started with). Files are relative to the config's directory.
 * username is the etcd user's NAME only: its password is not kept in the file but read, when :ctx connects, from
 * the environment variable password-env names (the CLI's own ways are the environment, BERTH_USERNAME, and the
 * terminal, which the console holds).
 */
export const CONTEXT_SETTINGS: Record<string, "list" | "string" | "file" | "boolean"> = {
  endpoint: "list",
  username: "string",
  "password-env": "string",
  tunnel: "string",
  "ssh-username": "string",
  "ssh-identity": "list",
  "strict-host-key-checking": "boolean",
  "known-hosts-file": "file",
  "ca-file": "file",
  "cert-file": "file",
  "key-file": "file",
};

export const DEFAULT_CONFIG: ConsoleConfig = {
  file: null,
  readonly: false,
  view: "machines",
  refreshMs: null,
  bindings: KEY_TABLE,
  columns: {},
  theme: DEFAULT_THEME,
  mouse: true,
  contexts: {},
};

export class ConsoleConfigError extends Error {}

/** Where the console looks for its configuration when neither the flag nor the variable names one. */
export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "berth", "console.json");
}

/** The configuration from `path` (named by the operator: it must exist) or the default path (if it exists). */
export function loadConsoleConfig(path: string | null): ConsoleConfig {
  const file = path ?? defaultConfigPath();
  if (path === null && !existsSync(file)) return DEFAULT_CONFIG;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConsoleConfigError(`cannot read the console configuration ${file}: ${(err as Error).message}`);
  }
  return parseConsoleConfig(text, file);
}

const COLORS = new Set(
  ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white", "gray", "grey"].flatMap((c) => [
    c,
    `${c}Bright`,
  ]),
);

const FIELDS = [
  "readonly",
  "view",
  "refresh",
  "keys",
  "hotkeys",
  "plugins",
  "columns",
  "theme",
  "contexts",
  "mouse",
];

/** The configuration in `text` (the contents of `file`, named in errors). */
export function parseConsoleConfig(text: string, file: string): ConsoleConfig {
  let parsed: ReturnType<typeof parseJsonWithLines>;
  try {
    parsed = parseJsonWithLines(text);
  } catch (err) {
    const line = (err as { line?: number }).line;
    throw new ConsoleConfigError(`${file}:${line ?? 1}: ${(err as Error).message}`);
  }
  const { value, lines } = parsed;
  const lineOf = (path: string): number => {
    for (let p = path; ; p = p.includes(".") ? p.slice(0, p.lastIndexOf(".")) : "") {
      const l = lines.get(p);
      if (l !== undefined || p === "") return l ?? 1;
    }
  };
  const fail = (path: string, message: string): never => {
    throw new ConsoleConfigError(`${file}:${lineOf(path)}: ${path ? `${path}: ` : ""}${message}`);
  };
  const object = (v: unknown, path: string): Record<string, unknown> => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return fail(path, "must be an object { … }");
    return v as Record<string, unknown>;
  };
  const string = (v: unknown, path: string): string =>
    typeof v === "string" && v !== "" ? v : fail(path, "must be a non-empty string");
  const list = (v: unknown, path: string): unknown[] =>
    Array.isArray(v) ? v : fail(path, "must be a list [ … ]");
  const key = (v: unknown, path: string): string => {
    const k = string(v, path);
    return isKeyName(k) ? k : fail(path, `"${k}" is not a key: ${KEY_NAMES_HELP}`);
  };
  const keyList = (v: unknown, path: string): string[] => {
    const keys = Array.isArray(v) ? v.map((k, i) => key(k, `${path}.${i}`)) : [key(v, path)];
    return keys.length > 0 ? keys : fail(path, "names no key");
  };
  const view = (v: unknown, path: string): ViewName => {
    const name = string(v, path);
    return VIEWS.some((x) => x.name === name)
      ? (name as ViewName)
      : fail(path, `"${name}" is not a view: ${VIEWS.map((x) => x.name).join(", ")}`);
  };

  const top = object(value, "");
  for (const name of Object.keys(top))
    if (!FIELDS.includes(name)) fail(name, `unknown setting (the settings are ${FIELDS.join(", ")})`);

  const config: ConsoleConfig = { ...DEFAULT_CONFIG, file, theme: { ...DEFAULT_THEME } };
  if (top.readonly !== undefined) {
    if (typeof top.readonly !== "boolean") fail("readonly", "must be true or false");
    config.readonly = top.readonly as boolean;
  }
  if (top.view !== undefined) config.view = view(top.view, "view");
  if (top.mouse !== undefined) {
    if (typeof top.mouse !== "boolean") fail("mouse", "must be true or false");
    config.mouse = top.mouse as boolean;
  }
  if (top.refresh !== undefined) {
    const r = top.refresh;
    const ms = typeof r === "number" ? r * 1000 : durationMs(string(r, "refresh"));
    if (ms === null) fail("refresh", "must be a duration like 2s or 500ms");
    config.refreshMs = ms!;
    if (!(config.refreshMs! >= 100)) fail("refresh", "must be at least 100ms");
  }

  // Where each binding the file adds or changes came from: a conflict is reported on its line.
  const origin = new Map<KeyBinding, string>();
  let bindings: KeyBinding[] = [...KEY_TABLE];
  if (top.keys !== undefined) {
    const keys = object(top.keys, "keys");
    const actions = new Set(KEY_TABLE.map((b) => b.action));
    for (const [action, v] of Object.entries(keys)) {
      const path = `keys.${action}`;
      if (!actions.has(action as Action))
        fail(path, `unknown action (the actions are ${[...actions].join(", ")})`);
      const newKeys = keyList(v, path);
      bindings = bindings.map((b) => {
        if (b.action !== action) return b;
        const remapped = { ...b, keys: newKeys };
        origin.set(remapped, path);
        return remapped;
      });
    }
  }
  if (top.hotkeys !== undefined)
    list(top.hotkeys, "hotkeys").forEach((h, i) => {
      const path = `hotkeys.${i}`;
      const o = object(h, path);
      const target = view(o.view, `${path}.view`);
      const filter = o.filter === undefined ? "" : string(o.filter, `${path}.filter`);
      const b: KeyBinding = {
        action: "hotkey",
        keys: keyList(o.key, `${path}.key`),
        // The views, not the detail pane: its keys scroll and search it (w wraps, n finds the next match).
        where: ALL_VIEWS,
        label: typeof o.label === "string" ? o.label : filter ? `${target} /${filter}` : target,
        help: `the ${target} view${filter ? ` filtered by /${filter}` : ""}`,
        hotkey: { view: target, filter },
      };
      origin.set(b, path);
      bindings.push(b);
    });
  if (top.plugins !== undefined)
    list(top.plugins, "plugins").forEach((p, i) => {
      const path = `plugins.${i}`;
      const o = object(p, path);
      for (const name of Object.keys(o))
        if (!PLUGIN_FIELDS.includes(name))
          fail(`${path}.${name}`, `unknown setting (a plugin sets ${PLUGIN_FIELDS.join(", ")})`);
      const command = string(o.command, `${path}.command`);
      const label = string(o.label, `${path}.label`);
      const where: Context[] | "all" =
        o.views === undefined
          ? ALL_VIEWS
          : list(o.views, `${path}.views`).map((v, j) => view(v, `${path}.views.${j}`));
      for (const flag of ["confirm", "background"])
        if (o[flag] !== undefined && typeof o[flag] !== "boolean")
          fail(`${path}.${flag}`, "must be true or false");
      const b: KeyBinding = {
        action: "plugin",
        keys: keyList(o.key, `${path}.key`),
        where,
        label,
        help: `plugin: ${command}`,
        footer: true,
        changes: true,
        confirm: o.confirm === true,
        command,
        background: o.background !== false,
      };
      origin.set(b, path);
      bindings.push(b);
    });
  const clash = conflicts(bindings)[0];
  if (clash) {
    const path = origin.get(clash.bindings[1]) ?? origin.get(clash.bindings[0]) ?? "keys";
    fail(path, clash.text);
  }
  config.bindings = bindings;

  if (top.columns !== undefined) {
    const columns = object(top.columns, "columns");
    for (const [name, v] of Object.entries(columns)) {
      const target = view(name, `columns.${name}`);
      const titles = COLUMN_TITLES[target];
      config.columns[target] = list(v, `columns.${name}`).map((t, i) => {
        const title = string(t, `columns.${name}.${i}`).toUpperCase();
        return titles.includes(title)
          ? title
          : fail(`columns.${name}.${i}`, `the ${target} view has no column ${title} (${titles.join(", ")})`);
      });
      if (config.columns[target]!.length === 0) fail(`columns.${name}`, "names no column");
    }
  }
  if (top.theme !== undefined) {
    const theme = object(top.theme, "theme");
    for (const [name, v] of Object.entries(theme)) {
      const path = `theme.${name}`;
      if (!(name in DEFAULT_THEME))
        fail(path, `unknown colour (the colours are ${Object.keys(DEFAULT_THEME).join(", ")})`);
      const colour = string(v, path);
      if (!COLORS.has(colour) && !/^#[0-9a-fA-F]{6}$/.test(colour))
        fail(path, `"${colour}" is not a colour: a name (red, cyanBright, gray, …) or #rrggbb`);
      config.theme[name as keyof Theme] = colour;
    }
  }
  if (top.contexts !== undefined) {
    const contexts: Record<string, ContextSettings> = {};
    // A file named relative to the config is found next to it, wherever the console is started.
    const path = (v: string) => (isAbsolute(v) || v.startsWith("~") ? v : resolve(dirname(file), v));
    for (const [name, v] of Object.entries(object(top.contexts, "contexts"))) {
      const at = `contexts.${name}`;
      if (!/^[\w.@-]+$/.test(name)) fail(at, "a context's name is letters, digits and . _ @ -");
      const settings: ContextSettings = {};
      for (const [option, value] of Object.entries(object(v, at))) {
        const kind = CONTEXT_SETTINGS[option];
        const where = `${at}.${option}`;
        if (option === "password")
          fail(where, `${NO_PASSWORD}: put it in an environment variable and name that with password-env`);
        if (!kind)
          fail(where, `unknown setting (a context sets ${Object.keys(CONTEXT_SETTINGS).join(", ")})`);
        if (kind === "boolean") {
          if (typeof value !== "boolean") fail(where, "must be true or false");
          settings[option] = value as boolean;
        } else if (kind === "list") {
          const items =
            typeof value === "string"
              ? value.split(",").map((x) => x.trim())
              : list(value, where).map((x, i) => string(x, `${where}.${i}`));
          settings[option] = option === "ssh-identity" ? items.map(path) : items;
        } else settings[option] = kind === "file" ? path(string(value, where)) : string(value, where);
      }
      if (!settings.endpoint) fail(at, "names no endpoint (endpoint: HOST:PORT or a list)");
      checkLogin(settings, at, fail);
      contexts[name] = settings;
    }
    config.contexts = contexts;
  }
  return config;
}

const PLUGIN_FIELDS = ["key", "label", "command", "views", "confirm", "background"];

const NO_PASSWORD = "a password is not kept in the config file";

/** A context's username is a NAME and comes with password-env (a variable's name); neither goes alone. */
function checkLogin(
  settings: ContextSettings,
  at: string,
  fail: (path: string, message: string) => never,
): void {
  const user = settings.username as string | undefined;
  const variable = settings["password-env"] as string | undefined;
  if (user?.includes(":"))
    fail(`${at}.username`, `NAME only (${NO_PASSWORD}: name its environment variable with password-env)`);
  if (variable !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable))
    fail(`${at}.password-env`, `"${variable}" is not an environment variable's name`);
  if (user && !variable)
    fail(
      at,
      "username needs password-env: the environment variable holding the password (the console cannot ask for it)",
    );
  if (variable && !user) fail(`${at}.password-env`, "needs username (the etcd user whose password it holds)");
}

/** Where a hotkey or a plugin applies unless it says: every view (not the detail pane, whose keys scroll it). */
const ALL_VIEWS: Context[] = VIEWS.map((v) => v.name);

const COLUMN_TITLES: Record<ViewName, string[]> = {
  machines: machinesTable(EMPTY_SNAPSHOT).columns.map((c) => c.title),
  units: unitsTable(EMPTY_SNAPSHOT).columns.map((c) => c.title),
  keys: keysTable(EMPTY_SNAPSHOT, 0).columns.map((c) => c.title),
  members: membersTable(EMPTY_SNAPSHOT).columns.map((c) => c.title),
  containers: containersTable(EMPTY_SNAPSHOT).columns.map((c) => c.title),
};
