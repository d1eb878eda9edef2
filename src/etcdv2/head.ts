// Reading one HTTP/1.1 request head from a byte stream, for the raw server (raw.ts). Pure, so it is tested
// without sockets. The head may arrive in pieces of any size: each byte is looked at once while searching for the
// blank line that ends it, and the pieces are joined once, when it is complete, so a head sent a byte at a time
// costs what it costs in one write (joining and re-searching the whole buffer per piece was quadratic).

export interface RequestHead {
  method: string;
  target: string;
  http10: boolean;
  /** Lower-case names; repeated fields joined with ", " (Content-Length: must agree, kept once). */
  headers: Map<string, string>;
}

export type HeadResult =
  | { kind: "more" }
  | { kind: "head"; head: RequestHead; rest: Buffer | null }
  /** 400: not a request head Go's server would accept; 431: larger than maxBytes. */
  | { kind: "bad"; status: 400 | 431 };

const CR = 13;
const LF = 10;
/** RFC 9110 token characters: a field name (or method) with anything else, e.g. "Transfer-Encoding :", is refused. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Control characters other than horizontal tab may not appear in a field value (Go: "invalid header value"). */
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

export class HeadReader {
  private chunks: Buffer[] = [];
  private size = 0;
  /** How much of "\r\n\r\n" the bytes searched so far end with. */
  private matched = 0;
  /** Bytes searched over the reader's life (each received byte once): tests check the work is linear. */
  scanned = 0;

  constructor(private readonly maxBytes: number) {}

  /** Bytes of an unfinished head held. */
  get bufferedBytes(): number {
    return this.size;
  }

  /** Takes the next piece of input; a complete head comes back with the bytes that followed it. */
  push(chunk: Buffer): HeadResult {
    let start = 0;
    // Go and Node skip empty lines before a request line.
    if (this.size === 0) while (start < chunk.length && (chunk[start] === CR || chunk[start] === LF)) start++;
    let end = -1;
    for (let i = start; i < chunk.length; i++) {
      const b = chunk[i];
      const want = this.matched % 2 === 0 ? CR : LF;
      if (b === want) this.matched++;
      else this.matched = b === CR ? 1 : 0;
      if (this.matched === 4) {
        end = i + 1;
        break;
      }
    }
    this.scanned += (end < 0 ? chunk.length : end) - start;
    const piece = chunk.subarray(start, end < 0 ? chunk.length : end);
    if (piece.length > 0) {
      this.chunks.push(piece);
      this.size += piece.length;
    }
    if (this.size - (end < 0 ? 0 : 4) > this.maxBytes) return this.reset({ kind: "bad", status: 431 });
    if (end < 0) return { kind: "more" };
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.size);
    const text = all.toString("utf8", 0, all.length - 4);
    const rest = end === chunk.length ? null : chunk.subarray(end);
    const head = parseHead(text);
    return this.reset(head === null ? { kind: "bad", status: 400 } : { kind: "head", head, rest });
  }

  private reset(r: HeadResult): HeadResult {
    this.chunks = [];
    this.size = 0;
    this.matched = 0;
    return r;
  }
}

/** Parses a head's text (without its final blank line); null when Go's server would answer 400. */
export function parseHead(text: string): RequestHead | null {
  const lines = text.split("\r\n");
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.(\d)$/.exec(lines[0] as string);
  if (!m) return null;
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(":");
    if (colon <= 0) return null;
    const name = line.slice(0, colon);
    // RFC 9112 5.1: no whitespace between a field name and the colon (a request-smuggling vector); this also
    // refuses obsolete line folding (a line starting with a space).
    if (!TOKEN.test(name)) return null;
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (BAD_VALUE.test(value)) return null;
    const key = name.toLowerCase();
    const prev = headers.get(key);
    if (prev !== undefined && key === "content-length") {
      if (prev !== value) return null;
      continue;
    }
    headers.set(key, prev === undefined ? value : `${prev}, ${value}`);
  }
  return { method: m[1] as string, target: m[2] as string, http10: m[3] === "0", headers };
}
