// The console's screen: a header (where it is connected, the leader, counts), one of four views (machines, units,
// keys, members) as a table, a detail pane for a unit or a key, and a footer with the keys and the last message.
// Keys as k9s/fleetctl users expect: 1-4 or Tab switch views, arrows or j/k move, Enter opens, Esc goes back,
// s/x/u/d act on units, d deletes keys (after a y/n question), r refreshes, ? shows help, q quits.
import { Box, type Key, Text, useApp, useInput, useStdout } from "ink";
import { type SetStateAction, useCallback, useEffect, useRef, useState } from "react";
import type { DesiredState } from "../client/protocol.ts";
import { formatJournalLine } from "../format/journal.ts";
import {
  detailLines,
  filterRows,
  parentDir,
  prepareFilter,
  type Row,
  tableFor,
  VIEWS,
  type ViewName,
} from "./model.ts";
import type { ConsoleSource, SourceState } from "./source.ts";
import { Table, windowStart } from "./table.tsx";

interface Message {
  text: string;
  tone: "info" | "error";
}

/** A pane over the table: a unit's status, its live journal, or a key's value. */
interface Detail {
  kind: "unit" | "journal" | "key";
  id: string;
}

interface Question {
  text: string;
  run: () => Promise<string>;
}

const HELP = [
  "1 2 3 4, Tab     machines, units, keys, members",
  "↑ ↓ j k, PgUp PgDn, g G   move",
  "Enter           machine: its units; unit: status and journal; key: open the directory or show the value",
  "Esc, ←, h, Backspace   back (keys: the parent directory)",
  "s / x / u       start / stop / unload the unit (fleetctl start, stop, unload)",
  "l               follow the unit's journal live (journal -f)",
  "/               filter the rows (Enter keeps the filter, Esc clears it)",
  "d               destroy the unit / delete the key (asks first)",
  "r               refresh now",
  "q, Ctrl-C       quit",
];

