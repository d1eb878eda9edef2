// `berth console`: the full-screen view of the cluster (Ink). It connects like every client subcommand
// (--endpoint, TLS flags, --tunnel) and keeps reconnecting to whichever endpoint answers; Ink and React are
// loaded only here, so the one-shot subcommands do not pay for them.

import { MONOCHROME, prepareChalk } from "../tui/color.ts";
import { ConsoleConfigError, type ContextSettings, loadConsoleConfig } from "../tui/config.ts";
import { MOUSE_OFF, MOUSE_ON } from "../tui/mouse.ts";
import { ConsoleSource } from "../tui/source.ts";
import { CLIENT_FLAGS, clusterConnector } from "./client-command.ts";
import type { Command } from "./command.ts";
import { EXIT, UsageError } from "./exit-codes.ts";
import type { FlagValues } from "./flags.ts";

const ALT_SCREEN_ON = "\x1b[?1049h";
const ALT_SCREEN_OFF = "\x1b[?1049l";
const CURSOR_SHOW = "\x1b[?25h";
const CURSOR_HIDE = "\x1b[?25l";

/**
 * The flags of a context: the console's own, its connection settings replaced by the context's. The console's
 * --username is one of them (a user and password of one cluster are not sent to another); the context's username
 * gets its password from the environment variable its password-env names, read now.
 */
export function contextFlags(
  flags: FlagValues,
  settings: ContextSettings,
  env: NodeJS.ProcessEnv = process.env,
): FlagValues {
  const out: FlagValues = { ...flags };
  for (const name of [
    "endpoint",
    "username",
    "tunnel",
    "ssh-username",
    "ssh-identity",
    "ca-file",
    "cert-file",
    "key-file",
  ])
    delete out[name];
  const { "password-env": variable, ...connection } = settings;
  if (typeof variable === "string") {
    const password = env[variable];
    if (!password) throw new UsageError(`the environment variable ${variable} (password-env) is not set`);
    connection.username = `${connection.username}:${password}`;
  }
  return { ...out, ...connection };
}

