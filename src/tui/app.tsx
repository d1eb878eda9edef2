// The console's screen: a header (where it is connected, the leader, counts), one of four views (machines, units,
// keys, members) as a table, a detail pane for a unit or a key, and a footer with the keys and the last message.
// What each key does is in keys.ts (the table) and reducer.ts (the state it changes); this file draws the state and
// runs the effects the reducer asks for against the cluster.
import { Box, Text, useApp, useInput, useStdin, useStdout } from "ink";
import { type ReactElement, useEffect, useRef, useState } from "react";
import { candidates } from "./commands.ts";
import { type ConsoleConfig, DEFAULT_CONFIG } from "./config.ts";
import { headerStatus } from "./header.ts";
import { footerText, helpLines, keyName } from "./keys.ts";
import { LOCAL_CLUSTER_QUIT, readNodeProblems } from "./local-cluster.ts";
import {
  type ClusterSnapshot,
  filterRows,
  prepareFilter,
  tableFor,
  VIEWS,
  type ViewName,
  withColumns,
} from "./model.ts";
import { parseMouse } from "./mouse.ts";
import { type PaneState, paneContent, paneRows, paneStatus } from "./pane.ts";
import { runPlugin, runPluginInForeground } from "./plugin.ts";
import {
  type Detail,
  type Effect,
  type Event,
  initialState,
  questionLine,
  reduce,
  type Screen,
  selectedIndex,
  type UiState,
} from "./reducer.ts";
import { type Sort, sortRows } from "./sort.ts";
import type { ConsoleSource, SourceState } from "./source.ts";
import { columnWidths, Table, windowStart } from "./table.tsx";

/** Keys that arrive as characters among others (typed faster than read): their names. */
const RAW_KEYS: Record<string, string> = {
  "\r": "enter",
  "\t": "tab",
  "\x7f": "backspace",
  "\b": "backspace",
};

/** Views whose tables are prepared ahead of the key that shows them (the others are small, or change each second). */
const PREPARED_VIEWS: ViewName[] = ["machines", "units"];
/** How long the data stays unchanged before the tables are prepared (a burst of changes: once). */
const PREPARE_AFTER_MS = 50;

const TITLE = "Berth console";
const READ_ONLY = "READ-ONLY";
const UNREACHABLE = "UNREACHABLE";
/** The screen line of the table's first row (under the header, the tabs, the problems line, the titles). */
const TABLE_FIRST_LINE = 4;

/**
 * How long a foreground plugin waits, once the frame is held, before the screen changes: Ink writes a frame up to
 * 1/30 s after React renders it, and one written after the console left its screen would land on the command's.
 */
const SETTLE_MS = 100;

/** The terminal's modes the console sets (alternate screen, mouse reports, hidden cursor), for a foreground plugin. */
export interface TerminalModes {
  /** Back to the terminal as the shell had it. */
  release(): void;
  /** The console's modes again, on an empty screen. */
  restore(): void;
}

