// A unit writing as fast as it can (`yes`) on a real node of a 3-node cluster: its journal is rate-limited
// (LogRateLimitIntervalSec=/LogRateLimitBurst=, with journald's "Suppressed N messages" line) and the reading of its
// pipe is bounded, so the node keeps answering clients and heartbeating: the leader never marks its machine lost.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientFor, TestCluster, waitFor } from "./support/cluster.ts";

const FLOOD = `[Unit]
Description=writes y lines as fast as it can

[Service]
ExecStart=/usr/bin/yes
LogRateLimitIntervalSec=2s
LogRateLimitBurst=1000
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a unit flooding its journal", () => {
  let cluster: TestCluster;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-flood-"));
    writeFileSync(join(dir, "flood.service"), FLOOD);
    // A short agent TTL: a node whose event loop stalls for 2 s is marked lost.
    cluster = await TestCluster.start(3, { extraArgs: ["--agent-ttl=2s"] });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps its node answering and its machine up, and journals the suppressed count", async () => {
    // Connected to every node before the flood: the client of the flooded node is only asked afterwards.
    const clients = new Map(
      await Promise.all(
        cluster.nodes.map(async (n) => [n.name, await clientFor(cluster, n.name, 1000)] as const),
      ),
    );
    const failures: string[] = [];
    let ok = 0;
    let node = "";
    try {
      const any = clients.get("n1")!;
      await any.call("kv.write", { method: "PUT", key: "/flood/probe", value: "still here" });
      const start = await cluster.cli(["start", join(dir, "flood.service")], cluster.endpoints(), 30_000);
      expect(start.stderr).toBe("");
      expect(start.code).toBe(0);
      const machine = await waitFor(
        "flood.service active",
        async () => {
          const r = (await any.call("units.states", {})).find((x) => x.name === "flood.service");
          return r?.active === "active" ? r.machine : null;
        },
        20_000,
        200,
      );
      node = (await any.call("machines.list", {})).find((m) => m.id === machine)!.name;

      // ~12 s of reads through the flooded node, one every 250 ms, each given a second.
      const cl = clients.get(node)!;
      const end = Date.now() + 12_000;
      while (Date.now() < end) {
        try {
          const r = await cl.call("kv.get", { key: "/flood/probe" }, 1000);
          if (r.event.node?.value === "still here") ok++;
          else failures.push(`unexpected answer ${JSON.stringify(r)}`);
        } catch (e) {
          failures.push((e as Error).message);
        }
        await sleep(250);
      }
    } finally {
      for (const c of clients.values()) c.close();
    }
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(20);

    const lost = cluster.nodes.flatMap((n) =>
      readFileSync(n.logFile, "utf8")
        .split("\n")
        .filter((l) => / is lost$/.test(l)),
    );
    expect(lost).toEqual([]);

    const journal = await cluster.cli(
      ["journal", "--lines=20000", "--output=json", "flood.service"],
      cluster.endpoint(node),
      30_000,
    );
    expect(journal.code).toBe(0);
    const lines = journal.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { SYSLOG_IDENTIFIER: string; BERTH_STREAM?: string; MESSAGE: string });
    // journalctl's fields: Berth's own lines have the identifier "berth", the unit's output its stream.
    const suppressed = lines.filter(
      (l) => l.SYSLOG_IDENTIFIER === "berth" && l.MESSAGE.startsWith("Suppressed "),
    );
    expect(suppressed.length).toBeGreaterThan(0);
    for (const l of suppressed)
      expect(l.MESSAGE).toMatch(/^Suppressed [1-9]\d* messages from flood\.service$/);
    expect(
      lines.filter((l) => l.BERTH_STREAM === "stdout" && l.MESSAGE === "y").length,
    ).toBeGreaterThanOrEqual(1000);

    expect((await cluster.cli(["destroy", "flood.service"])).code).toBe(0);
  }, 90_000);
});
