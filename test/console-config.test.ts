// The console's configuration file as data: what each setting does to the key table, the views and the colours;
// every refusal names the file and the line; hotkeys and plugins through the reducer; a plugin run by sh.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { contextFlags } from "../src/cli/console-command.ts";
import { colorsOff } from "../src/tui/color.ts";
import {
  ConsoleConfigError,
  DEFAULT_CONFIG,
  defaultConfigPath,
  loadConsoleConfig,
  parseConsoleConfig,
} from "../src/tui/config.ts";
import { parseJsonWithLines } from "../src/tui/json-lines.ts";
import { bindingFor, footerText } from "../src/tui/keys.ts";
import { type Row, withColumns } from "../src/tui/model.ts";
import { runPlugin } from "../src/tui/plugin.ts";
import { initialState, reduce, type Screen } from "../src/tui/reducer.ts";

const FULL = `{
  "readonly": false,
  "view": "units",
  "refresh": "2s",
  "keys": { "stop": "S", "restart": ["ctrl-r", "T"] },
  "hotkeys": [{ "key": "w", "view": "units", "filter": "web" }],
  "columns": { "units": ["unit", "ACTIVE", "MACHINE"] },
  "theme": { "title": "blue", "marked": "#ff8800" },
  "plugins": [
    { "key": "L", "label": "logs", "views": ["units"], "command": "echo $BERTH_UNIT", "confirm": true }
  ]
}
`;

/** The error parseConsoleConfig gives for `text`. */
function refusal(text: string): string {
  try {
    parseConsoleConfig(text, "c.json");
  } catch (err) {
    expect(err).toBeInstanceOf(ConsoleConfigError);
    return (err as Error).message;
  }
  throw new Error("the configuration was accepted");
}

/** A screen with no rows: enough for keys that do not need one. */
const plainScreen: Screen = {
  rows: () => [],
  keyDir: "/",
  columns: () => [],
  pageSize: 10,
  helpLength: 20,
  pane: () => ({ lines: [], offset: 0 }),
  paneHeight: 10,
  contexts: [],
  rowAt: () => null,
  bindings: [],
};