/** `label` follows the endpoint in the header (" via core@bastion:22" through a tunnel). */
export function App(props: { source: ConsoleSource; label: string }) {
  const { source } = props;
  const { exit } = useApp();
  const { stdout } = useStdout();
  const [state, setState] = useState<SourceState>(source.current);
  // What keys act on is read from refs: keys typed faster than React renders ("d" then "y") must see the
  // effect of the key before them.
  const [view, setView, viewRef] = useLatest<ViewName>("machines");
  const [selected, setSelected, selectedRef] = useLatest<Record<ViewName, number>>({
    machines: 0,
    units: 0,
    keys: 0,
    members: 0,
  });
  const [detail, setDetail, detailRef] = useLatest<Detail | null>(null);
  /** `/` filters the current view's rows (by any cell); typing goes to the filter until Enter or Esc. */
  const [filter, setFilter, filterRef] = useLatest("");
  const [editingFilter, setEditingFilter, editingFilterRef] = useLatest(false);
  const [question, setQuestion, questionRef] = useLatest<Question | null>(null);
  const [message, setMessage] = useState<Message | null>(null);
  const [help, setHelp, helpRef] = useLatest(false);
  const [size, setSize] = useState({ columns: stdout.columns || 100, rows: stdout.rows || 30 });
  const windowStartRef = useRef(0);

  useEffect(() => source.onChange(setState), [source]);
  useEffect(() => {
    const onResize = () => setSize({ columns: stdout.columns || 100, rows: stdout.rows || 30 });
    stdout.on("resize", onResize);
    return () => {
      stdout.off("resize", onResize);
    };
  }, [stdout]);

  const now = Date.now();
  const table = filterRows(tableFor(view, state.snapshot, now), filter);
  const sel = Math.min(selected[view], Math.max(0, table.rows.length - 1));

  const act = (what: Promise<string>) => {
    setMessage({ text: "working…", tone: "info" });
    what.then(
      (text) => setMessage({ text, tone: "info" }),
      (err) => setMessage({ text: (err as Error).message ?? String(err), tone: "error" }),
    );
  };
  const setDesired = (name: string, desired: DesiredState, verb: string) =>
    act(source.setDesired([name], desired).then(() => `${verb} ${name}`));

  const openDetail = (d: Detail | null) => {
    setDetail(d);
    source.setDetail(d?.kind === "unit" ? d.id : null);
    if (d?.kind === "journal") source.follow(d.id);
    else source.stopFollowing();
  };

  const openKeyDir = (dir: string) => {
    source.setKeyDir(dir);
    setFilter(""); // a filter typed for one directory's names means nothing in the next
    setSelected((s) => ({ ...s, keys: 0 }));
  };

  useInput((input, key) => {
    // Keys typed faster than the terminal is read (a held-down j, "g" then Enter) arrive as one string.
    if (input.length > 1 && !key.ctrl && !key.meta) {
      for (const ch of input) handleKey(ch === "\r" ? "" : ch, { ...key, return: ch === "\r" });
      return;
    }
    handleKey(input, key);
  });

  const handleKey = (input: string, key: Key) => {
    const view = viewRef.current;
    const detail = detailRef.current;
    const question = questionRef.current;
    const rows = filterRows(tableFor(view, source.current.snapshot, Date.now()), filterRef.current).rows;
    const last = Math.max(0, rows.length - 1);
    const sel = Math.min(selectedRef.current[view], last);
    const row: Row | undefined = rows[sel];
    const select = (i: number) => setSelected((s) => ({ ...s, [view]: Math.max(0, Math.min(i, last)) }));
    const move = (delta: number) => select(sel + delta);

    if (key.ctrl && input === "c") return exit();
    if (editingFilterRef.current) {
      if (key.return) return setEditingFilter(false);
      if (key.escape) {
        setFilter("");
        return setEditingFilter(false);
      }
      if (key.backspace || key.delete) return setFilter((f) => f.slice(0, -1));
      if (input && !key.ctrl && !key.meta) {
        setFilter((f) => f + input);
        select(0);
      }
      return;
    }
    if (question) {
      if (input === "y" || input === "Y") act(question.run());
      else setMessage({ text: "cancelled", tone: "info" });
      setQuestion(null);
      return;
    }
    if (helpRef.current) return setHelp(false);
    if (input === "q") return exit();
    if (input === "?") return setHelp(true);
    if (input === "r") return void source.refresh();
    const goTo = VIEWS.find((v) => v.key === input);
    if (goTo || key.tab) {
      const next =
        goTo?.name ?? VIEWS[(VIEWS.findIndex((v) => v.name === view) + (key.shift ? 3 : 1)) % 4]!.name;
      openDetail(null);
      setFilter("");
      setView(next);
      return;
    }
    if (input === "/" && !detail) {
      prepareFilter(tableFor(view, source.current.snapshot, Date.now()));
      setFilter("");
      return setEditingFilter(true);
    }
    const back = key.escape || key.leftArrow || key.backspace || key.delete || input === "h";
    if (detail) {
      if (back || key.return) openDetail(null);
      return;
    }
    if (key.escape && filterRef.current) return setFilter("");
    if (back && view === "keys") return openKeyDir(parentDir(source.current.snapshot.keyDir));
    if (key.upArrow || input === "k") return move(-1);
    if (key.downArrow || input === "j") return move(1);
    if (key.pageUp) return move(-(size.rows - 8));
    if (key.pageDown) return move(size.rows - 8);
    if (input === "g" || key.home) return select(0);
    if (input === "G" || key.end) return select(last);
    if (!row) return;
    if (key.return) {
      if (view === "machines") {
        // The machine's units: the Units view filtered by its id prefix (as its MACHINE column shows it).
        setView("units");
        setFilter(row.id.slice(0, 8));
        return;
      }
      if (view === "units") return openDetail({ kind: "unit", id: row.id });
      if (view === "keys") return row.dir ? openKeyDir(row.id) : openDetail({ kind: "key", id: row.id });
      return;
    }
    if (view === "units") {
      if (input === "s") return setDesired(row.id, "launched", "started");
      if (input === "x") return setDesired(row.id, "loaded", "stopped");
      if (input === "u") return setDesired(row.id, "inactive", "unloaded");
      if (input === "l") return openDetail({ kind: "journal", id: row.id });
      if (input === "d")
        return setQuestion({
          text: `Destroy ${row.id}? (y/n)`,
          run: () => source.destroy([row.id]).then(() => `destroyed ${row.id}`),
        });
    }
    if (view === "keys" && input === "d")
      return setQuestion({
        text: `Delete ${row.id}${row.dir ? "/ and everything below it" : ""}? (y/n)`,
        run: () => source.deleteKey(row.id, row.dir === true).then(() => `deleted ${row.id}`),
      });
  };

  // No clock in the header: the data is live (watches), and a clock would redraw the screen every second.
  const s = state.snapshot;
  const leader = s.members.find((m) => m.isLeader)?.name ?? "-";
  const up = s.machines.filter((m) => m.state !== "lost").length;
  // One line short of the terminal: Ink erases the whole screen before every frame as tall as the terminal
  // (clearTerminal, a visible flicker); shorter frames are patched line by line.
  const height = Math.max(1, size.rows - 1);
  const bodyHeight = Math.max(3, height - 5);
  windowStartRef.current = windowStart(sel, bodyHeight - 1, windowStartRef.current, table.rows.length);

  // Every part is clipped to its lines: a frame taller than planned (a header wrapping on a narrow terminal) would
  // scroll the terminal and leave the line-by-line updates misplaced.
  return (
    <Box flexDirection="column" width={size.columns} height={height} overflow="hidden">
      <Box height={1} overflow="hidden">
        <Text bold color="cyan">
          Berth console
        </Text>
        <Text>
          {"  "}
          {state.endpoint ? `${state.endpoint}${props.label}` : `not connected${props.label}`}
          {"  "}leader {leader}
          {"  "}machines {up}/{s.machines.length} up{"  "}units {s.units.length}
        </Text>
      </Box>
      <Box height={1} overflow="hidden">
        {VIEWS.map((v) => (
          <Text key={v.name} inverse={v.name === view} bold={v.name === view}>
            {` ${v.key} ${v.title} `}
          </Text>
        ))}
        {view === "keys" ? <Text color="cyan">{`  ${s.keyDir}`}</Text> : null}
        {filter || editingFilter ? (
          <Text color="yellow">{`  /${filter}${editingFilter ? "▏" : ""}`}</Text>
        ) : null}
      </Box>
      <Box flexDirection="column" height={bodyHeight} marginTop={1} overflow="hidden">
        {help ? (
          HELP.map((h) => <Text key={h}>{h}</Text>)
        ) : detail ? (
          <DetailPane detail={detail} state={state} height={bodyHeight} />
        ) : view === "keys" && s.keys === null ? (
          <Text color="yellow">{`${s.keyDir} does not exist (Esc: parent directory)`}</Text>
        ) : (
          <Table
            data={table}
            width={size.columns}
            height={bodyHeight}
            selected={sel}
            start={windowStartRef.current}
            empty={filter ? `nothing matches /${filter} (Esc clears the filter)` : emptyText(view, state)}
          />
        )}
      </Box>
      <Box height={1} overflow="hidden">
        {question ? (
          <Text color="yellow" bold>
            {question.text}
          </Text>
        ) : state.error ? (
          <Text color="red" wrap="truncate">
            {state.endpoint ? state.error : `cannot reach the cluster: ${state.error} (retrying)`}
          </Text>
        ) : message ? (
          <Text color={message.tone === "error" ? "red" : "green"} wrap="truncate">
            {message.text}
          </Text>
        ) : (
          <Text> </Text>
        )}
      </Box>
      <Text dimColor wrap="truncate">
        {footer(view, !!detail)}
      </Text>
    </Box>
  );
}

