// A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text exposition
// format (version 0.0.4) that /metrics serves. prom-client is not among the dependencies; this covers what the
// node needs, and a swap to prom-client later changes only src/metrics/node-metrics.ts.
//
// Hot paths keep the children they observe (metric.child(...values) once, then inc()/observe() on it): observing
// allocates nothing. Values read from elsewhere (Raft status, store sizes) are set by collect hooks when the
// registry is rendered, so they cost nothing between scrapes.

/** Prometheus's content type for the text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** etcd's disk histograms: 1 ms doubling to about 8 s (prometheus.ExponentialBuckets(0.001, 2, 14)). */
export const DISK_SECONDS_BUCKETS = exponentialBuckets(0.001, 2, 14);
/** Request latencies: 0.5 ms doubling to about 16 s. */
export const REQUEST_SECONDS_BUCKETS = exponentialBuckets(0.0005, 2, 16);

export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0, v = start; i < count; i++, v *= factor) out.push(Number(v.toPrecision(6)));
  return out;
}

abstract class Metric<C> {
  private readonly children = new Map<string, { values: string[]; child: C }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!NAME_RE.test(name)) throw new Error(`invalid metric name "${name}"`);
    for (const l of labelNames)
      if (!LABEL_RE.test(l) || l.startsWith("__") || l === "le")
        throw new Error(`invalid label name "${l}" on ${name}`);
  }

  abstract readonly type: "counter" | "gauge" | "histogram";
  protected abstract make(): C;
  protected abstract sample(out: string[], labels: string, child: C): void;

  /** The series for these label values (in labelNames' order), made on first use. */
  child(...values: string[]): C {
    if (values.length !== this.labelNames.length)
      throw new Error(`${this.name} takes ${this.labelNames.length} label value(s), got ${values.length}`);
    const key = values.join("\u0000");
    let c = this.children.get(key);
    if (!c) {
      c = { values, child: this.make() };
      this.children.set(key, c);
    }
    return c.child;
  }

  /** Drops every labelled series (a gauge whose label set is rebuilt at each collect). */
  reset(): void {
    this.children.clear();
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    // An unlabelled metric always has its one series, so it shows (as 0) before anything happened.
    if (this.labelNames.length === 0) this.child();
    for (const { values, child } of this.children.values())
      this.sample(out, labelText(this.labelNames, values), child);
  }
}

export class CounterChild {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

export class Counter extends Metric<CounterChild> {
  readonly type = "counter";
  protected make(): CounterChild {
    return new CounterChild();
  }
  protected sample(out: string[], labels: string, c: CounterChild): void {
    out.push(`${this.name}${braces(labels)} ${formatValue(c.value)}`);
  }
  inc(by = 1): void {
    this.child().inc(by);
  }
}

export class GaugeChild {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
}

export class Gauge extends Metric<GaugeChild> {
  readonly type = "gauge";
  protected make(): GaugeChild {
    return new GaugeChild();
  }
  protected sample(out: string[], labels: string, c: GaugeChild): void {
    out.push(`${this.name}${braces(labels)} ${formatValue(c.value)}`);
  }
  set(v: number): void {
    this.child().set(v);
  }
}

export class HistogramChild {
  /** Per bucket, observations at or below its bound and above the previous one (cumulated when rendered). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++)
      if (v <= b[i]!) {
        this.counts[i]!++;
        return;
      }
  }
}

export class Histogram extends Metric<HistogramChild> {
  readonly type = "histogram";
  private readonly les: string[];
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {
    super(name, help, labelNames);
    for (let i = 1; i < buckets.length; i++)
      if (!(buckets[i]! > buckets[i - 1]!)) throw new Error(`${name}: buckets must increase`);
    this.les = buckets.map(formatValue);
  }
  protected make(): HistogramChild {
    return new HistogramChild(this.buckets);
  }
  protected sample(out: string[], labels: string, c: HistogramChild): void {
    const sep = labels === "" ? "" : ",";
    let cumulative = 0;
    for (let i = 0; i < this.les.length; i++) {
      cumulative += c.counts[i]!;
      out.push(`${this.name}_bucket{${labels}${sep}le="${this.les[i]}"} ${cumulative}`);
    }
    out.push(`${this.name}_bucket{${labels}${sep}le="+Inf"} ${c.count}`);
    out.push(`${this.name}_sum${braces(labels)} ${formatValue(c.sum)}`);
    out.push(`${this.name}_count${braces(labels)} ${c.count}`);
  }
  observe(v: number): void {
    this.child().observe(v);
  }
}

export class Registry {
  private readonly metrics = new Map<string, Metric<unknown>>();
  private readonly collectors: (() => void | Promise<void>)[] = [];

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames));
  }

  histogram(
    name: string,
    help: string,
    buckets: readonly number[],
    labelNames: readonly string[] = [],
  ): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  /** Runs before every render: sets the values read from elsewhere. A failing collector leaves its values as they were. */
  onCollect(fn: () => void | Promise<void>): void {
    this.collectors.push(fn);
  }

  /** The text exposition of every metric, in registration order. */
  async render(): Promise<string> {
    await Promise.all(
      this.collectors.map((fn) =>
        Promise.resolve()
          .then(fn)
          .catch(() => {}),
      ),
    );
    const out: string[] = [];
    for (const m of this.metrics.values()) m.render(out);
    out.push("");
    return out.join("\n");
  }

  private add<M extends Metric<unknown>>(m: M): M {
    if (this.metrics.has(m.name)) throw new Error(`metric ${m.name} is registered twice`);
    this.metrics.set(m.name, m);
    return m;
  }
}

function labelText(names: readonly string[], values: readonly string[]): string {
  let s = "";
  for (let i = 0; i < names.length; i++) s += `${i === 0 ? "" : ","}${names[i]}="${escapeLabel(values[i]!)}"`;
  return s;
}

function braces(labels: string): string {
  return labels === "" ? "" : `{${labels}}`;
}

/** The format's escapes: backslash, double quote and line feed in label values. */
function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Backslash and line feed in HELP text. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}
