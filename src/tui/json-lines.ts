// JSON read with the line each value starts on, so a configuration file's errors (a syntax error, or a value the
// console refuses) name their line. Plain JSON (RFC 8259); what JSON.parse accepts, this accepts.

export class JsonLineError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

export interface LinedJson {
  value: unknown;
  /** The line (1-based) each value starts on, by its path: "" the whole, "keys.stop", "plugins.0.command". */
  lines: Map<string, number>;
}

export function parseJsonWithLines(text: string): LinedJson {
  const lines = new Map<string, number>();
  let i = 0;
  let line = 1;
  const fail = (what: string): never => {
    throw new JsonLineError(i >= text.length ? `unexpected end of file, ${what}` : `${what}`, line);
  };
  const space = () => {
    for (; i < text.length; i++) {
      const c = text[i]!;
      if (c === "\n") line++;
      else if (c !== " " && c !== "\t" && c !== "\r") break;
    }
  };
  const string = (): string => {
    const start = i;
    for (i++; i < text.length && text[i] !== '"'; i++) {
      if (text[i] === "\\") i++;
      else if (text[i] === "\n") fail("a string must end on its line");
    }
    if (i >= text.length) fail("a string is not closed");
    i++;
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      return fail(`invalid string ${text.slice(start, i)}`);
    }
  };
  const value = (path: string): unknown => {
    space();
    lines.set(path, line);
    const c = text[i];
    if (c === "{") {
      const out: Record<string, unknown> = {};
      i++;
      space();
      if (text[i] === "}") {
        i++;
        return out;
      }
      for (;;) {
        space();
        if (text[i] !== '"') fail(`expected a "name" in the object, found ${shown(text[i])}`);
        const name = string();
        space();
        if (text[i] !== ":") fail(`expected ":" after "${name}", found ${shown(text[i])}`);
        i++;
        out[name] = value(path ? `${path}.${name}` : name);
        space();
        if (text[i] === ",") i++;
        else if (text[i] === "}") {
          i++;
          return out;
        } else fail(`expected "," or "}" after "${name}", found ${shown(text[i])}`);
      }
    }
    if (c === "[") {
      const out: unknown[] = [];
      i++;
      space();
      if (text[i] === "]") {
        i++;
        return out;
      }
      for (;;) {
        out.push(value(path ? `${path}.${out.length}` : String(out.length)));
        space();
        if (text[i] === ",") i++;
        else if (text[i] === "]") {
          i++;
          return out;
        } else fail(`expected "," or "]" in the list, found ${shown(text[i])}`);
      }
    }
    if (c === '"') return string();
    const m = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 400));
    if (!m) return fail(`expected a value, found ${shown(c)}`);
    i += m[0].length;
    return JSON.parse(m[0]);
  };
  const result = value("");
  space();
  if (i < text.length) fail(`unexpected ${shown(text[i])} after the end of the document`);
  return { value: result, lines };
}

function shown(c: string | undefined): string {
  return c === undefined ? "the end of the file" : JSON.stringify(c);
}