export const consoleCommand: Command = {
  name: "console",
  summary: "full-screen live view of machines, units, keys, members and containers, with keyboard actions",
  usage: "[--refresh DURATION] [--readonly] [--console-config FILE]",
  description: `
Shows the cluster live (updated as the store changes, and polled every --refresh for liveness and health): machines, units with their state on each machine, the key/value
tree, the members with the leader and their health, and every machine's containers. Keys: 1-5 or Tab switch views, arrows or j/k move, Enter
opens a unit's status and journal, a key directory or a member's Raft state, i a machine's detail, Esc goes
back, l follows a unit's journal live (a pane scrolls: f pauses/follows, / n N search, w wraps, g G), / filters
the rows, :ctx NAME switches to a cluster the config names, s/x/R/u/d start, stop, restart, unload and destroy the selected unit (or the ones marked with Space),
d deletes the selected key, r refreshes, ? lists the keys, q quits. Every action but start asks a y/n question
naming its targets first; --readonly refuses them all (the header says READ-ONLY).

A JSON file configures it (--console-config, BERTH_CONSOLE_CONFIG, or ~/.config/berth/console.json if it exists;
$XDG_CONFIG_HOME/berth/console.json where XDG_CONFIG_HOME is set): {"readonly": true, "view": "units", "refresh": "2s",
"keys": {"stop": "S", "restart": ["ctrl-r"]}, "hotkeys": [{"key": "w", "view": "units", "filter": "web"}],
"columns": {"units": ["UNIT", "ACTIVE", "MACHINE"]}, "theme": {"title": "blue", "marked": "#ff8800"},
"contexts": {"prod": {"endpoint": "10.0.0.1:4001", "tunnel": "core@bastion:22", "ca-file": "ca.pem",
"username": "alice", "password-env": "PROD_PASSWORD"}}, "mouse": false,
"plugins": [{"key": "L", "label": "less", "views": ["units"], "command": "berth journal -n 1000 \\"$BERTH_UNIT\\" | less",
"background": false, "confirm": false}]}. A context's username is an etcd user's NAME; its password is read, when
:ctx connects, from the environment variable password-env names (never from the file). A plugin runs with sh,
with BERTH_UNIT, BERTH_MACHINE, BERTH_KEY, BERTH_MEMBER, BERTH_MARKED, BERTH_VIEW and BERTH_ENDPOINT set: in the
background (no terminal; its last output line shows), or with "background": false on the terminal, the console
stepping aside until it exits. A setting
the console cannot use stops it (exit 2) naming the file and the line. NO_COLOR (or FORCE_COLOR=0) turns the colours off; the
selected row stays in reverse video. Reaches any node, directly
(--endpoint) or through SSH (--tunnel, BERTH_TUNNEL); when the connection drops it reconnects to whichever
endpoint answers. Needs a terminal: scripts use list-machines, list-units and kv ls.`,
  flags: [
    {
      name: "refresh",
      type: "duration",
      description: "how often to poll the cluster (changes to units and keys show at once anyway)",
      env: "BERTH_CONSOLE_REFRESH",
      shownDefault: "1s, or the config's refresh",
    },
    {
      name: "console-config",
      type: "string",
      value: "FILE",
      description:
        "the console's configuration file (JSON: keys, hotkeys, plugins, view, refresh, columns, theme)",
      env: "BERTH_CONSOLE_CONFIG",
      shownDefault: "~/.config/berth/console.json, if it exists",
    },
    {
      name: "local-cluster",
      type: "string",
      value: "FILE",
      description:
        "set by npm start: q asks first (quitting stops the local cluster), and FILE's lines (nodes that failed to start or exited) show",
    },
    {
      name: "readonly",
      type: "boolean",
      description: "look, do not touch: every key that would change the cluster is refused",
      env: "BERTH_CONSOLE_READONLY",
    },
    ...CLIENT_FLAGS,
  ],
  async run(parsed) {
    const flags = parsed.flags;
    let config: ReturnType<typeof loadConsoleConfig>;
    try {
      config = loadConsoleConfig(
        typeof flags["console-config"] === "string" ? flags["console-config"] : null,
      );
    } catch (err) {
      if (err instanceof ConsoleConfigError) throw new UsageError(err.message);
      throw err;
    }
    if (!process.stdin.isTTY || !process.stdout.isTTY)
      throw new UsageError(
        "berth console needs a terminal; in scripts use list-machines, list-units or kv ls",
      );
    const refreshMs = Math.max(100, Number(flags.refresh ?? config.refreshMs ?? 1000));
    let cluster = await clusterConnector(flags, "console");
    const source = new ConsoleSource({ refreshMs, connect: cluster.connect });
    // Connecting and the first answers (10,000s of units) overlap loading the screen's modules: the first frame
    // shows data sooner. The screen reads what the source has when it starts, and hears of the rest.
    source.start();

    // Ink draws only the final frame when CI or CONTINUOUS_INTEGRATION is set (is-in-ci, read when Ink loads);
    // the console runs on a terminal (checked above), where it must draw live whatever the environment says.
    delete process.env.CI;
    delete process.env.CONTINUOUS_INTEGRATION;
    if (prepareChalk(process.env)) config = { ...config, theme: MONOCHROME };
    const [{ render }, { createElement }, { App }, { installFastOutput }, { installLineLog }] =
      await Promise.all([
        import("ink"),
        import("react"),
        import("../tui/app.tsx"),
        import("../tui/ink-output.ts"),
        import("../tui/line-log.ts"),
      ]).catch((err) => {
        source.stop();
        throw err;
      });
    installFastOutput();
    // The mouse is reported (wheel, clicks) while the console runs, and never after it: turned off with the
    // alternate screen, on every way out.
    const mouse = config.mouse ? MOUSE_ON : "";
    const restoreScreen = () => process.stdout.write(`${config.mouse ? MOUSE_OFF : ""}${ALT_SCREEN_OFF}`);
    // Around a foreground plugin: the shell's screen with a cursor, then the console's again, emptied (Ink draws
    // its frame anew) with the cursor hidden as Ink hid it.
    const terminal = {
      release: () => process.stdout.write(`${config.mouse ? MOUSE_OFF : ""}${ALT_SCREEN_OFF}${CURSOR_SHOW}`),
      restore: () => process.stdout.write(`${ALT_SCREEN_ON}${mouse}${CURSOR_HIDE}\x1b[H\x1b[2J`),
    };
    // The frames start on the screen's first row (src/tui/line-log.ts addresses their lines by row).
    process.stdout.write(`${ALT_SCREEN_ON}${mouse}\x1b[H`);
    process.once("exit", restoreScreen);
    const instance = render(
      createElement(App, {
        source,
        label: cluster.via,
        readonly: flags.readonly === true,
        config,
        terminal,
        localCluster: typeof flags["local-cluster"] === "string" ? flags["local-cluster"] : undefined,
        switchContext: async (name: string) => {
          // The context's connection settings replace the ones the console was started with (endpoints, tunnel,
          // TLS); a context that cannot be reached (its tunnel fails) leaves the console where it was.
          const next = await clusterConnector(contextFlags(flags, config.contexts[name]!), "console");
          cluster.close();
          cluster = next;
          source.reconnect(next.connect);
          return { label: next.via };
        },
      }),
      { exitOnCtrlC: false },
    );
    // An unchanged frame writes nothing; a changed one rewrites only its changed lines (inside synchronized output
    // where the terminal supports it).
    installLineLog(process.stdout);
    const quit = () => instance.unmount();
    process.once("SIGTERM", quit);
    process.once("SIGHUP", quit);
    try {
      await instance.waitUntilExit();
    } finally {
      source.stop();
      cluster.close();
      restoreScreen();
      process.off("exit", restoreScreen);
    }
    return EXIT.ok;
  },
};
