// A YAML document read by the `yaml` library into a small tree that keeps the line of every node, so that Berth's
// own check of a cloud-config can say where a mistake is. Every scalar stays a string (the failsafe schema): the
// check decides what a value means (`true` for a flag, "true" for a unit's text), not YAML's type guessing.
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument, Scalar } from "yaml";

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

/** Parses one document; an empty one is an empty mapping. */
export function parseYaml(source: string): YamlNode {
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, schema: "failsafe", prettyErrors: false });
  const lineAt = (offset: number | undefined): number => lines.linePos(offset ?? 0).line;
  const problem = doc.errors[0];
  if (problem)
    throw new YamlError(
      lineAt(problem.pos[0]),
      problem.code === "MULTIPLE_DOCS"
        ? "only one YAML document is read: remove this marker and what follows"
        : firstLine(problem.message),
    );
  if (doc.contents === null) return { kind: "map", line: 1, entries: [] };
  return toTree(doc.contents, lineAt, 1);
}

function toTree(
  node: Node | null,
  lineAt: (offset: number | undefined) => number,
  fallbackLine: number,
): YamlNode {
  if (node === null) return { kind: "scalar", line: fallbackLine, value: "", quoted: false };
  const line = lineAt(node.range?.[0]);
  if (isAlias(node))
    throw new YamlError(line, `aliases (*${node.source}) are not read here: write the value out`);
  if (isMap(node)) {
    const entries: YamlEntry[] = [];
    for (const pair of node.items) {
      if (!isPair(pair) || !isScalar(pair.key))
        throw new YamlError(line, "a mapping key must be a plain value (name:, not a list or a mapping)");
      const keyLine = lineAt(pair.key.range?.[0]);
      entries.push({
        key: String(pair.key.value),
        line: keyLine,
        value: toTree(pair.value as Node, lineAt, keyLine),
      });
    }
    return { kind: "map", line, entries };
  }
  if (isSeq(node))
    return { kind: "seq", line, items: node.items.map((n) => toTree(n as Node, lineAt, line)) };
  if (isScalar(node)) {
    const value = node.value === null ? "" : String(node.value);
    const block = node.type === Scalar.BLOCK_LITERAL || node.type === Scalar.BLOCK_FOLDED;
    const quoted = block || node.type === Scalar.QUOTE_DOUBLE || node.type === Scalar.QUOTE_SINGLE;
    return { kind: "scalar", line, value, quoted, ...(block ? { block: line + 1 } : {}) };
  }
  throw new YamlError(line, "unexpected YAML node");
}

/** The library's messages continue with a source excerpt; the line number says where. */
function firstLine(message: string): string {
  return message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}
