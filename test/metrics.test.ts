// /metrics of real nodes: the page passes the format checker, every required series is there, and after writes,
// an expiry, a watch, a snapshot, a leader change and a restarting, flooding unit, each part shows what happened.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { currentLeader, TestCluster, waitFor } from "./support/cluster.ts";
import { type Exposition, parseExposition } from "./support/prom-text.ts";

/** The series every node serves, named as etcd names the same things (berth_ for etcd_). */
const REQUIRED: [name: string, type: string][] = [
  ["berth_server_has_leader", "gauge"],
  ["berth_server_is_leader", "gauge"],
  ["berth_server_term", "gauge"],
  ["berth_server_leader_changes_seen_total", "counter"],
  ["berth_server_proposals_committed_total", "gauge"],
  ["berth_server_proposals_applied_total", "gauge"],
  ["berth_server_proposals_pending", "gauge"],
  ["berth_server_proposals_failed_total", "counter"],
  ["berth_server_apply_lag_entries", "gauge"],
  ["berth_disk_wal_fsync_duration_seconds", "histogram"],
  ["berth_snap_save_total_duration_seconds", "histogram"],
  ["berth_store_keys", "gauge"],
  ["berth_store_watchers", "gauge"],
  ["berth_store_expires_total", "counter"],
  ["berth_store_reads_total", "counter"],
  ["berth_store_writes_total", "counter"],
  ["berth_store_reads_failed_total", "counter"],
  ["berth_store_writes_failed_total", "counter"],
  ["berth_http_request_duration_seconds", "histogram"],
  ["berth_client_request_duration_seconds", "histogram"],
  ["berth_client_connections", "gauge"],
  ["berth_units", "gauge"],
  ["berth_unit_restarts_total", "counter"],
  ["berth_journal_suppressed_lines_total", "counter"],
  ["berth_supervisor_connected", "gauge"],
];

/** Restarts every ~0.3 s. */
const FLAPPY = "flappy.service";
const FLAPPY_TEXT = `[Unit]
StartLimitIntervalSec=0

[Service]
ExecStart=/bin/sh -c "echo run; sleep 0.3; exit 3"
Restart=always
RestartSec=100ms
`;
/** Writes three lines at once against a burst of one per second, then stays up: two lines suppressed. */
const FLOOD = "flood.service";
const FLOOD_TEXT = `[Service]
ExecStart=/bin/sh -c "echo one; echo two; echo three; exec sleep 1000"
LogRateLimitIntervalSec=1s
LogRateLimitBurst=1
`;

