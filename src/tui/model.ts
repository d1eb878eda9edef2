// What the console shows, as plain data: the cluster as last polled, and the rows of each view. Pure (no Ink, no
// sockets), so the views' contents are tested without a terminal.

import { describeSkew, reportedSkew } from "../client/clock-skew.ts";
import type {
  MachineContainers,
  MachineInfo,
  MemberHealth,
  MemberInfo,
  UnitInfo,
  UnitStateRow,
  UnitStatus,
} from "../client/protocol.ts";
import { formatJournalLine } from "../format/journal.ts";
import { metadataText } from "../format/metadata.ts";
import type { KvNode } from "../kv/types.ts";

export type ViewName = "machines" | "units" | "keys" | "members" | "containers";
export const VIEWS: { name: ViewName; title: string; key: string }[] = [
  { name: "machines", title: "Machines", key: "1" },
  { name: "units", title: "Units", key: "2" },
  { name: "keys", title: "Keys", key: "3" },
  { name: "members", title: "Members", key: "4" },
  { name: "containers", title: "Containers", key: "5" },
];

/** The cluster as the console last saw it. */
export interface ClusterSnapshot {
  machines: MachineInfo[];
  units: UnitInfo[];
  states: UnitStateRow[];
  members: MemberInfo[];
  health: MemberHealth[];
  /** The directory the Keys view shows, and its children (null: it does not exist). */
  keyDir: string;
  keys: KvNode[] | null;
  /** Every machine's containers (machines.containers, asked only while the Containers view shows), null before. */
  containers: MachineContainers[] | null;
  /** The status of the unit the detail pane shows, or why there is none; null before the first answer. */
  detail: UnitStatus[] | string | null;
  updatedAt: number;
}

export const EMPTY_SNAPSHOT: ClusterSnapshot = {
  machines: [],
  units: [],
  states: [],
  members: [],
  health: [],
  keyDir: "/",
  keys: [],
  containers: null,
  detail: null,
  updatedAt: 0,
};

export interface Column {
  title: string;
  /** Grows to fill the width left by the others (one per table), and is the first to shrink. */
  flex?: boolean;
  /**
   * How long it keeps its width when the terminal is too narrow: higher shrinks later (default 0; the flex column
   * -1; between equals, the one further right shrinks first).
   */
  keep?: number;
}

export interface Row {
  /** What actions act on: a unit name, a key, a machine id, a member name. */
  id: string;
  /** The machine (id) a unit's row is on. */
  machine?: string;
  /** The row's identity where `id` is not unique in its table (a unit's row per machine); the selection follows it. */
  key?: string;
  cells: string[];
  /** "good" (up, active), "bad" (lost, failed), or neutral. */
  tone?: "good" | "bad" | "warn";
  /** A directory in the Keys view (Enter opens it). */
  dir?: boolean;
}

export interface TableData {
  columns: Column[];
  rows: Row[];
}

export function machinesTable(s: ClusterSnapshot): TableData {
  const rows = [...s.machines]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((m) => ({
      id: m.id,
      cells: [`${m.id.slice(0, 8)}...`, m.name, m.publicIp ?? "-", m.state, metadataText(m.metadata)],
      tone: m.state === "up" ? ("good" as const) : m.state === "lost" ? ("bad" as const) : ("warn" as const),
    }));
  return {
    columns: [
      { title: "MACHINE" },
      { title: "NAME" },
      { title: "IP" },
      { title: "STATE" },
      { title: "METADATA", flex: true },
    ],
    rows,
  };
}

/** localeCompare's order (the default locale), without building a comparison per call: sorting 10,000 names. */
const byLocale = new Intl.Collator().compare;

/**
 * Every unit the cluster knows, one row per machine it is loaded on (as list-units), and one row for a unit that
 * runs nowhere (not scheduled, or waiting for a machine: SUB says why). The state rows are grouped by unit once
 * (units + rows, not units x rows: 10,000 units are a normal cluster).
 */