describe("console configuration", () => {
  it("remaps keys, adds hotkeys and plugins to the key table, and sets view, refresh, columns, colours", () => {
    const c = parseConsoleConfig(FULL, "c.json");
    expect(c).toMatchObject({ file: "c.json", readonly: false, view: "units", refreshMs: 2000 });
    expect(bindingFor(c.bindings, "units", "S")?.action).toBe("stop");
    expect(bindingFor(c.bindings, "units", "x")).toBeUndefined();
    expect(bindingFor(c.bindings, "units", "ctrl-r")?.action).toBe("restart");
    expect(bindingFor(c.bindings, "machines", "w")).toMatchObject({
      action: "hotkey",
      hotkey: { view: "units", filter: "web" },
    });
    expect(bindingFor(c.bindings, "units", "L")).toMatchObject({
      action: "plugin",
      command: "echo $BERTH_UNIT",
    });
    expect(bindingFor(c.bindings, "machines", "L")).toBeUndefined();
    expect(footerText(c.bindings, "units", 300)).toContain("S stop  Ctrl-R restart");
    expect(footerText(c.bindings, "units", 300)).toContain("L logs");
    expect(c.columns).toEqual({ units: ["UNIT", "ACTIVE", "MACHINE"] });
    expect(c.theme).toMatchObject({ title: "blue", marked: "#ff8800", good: "green" });
    expect(parseConsoleConfig("{}", "c.json")).toEqual({ ...DEFAULT_CONFIG, file: "c.json" });
  });

  it("refuses what it cannot use, naming the file and the line", () => {
    expect(refusal('{\n  "view": "units"\n  "refresh": "2s"\n}')).toBe(
      'c.json:3: expected "," or "}" after "view", found "\\""',
    );
    expect(refusal('{\n  "keys": {\n    "stop": "S",\n    "halt": "H"\n  }\n}')).toMatch(
      /^c\.json:4: keys\.halt: unknown action \(the actions are open, describe, journal, start, /,
    );
    expect(refusal('{\n  "keys": { "stop": "F12" }\n}')).toMatch(
      /^c\.json:2: keys\.stop: "F12" is not a key: one character/,
    );
    expect(refusal('{\n  "keys": {\n    "stop": "d"\n  }\n}')).toBe(
      "c.json:3: keys.stop: d is bound to both stop and destroy in units",
    );
    expect(
      refusal(
        '{\n  "plugins": [\n    { "key": "l", "label": "x", "views": ["units"], "command": "true" }\n  ]\n}',
      ),
    ).toBe('c.json:3: plugins.0: l is bound to both journal and plugin "x" in units');
    expect(refusal('{\n  "columns": {\n    "units": [\n      "UNIT",\n      "HOST"\n    ]\n  }\n}')).toBe(
      "c.json:5: columns.units.1: the units view has no column HOST (UNIT, DESIRED, STATE, MACHINE, ACTIVE, SUB)",
    );
    expect(refusal('{ "theme": {\n  "good": "greenish" } }')).toMatch(
      /^c\.json:2: theme\.good: "greenish" is not a colour/,
    );
    expect(refusal('{\n\n  "redonly": true }')).toMatch(/^c\.json:3: redonly: unknown setting/);
    expect(refusal('{ "view": "pods" }')).toMatch(
      /^c\.json:1: view: "pods" is not a view: machines, units, keys, members/,
    );
    expect(refusal('{ "refresh": "soon" }')).toBe("c.json:1: refresh: must be a duration like 2s or 500ms");
    expect(refusal('{\n  "mouse": "off" }')).toBe("c.json:2: mouse: must be true or false");
    expect(parseConsoleConfig('{ "mouse": false }', "c.json").mouse).toBe(false);
    expect(refusal("[1, 2")).toBe(
      'c.json:1: unexpected end of file, expected "," or "]" in the list, found the end of the file',
    );
  });

  it("names clusters to switch to (contexts): endpoints as a list, files next to the config, each setting checked", () => {
    const c = parseConsoleConfig(
      JSON.stringify({
        contexts: {
          prod: { endpoint: "10.0.0.1:4001, 10.0.0.2:4001", tunnel: "core@bastion:22", "ca-file": "ca.pem" },
          lab: { endpoint: ["127.0.9.1:4001"], "strict-host-key-checking": false, "cert-file": "/etc/c.pem" },
        },
      }),
      "/home/op/.config/berth/console.json",
    );
    expect(c.contexts).toEqual({
      prod: {
        endpoint: ["10.0.0.1:4001", "10.0.0.2:4001"],
        tunnel: "core@bastion:22",
        "ca-file": "/home/op/.config/berth/ca.pem",
      },
      lab: { endpoint: ["127.0.9.1:4001"], "strict-host-key-checking": false, "cert-file": "/etc/c.pem" },
    });
    expect(refusal('{ "contexts": {\n  "prod": { "endpoint": "a:1",\n    "passwd": "x" } } }')).toMatch(
      /^c\.json:3: contexts\.prod\.passwd: unknown setting \(a context sets endpoint, username, password-env, /,
    );
    expect(refusal('{ "contexts": {\n  "prod": { "tunnel": "a@b" } } }')).toBe(
      "c.json:2: contexts.prod: names no endpoint (endpoint: HOST:PORT or a list)",
    );
    expect(
      refusal('{ "contexts": { "prod": { "endpoint": "a:1", "strict-host-key-checking": "no" } } }'),
    ).toBe("c.json:1: contexts.prod.strict-host-key-checking: must be true or false");
  });

  it("a context's etcd user: the NAME in the file, its password in the environment variable password-env names", () => {
    const c = parseConsoleConfig(
      '{ "contexts": { "prod": { "endpoint": "a:1", "username": "alice", "password-env": "PROD_PW" } } }',
      "c.json",
    );
    expect(c.contexts.prod).toEqual({ endpoint: ["a:1"], username: "alice", "password-env": "PROD_PW" });
    // Each refusal as [config, message]: the setting's line, or the context's when two settings go together.
    const refused: [string, string][] = [
      [
        '{ "contexts": {\n  "prod": { "endpoint": "a:1", "username": "alice",\n    "password": "alicepw" } } }',
        "c.json:3: contexts.prod.password: a password is not kept in the config file: put it in an environment variable and name that with password-env",
      ],
      [
        '{ "contexts": {\n  "prod": { "endpoint": "a:1",\n    "username": "alice:alicepw", "password-env": "P" } } }',
        "c.json:3: contexts.prod.username: NAME only (a password is not kept in the config file: name its environment variable with password-env)",
      ],
      [
        '{ "contexts": {\n  "prod": { "endpoint": "a:1",\n    "username": "alice" } } }',
        "c.json:2: contexts.prod: username needs password-env: the environment variable holding the password (the console cannot ask for it)",
      ],
      [
        '{ "contexts": {\n  "prod": { "endpoint": "a:1",\n    "password-env": "P" } } }',
        "c.json:3: contexts.prod.password-env: needs username (the etcd user whose password it holds)",
      ],
      [
        '{ "contexts": {\n  "prod": { "endpoint": "a:1", "username": "alice",\n    "password-env": "$PROD PW" } } }',
        'c.json:3: contexts.prod.password-env: "$PROD PW" is not an environment variable\'s name',
      ],
      [
        '{ "contexts": {\n  "prod": { "endpoint": "a:1",\n    "username": "", "password-env": "P" } } }',
        "c.json:3: contexts.prod.username: must be a non-empty string",
      ],
    ];
    for (const [text, message] of refused) expect(refusal(text), text).toBe(message);
  });

  it("a context's flags replace the console's connection flags, its --username included; the password read from the environment", () => {
    const console = { endpoint: ["unix:///run/a.sock"], username: "root:rootpw", "request-timeout": 3000 };
    expect(contextFlags(console, { endpoint: ["b:1"] }, {})).toEqual({
      endpoint: ["b:1"],
      "request-timeout": 3000,
    });
    const prod = { endpoint: ["b:1"], username: "alice", "password-env": "PROD_PW" };
    expect(contextFlags(console, prod, { PROD_PW: "s3:cret" })).toEqual({
      endpoint: ["b:1"],
      username: "alice:s3:cret",
      "request-timeout": 3000,
    });
    expect(() => contextFlags(console, prod, {})).toThrow(
      "the environment variable PROD_PW (password-env) is not set",
    );
  });

  it("a plugin runs in the background unless it says background: false (then it has the terminal)", () => {
    const c = parseConsoleConfig(
      JSON.stringify({
        plugins: [
          { key: "L", label: "less", command: "berth journal $BERTH_UNIT | less", background: false },
          { key: "N", label: "note", command: "echo $BERTH_UNIT", background: true },
          { key: "M", label: "mail", command: "true" },
        ],
      }),
      "c.json",
    );
    expect(["L", "N", "M"].map((k) => bindingFor(c.bindings, "units", k)?.background)).toEqual([
      false,
      true,
      true,
    ]);
    const run = (key: string) =>
      reduce(
        initialState({ view: "machines" }),
        { type: "key", name: key },
        { ...plainScreen, bindings: c.bindings },
      ).effects[0];
    expect(run("L")).toMatchObject({ kind: "plugin", label: "less", background: false });
    expect(run("M")).toMatchObject({ kind: "plugin", label: "mail", background: true });
    expect(
      refusal(
        '{ "plugins": [\n  { "key": "L", "label": "less", "command": "less",\n    "background": "no" } ] }',
      ),
    ).toBe("c.json:3: plugins.0.background: must be true or false");
    expect(
      refusal(
        '{ "plugins": [\n  { "key": "L", "label": "less", "command": "less",\n    "foreground": true } ] }',
      ),
    ).toBe(
      "c.json:3: plugins.0.foreground: unknown setting (a plugin sets key, label, command, views, confirm, background)",
    );
  });

  it("reads JSON as JSON.parse does, with the line of every value", () => {
    const text = '{"a": [1, -2.5e3, true, null, "x\\"y"],\n "b": {\n  "c": "\\u00e9"}}';
    const { value, lines } = parseJsonWithLines(text);
    expect(value).toEqual(JSON.parse(text));
    expect(lines.get("a.4")).toBe(1);
    expect(lines.get("b")).toBe(2);
    expect(lines.get("b.c")).toBe(3);
  });

  describe("files", () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-console-config-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("reads the named file (which must exist), or the default one when it exists", () => {
      const file = join(dir, "console.json");
      writeFileSync(file, '{ "view": "keys" }');
      expect(loadConsoleConfig(file).view).toBe("keys");
      expect(() => loadConsoleConfig(join(dir, "missing.json"))).toThrow(
        /cannot read the console configuration/,
      );
      expect(defaultConfigPath({ XDG_CONFIG_HOME: dir })).toBe(join(dir, "berth", "console.json"));
      expect(defaultConfigPath({ HOME: "/home/op" })).toMatch(/\/\.config\/berth\/console\.json$/);
    });
  });
});

describe("console configuration at work", () => {
  const rows: Row[] = [{ id: "web.service", key: "web.service m1", machine: "m1", cells: ["web.service"] }];
  const screenWith = (bindings: Screen["bindings"]): Screen => ({
    rows: (view, filter) => (view === "units" ? rows.filter((r) => r.id.includes(filter)) : []),
    keyDir: "/",
    columns: () => ["UNIT", "ACTIVE"],
    pageSize: 10,
    helpLength: 20,
    pane: () => ({ lines: [], offset: 0 }),
    paneHeight: 10,
    contexts: [],
    rowAt: (line) => (line >= 4 ? line - 4 : null),
    bindings,
  });
  const c = parseConsoleConfig(FULL, "c.json");

  it("a hotkey opens its view with its filter; a plugin gets the selected row (after its question)", () => {
    const hot = reduce(initialState(), { type: "key", name: "w" }, screenWith(c.bindings));
    expect(hot.state).toMatchObject({
      view: "units",
      filter: "web",
      selected: { units: { key: "web.service m1" } },
    });
    const asked = reduce(hot.state, { type: "key", name: "L" }, screenWith(c.bindings));
    expect(asked.effects).toEqual([]);
    const ran = reduce(asked.state, { type: "key", name: "y" }, screenWith(c.bindings));
    expect(ran.effects).toEqual([
      {
        kind: "plugin",
        label: "logs",
        command: "echo $BERTH_UNIT",
        env: { BERTH_VIEW: "units", BERTH_MARKED: "", BERTH_UNIT: "web.service", BERTH_MACHINE: "m1" },
        background: true,
      },
    ]);
    const readonly = reduce(
      initialState({ view: "units", readonly: true }),
      { type: "key", name: "L" },
      screenWith(c.bindings),
    );
    expect(readonly.state.message?.text).toBe("read-only: logs is disabled (--readonly)");
  });

  it("shows only the configured columns, in their order", () => {
    const t = withColumns(
      {
        columns: [{ title: "UNIT" }, { title: "DESIRED" }, { title: "ACTIVE" }],
        rows: [{ id: "a", cells: ["a", "launched", "active"] }],
      },
      ["ACTIVE", "UNIT"],
    );
    expect(t.columns.map((x) => x.title)).toEqual(["ACTIVE", "UNIT"]);
    expect(t.rows[0]!.cells).toEqual(["active", "a"]);
  });

  it("runs a plugin with sh, its environment set, and reports its last line or its failure", async () => {
    expect(
      await runPlugin("logs", 'echo first; echo "unit=$BERTH_UNIT"', { BERTH_UNIT: "web.service" }),
    ).toBe("logs: unit=web.service");
    await expect(runPlugin("bad", "echo nope >&2; exit 3", {})).rejects.toThrow("bad: exit 3: nope");
  });
});

describe("console colours", () => {
  it("are off under NO_COLOR (set, not empty) and FORCE_COLOR=0 or false, on otherwise", () => {
    expect(colorsOff({ NO_COLOR: "1" })).toBe(true);
    expect(colorsOff({ NO_COLOR: "" })).toBe(false);
    expect(colorsOff({ FORCE_COLOR: "0" })).toBe(true);
    expect(colorsOff({ FORCE_COLOR: "false" })).toBe(true);
    expect(colorsOff({ FORCE_COLOR: "1" })).toBe(false);
    expect(colorsOff({})).toBe(false);
  });
});
