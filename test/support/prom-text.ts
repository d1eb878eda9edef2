// A checker for Prometheus's text exposition format (version 0.0.4), strict where scrapers are: every sample
// belongs to a family announced by # TYPE before its samples, names and labels are well formed, values parse,
// no series repeats, and a histogram's buckets are cumulative, end at +Inf and agree with _count.

export interface Family {
  type: string;
  help: string;
  /** Series key (name plus sorted labels, as `name{a="x"}`) -> value. */
  samples: Map<string, number>;
}

export interface Exposition {
  families: Map<string, Family>;
  /** Every sample by series key. */
  series: Map<string, number>;
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`);
const LABEL_RE = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"/;

export function parseExposition(text: string): Exposition {
  if (text !== "" && !text.endsWith("\n")) throw new Error("the exposition does not end with a line feed");
  const families = new Map<string, Family>();
  const series = new Map<string, number>();
  const lines = text.split("\n");
  lines.pop();
  lines.forEach((line, i) => {
    const at = `line ${i + 1} (${JSON.stringify(line)})`;
    if (line.startsWith("# HELP ") || line.startsWith("# TYPE ")) {
      const [, kind, name, ...rest] = line.split(" ");
      if (!name || !new RegExp(`^${NAME}$`).test(name)) throw new Error(`${at}: bad metric name`);
      const f = families.get(name) ?? { type: "", help: "", samples: new Map() };
      if (f.samples.size > 0) throw new Error(`${at}: ${kind} after samples of ${name}`);
      if (kind === "TYPE") {
        if (f.type !== "") throw new Error(`${at}: second TYPE for ${name}`);
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest.join(" ")))
          throw new Error(`${at}: unknown type`);
        f.type = rest.join(" ");
      } else f.help = rest.join(" ");
      families.set(name, f);
      return;
    }
    if (line.startsWith("#") || line === "") return;
    const m = SAMPLE_RE.exec(line);
    if (!m) throw new Error(`${at}: not a sample line`);
    const [, name, labelPart, valueText] = m as unknown as [string, string, string | undefined, string];
    const value = parseValue(valueText, at);
    const labels = parseLabels(labelPart ?? "", at);
    const family = familyOf(families, name);
    if (!family) throw new Error(`${at}: sample of ${name} without a TYPE line before it`);
    const key = seriesKey(name, labels);
    if (series.has(key)) throw new Error(`${at}: series ${key} repeats`);
    series.set(key, value);
    family.samples.set(key, value);
  });
  for (const [name, f] of families) if (f.type === "histogram") checkHistogram(name, f);
  return { families, series };
}

function familyOf(families: Map<string, Family>, sample: string): Family | undefined {
  const direct = families.get(sample);
  if (direct) return direct;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!sample.endsWith(suffix)) continue;
    const f = families.get(sample.slice(0, -suffix.length));
    if (f && (f.type === "histogram" || f.type === "summary")) return f;
  }
  return undefined;
}

function parseValue(text: string, at: string): number {
  if (text === "+Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (text === "NaN") return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${at}: bad value ${text}`);
  return Number(text);
}

function parseLabels(text: string, at: string): Map<string, string> {
  const labels = new Map<string, string>();
  let rest = text;
  while (rest !== "") {
    const m = LABEL_RE.exec(rest);
    if (!m) throw new Error(`${at}: bad label list`);
    if (labels.has(m[1]!)) throw new Error(`${at}: label ${m[1]} repeats`);
    labels.set(
      m[1]!,
      m[2]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c)),
    );
    rest = rest.slice(m[0].length);
    if (rest.startsWith(",")) rest = rest.slice(1);
    else if (rest !== "") throw new Error(`${at}: bad label list`);
  }
  return labels;
}

/** `name{a="x",b="y"}` with labels sorted (values unescaped), or `name`. */
export function seriesKey(name: string, labels: Map<string, string> | Record<string, string>): string {
  const entries = (labels instanceof Map ? [...labels] : Object.entries(labels)).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  return entries.length === 0
    ? name
    : `${name}{${entries.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(",")}}`;
}

/** Buckets per label set (le removed) cumulative, ending at +Inf equal to _count, and a _sum present. */
function checkHistogram(name: string, f: Family): void {
  const groups = new Map<string, [number, number][]>();
  for (const [key, value] of f.samples) {
    if (!key.startsWith(`${name}_bucket`)) continue;
    const le = /le="([^"]*)"/.exec(key)?.[1];
    if (le === undefined) throw new Error(`${key}: bucket without le`);
    const rest = key
      .replace(/,?le="[^"]*"/, "")
      .replace("{,", "{")
      .replace("{}", "");
    const group = groups.get(rest) ?? [];
    group.push([le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), value]);
    groups.set(rest, group);
  }
  for (const [bucketKey, buckets] of groups) {
    buckets.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < buckets.length; i++)
      if (buckets[i]![1] < buckets[i - 1]![1]) throw new Error(`${bucketKey}: buckets are not cumulative`);
    const last = buckets[buckets.length - 1]!;
    if (last[0] !== Number.POSITIVE_INFINITY) throw new Error(`${bucketKey}: no +Inf bucket`);
    const base = bucketKey.replace(`${name}_bucket`, "");
    const count = f.samples.get(`${name}_count${base}`);
    if (count !== last[1]) throw new Error(`${bucketKey}: +Inf bucket ${last[1]} but _count ${count}`);
    if (!f.samples.has(`${name}_sum${base}`)) throw new Error(`${bucketKey}: no _sum`);
  }
}