export function unitsTable(s: Pick<ClusterSnapshot, "machines" | "units" | "states">): TableData {
  const byId = new Map(s.machines.map((m) => [m.id, m]));
  const machineName = (id: string) => byId.get(id)?.name ?? id;
  const statesOf = new Map<string, UnitStateRow[]>();
  for (const r of s.states) {
    if (r.machine === "") continue;
    const list = statesOf.get(r.name);
    if (list) list.push(r);
    else statesOf.set(r.name, [r]);
  }
  const rows: Row[] = [];
  for (const u of [...s.units].sort((a, b) => byLocale(a.name, b.name))) {
    const states = [...(statesOf.get(u.name) ?? [])].sort((a, b) =>
      byLocale(machineName(a.machine), machineName(b.machine)),
    );
    const current = u.global ? "global" : (u.current ?? "-");
    if (states.length === 0) {
      const sub = u.unplaceable ? `unplaceable: ${u.unplaceable}` : "-";
      rows.push({
        id: u.name,
        cells: [u.name, u.desired, current, "-", "-", sub],
        tone: u.unplaceable ? "warn" : undefined,
      });
      continue;
    }
    for (const r of states) {
      const m = byId.get(r.machine);
      // A unit on no machine (cannot be placed, or moving) has machine "-": shown as it is, not as "-...".
      const machine =
        r.machine === "" || r.machine === "-" ? "-" : `${r.machine.slice(0, 8)}...${m ? `/${m.name}` : ""}`;
      const sub = r.note ? `${r.sub} (${r.note})` : r.sub;
      rows.push({
        id: u.name,
        key: `${u.name} ${r.machine}`,
        machine: r.machine,
        cells: [u.name, u.desired, current, machine, r.active, sub],
        tone: activeTone(r.active),
      });
    }
  }
  return {
    columns: [
      // Narrow terminals: the unit's name is the last to be cut, its ACTIVE state and machine before it.
      { title: "UNIT", keep: 9 },
      { title: "DESIRED", keep: 1 },
      { title: "STATE", keep: 2 },
      { title: "MACHINE", keep: 3 },
      { title: "ACTIVE", keep: 4 },
      { title: "SUB", flex: true },
    ],
    rows,
  };
}

export function keysTable(s: ClusterSnapshot, now: number): TableData {
  const rows: Row[] = (s.keys ?? [])
    .filter((n) => n.key !== undefined)
    .sort((a, b) => Number(!!b.dir) - Number(!!a.dir) || a.key.localeCompare(b.key))
    .map((n) => ({
      id: n.key,
      dir: n.dir === true,
      cells: [
        `${baseName(n.key)}${n.dir ? "/" : ""}`,
        n.dir ? "(directory)" : oneLine(n.value ?? ""),
        n.expiration ? `${Math.max(0, Math.ceil((Date.parse(n.expiration) - now) / 1000))}s` : "-",
        String(n.modifiedIndex),
      ],
    }));
  return {
    columns: [{ title: "KEY" }, { title: "VALUE", flex: true }, { title: "TTL" }, { title: "MODIFIED" }],
    rows,
  };
}

export function membersTable(s: ClusterSnapshot): TableData {
  const health = new Map(s.health.map((h) => [h.name, h]));
  const rows = [...s.members]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((m) => {
      const h = health.get(m.name);
      const skew = reportedSkew(h?.clockSkewMs);
      const clock = skew === null ? "" : `; clock ${describeSkew(skew)} the cluster's`;
      const state = h ? `${h.healthy ? "healthy" : `unhealthy: ${h.detail}`}${clock}` : "-";
      return {
        id: m.name,
        cells: [
          m.name,
          m.isLeader ? "leader" : m.role === "learner" ? "learner" : "follower",
          m.peerAddr,
          m.clientAddr ?? "-",
          state,
        ],
        tone: h
          ? !h.healthy
            ? ("bad" as const)
            : skew === null
              ? ("good" as const)
              : ("warn" as const)
          : undefined,
      };
    });
  return {
    columns: [
      { title: "NAME" },
      { title: "ROLE" },
      { title: "PEER" },
      { title: "CLIENT" },
      { title: "HEALTH", flex: true },
    ],
    rows,
  };
}