describe("/metrics", () => {
  let cluster: TestCluster;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-metrics-"));
    writeFileSync(join(dir, FLAPPY), FLAPPY_TEXT);
    writeFileSync(join(dir, FLOOD), FLOOD_TEXT);
    // A snapshot every 40 entries: the writes below take one.
    cluster = await TestCluster.start(3, { extraArgs: ["--snapshot-count=40"] });
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function scrape(name: string): Promise<Exposition> {
    const res = await fetch(`${cluster.httpUrl(name)}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    return parseExposition(await res.text());
  }

  const value = (e: Exposition, series: string): number => {
    const v = e.series.get(series);
    if (v === undefined) throw new Error(`no series ${series} in the page`);
    return v;
  };

  it("lists every required series, typed, on a fresh node, with no authentication", async () => {
    const e = await scrape("n2");
    for (const [name, type] of REQUIRED) expect(e.families.get(name)?.type, name).toBe(type);
    expect(value(e, "berth_server_has_leader")).toBe(1);
    expect(value(e, 'berth_units{state="active"}')).toBe(0);
    expect(value(e, 'berth_client_connections{listener="http"}')).toBeGreaterThanOrEqual(1);
  });

  it("counts writes, failures, expiries, watches, snapshots, fsyncs and requests by method and code", async () => {
    const url = cluster.httpUrl("n1");
    const put = (key: string, body: string) =>
      fetch(`${url}/v2/keys${key}`, {
        method: "PUT",
        body,
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
    for (let i = 0; i < 50; i++) expect((await put(`/m/k${i}`, `value=${i}`)).status).toBe(201);
    expect((await put("/m/short", "value=x&ttl=1")).status).toBe(201);
    expect((await fetch(`${url}/v2/keys/m/missing`)).status).toBe(404);
    // A write through the client protocol, on n1's unix socket.
    expect((await cluster.cli(["kv", "set", "/m/cli", "v"], cluster.endpoint("n1"))).code).toBe(0);
    const watch = new AbortController();
    const watching = fetch(`${url}/v2/keys/never?wait=true`, { signal: watch.signal }).catch(() => null);
    try {
      const e = await waitFor(
        "the expiry, the watch and a snapshot",
        async () => {
          const e = await scrape("n1");
          return value(e, "berth_store_expires_total") >= 1 &&
            value(e, "berth_store_watchers") >= 1 &&
            value(e, "berth_snap_save_total_duration_seconds_count") >= 1
            ? e
            : null;
        },
        10_000,
      );
      // 50 keys, the cli's, the /m directory, and the members' records under /_berth (at least one each).
      expect(value(e, "berth_store_keys")).toBeGreaterThanOrEqual(53);
      expect(value(e, 'berth_store_writes_total{action="set"}')).toBeGreaterThanOrEqual(52);
      expect(value(e, 'berth_store_reads_failed_total{action="get"}')).toBeGreaterThanOrEqual(1);
      expect(value(e, 'berth_http_request_duration_seconds_count{code="201",method="PUT"}')).toBe(51);
      expect(value(e, 'berth_http_request_duration_seconds_count{code="404",method="GET"}')).toBe(1);
      expect(value(e, 'berth_client_request_duration_seconds_count{code="ok",method="kv.write"}')).toBe(1);
      expect(value(e, "berth_disk_wal_fsync_duration_seconds_count")).toBeGreaterThan(0);
      expect(value(e, "berth_disk_wal_fsync_duration_seconds_sum")).toBeGreaterThan(0);
      const commit = value(e, "berth_server_proposals_committed_total");
      expect(commit).toBeGreaterThanOrEqual(52);
      expect(value(e, "berth_server_proposals_applied_total")).toBeLessThanOrEqual(commit);
      expect(value(e, "berth_server_apply_lag_entries")).toBeGreaterThanOrEqual(0);
    } finally {
      watch.abort();
      await watching;
    }
  });

  it("counts a leader change on every member, with the term", async () => {
    const before = await currentLeader(cluster);
    const to = cluster.nodes.map((n) => n.name).find((n) => n !== before)!;
    const other = cluster.nodes.map((n) => n.name).find((n) => n !== before && n !== to)!;
    const seen = value(await scrape(other), "berth_server_leader_changes_seen_total");
    const term = value(await scrape(other), "berth_server_term");
    const r = await cluster.cli(["cluster", "move-leader", to]);
    expect(r.code, r.stderr).toBe(0);
    const e = await waitFor(
      "the new leader on a third member",
      async () => {
        const e = await scrape(other);
        return value(e, "berth_server_leader_changes_seen_total") > seen ? e : null;
      },
      10_000,
    );
    expect(value(e, "berth_server_leader_changes_seen_total")).toBe(seen + 1);
    expect(value(e, "berth_server_term")).toBeGreaterThan(term);
    expect(value(e, "berth_server_has_leader")).toBe(1);
    expect(value(e, "berth_server_is_leader")).toBe(0);
    expect(value(await scrape(to), "berth_server_is_leader")).toBe(1);
  });

  it("shows units by state, restarts and suppressed journal lines on their machines", async () => {
    const r = await cluster.cli(["start", join(dir, FLAPPY), join(dir, FLOOD)], cluster.endpoints(), 20_000);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const units = JSON.parse((await cluster.cli(["list-units", "--output=json"])).stdout) as {
      name: string;
      machine: string;
    }[];
    const machines = JSON.parse((await cluster.cli(["list-machines", "--output=json"])).stdout) as {
      id: string;
      name: string;
    }[];
    const ownerOf = (unit: string) =>
      machines.find((m) => m.id === units.find((u) => u.name === unit)!.machine)!.name;
    // The flood unit stays active once its window is over: only the supervisor's report of the count tells.
    const flood = await waitFor(
      "suppressed lines",
      async () => {
        const e = await scrape(ownerOf(FLOOD));
        return value(e, "berth_journal_suppressed_lines_total") >= 2 ? e : null;
      },
      10_000,
    );
    expect(value(flood, "berth_journal_suppressed_lines_total")).toBe(2);
    expect(value(flood, 'berth_units{state="active"}')).toBeGreaterThanOrEqual(1);
    expect(value(flood, "berth_supervisor_connected")).toBe(1);
    await waitFor(
      "restarts",
      async () => value(await scrape(ownerOf(FLAPPY)), "berth_unit_restarts_total") >= 2,
      10_000,
    );
    // Every unit counted once, in one state, on its own machine only.
    let total = 0;
    let restarts = 0;
    for (const n of cluster.nodes) {
      const e = await scrape(n.name);
      for (const st of ["active", "activating", "deactivating", "inactive", "failed"])
        total += value(e, `berth_units{state="${st}"}`);
      if (n.name !== ownerOf(FLAPPY)) restarts += value(e, "berth_unit_restarts_total");
    }
    expect(total).toBe(2);
    expect(restarts).toBe(0);
  });
});
