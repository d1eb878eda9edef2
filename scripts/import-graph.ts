// The import-graph check `npm run lint` runs: reads every module under src/ (its static imports and re-exports,
// and dynamic import() of a literal), and enforces the layers the README's Layout describes:
//   - no cycle between src/ folders;
//   - the Raft core (src/raft without the driver, storage/, the transport and its snapshot transfer) imports
//     nothing that does I/O;
//   - src/kv imports no node code;
//   - the CLI and the console reach the cluster only through src/client (not node, raft, wire or the store);
//   - nothing in src/ imports test/, tools/, bench/ or scripts/.
// Violations tolerated for now are listed in KNOWN (empty since the architecture issue); anything else fails, and
// so does a KNOWN entry that no longer occurs (the list only shrinks). A parser of our own: dependency-cruiser reads
// TypeScript only through TypeScript < 7, which this repository does not have (it would read nothing and pass).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { cycles } from "../src/graph.ts";

export interface Violation {
  rule: string;
  /** "from -> to", module paths relative to the root (folders for the cycle rule). */
  edge: string;
}

export interface GraphReport {
  modules: number;
  imports: number;
  violations: Violation[];
}

/** Builtins that touch the disk, the network, processes or the host. */
const IO_BUILTINS =
  /^(node:)?(fs|fs\/promises|net|tls|http|https|http2|dgram|child_process|os|cluster|worker_threads)$/;
const RAFT_CORE = /^src\/raft\/(?!driver\.ts$|transport\.ts$|snapshot-transfer\.ts$|storage\/)[^/]+\.tsx?$/;

interface Rule {
  name: string;
  from: RegExp;
  /** A resolved module path (relative to the root) or a bare specifier that must not be imported. */
  forbids(target: string): boolean;
}

const RULES: Rule[] = [
  {
    name: "the Raft core does no I/O",
    from: RAFT_CORE,
    forbids: (t) => IO_BUILTINS.test(t) || (t.startsWith("src/") && !RAFT_CORE.test(t)),
  },
  { name: "src/kv imports no node code", from: /^src\/kv\//, forbids: (t) => t.startsWith("src/node/") },
  {
    name: "the CLI and the console reach the cluster through the client",
    // `berth node` and `berth supervise` are the entry points of node mode: they compose it (node-config.ts
    // resolves the node's configuration from its flags). `berth snapshot` and `berth backup` read and write
    // snapshot files and data directories offline, as node mode does.
    from: /^src\/(cli\/(?!node-command\.ts$|node-config\.ts$|supervise-command\.ts$|snapshot-command\.ts$)|tui\/)/,
    forbids: (t) => /^src\/(node|raft|wire)\//.test(t) || t === "src/kv/store.ts",
  },
  {
    name: "src imports no tests, tools, benches or scripts",
    from: /^src\//,
    forbids: (t) => /^(test|tools|bench|scripts)\//.test(t),
  },
];

/** Violations tolerated for now, "rule: from -> to": none since the architecture issue removed the last. */
export const KNOWN = new Set<string>([]);

const IMPORT_RE =
  /(?:^|[;\s])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+\s+from\s+)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

/** The specifiers a module imports (comments are stripped first, so examples in them do not count). */
export function importsOf(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
  const out: string[] = [];
  for (const m of code.matchAll(IMPORT_RE)) out.push((m[1] ?? m[2])!);
  return out;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.tsx?$/.test(name) && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** Checks the modules under `root`/src; `known` lists the violations that are tolerated (and must still occur). */
export function checkImportGraph(root: string, known: ReadonlySet<string> = KNOWN): GraphReport {
  const files = walk(join(root, "src"));
  const edges: { from: string; to: string }[] = [];
  for (const file of files) {
    const from = relative(root, file);
    for (const spec of importsOf(readFileSync(file, "utf8"))) {
      const to = spec.startsWith(".") ? relative(root, resolve(dirname(file), spec)) : spec;
      edges.push({ from, to });
    }
  }
  const found: Violation[] = [];
  for (const { from, to } of edges)
    for (const rule of RULES)
      if (rule.from.test(from) && rule.forbids(to)) found.push({ rule: rule.name, edge: `${from} -> ${to}` });
  found.push(...folderCycles(edges));

  const violations: Violation[] = [];
  const seen = new Set<string>();
  for (const v of found) {
    const key = `${v.rule}: ${v.edge}`;
    seen.add(key);
    if (!known.has(key)) violations.push(v);
  }
  for (const key of known)
    if (!seen.has(key))
      violations.push({ rule: "a known violation is gone: remove it from KNOWN", edge: key });
  return { modules: files.length, imports: edges.length, violations };
}

/** src/<folder> of a module path, or null outside src (builtins, packages). */
function folderOf(path: string): string | null {
  const m = /^src\/([^/]+)\//.exec(path);
  return m ? m[1]! : null;
}

/** Each folder edge that lies on a cycle between src/ folders (Tarjan's strongly connected components). */
function folderCycles(edges: { from: string; to: string }[]): Violation[] {
  const graph = new Map<string, Set<string>>();
  for (const { from, to } of edges) {
    const a = folderOf(from);
    const b = folderOf(to);
    if (a === null || b === null || a === b) continue;
    if (!graph.has(a)) graph.set(a, new Set());
    if (!graph.has(b)) graph.set(b, new Set());
    graph.get(a)!.add(b);
  }
  // Folder -> the cycle it lies on; an edge between two folders of one cycle lies on it.
  const component = new Map<string, number>();
  cycles([...graph.keys()].sort(), (v) => [...graph.get(v)!]).forEach((folders, i) => {
    for (const f of folders) component.set(f, i);
  });
  const out: Violation[] = [];
  for (const [a, targets] of [...graph].sort(([x], [y]) => (x < y ? -1 : 1)))
    for (const b of [...targets].sort())
      if (component.has(a) && component.get(a) === component.get(b))
        out.push({ rule: "no cycle between src/ folders", edge: `src/${a} -> src/${b}` });
  return out;
}

if ((import.meta as { main?: boolean }).main) {
  const report = checkImportGraph(resolve(import.meta.dirname, ".."));
  for (const v of report.violations) console.error(`import graph: ${v.rule}: ${v.edge}`);
  console.log(
    `import graph: ${report.modules} modules, ${report.imports} imports read; ` +
      `${report.violations.length} violation${report.violations.length === 1 ? "" : "s"}, ${KNOWN.size} known`,
  );
  process.exit(report.violations.length === 0 ? 0 : 1);
}