/**
 * Every machine's containers, as `berth list-machines --containers`: a row per container (MACHINE, CONTAINER, IMAGE,
 * STATE, UNIT, NAME), and a row for a machine that could not be asked, saying why.
 */
export function containersTable(s: Pick<ClusterSnapshot, "containers">): TableData {
  const rows: Row[] = [];
  const machines = [...(s.containers ?? [])].sort((a, b) => byLocale(a.machineName, b.machineName));
  for (const m of machines) {
    const machine = `${m.machine.slice(0, 8)}.../${m.machineName || "?"}`;
    if (m.error !== undefined) {
      rows.push({
        id: m.machine,
        machine: m.machine,
        cells: [machine, "-", "-", `unreachable: ${m.error}`, "-", "-"],
        tone: "bad",
      });
      continue;
    }
    for (const c of m.containers) {
      const state = c.status ?? (c.containerId === null ? `${c.active}/${c.sub}` : (c.state ?? "-"));
      rows.push({
        // What actions act on: the unit (a leftover container without one: its machine).
        id: c.unit || m.machine,
        key: `${m.machine} ${c.containerId ?? c.unit}`,
        machine: m.machine,
        cells: [machine, c.containerId ?? "-", c.image || "-", state, c.unit || "-", c.name ?? "-"],
        tone: c.state === "running" ? "good" : c.state === "exited" || c.state === "dead" ? "bad" : "warn",
      });
    }
  }
  return {
    columns: [
      { title: "MACHINE", keep: 1 },
      { title: "CONTAINER", keep: 2 },
      { title: "IMAGE" },
      { title: "STATE", flex: true },
      { title: "UNIT", keep: 9 },
      { title: "NAME" },
    ],
    rows,
  };
}

/** The machine detail pane: what the cluster knows of it, its health as a member, and the units on it. */
export function machineDetailLines(s: ClusterSnapshot, id: string): string[] {
  const m = s.machines.find((x) => x.id === id);
  if (!m) return [`machine ${id.slice(0, 8)}... is gone`];
  const h = s.health.find((x) => x.name === m.name);
  const out = [
    `Machine ${m.id}`,
    `     Name: ${m.name}`,
    `       IP: ${m.publicIp ?? "-"}`,
    `    State: ${m.state}${m.agentTtlMs ? ` (agent TTL ${m.agentTtlMs / 1000} s)` : ""}`,
    `   Health: ${h ? `${h.healthy ? "healthy" : "unhealthy"}: ${h.detail}` : "not a member (no health report)"}`,
    " Metadata:",
    ...(Object.keys(m.metadata).length === 0
      ? ["   (none)"]
      : Object.entries(m.metadata)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, v]) => `   ${k}=${v}`)),
    "",
  ];
  const units = s.states.filter((r) => r.machine === m.id).sort((a, b) => byLocale(a.name, b.name));
  out.push(`Units (${units.length}):`);
  for (const r of units) out.push(`   ${r.name}  ${r.active} (${r.sub})${r.note ? ` ${r.note}` : ""}`);
  return out;
}