/** `label` follows the endpoint in the header (" via core@bastion:22" through a tunnel). */
export function App(props: {
  source: ConsoleSource;
  label: string;
  /** --readonly (or the config's "readonly"). */
  readonly?: boolean;
  config?: ConsoleConfig;
  /** Connects the source to the cluster the config's context `name` names (:ctx); the new header label. */
  switchContext?: (name: string) => Promise<{ label: string }>;
  /** Given up and taken back around a foreground plugin (see TerminalModes). */
  terminal?: TerminalModes;
  /** `npm start`'s file of node problems (src/tui/local-cluster.ts): shown, and q asks before quitting. */
  localCluster?: string;
}) {
  const { source } = props;
  const config = props.config ?? DEFAULT_CONFIG;
  const { bindings, theme } = config;
  const tableOf = (view: ViewName, snapshot: ClusterSnapshot, sort: Sort | null = uiRef.current.sort[view]) =>
    sortRows(withColumns(tableFor(view, snapshot, Date.now()), config.columns[view]), sort);
  const { exit } = useApp();
  const { stdout, write } = useStdout();
  const { setRawMode } = useStdin();
  // While a foreground plugin has the terminal, the frame drawn before it is all the console renders (Ink then
  // writes nothing), and Ink does not read the keys.
  const suspendedRef = useRef(false);
  const heldFrame = useRef<ReactElement | null>(null);
  const [state, setState] = useState<SourceState>(source.current);
  // The UI state lives in a ref the keys update at once: keys typed faster than React renders ("d" then "y") must
  // see the effect of the key before them; the React state only triggers the render.
  const uiRef = useRef<UiState>(
    initialState({
      readonly: props.readonly || config.readonly,
      view: config.view,
      quitQuestion: props.localCluster ? LOCAL_CLUSTER_QUIT : null,
    }),
  );
  const [ui, setUi] = useState(uiRef.current);
  const [size, setSize] = useState({ columns: stdout.columns || 100, rows: stdout.rows || 30 });
  const windowStartRef = useRef(0);
  // The context switched to with :ctx (its name leads the endpoint in the header), and its tunnel's label.
  const [context, setContext] = useState<{ name: string | null; label: string }>({
    name: null,
    label: props.label,
  });

  useEffect(() => source.onChange(setState), [source]);
  // The tables a key may show next (the Units view's 10,000 rows: built, measured, ready to filter) are prepared
  // while nothing happens, once per change of the data, not on the key that opens them.
  // biome-ignore lint/correctness/useExhaustiveDependencies: tableOf is a new function each render; what it reads is listed
  useEffect(() => {
    const timer = setTimeout(() => {
      for (const v of PREPARED_VIEWS) {
        const table = tableOf(v, state.snapshot, ui.sort[v]);
        columnWidths(table, size.columns);
        prepareFilter(table);
      }
    }, PREPARE_AFTER_MS);
    return () => clearTimeout(timer);
  }, [state.snapshot, size.columns, ui.sort]);
  const nodeProblems = useNodeProblems(props.localCluster, config.refreshMs ?? 1000);
  // Every machine's containers are asked for (an agent and a Docker engine each) only while their view shows.
  useEffect(() => source.showContainers(ui.view === "containers"), [source, ui.view]);
  useEffect(() => {
    const onResize = () => setSize({ columns: stdout.columns || 100, rows: stdout.rows || 30 });
    stdout.on("resize", onResize);
    return () => {
      stdout.off("resize", onResize);
    };
  }, [stdout]);

  // One line short of the terminal: Ink erases the whole screen before every frame as tall as the terminal
  // (clearTerminal, a visible flicker); shorter frames get only their changed lines rewritten (src/tui/line-log.ts).
  const height = Math.max(1, size.rows - 1);
  const bodyHeight = Math.max(3, height - 5);

  const help = helpLines(bindings, uiRef.current.readonly, size.columns);
  const screen = (): Screen => ({
    rows: (view: ViewName, filter: string, sort: Sort | null) =>
      filterRows(tableOf(view, source.current.snapshot, sort), filter).rows,
    columns: (view: ViewName) => tableOf(view, source.current.snapshot).columns.map((c) => c.title),
    keyDir: source.current.snapshot.keyDir,
    pageSize: Math.max(1, bodyHeight - 2),
    helpLength: help.length,
    bindings,
    pane: () => {
      const d = uiRef.current.detail;
      return d ? paneContent(d, source.current.snapshot, source.current.journal) : { lines: [], offset: 0 };
    },
    paneHeight: bodyHeight - 1,
    contexts: Object.keys(config.contexts),
    rowAt: (line: number) => {
      // Lines 0-2: header, tabs, problems; 3: the table's titles; then its rows from the window's first.
      const at = line - TABLE_FIRST_LINE;
      return at >= 0 && at < bodyHeight - 1 ? windowStartRef.current + at : null;
    },
  });

  const dispatch = (event: Event) => {
    const r = reduce(uiRef.current, event, screen());
    uiRef.current = r.state;
    setUi(r.state);
    for (const e of r.effects) run(e);
  };

  const foreground = async (label: string, command: string, env: Record<string, string>) => {
    suspendedRef.current = true;
    setRawMode(false);
    try {
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      props.terminal?.release();
      try {
        return await runPluginInForeground(label, command, env);
      } finally {
        props.terminal?.restore();
        // Ink rewrites its last frame whole after what it writes (here nothing): the screen was emptied.
        write("");
      }
    } finally {
      setRawMode(true);
      suspendedRef.current = false;
    }
  };

  const act = (what: Promise<string>) => {
    dispatch({ type: "message", message: { text: "working…", tone: "info" } });
    what.then(
      (text) => dispatch({ type: "message", message: { text, tone: "info" } }),
      (err) =>
        dispatch({
          type: "message",
          message: { text: (err as Error).message ?? String(err), tone: "error" },
        }),
    );
  };

  const run = (e: Effect) => {
    switch (e.kind) {
      case "exit":
        return exit();
      case "refresh":
        return void source.refresh();
      case "prepareFilter":
        return prepareFilter(tableOf(uiRef.current.view, source.current.snapshot));
      case "keyDir":
        return source.setKeyDir(e.dir);
      case "context": {
        const switching = props.switchContext;
        if (!switching) return;
        return act(
          switching(e.name).then(({ label }) => {
            setContext({ name: e.name, label });
            return `switched to ${e.name}`;
          }),
        );
      }
      case "detail":
        // A machine's or a member's detail is read from the snapshot; a unit's status is asked for.
        source.setDetail(e.detail?.kind === "unit" ? e.detail.id : null);
        if (e.detail?.kind === "journal") source.follow(e.detail.id);
        else source.stopFollowing();
        return;
      case "plugin": {
        const env = { ...e.env, BERTH_ENDPOINT: source.current.endpoint ?? "" };
        return act(e.background ? runPlugin(e.label, e.command, env) : foreground(e.label, e.command, env));
      }
      case "deleteKeys":
        return act(
          Promise.all(e.targets.map((t) => source.deleteKey(t.id, t.dir === true))).then(
            () => `deleted ${e.targets.map((t) => t.id).join(", ")}`,
          ),
        );
      case "units": {
        const names = e.names;
        const done = {
          start: "started",
          stop: "stopped",
          unload: "unloaded",
          restart: "restarted",
          destroy: "destroyed",
        }[e.op];
        const call =
          e.op === "destroy"
            ? source.destroy(names)
            : e.op === "restart"
              ? source.restart(names)
              : source.setDesired(
                  names,
                  { start: "launched", stop: "loaded", unload: "inactive" }[e.op] as "launched",
                );
        return act(call.then(() => `${done} ${names.join(", ")}`));
      }
    }
  };

  useInput((input, key) => {
    // A mouse report (the terminal reports them while the console runs: see mouse.ts), not keys.
    const mouse = parseMouse(input);
    if (mouse) {
      if (mouse.kind !== "ignored") dispatch({ type: "mouse", event: mouse });
      return;
    }
    // Keys typed faster than the terminal is read (a held-down j, "g" then Enter) arrive as one string.
    if (input.length > 1 && !key.ctrl && !key.meta) {
      for (const ch of input) dispatch({ type: "key", name: RAW_KEYS[ch] ?? keyName(ch, {}) });
      return;
    }
    dispatch({ type: "key", name: keyName(input, key) });
  });

  const { view, detail, filter, editingFilter, question, message } = ui;
  const table = filterRows(tableOf(view, state.snapshot, ui.sort[view]), filter);
  const sel = selectedIndex(ui.selected[view], table.rows);
  const marks = ui.marks[view];

  // No clock in the header: the data is live (watches), and a clock would redraw the screen every second.
  const s = state.snapshot;
  const leader = s.members.find((m) => m.isLeader)?.name ?? "-";
  const up = s.machines.filter((m) => m.state !== "lost").length;
  // The cluster does not answer: what shows is the last data seen, said so in the header and drawn dim.
  const stale = state.unreachableSince !== null;
  const staleNote = stale && s.updatedAt ? [`stale: data of ${clockTime(s.updatedAt)}`] : [];
  windowStartRef.current = windowStart(sel, bodyHeight - 1, windowStartRef.current, table.rows.length);

  // Every part is clipped to its lines: a frame taller than planned (a header wrapping on a narrow terminal) would
  // scroll the terminal and leave the line-by-line updates misplaced.
  const frame = (
    <Box flexDirection="column" width={size.columns} height={height} overflow="hidden">
      <Box height={1} overflow="hidden">
        <Text bold color={theme.title}>
          {TITLE}
        </Text>
        {ui.readonly ? (
          <Text bold color={theme.readonly}>
            {`  ${READ_ONLY}`}
          </Text>
        ) : null}
        {stale ? (
          <Text bold color={theme.error}>
            {`  ${UNREACHABLE}`}
          </Text>
        ) : null}
        {nodeProblems.length > 0 ? (
          <Text bold color={theme.error}>
            {`  ${nodeProblems.length} NODE${nodeProblems.length > 1 ? "S" : ""} DOWN`}
          </Text>
        ) : null}
        <Text wrap="truncate">
          {headerStatus(
            `${state.endpoint ?? "not connected"}${context.label}`,
            [
              ...(context.name ? [`ctx ${context.name}`] : []),
              ...staleNote,
              `leader ${leader}`,
              `machines ${up}/${s.machines.length} up`,
              `units ${s.units.length}`,
            ],
            size.columns -
              TITLE.length -
              (ui.readonly ? READ_ONLY.length + 2 : 0) -
              (stale ? UNREACHABLE.length + 2 : 0) -
              (nodeProblems.length > 0 ? 14 : 0),
          )}
        </Text>
      </Box>
      <Box height={1} overflow="hidden">
        {VIEWS.map((v) => (
          <Text key={v.name} inverse={v.name === view} bold={v.name === view}>
            {` ${v.key} ${v.title} `}
          </Text>
        ))}
        {view === "keys" ? <Text color={theme.title}>{`  ${s.keyDir}`}</Text> : null}
        {filter || editingFilter ? (
          <Text color={theme.filter}>{`  /${filter}${editingFilter ? "▏" : ""}`}</Text>
        ) : null}
        {marks.length > 0 ? <Text color={theme.marked}>{`  ${marks.length} marked`}</Text> : null}
      </Box>
      {/*
        The line between the tabs and the table: what is wrong (the cluster does not answer; npm start's nodes that
        failed or exited), apart from the messages below, which answer the keys.
      */}
      <Box height={1} overflow="hidden">
        <Text color={theme.error} wrap="truncate">
          {[
            ...(state.error
              ? [state.endpoint ? state.error : `cannot reach the cluster: ${state.error} (retrying)`]
              : []),
            ...nodeProblems,
          ].join("; ") || " "}
        </Text>
      </Box>
      <Box flexDirection="column" height={bodyHeight} overflow="hidden">
        {ui.help ? (
          help.slice(ui.helpTop, ui.helpTop + bodyHeight).map((h, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: lines are positional
            <Text key={i} wrap="truncate">
              {h || " "}
            </Text>
          ))
        ) : question && question.targets.length > 1 ? (
          <Box flexDirection="column">
            <Text bold>{`${question.verb} these ${question.targets.length}?`}</Text>
            {question.targets.slice(0, bodyHeight - 1).map((t) => (
              <Text key={t.id} wrap="truncate">{`  ${t.id}${t.dir ? "/ and everything below it" : ""}`}</Text>
            ))}
          </Box>
        ) : detail ? (
          <DetailPane
            detail={detail}
            pane={ui.pane}
            state={state}
            width={size.columns}
            height={bodyHeight}
            theme={theme}
          />
        ) : view === "keys" && s.keys === null ? (
          <Text color={theme.warn}>{`${s.keyDir} does not exist (Esc: parent directory)`}</Text>
        ) : (
          <Table
            data={table}
            width={size.columns}
            height={bodyHeight}
            selected={sel}
            start={windowStartRef.current}
            marked={marks.length > 0 ? new Set(marks.map((t) => t.id)) : undefined}
            theme={theme}
            sort={ui.sort[view]}
            stale={stale}
            empty={filter ? `nothing matches /${filter} (Esc clears the filter)` : emptyText(view, state)}
          />
        )}
      </Box>
      <Box height={1} overflow="hidden">
        {ui.command !== null ? (
          <Text wrap="truncate">
            <Text bold>{`:${ui.command}▏`}</Text>
            <Text dimColor>{`   ${candidates(ui.command).join("  ")}`}</Text>
          </Text>
        ) : question ? (
          <Text color={theme.question} bold wrap="truncate">
            {questionLine(question, size.columns)}
          </Text>
        ) : message ? (
          <Text color={message.tone === "error" ? theme.error : theme.message} wrap="truncate">
            {message.text}
          </Text>
        ) : (
          <Text> </Text>
        )}
      </Box>
      <Text dimColor wrap="truncate">
        {ui.help
          ? help.length > bodyHeight
            ? `↑↓ scroll (${ui.helpTop + 1}-${Math.min(help.length, ui.helpTop + bodyHeight)} of ${help.length})  any other key closes`
            : "any key closes the help"
          : footerText(bindings, detail ? "detail" : view, size.columns, ui.readonly)}
      </Text>
    </Box>
  );
  if (!suspendedRef.current || !heldFrame.current) heldFrame.current = frame;
  return heldFrame.current;
}

