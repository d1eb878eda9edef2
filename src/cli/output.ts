// Table and JSON output for subcommands: clear tables for people, one JSON document per result for scripts.

export type OutputFormat = "table" | "json";

export interface Column<T> {
  header: string;
  value: (row: T) => string;
  /** Cut to this many characters (with an ellipsis) unless --full. */
  maxWidth?: number;
}

/** fleetctl-style table: upper-case headers, columns separated by tabs-worth of spaces. */
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
  const widths = columns.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all
    .map((r) =>
      r
        .map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]! + 2)))
        .join("")
        .trimEnd(),
    )
    .join("\n");
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