/** The member detail pane: its addresses, role, Raft term and index, how far it lags behind the leader. */
export function memberDetailLines(s: ClusterSnapshot, name: string): string[] {
  const m = s.members.find((x) => x.name === name);
  if (!m) return [`member ${name} is gone`];
  const h = s.health.find((x) => x.name === name);
  const leader = s.members.find((x) => x.isLeader);
  const leaderIndex = leader ? s.health.find((x) => x.name === leader.name)?.raftIndex : undefined;
  const lag =
    h?.raftIndex === undefined || leaderIndex === undefined
      ? "-"
      : m.isLeader
        ? "0 (the leader)"
        : `${Math.max(0, leaderIndex - h.raftIndex)} entries behind ${leader!.name}`;
  const skew = reportedSkew(h?.clockSkewMs);
  return [
    `Member ${m.name} (id ${m.id})`,
    `     Role: ${m.isLeader ? "leader" : m.role === "learner" ? "learner (non-voting)" : "follower"}`,
    `     Peer: ${m.peerAddr}`,
    `   Client: ${m.clientAddr ?? "-"}`,
    `     HTTP: ${m.httpAddr ?? "-"}`,
    `   Health: ${h ? `${h.healthy ? "healthy" : "unhealthy"}: ${h.detail}` : "-"}`,
    `     Term: ${h?.raftTerm ?? "-"}`,
    `    Index: ${h?.raftIndex ?? "-"}`,
    `      Lag: ${lag}`,
    `    Clock: ${skew === null ? "in step with the cluster" : `${describeSkew(skew)} the cluster's`}`,
  ];
}

/**
 * A function of a few values that keeps its last answer until one of them changes (compared by identity): the
 * source keeps an unchanged list as the same array, so a table is rebuilt only when its own data changed.
 */
export function lastResult<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  let last: { args: A; result: R } | null = null;
  return (...args: A) => {
    if (last && last.args.length === args.length && last.args.every((a, i) => a === args[i]))
      return last.result;
    const result = fn(...args);
    last = { args, result };
    return result;
  };
}

const machinesOf = lastResult((machines: MachineInfo[]) => machinesTable({ ...EMPTY_SNAPSHOT, machines }));
const unitsOf = lastResult((machines: MachineInfo[], units: UnitInfo[], states: UnitStateRow[]) =>
  unitsTable({ machines, units, states }),
);
const keysOf = lastResult((keys: KvNode[] | null, second: number) =>
  keysTable({ ...EMPTY_SNAPSHOT, keys }, second * 1000),
);
const membersOf = lastResult((members: MemberInfo[], health: MemberHealth[]) =>
  membersTable({ ...EMPTY_SNAPSHOT, members, health }),
);
const containersOf = lastResult((containers: MachineContainers[] | null) => containersTable({ containers }));

/** The view's table, kept while its inputs stay the same (TTLs in the Keys view count down each second). */
export function tableFor(view: ViewName, s: ClusterSnapshot, now: number): TableData {
  switch (view) {
    case "machines":
      return machinesOf(s.machines);
    case "units":
      return unitsOf(s.machines, s.units, s.states);
    case "keys":
      return keysOf(s.keys, Math.floor(now / 1000));
    case "members":
      return membersOf(s.members, s.health);
    case "containers":
      return containersOf(s.containers);
  }
}

const projections = new WeakMap<TableData, { titles: string[]; result: TableData }>();

/** `table` with only the columns titled `titles`, in that order (a config's "columns"); kept per table. */
export function withColumns(table: TableData, titles: string[] | undefined): TableData {
  if (!titles) return table;
  const kept = projections.get(table);
  if (kept && kept.titles === titles) return kept.result;
  const at = titles.map((t) => table.columns.findIndex((c) => c.title === t)).filter((i) => i >= 0);
  const result: TableData = {
    columns: at.map((i) => table.columns[i]!),
    rows: table.rows.map((r) => ({ ...r, cells: at.map((i) => r.cells[i] ?? "") })),
  };
  projections.set(table, { titles, result });
  return result;
}

/** Each row's cells as one lower-case text, for the filter (built once per table). */
const searchTexts = new WeakMap<TableData, string[]>();

function searchTextsOf(table: TableData): string[] {
  let texts = searchTexts.get(table);
  if (!texts) {
    // A cell per line: a match never spans two cells, and a regex's ^ and $ anchor to a cell (flag m).
    texts = table.rows.map((r) => r.cells.join("\n").toLowerCase());
    searchTexts.set(table, texts);
  }
  return texts;
}

/** Whether what filtering `table` needs is built already (prepareFilter). */
export function filterPrepared(table: TableData): boolean {
  return searchTexts.has(table);
}

