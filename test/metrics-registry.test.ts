// The registry's text exposition, read back by the format checker the node's /metrics test uses too.
import { describe, expect, it } from "vitest";
import { exponentialBuckets, formatValue, Registry } from "../src/metrics/registry.ts";
import { parseExposition } from "./support/prom-text.ts";

describe("metrics registry", () => {
  it("renders counters, gauges and histograms in the text format, exactly", async () => {
    const r = new Registry();
    const c = r.counter("t_requests_total", "Requests.", ["method", "code"]);
    c.child("GET", "200").inc();
    c.child("GET", "200").inc(2);
    c.child("PUT", "404").inc();
    r.gauge("t_up", "Up or not.").set(1);
    const h = r.histogram("t_seconds", "Latency.", [0.1, 1]);
    h.observe(0.05);
    h.observe(0.5);
    h.observe(7);
    expect(await r.render()).toBe(
      [
        "# HELP t_requests_total Requests.",
        "# TYPE t_requests_total counter",
        't_requests_total{method="GET",code="200"} 3',
        't_requests_total{method="PUT",code="404"} 1',
        "# HELP t_up Up or not.",
        "# TYPE t_up gauge",
        "t_up 1",
        "# HELP t_seconds Latency.",
        "# TYPE t_seconds histogram",
        't_seconds_bucket{le="0.1"} 1',
        't_seconds_bucket{le="1"} 2',
        't_seconds_bucket{le="+Inf"} 3',
        "t_seconds_sum 7.55",
        "t_seconds_count 3",
        "",
      ].join("\n"),
    );
  });

  it("escapes label values and help text, and the checker reads them back", async () => {
    const r = new Registry();
    r.gauge("t_info", 'Help with \\ and\na new line and "quotes".', ["v"]).child('a "b" \\ c\nd').set(2);
    const text = await r.render();
    expect(text).toContain('t_info{v="a \\"b\\" \\\\ c\\nd"} 2');
    expect(text).toContain("# HELP t_info Help with \\\\ and\\na new line");
    const { series } = parseExposition(text);
    expect(series.get('t_info{v="a \\"b\\" \\\\ c\\nd"}')).toBe(2);
  });

  it("labelled histograms stay cumulative per series and agree with _count", async () => {
    const r = new Registry();
    const h = r.histogram("t_lat_seconds", "L.", exponentialBuckets(0.001, 2, 5), ["method"]);
    for (let i = 0; i < 50; i++) h.child(i % 2 === 0 ? "GET" : "PUT").observe(i / 1000);
    const e = parseExposition(await r.render());
    expect(e.series.get('t_lat_seconds_count{method="GET"}')).toBe(25);
    expect(e.series.get('t_lat_seconds_bucket{le="+Inf",method="PUT"}')).toBe(25);
    expect(e.series.get('t_lat_seconds_bucket{le="0.016",method="GET"}')).toBe(9); // 0, 2, ..., 16
  });

  it("collect hooks set values at render time; a failing one leaves the others", async () => {
    const r = new Registry();
    const g = r.gauge("t_keys", "Keys.");
    let keys = 5;
    r.onCollect(() => g.set(keys));
    r.onCollect(() => {
      throw new Error("broken");
    });
    expect(parseExposition(await r.render()).series.get("t_keys")).toBe(5);
    keys = 9;
    expect(parseExposition(await r.render()).series.get("t_keys")).toBe(9);
  });

  it("refuses bad names, repeated metrics and wrong label counts", () => {
    const r = new Registry();
    expect(() => r.counter("1bad", "x")).toThrow(/invalid metric name/);
    expect(() => r.counter("t_x", "x", ["le"])).toThrow(/invalid label name/);
    r.counter("t_y", "x", ["a"]);
    expect(() => r.gauge("t_y", "x")).toThrow(/twice/);
    expect(() => r.counter("t_z", "x", ["a"]).child()).toThrow(/takes 1 label/);
    expect(() => r.histogram("t_h", "x", [1, 1])).toThrow(/increase/);
  });

  it("formats special values as Prometheus does", () => {
    expect(
      [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1.5, 1e-7].map(formatValue),
    ).toEqual(["NaN", "+Inf", "-Inf", "1.5", "1e-7"]);
  });
});

describe("exposition checker", () => {
  it("rejects what scrapers reject", () => {
    expect(() => parseExposition("x 1\n")).toThrow(/without a TYPE/);
    expect(() => parseExposition("# TYPE x gauge\nx 1\nx 2\n")).toThrow(/repeats/);
    expect(() => parseExposition("# TYPE x gauge\nx one\n")).toThrow(/bad value/);
    expect(() => parseExposition('# TYPE x gauge\nx{a="b} 1\n')).toThrow(/bad label list/);
    expect(() => parseExposition("# TYPE x gauge\nx 1")).toThrow(/line feed/);
    expect(() =>
      parseExposition(
        '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="2"} 2\nh_bucket{le="+Inf"} 3\nh_sum 1\nh_count 3\n',
      ),
    ).toThrow(/cumulative/);
    expect(() =>
      parseExposition('# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n'),
    ).toThrow(/_count 3/);
  });
});
