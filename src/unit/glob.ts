// Globs over unit names, with Go's path.Match semantics (fleet matches Conflicts= and Replaces= with it): `*`, `?`,
// `[...]` with ranges and `^` negation — `!` accepted too — and `\` escapes. A malformed pattern matches nothing, as
// in fleet (path.Match returns ErrBadPattern, logged, no match). Pure.

const globCache = new Map<string, RegExp | null>();
const REGEX_SPECIAL = /[\\^$.*+?()[\]{}|/-]/g;

export function isGlob(pattern: string): boolean {
  return /[*?[\\]/.test(pattern);
}

function compileGlob(p: string): RegExp | null {
  let re = "^";
  let i = 0;
  const readClassChar = (): string | null => {
    let ch = p[i];
    if (ch === undefined || ch === "-" || ch === "]") return null;
    if (ch === "\\") {
      i++;
      ch = p[i];
      if (ch === undefined) return null;
    }
    i++;
    return ch;
  };
  while (i < p.length) {
    const c = p[i]!;
    if (c === "*") {
      re += "[^/]*";
      i++;
    } else if (c === "?") {
      re += "[^/]";
      i++;
    } else if (c === "\\") {
      const next = p[i + 1];
      if (next === undefined) return null;
      re += next.replace(REGEX_SPECIAL, "\\$&");
      i += 2;
    } else if (c === "[") {
      i++;
      let negated = false;
      if (p[i] === "^" || p[i] === "!") {
        negated = true;
        i++;
      }
      const parts: string[] = [];
      let n = 0;
      for (;;) {
        if (i >= p.length) return null;
        if (p[i] === "]" && n > 0) {
          i++;
          break;
        }
        const lo = readClassChar();
        if (lo === null) return null;
        let hi = lo;
        if (p[i] === "-") {
          i++;
          const h = readClassChar();
          if (h === null) return null;
          hi = h;
        }
        n++;
        if (lo <= hi) {
          const esc = (s: string) => s.replace(REGEX_SPECIAL, "\\$&");
          parts.push(lo === hi ? esc(lo) : `${esc(lo)}-${esc(hi)}`);
        }
      }
      if (parts.length === 0) re += negated ? "[\\s\\S]" : "(?!)";
      else re += negated ? `[^${parts.join("")}]` : `[${parts.join("")}]`;
    } else {
      re += c.replace(REGEX_SPECIAL, "\\$&");
      i++;
    }
  }
  return new RegExp(`${re}$`, "s");
}

/** Go path.Match-style glob match (unit names contain no `/`). Malformed patterns match nothing. */
export function globMatch(pattern: string, name: string): boolean {
  if (!isGlob(pattern)) return pattern === name;
  let re = globCache.get(pattern);
  if (re === undefined) {
    re = compileGlob(pattern);
    if (globCache.size > 10_000) globCache.clear();
    globCache.set(pattern, re);
  }
  return re?.test(name) === true;
}
