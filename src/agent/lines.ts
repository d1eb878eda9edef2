// Process and container output into the journal: a byte stream cut into lines, with bounded work per event-loop
// turn. A unit writing as fast as it can (`yes`) must not starve the node: the stream is paused after each chunk
// and read on in a later turn (the writer blocks on its full pipe meanwhile, as it would with a slow journald),
// at most LINES_PER_TURN lines are cut out per turn, and while the unit's lines are dropped anyway (rate limit)
// they are only counted, and reading waits DROPPING_PAUSE_MS between chunks.
import type { Readable } from "node:stream";
import { JOURNAL_LINE_MAX } from "./journal.ts";

/** Where the lines go (the unit's rate-limited journal, unit-output.ts). */
export interface LineSink {
  line(text: string): void;
  /** True while lines would be dropped anyway: the reader then counts them instead of cutting them out. */
  dropping(): boolean;
  /** Lines read while dropping, counted by their newlines. */
  dropped(lines: number): void;
}

export interface ReadLimits {
  /** Lines cut out per event-loop turn at most; the rest of the chunk waits for the next turn. */
  linesPerTurn: number;
  /** While dropping, the wait before the next chunk is read. */
  droppingPauseMs: number;
  /** A line without a newline is cut here (journald's LineMax=), so that it cannot grow without bound. */
  lineMaxBytes: number;
}

export const DEFAULT_READ_LIMITS: ReadLimits = {
  linesPerTurn: 1000,
  droppingPauseMs: 20,
  lineMaxBytes: JOURNAL_LINE_MAX,
};

const NL = 0x0a;

/** Calls sink.line for each complete line of a stream (and the unterminated rest at its end). */
export function pipeLines(stream: Readable, sink: LineSink, limits: ReadLimits = DEFAULT_READ_LIMITS): void {
  let partial: Buffer[] = [];
  let partialBytes = 0;
  let chunk: Buffer | null = null;
  let pos = 0;
  let ended = false;

  const emit = (last: Buffer): void => {
    const bytes = partial.length === 0 ? last : Buffer.concat([...partial, last]);
    partial = [];
    partialBytes = 0;
    sink.line(bytes.toString("utf8").replace(/\r$/, ""));
  };
  const finish = (): void => {
    if (partialBytes > 0 && !sink.dropping()) emit(Buffer.alloc(0));
    partial = [];
    partialBytes = 0;
  };

  const work = (): void => {
    const c = chunk;
    if (c === null) return;
    let lines = 0;
    while (pos < c.length) {
      if (sink.dropping()) {
        let n = 0;
        for (let i = pos; i < c.length; i++) if (c[i] === NL) n++;
        sink.dropped(n);
        partial = [];
        partialBytes = 0;
        pos = c.length;
        break;
      }
      if (lines >= limits.linesPerTurn) {
        setImmediate(work);
        return;
      }
      const nl = c.indexOf(NL, pos);
      const room = limits.lineMaxBytes - partialBytes;
      if (nl >= 0 && nl - pos <= room) {
        emit(c.subarray(pos, nl));
        pos = nl + 1;
      } else if (c.length - pos < room) {
        partial.push(c.subarray(pos));
        partialBytes += c.length - pos;
        pos = c.length;
      } else {
        // The line reaches LineMax: it is cut there, and what follows is the next line.
        emit(c.subarray(pos, pos + room));
        pos += room;
      }
      lines++;
    }
    chunk = null;
    if (ended) finish();
    else if (sink.dropping()) setTimeout(() => stream.resume(), limits.droppingPauseMs);
    else setImmediate(() => stream.resume());
  };

  stream.on("data", (c: Buffer) => {
    stream.pause();
    if (chunk !== null) {
      // Read before the pause took hold: queued behind the chunk being worked on.
      chunk = Buffer.concat([chunk.subarray(pos), c]);
      pos = 0;
      return;
    }
    chunk = c;
    pos = 0;
    work();
  });
  stream.on("end", () => {
    ended = true;
    if (chunk === null) finish();
  });
  stream.on("error", () => {});
}
