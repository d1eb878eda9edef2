// The part of YAML that cloud-configs use, parsed with the line of every node so that Berth's own check can say
// where a mistake is: block mappings and sequences, plain and quoted scalars, literal (|) and folded (>) block
// scalars, comments. Flow collections ([a, b], {a: b}), anchors, aliases, tags and multi-line plain scalars are
// refused with their line (no YAML library is in the dependency set; this subset is what user-data needs).

export type YamlNode =
  | { kind: "map"; line: number; entries: YamlEntry[] }
  | { kind: "seq"; line: number; items: YamlNode[] }
  /** `block`: the line where a block scalar's content starts (its first line), for mapping lines inside it. */
  | { kind: "scalar"; line: number; value: string; quoted: boolean; block?: number };

export interface YamlEntry {
  key: string;
  line: number;
  value: YamlNode;
}

export class YamlError extends Error {
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`);
  }
}

interface Line {
  /** 1-based line number. */
  no: number;
  indent: number;
  /** Without indentation and without a trailing comment. */
  text: string;
}

/** Parses one document; an empty one is an empty mapping. */
export function parseYaml(source: string): YamlNode {
  const p = new Parser(source.replace(/\r\n/g, "\n").split("\n"));
  return p.document();
}

class Parser {
  private i = 0;

  constructor(private readonly raw: string[]) {}

  document(): YamlNode {
    const first = this.peek();
    if (first?.text === "---") this.i = first.no;
    const start = this.peek();
    if (!start) return { kind: "map", line: 1, entries: [] };
    const node = this.block(start.indent);
    const rest = this.peek();
    if (rest) {
      if (rest.text === "---" || rest.text === "...")
        throw new YamlError(rest.no, "only one YAML document is read: remove this marker and what follows");
      throw new YamlError(rest.no, `unexpected indentation (${rest.indent} spaces)`);
    }
    return node;
  }

  /** The next line with content (blank and comment-only lines skipped), not consumed. */
  private peek(): Line | null {
    for (let j = this.i; j < this.raw.length; j++) {
      const line = this.lineAt(j);
      if (line) return line;
    }
    return null;
  }

  private lineAt(j: number): Line | null {
    const raw = this.raw[j]!;
    const tab = /^\s*/.exec(raw)![0].indexOf("\t");
    const body = stripComment(raw);
    if (body.trim() === "") return null;
    if (tab >= 0) throw new YamlError(j + 1, "a tab in the indentation (YAML indents with spaces)");
    const indent = raw.length - raw.trimStart().length;
    return { no: j + 1, indent, text: body.trim() };
  }

  private take(line: Line): void {
    this.i = line.no;
  }

  private block(indent: number): YamlNode {
    const line = this.peek()!;
    return isSeqItem(line.text) ? this.sequence(indent) : this.mapping(indent, null);
  }

  /** A mapping at `indent`; `firstLine` is its first entry when it starts after a "- " on a sequence line. */
  private mapping(indent: number, firstLine: Line | null): YamlNode {
    const entries: YamlEntry[] = [];
    const startLine = firstLine?.no ?? this.peek()!.no;
    for (;;) {
      const line = firstLine ?? this.peek();
      firstLine = null;
      if (!line || line.indent < indent) break;
      if (line.indent > indent)
        throw new YamlError(line.no, `unexpected indentation (${line.indent} spaces, expected ${indent})`);
      if (isSeqItem(line.text)) break;
      this.take(line);
      const { key, rest } = splitKey(line);
      const dup = entries.find((e) => e.key === key);
      if (dup) throw new YamlError(line.no, `"${key}" is given twice (first on line ${dup.line})`);
      entries.push({ key, line: line.no, value: this.value(rest, line, indent) });
    }
    return { kind: "map", line: startLine, entries };
  }

  private sequence(indent: number): YamlNode {
    const items: YamlNode[] = [];
    const startLine = this.peek()!.no;
    for (;;) {
      const line = this.peek();
      if (!line || line.indent !== indent || !isSeqItem(line.text)) {
        if (line && line.indent > indent)
          throw new YamlError(line.no, `unexpected indentation (${line.indent} spaces, expected ${indent})`);
        break;
      }
      this.take(line);
      const after = line.text.slice(1);
      const rest = after.trimStart();
      const itemIndent = indent + 1 + (after.length - rest.length);
      if (rest === "") {
        const next = this.peek();
        items.push(next && next.indent > indent ? this.block(next.indent) : empty(line.no));
      } else if (isSeqItem(rest)) {
        throw new YamlError(line.no, "a sequence directly inside a sequence item: put it on the next line");
      } else if (keyOf(rest) !== null) {
        items.push(this.mapping(itemIndent, { no: line.no, indent: itemIndent, text: rest }));
      } else items.push(this.value(rest, line, indent));
    }
    return { kind: "seq", line: startLine, items };
  }

  /** What follows "key:" or "- " on `line` (whose block is at `indent`). */
  private value(rest: string, line: Line, indent: number): YamlNode {
    if (rest === "") {
      const next = this.peek();
      if (next && next.indent > indent) return this.block(next.indent);
      // "key:" followed by "- item" at the key's own indentation is a sequence too (a common YAML style).
      if (next && next.indent === indent && isSeqItem(next.text) && !isSeqItem(line.text))
        return this.sequence(indent);
      return empty(line.no);
    }
    if (/^[|>]/.test(rest)) return this.blockScalar(rest, line, indent);
    const node = scalar(rest, line.no);
    const next = this.peek();
    if (next && next.indent > indent && !node.quoted)
      throw new YamlError(
        next.no,
        "a value continued on the next line: write it on one line, quote it, or use a | block",
      );
    return node;
  }

  /** | and > blocks (with - or + chomping): the lines indented more than the key, their common indentation removed. */
  private blockScalar(header: string, line: Line, indent: number): YamlNode {
    const m = /^([|>])([+-]?)$/.exec(header);
    if (!m) throw new YamlError(line.no, `block scalar header "${header}" is not one of | |- |+ > >- >+`);
    const lines: string[] = [];
    let contentIndent = -1;
    let j = this.i;
    for (; j < this.raw.length; j++) {
      const raw = this.raw[j]!;
      if (raw.trim() === "") {
        lines.push("");
        continue;
      }
      const ind = raw.length - raw.trimStart().length;
      if (contentIndent < 0) {
        if (ind <= indent) break;
        contentIndent = ind;
      }
      if (ind < contentIndent) {
        if (ind > indent)
          throw new YamlError(j + 1, `less indented than the block's first line (${contentIndent} spaces)`);
        break;
      }
      lines.push(raw.slice(contentIndent));
    }
    // Trailing blank lines belong to the chomping, not to the next key.
    let end = lines.length;
    while (end > 0 && lines[end - 1] === "") end--;
    const blankTail = lines.length - end;
    this.i = j - blankTail;
    const body = lines.slice(0, end);
    let text = m[1] === "|" ? body.join("\n") : fold(body);
    if (m[2] === "+") text += "\n".repeat(blankTail + (body.length > 0 ? 1 : 0));
    else if (m[2] === "" && body.length > 0) text += "\n";
    return { kind: "scalar", line: line.no, value: text, quoted: true, block: line.no + 1 };
  }
}

