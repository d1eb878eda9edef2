// Per-unit journal: append-only JSON-lines files `<dataDir>/journal/<unit>.log`, rotated to `.log.1` when they
// pass a size bound, with a tail reader that reads from the end (never the whole file) and live followers.
import { appendFileSync, mkdirSync, renameSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import type { JournalLine } from "../client/protocol.ts";

export type { JournalLine };

export const DEFAULT_JOURNAL_MAX_BYTES = 8 * 1024 * 1024;
/** journald's LineMax default: longer lines are split. */
export const JOURNAL_LINE_MAX = 48 * 1024;

interface UnitLog {
  size: number;
  pending: string[];
  pendingBytes: number;
}

export class Journal {
  readonly dir: string;
  private readonly maxBytes: number;
  private readonly logs = new Map<string, UnitLog>();
  private readonly followers = new Map<string, Set<(l: JournalLine) => void>>();
  private flushScheduled = false;

  constructor(dir: string, opts: { maxBytes?: number } = {}) {
    this.dir = dir;
    this.maxBytes = opts.maxBytes ?? DEFAULT_JOURNAL_MAX_BYTES;
    mkdirSync(dir, { recursive: true });
  }

  pathOf(unit: string): string {
    return join(this.dir, `${unit.replace(/\//g, "_")}.log`);
  }

  /** Appends one entry (split when longer than JOURNAL_LINE_MAX); written on the next tick, in order. */
  append(line: JournalLine): void {
    const parts: string[] = [];
    for (let i = 0; i < line.text.length || i === 0; i += JOURNAL_LINE_MAX) {
      parts.push(line.text.slice(i, i + JOURNAL_LINE_MAX));
    }
    for (const text of parts) {
      const entry: JournalLine = { ...line, text };
      const log = this.logOf(line.unit);
      // The agent's own lines come from this process (the supervisor running the agent).
      const pid = line.pid ?? (line.stream === "berth" ? process.pid : undefined);
      const stored = {
        at: entry.at,
        stream: entry.stream,
        text: entry.text,
        ...(pid ? { pid } : {}),
        ...(line.ident ? { ident: line.ident } : {}),
      };
      if (pid) entry.pid = pid;
      const json = `${JSON.stringify(stored)}\n`;
      log.pending.push(json);
      log.pendingBytes += Buffer.byteLength(json);
      for (const f of this.followers.get(line.unit) ?? []) {
        try {
          f(entry);
        } catch {
          // a follower's failure is its own business
        }
      }
      if (log.pendingBytes > 64 * 1024) this.flushUnit(line.unit, log);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes every pending entry to disk (synchronously). */
  flush(): void {
    this.flushScheduled = false;
    for (const [unit, log] of this.logs) this.flushUnit(unit, log);
  }

  private logOf(unit: string): UnitLog {
    let log = this.logs.get(unit);
    if (log === undefined) {
      let size = 0;
      try {
        size = statSync(this.pathOf(unit)).size;
      } catch {
        size = 0;
      }
      log = { size, pending: [], pendingBytes: 0 };
      this.logs.set(unit, log);
    }
    return log;
  }

  private flushUnit(unit: string, log: UnitLog): void {
    if (log.pending.length === 0) return;
    const entries = log.pending;
    log.pending = [];
    log.pendingBytes = 0;
    const path = this.pathOf(unit);
    try {
      // Write in runs that fit the bound, rotating to `.1` between them.
      let run: string[] = [];
      let runBytes = 0;
      const write = (): void => {
        if (run.length === 0) return;
        appendFileSync(path, run.join(""));
        log.size += runBytes;
        run = [];
        runBytes = 0;
      };
      for (const e of entries) {
        const n = Buffer.byteLength(e);
        if (log.size + runBytes > 0 && log.size + runBytes + n > this.maxBytes) {
          write();
          renameSync(path, `${path}.1`);
          log.size = 0;
        }
        run.push(e);
        runBytes += n;
      }
      write();
    } catch {
      // A full or read-only disk must not take the agent down; the live followers still saw the lines.
    }
  }

  /** The last `lines` entries of a unit, oldest first (the current file, then `.1` when it is not enough). */
  async tail(unit: string, lines: number): Promise<JournalLine[]> {
    this.flush();
    if (lines <= 0) return [];
    const path = this.pathOf(unit);
    const out = await tailLines(path, lines);
    if (out.length < lines) out.unshift(...(await tailLines(`${path}.1`, lines - out.length)));
    return out.flatMap((raw) => {
      try {
        const e = JSON.parse(raw) as {
          at: number;
          stream: JournalLine["stream"];
          text: string;
          pid?: number;
          ident?: string;
        };
        return [
          {
            at: e.at,
            unit,
            stream: e.stream,
            text: e.text,
            ...(e.pid ? { pid: e.pid } : {}),
            ...(e.ident ? { ident: e.ident } : {}),
          },
        ];
      } catch {
        return [];
      }
    });
  }

  follow(unit: string, onLine: (l: JournalLine) => void): () => void {
    const set = this.followers.get(unit) ?? new Set();
    set.add(onLine);
    this.followers.set(unit, set);
    return () => {
      set.delete(onLine);
      if (set.size === 0 && this.followers.get(unit) === set) this.followers.delete(unit);
    };
  }
}

/** The last n non-empty lines of a file, reading backwards in chunks. Missing file → []. */
async function tailLines(path: string, n: number): Promise<string[]> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, "r");
  } catch {
    return [];
  }
  try {
    const size = (await fh.stat()).size;
    const CHUNK = 64 * 1024;
    let pos = size;
    let chunks: Buffer[] = [];
    let newlines = 0;
    while (pos > 0 && newlines <= n) {
      const len = Math.min(CHUNK, pos);
      pos -= len;
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, pos);
      for (const b of buf) if (b === 0x0a) newlines++;
      chunks = [buf, ...chunks];
    }
    const text = Buffer.concat(chunks).toString("utf8");
    let lines = text.split("\n");
    // Unless the read reached the start of the file, the first line is partial.
    if (pos > 0) lines = lines.slice(1);
    lines = lines.filter((l) => l !== "");
    return lines.slice(-n);
  } finally {
    await fh.close();
  }
}