/** The detail pane: its lines from where it is scrolled, matches of its search highlighted, a status line last. */
function DetailPane(props: {
  detail: Detail;
  pane: PaneState;
  state: SourceState;
  width: number;
  height: number;
  theme: ConsoleConfig["theme"];
}) {
  const { detail, pane, state } = props;
  const content = paneContent(detail, state.snapshot, state.journal);
  const height = props.height - 1;
  const rows = paneRows(pane, content, props.width, height);
  const ended = detail.kind === "journal" ? (state.journal?.ended ?? null) : null;
  return (
    <Box flexDirection="column">
      {rows.map((r, i) => (
        <Text
          // biome-ignore lint/suspicious/noArrayIndexKey: lines are positional
          key={i}
          wrap="truncate"
          color={r.match ? props.theme.filter : undefined}
          bold={r.match}
          inverse={r.current}
        >
          {r.text || " "}
        </Text>
      ))}
      {rows.length < height ? <Box height={height - rows.length} /> : null}
      <Text dimColor wrap="truncate">
        {pane.editingSearch ? `/${pane.search}▏` : paneStatus(detail, pane, content, height, ended)}
      </Text>
    </Box>
  );
}

function emptyText(view: ViewName, state: SourceState): string {
  if (!state.snapshot.updatedAt) return state.error ? "no data yet" : "loading…";
  return {
    machines: "no machines",
    units: "no units (berth submit UNIT)",
    keys: "empty directory",
    members: "no members",
    containers:
      state.snapshot.containers === null ? "loading…" : "no containers ([Container] units run them)",
  }[view];
}

/** The lines of `npm start`'s node problems file, read again every `everyMs` (none without a file). */
function useNodeProblems(file: string | undefined, everyMs: number): string[] {
  const [lines, setLines] = useState<string[]>(() => (file ? readNodeProblems(file) : []));
  useEffect(() => {
    if (!file) return;
    const timer = setInterval(() => {
      const next = readNodeProblems(file);
      setLines((prev) => (prev.join("\n") === next.join("\n") ? prev : next));
    }, everyMs);
    return () => clearInterval(timer);
  }, [file, everyMs]);
  return lines;
}

/** HH:MM:SS of `ms`, local time. */
function clockTime(ms: number): string {
  return new Date(ms).toTimeString().slice(0, 8);
}
