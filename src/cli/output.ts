// Table and JSON output for subcommands: clear tables for people, one JSON document per result for scripts.

export type OutputFormat = "table" | "json";

export interface Column<T> {
  header: string;
  value: (row: T) => string;
  /** Cut to this many characters (with an ellipsis) unless --full. */
  maxWidth?: number;
}

/** fleetctl's tabwriter settings: `tabwriter.NewWriter(os.Stdout, 0, 8, 1, '\t', 0)` (fleetctl/fleetctl.go). */
const TAB_WIDTH = 8;
const PADDING = 1;

/**
 * A table as fleetctl prints it: upper-case headers, each cell but the last followed by tabs, as Go's tabwriter
 * pads with '\t' (a column is as wide as its widest cell plus one, rounded up to a multiple of 8). So `cut -f1`
 * and `awk -F'\t'` take a column, and a terminal lines them up.
 */
export function renderTable<T>(
  rows: T[],
  columns: Column<T>[],
  opts: { legend?: boolean; full?: boolean } = {},
): string {
  const cells = rows.map((r) =>
    columns.map((c) => {
      const v = c.value(r);
      return !opts.full && c.maxWidth && v.length > c.maxWidth ? `${v.slice(0, c.maxWidth)}...` : v;
    }),
  );
  const header = columns.map((c) => c.header);
  const all = opts.legend === false ? cells : [header, ...cells];
  const textWidth = (v: string) => [...v].length;
  const widths = columns.map((_, i) => {
    const w = Math.max(...all.map((r) => textWidth(r[i]!))) + PADDING;
    return Math.ceil(w / TAB_WIDTH) * TAB_WIDTH;
  });
  return all
    .map((r) =>
      r
        .map((v, i) =>
          i === r.length - 1 ? v : v + "\t".repeat(Math.ceil((widths[i]! - textWidth(v)) / TAB_WIDTH)),
        )
        .join(""),
    )
    .join("\n");
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