/** Builds what filtering `table` needs ahead of the first character (when the filter prompt opens). */
export function prepareFilter(table: TableData): void {
  searchTextsOf(table);
}

const REGEX_SIGNS = /[\\^$.*+?()[\]{}|]/;

/**
 * What a filter matches, as k9s: text (case-insensitive) in any cell; a regular expression when it has regex
 * characters and compiles (web@[0-9]+, ^db); `!` first inverts it (the rows that do not match).
 */
export function filterMatcher(filter: string): { test: (text: string) => boolean; plain: string | null } {
  const inverse = filter.startsWith("!");
  const pattern = (inverse ? filter.slice(1) : filter).toLowerCase();
  let test = (text: string) => text.includes(pattern);
  if (REGEX_SIGNS.test(pattern)) {
    try {
      const re = new RegExp(pattern, "im");
      test = (text: string) => re.test(text);
    } catch {
      // Not a regex (web[1): the text as typed.
    }
  }
  const plain = !inverse && !REGEX_SIGNS.test(pattern) ? pattern : null;
  return { test: inverse ? (text) => !test(text) : test, plain };
}

let lastFilter: { table: TableData; filter: string; matches: number[]; result: TableData } | null = null;

/**
 * The rows `filter` matches (filterMatcher); the same answer for the same table and filter. A character typed onto
 * a plain filter searches only the rows the shorter filter matched.
 */
export function filterRows(table: TableData, filter: string): TableData {
  if (!filter || filter === "!") return table;
  const previous = lastFilter?.table === table ? lastFilter : null;
  if (previous?.filter === filter) return previous.result;
  const texts = searchTextsOf(table);
  const { test, plain } = filterMatcher(filter);
  const matches: number[] = [];
  const narrowing =
    previous &&
    plain !== null &&
    filterMatcher(previous.filter).plain !== null &&
    filter.startsWith(previous.filter);
  if (narrowing) {
    for (const i of previous.matches) if (test(texts[i]!)) matches.push(i);
  } else for (let i = 0; i < texts.length; i++) if (test(texts[i]!)) matches.push(i);
  // Every row matching: the table itself (its column widths are already measured).
  const result =
    matches.length === table.rows.length ? table : { ...table, rows: matches.map((i) => table.rows[i]!) };
  lastFilter = { table, filter, matches, result };
  return result;
}

/** The lines of the unit detail pane: systemctl-status-like, then the journal's last lines. */
export function detailLines(status: UnitStatus[]): string[] {
  const out: string[] = [];
  for (const st of status) {
    const a = st.state;
    out.push(`● ${st.name}${st.description ? ` - ${st.description}` : ""}`);
    out.push(
      `   Machine: ${st.machine.slice(0, 8)}.../${st.machineName}${st.publicIp ? ` (${st.publicIp})` : ""}`,
    );
    out.push(
      `    Active: ${a.active} (${a.sub})${a.since ? ` since ${new Date(a.since).toISOString()}` : ""}`,
    );
    if (a.mainPid) out.push(`  Main PID: ${a.mainPid}${st.mainCommand ? ` (${st.mainCommand})` : ""}`);
    if (a.error) out.push(`     Error: ${a.error}`);
    out.push("");
    for (const j of st.journal) out.push(formatJournalLine(j));
    out.push("");
  }
  return out;
}

export function parentDir(dir: string): string {
  if (dir === "/" || dir === "") return "/";
  const i = dir.replace(/\/+$/, "").lastIndexOf("/");
  return i <= 0 ? "/" : dir.slice(0, i);
}

function baseName(key: string): string {
  return key.slice(key.lastIndexOf("/") + 1);
}

function oneLine(v: string): string {
  return v.replace(/\s+/g, " ");
}

function activeTone(active: string): Row["tone"] {
  if (active === "active") return "good";
  if (active === "failed") return "bad";
  if (active === "activating" || active === "deactivating") return "warn";
  return undefined;
}
