// The layout version of a data directory (its `format` file): what a binary may read. A binary refuses a directory
// written in a newer format, before it reads or writes anything there, so a downgrade past a format change stops
// with a message instead of misreading the log. Directories from before this file existed are format 1.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { VERSION } from "../version.ts";

/** Bump on any change to the WAL, snapshot, node.json or agent-state layout that an older binary cannot read. */
export const DATA_FORMAT = 1;

export const FORMAT_FILE = "format";

/** The data directory's format cannot be read by this binary (the CLI exits 2 with the message). */
export class DataFormatError extends Error {}

interface FormatRecord {
  format: number;
  /** The release that last wrote the record (for the operator reading the refusal). */
  writtenBy?: string;
}

function readFormat(dataDir: string): FormatRecord | null {
  const path = join(dataDir, FORMAT_FILE);
  if (!existsSync(path)) return null;
  let record: FormatRecord;
  try {
    record = JSON.parse(readFileSync(path, "utf8")) as FormatRecord;
  } catch (e) {
    throw new DataFormatError(
      `${path} is unreadable (${(e as Error).message}): cannot tell this data directory's format`,
    );
  }
  if (!Number.isInteger(record.format) || record.format < 1)
    throw new DataFormatError(`${path} names no data format (a whole number from 1)`);
  return record;
}

/** Throws (exit 2) when `dataDir` was written in a format newer than this binary reads. */
export function checkDataFormat(dataDir: string): void {
  const record = readFormat(dataDir);
  if (record === null || record.format <= DATA_FORMAT) return;
  throw new DataFormatError(
    `--data-dir ${dataDir} holds data format ${record.format}` +
      (record.writtenBy ? ` (written by berth ${record.writtenBy})` : "") +
      `; this berth ${VERSION} reads format ${DATA_FORMAT} at most: run a berth of that release or newer ` +
      "(a data directory cannot go back to an older format)",
  );
}

/** The record this binary keeps in `dataDir` (call checkDataFormat first). */
export function formatRecord(): string {
  return `${JSON.stringify({ format: DATA_FORMAT, writtenBy: VERSION })}\n`;
}