function DetailPane(props: { detail: Detail; state: SourceState; height: number }) {
  const { detail, state } = props;
  let lines: string[];
  if (detail.kind === "journal") {
    const j = state.journal;
    const body = j ? j.lines.map((l) => formatJournalLine(l)) : [];
    const tail = j?.ended ? [`-- ${j.ended} --`] : [`-- following ${detail.id} (Esc: back) --`];
    lines = [...body.slice(-(props.height - tail.length)), ...tail];
  } else if (detail.kind === "key") {
    const node = state.snapshot.keys?.find((n) => n.key === detail.id);
    lines = node
      ? [
          `${node.key}`,
          `modified index ${node.modifiedIndex}, created index ${node.createdIndex}${node.ttl ? `, ttl ${node.ttl}s` : ""}`,
          "",
          ...(node.value ?? "").split("\n"),
        ]
      : [`${detail.id} is gone`];
  } else {
    const d = state.snapshot.detail;
    lines = d === null ? ["loading…"] : typeof d === "string" ? [d] : detailLines(d);
  }
  return (
    <Box flexDirection="column">
      {lines.slice(0, props.height).map((l, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: lines are positional
        <Text key={i} wrap="truncate">
          {l || " "}
        </Text>
      ))}
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
  }[view];
}

function footer(view: ViewName, detail: boolean): string {
  if (detail) return "Esc back  q quit";
  const common = "1-4 view  ↑↓ move  r refresh  ? help  q quit";
  if (view === "units")
    return `Enter status  l journal  s start  x stop  u unload  d destroy  / filter  ${common}`;
  if (view === "keys") return `Enter open  Esc up  d delete  / filter  ${common}`;
  if (view === "machines") return `Enter units  / filter  ${common}`;
  return `/ filter  ${common}`;
}

/** useState whose latest value is also readable at once through a ref (set synchronously by the setter). */
function useLatest<T>(initial: T): [T, (v: SetStateAction<T>) => void, { readonly current: T }] {
  const [value, setValue] = useState(initial);
  const ref = useRef(initial);
  const set = useCallback((v: SetStateAction<T>) => {
    ref.current = typeof v === "function" ? (v as (p: T) => T)(ref.current) : v;
    setValue(ref.current);
  }, []);
  return [value, set, ref];
}
