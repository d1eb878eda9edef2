// A view's rows sorted by one of its columns (`:sort COLUMN`, or < and > to move the sort column): numbers in
// cells compared as numbers (web@2 before web@10), ties kept in the table's own order. Kept per table and order,
// so a redraw does not sort 10,000 rows again.
import type { TableData } from "./model.ts";

export interface Sort {
  /** The column's index in the table as shown. */
  column: number;
  desc: boolean;
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
const sorted = new WeakMap<TableData, { sort: Sort; result: TableData }>();

export function sortRows(table: TableData, sort: Sort | null): TableData {
  if (!sort || sort.column >= table.columns.length) return table;
  const kept = sorted.get(table);
  if (kept && kept.sort.column === sort.column && kept.sort.desc === sort.desc) return kept.result;
  const sign = sort.desc ? -1 : 1;
  const order = table.rows.map((r, i) => ({ r, i, cell: r.cells[sort.column] ?? "" }));
  order.sort((a, b) => sign * collator.compare(a.cell, b.cell) || a.i - b.i);
  const result = { ...table, rows: order.map((o) => o.r) };
  sorted.set(table, { sort, result });
  return result;
}

/** The column whose title starts with `name` (case-insensitive), or -1. */
export function columnNamed(table: Pick<TableData, "columns">, name: string): number {
  const n = name.toUpperCase();
  const exact = table.columns.findIndex((c) => c.title === n);
  return exact >= 0 ? exact : table.columns.findIndex((c) => c.title.startsWith(n));
}
