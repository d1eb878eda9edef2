// A table for the terminal: columns as wide as their widest cell (the flex column takes what is left), cells cut
// with "…", one highlighted row, and a window of rows that follows the selection: only the rows in that window
// become elements, whatever the table's length. (ink-table cannot load with
// today's ESM Ink.)
import { Box, Text } from "ink";
import { DEFAULT_THEME, type Theme } from "./config.ts";
import type { Row, TableData } from "./model.ts";
import type { Sort } from "./sort.ts";

const GAP = 2;

/** Each table's widest cell per column: measured once per table, not once per frame. */
const naturalWidths = new WeakMap<TableData, number[]>();

function naturalWidthsOf(data: TableData): number[] {
  let widths = naturalWidths.get(data);
  if (!widths) {
    widths = data.columns.map((c) => c.title.length);
    for (const r of data.rows)
      for (let i = 0; i < widths.length; i++) widths[i] = Math.max(widths[i]!, (r.cells[i] ?? "").length);
    naturalWidths.set(data, widths);
  }
  return widths;
}

/** The narrowest a column shrinks to (a cut cell keeps a character and its "…"). */
const MIN_WIDTH = 3;

/**
 * Column widths that fit `width`: natural widths, the flex column taking what is left. Too wide, the columns shrink
 * in order of importance (Column.keep; the flex column first, then from the right), each down to MIN_WIDTH before
 * the next one gives anything: the unit name stays whole as long as anything else can give.
 */
export function columnWidths(data: TableData, width: number): number[] {
  const widths = [...naturalWidthsOf(data)];
  const available = Math.max(data.columns.length, width - GAP * (data.columns.length - 1));
  let total = widths.reduce((a, w) => a + w, 0);
  const flex = data.columns.findIndex((c) => c.flex);
  if (total <= available) {
    if (flex >= 0) widths[flex]! += available - total;
    return widths;
  }
  for (const i of shrinkOrder(data)) {
    const cut = Math.min(total - available, Math.max(0, widths[i]! - MIN_WIDTH));
    widths[i]! -= cut;
    total -= cut;
    if (total <= available) break;
  }
  return widths;
}

/** Column indexes, the one to shrink first first. */
function shrinkOrder(data: TableData): number[] {
  const keep = (i: number) => data.columns[i]!.keep ?? (data.columns[i]!.flex ? -1 : 0);
  return data.columns.map((_, i) => i).sort((a, b) => keep(a) - keep(b) || b - a);
}

export function fitCell(text: string, width: number): string {
  if (text.length <= width) return text.padEnd(width);
  return width <= 1 ? text.slice(0, width) : `${text.slice(0, width - 1)}…`;
}

/** The first row to show so that `selected` is visible in `height` rows, moving the window as little as possible. */
export function windowStart(selected: number, height: number, previous: number, total: number): number {
  if (total <= height) return 0;
  let start = Math.min(previous, total - height);
  if (selected < start) start = selected;
  if (selected >= start + height) start = selected - height + 1;
  return Math.max(0, start);
}

export function Table(props: {
  data: TableData;
  width: number;
  height: number;
  selected: number;
  start: number;
  empty: string;
  /** Ids of the marked rows (drawn bold, in the theme's "marked" colour). */
  marked?: Set<string>;
  theme?: Theme;
  /** The column the rows are sorted by (its title marked ↑ or ↓). */
  sort?: Sort | null;
  /** The data is the last seen of a cluster that does not answer: rows drawn dim, without their state colours. */
  stale?: boolean;
}) {
  const theme = props.theme ?? DEFAULT_THEME;
  const { data, width, height, selected, start } = props;
  const widths = columnWidths(data, width);
  const line = (cells: string[]) => cells.map((c, i) => fitCell(c, widths[i]!)).join(" ".repeat(GAP));
  const visible = data.rows.slice(start, start + Math.max(1, height - 1));
  return (
    <Box flexDirection="column">
      <Text bold>
        {line(
          data.columns.map((c, i) =>
            props.sort?.column === i ? `${c.title}${props.sort.desc ? "↓" : "↑"}` : c.title,
          ),
        )}
      </Text>
      {data.rows.length === 0 ? <Text dimColor>{props.empty}</Text> : null}
      {visible.map((r: Row, i) => {
        const isSelected = start + i === selected;
        const isMarked = props.marked?.has(r.id) === true;
        return (
          <Text
            // biome-ignore lint/suspicious/noArrayIndexKey: rows are positions in a scrolling window
            key={start + i}
            inverse={isSelected}
            bold={isMarked}
            underline={isMarked && !theme.marked}
            color={isMarked ? theme.marked : r.tone && !props.stale ? theme[r.tone] : undefined}
            dimColor={props.stale && !isSelected}
            wrap="truncate"
          >
            {line(r.cells)}
          </Text>
        );
      })}
    </Box>
  );
}