function empty(line: number): YamlNode {
  return { kind: "scalar", line, value: "", quoted: false };
}

function isSeqItem(text: string): boolean {
  return text === "-" || text.startsWith("- ");
}

/** Folded style: lines joined by spaces, a blank line is a newline; more-indented lines stay as they are. */
function fold(lines: string[]): string {
  let out = "";
  for (let k = 0; k < lines.length; k++) {
    const l = lines[k]!;
    if (k > 0) {
      const prev = lines[k - 1]!;
      out += l === "" || prev === "" || /^\s/.test(l) || /^\s/.test(prev) ? "\n" : " ";
    }
    out += l;
  }
  return out.replace(/\n\n/g, "\n");
}

/** The line without a comment: `#` at the start or after a space, outside quotes. */
function stripComment(raw: string): string {
  let quote: string | null = null;
  for (let k = 0; k < raw.length; k++) {
    const c = raw[k]!;
    if (quote) {
      if (c === "\\" && quote === '"') k++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      const before = raw.slice(0, k).trimEnd();
      if (before === "" || /[:\-[{,]$/.test(before)) quote = c;
    } else if (c === "#" && (k === 0 || /\s/.test(raw[k - 1]!))) return raw.slice(0, k);
  }
  return raw;
}

/** "key: rest" -> key (quoted keys unquoted) and what follows the colon; null when the text is no mapping entry. */
function keyOf(text: string): { key: string; rest: string } | null {
  if (text.startsWith('"') || text.startsWith("'")) {
    const q = text[0]!;
    let k = 1;
    for (; k < text.length; k++) {
      if (text[k] === "\\" && q === '"') k++;
      else if (text[k] === q) {
        if (q === "'" && text[k + 1] === "'") k++;
        else break;
      }
    }
    const after = text.slice(k + 1);
    const m = /^\s*:(?:\s+|$)/.exec(after);
    if (!m) return null;
    return { key: unquote(text.slice(0, k + 1), 0), rest: after.slice(m[0].length).trim() };
  }
  const m = /^([^\s#][^:]*?|[^\s#]):(?:\s+|$)/.exec(text);
  if (!m) return null;
  return { key: m[1]!.trim(), rest: text.slice(m[0].length).trim() };
}

function splitKey(line: Line): { key: string; rest: string } {
  const kv = keyOf(line.text);
  if (!kv) throw new YamlError(line.no, `expected "key: value", found "${line.text}"`);
  return kv;
}

function scalar(text: string, line: number): YamlNode & { kind: "scalar" } {
  const c = text[0]!;
  if (c === '"' || c === "'") return { kind: "scalar", line, value: unquote(text, line), quoted: true };
  if (c === "[" || c === "{")
    throw new YamlError(
      line,
      `flow style (${c}...) is not read here: write the items as a block, one per line`,
    );
  if (c === "&" || c === "*" || c === "!")
    throw new YamlError(line, `anchors, aliases and tags (${c}) are not read here: write the value out`);
  return { kind: "scalar", line, value: text, quoted: false };
}

function unquote(text: string, line: number): string {
  const q = text[0]!;
  if (text.length < 2 || text[text.length - 1] !== q)
    throw new YamlError(line, `unterminated quoted value ${text}`);
  const inner = text.slice(1, -1);
  if (q === "'") return inner.replace(/''/g, "'");
  try {
    return JSON.parse(`"${inner.replace(/\\\//g, "/").replace(/\t/g, "\\t")}"`) as string;
  } catch {
    throw new YamlError(line, `bad escape in ${text}`);
  }
}
