// A table for the terminal: columns as wide as their widest cell (the flex column takes what is left), cells cut
// with "…", one highlighted row, and a window of rows that follows the selection: only the rows in that window
// become elements, whatever the table's length. (ink-table cannot load with
// today's ESM Ink.)
import { Box, Text } from "ink";
import type { Row, TableData } from "./model.ts";

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

/** Column widths that fit `width`: natural widths, the flex column shrinking first, then every column evenly. */
export function columnWidths(data: TableData, width: number): number[] {
  const natural = naturalWidthsOf(data);
  const available = Math.max(data.columns.length, width - GAP * (data.columns.length - 1));
  const flex = data.columns.findIndex((c) => c.flex);
  const fixed = natural.reduce((a, w, i) => a + (i === flex ? 0 : w), 0);
  const widths = [...natural];
  if (flex >= 0) widths[flex] = Math.max(available - fixed, Math.min(natural[flex]!, 8));
  let total = widths.reduce((a, w) => a + w, 0);
  // Still too wide: take from the widest column until it fits.
  while (total > available) {
    const widest = widths.indexOf(Math.max(...widths));
    if (widths[widest]! <= 3) break;
    widths[widest]! -= 1;
    total -= 1;
  }
  return widths;
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

const TONE_COLOR = { good: "green", bad: "red", warn: "yellow" } as const;

export function Table(props: {
  data: TableData;
  width: number;
  height: number;
  selected: number;
  start: number;
  empty: string;
  /** Ids of the marked rows (drawn bold and magenta). */
  marked?: Set<string>;
}) {
  const { data, width, height, selected, start } = props;
  const widths = columnWidths(data, width);
  const line = (cells: string[]) => cells.map((c, i) => fitCell(c, widths[i]!)).join(" ".repeat(GAP));
  const visible = data.rows.slice(start, start + Math.max(1, height - 1));
  return (
    <Box flexDirection="column">
      <Text bold>{line(data.columns.map((c) => c.title))}</Text>
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
            color={isMarked ? "magenta" : r.tone ? TONE_COLOR[r.tone] : undefined}
            wrap="truncate"
          >
            {line(r.cells)}
          </Text>
        );
      })}
    </Box>
  );
}
