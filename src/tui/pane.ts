// The detail pane as text that scrolls: a unit's status, its journal followed live, a key's value, a machine's or a
// member's detail. What it shows is a list of lines; where it is (the first line shown, following the end or not,
// wrapped or scrolled sideways) and what it searches for are UI state, changed by keys through the reducer. Pure.
import type { JournalLine } from "../client/protocol.ts";
import { formatJournalLine } from "../format/journal.ts";
import {
  type ClusterSnapshot,
  detailLines,
  filterMatcher,
  machineDetailLines,
  memberDetailLines,
} from "./model.ts";
import type { FollowedJournal } from "./source.ts";

export type PaneKind = "unit" | "journal" | "key" | "machine" | "member";

/** The lines a pane shows; `offset` is the number of the first (a journal drops its oldest lines past its bound). */
export interface PaneContent {
  lines: string[];
  offset: number;
}

export interface PaneState {
  /** The number of the first line shown, or null: at the end, following what is added (a journal's default). */
  top: number | null;
  /** Columns scrolled sideways (not wrapped). */
  left: number;
  wrap: boolean;
  /** What `/` searched for (n and N find it again), and whether it is being typed. */
  search: string;
  editingSearch: boolean;
  /** The line n and N last found (drawn in reverse video; the next search starts from it), or null. */
  match: number | null;
}

export function initialPane(kind: PaneKind): PaneState {
  return {
    top: kind === "journal" ? null : 0,
    left: 0,
    wrap: false,
    search: "",
    editingSearch: false,
    match: null,
  };
}

/** The first line number a pane of `height` lines can show at its end. */
export function lastTop(content: PaneContent, height: number): number {
  return content.offset + Math.max(0, content.lines.length - height);
}

/** The first line shown: `top` kept within the content (lines dropped meanwhile: the oldest kept). */
export function paneTop(pane: PaneState, content: PaneContent, height: number): number {
  const end = lastTop(content, height);
  return pane.top === null ? end : Math.max(content.offset, Math.min(pane.top, end));
}

export type PaneMove =
  | "up"
  | "down"
  | "page.up"
  | "page.down"
  | "top"
  | "bottom"
  | "follow"
  | "left"
  | "right";

const SIDEWAYS = 8;

/** The pane after a moving key; moving away from the end stops following, G (bottom) and f resume it. */
export function movePane(pane: PaneState, move: PaneMove, content: PaneContent, height: number): PaneState {
  const top = paneTop(pane, content, height);
  const end = lastTop(content, height);
  const at = (n: number) => ({ ...pane, top: Math.max(content.offset, Math.min(n, end)) });
  switch (move) {
    case "up":
      return at(top - 1);
    case "down":
      return at(top + 1);
    case "page.up":
      return at(top - height);
    case "page.down":
      return at(top + height);
    case "top":
      return at(content.offset);
    case "bottom":
      return { ...pane, top: null };
    case "follow":
      return { ...pane, top: pane.top === null ? top : null };
    case "left":
      return { ...pane, left: Math.max(0, pane.left - SIDEWAYS) };
    case "right":
      return pane.wrap ? pane : { ...pane, left: pane.left + SIDEWAYS };
  }
}

/**
 * The number of the next line matching `search` after line `from` (`backwards`: before it), wrapping around the
 * content; null when no line matches.
 */
export function findLine(
  content: PaneContent,
  search: string,
  from: number,
  backwards = false,
): number | null {
  const { test } = filterMatcher(search);
  const n = content.lines.length;
  if (n === 0 || !search) return null;
  const start = from - content.offset;
  for (let step = 1; step <= n; step++) {
    const i = (((backwards ? start - step : start + step) % n) + n) % n;
    if (test(content.lines[i]!.toLowerCase())) return content.offset + i;
  }
  return null;
}

/** What the pane draws in `height` rows of `width` columns: each row's text and whether it matches the search. */
export function paneRows(
  pane: PaneState,
  content: PaneContent,
  width: number,
  height: number,
): { text: string; match: boolean; current: boolean }[] {
  const top = paneTop(pane, content, height);
  const test = pane.search ? filterMatcher(pane.search).test : null;
  const rows: { text: string; match: boolean; current: boolean }[] = [];
  for (let i = top - content.offset; i < content.lines.length && rows.length < height; i++) {
    const line = content.lines[i]!;
    const match = test?.(line.toLowerCase()) === true;
    const current = match && pane.match === content.offset + i;
    if (!pane.wrap) {
      rows.push({ text: line.slice(pane.left), match, current });
      continue;
    }
    for (let at = 0; at === 0 || at < line.length; at += Math.max(1, width)) {
      if (rows.length >= height) break;
      rows.push({ text: line.slice(at, at + width), match, current });
    }
  }
  return rows;
}

/** The pane's status line: where it is in its content, following or not, the keys that change that. */
export function paneStatus(
  detail: { kind: PaneKind; id: string },
  pane: PaneState,
  content: PaneContent,
  height: number,
  ended: string | null,
): string {
  const total = content.offset + content.lines.length;
  const top = paneTop(pane, content, height);
  const parts: string[] = [];
  if (detail.kind === "journal")
    parts.push(ended ?? `${pane.top === null ? "following" : "paused"} ${detail.id}`);
  if (content.lines.length > height)
    parts.push(`lines ${top + 1}-${Math.min(total, top + height)} of ${total}`);
  if (pane.wrap) parts.push("wrapped");
  else if (pane.left > 0) parts.push(`from column ${pane.left + 1}`);
  if (detail.kind === "journal" && !ended) parts.push(pane.top === null ? "f pauses" : "f or G follows");
  parts.push("Esc: back");
  return `-- ${parts.join(", ")} --`;
}

/** A journal line as the pane shows it, formatted once per line (a journal keeps 10,000). */
const formatted = new WeakMap<JournalLine, string>();

function journalText(l: JournalLine): string {
  let text = formatted.get(l);
  if (text === undefined) {
    text = formatJournalLine(l);
    formatted.set(l, text);
  }
  return text;
}

/** A pane's lines, from the snapshot (or the followed journal). */
export function paneContent(
  detail: { kind: PaneKind; id: string },
  snapshot: ClusterSnapshot,
  journal: FollowedJournal | null,
): PaneContent {
  switch (detail.kind) {
    case "journal":
      return journal
        ? { lines: journal.lines.map(journalText), offset: journal.dropped }
        : { lines: [], offset: 0 };
    case "key": {
      const node = snapshot.keys?.find((n) => n.key === detail.id);
      return {
        lines: node
          ? [
              `${node.key}`,
              `modified index ${node.modifiedIndex}, created index ${node.createdIndex}${node.ttl ? `, ttl ${node.ttl}s` : ""}`,
              "",
              ...(node.value ?? "").split("\n"),
            ]
          : [`${detail.id} is gone`],
        offset: 0,
      };
    }
    case "machine":
      return { lines: machineDetailLines(snapshot, detail.id), offset: 0 };
    case "member":
      return { lines: memberDetailLines(snapshot, detail.id), offset: 0 };
    case "unit": {
      const d = snapshot.detail;
      return { lines: d === null ? ["loading…"] : typeof d === "string" ? [d] : detailLines(d), offset: 0 };
    }
  }
}
