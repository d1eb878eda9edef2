// Raft commit throughput and latency: 3 members in one process over real TCP on loopback, real WAL files, real
// fdatasync. Proposals of 256 bytes are kept N in flight at the leader; each is timed from propose to applied.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RaftDriver, type StateMachine } from "../src/raft/driver.ts";
import { FileRaftStorage } from "../src/raft/storage/file.ts";
import { PeerTransport } from "../src/raft/transport.ts";
import type { Entry } from "../src/raft/types.ts";

export interface RaftBenchRow {
  inFlight: number;
  commits: number;
  seconds: number;
  commitsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

class CountingMachine implements StateMachine {
  applied = 0;
  apply(_e: Entry): unknown {
    return ++this.applied;
  }
  snapshot(): Uint8Array {
    return new Uint8Array(8);
  }
  restore(): void {}
}

async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function startCluster(dir: string) {
  const names = ["b1", "b2", "b3"];
  const ports = await Promise.all(names.map(() => freePort()));
  const initial = new Map(names.map((n, i) => [n, `127.0.0.1:${ports[i]}`]));
  const secret = Buffer.from("bench-secret-bench-secret");
  const members = [];
  for (const [i, name] of names.entries()) {
    const storage = await FileRaftStorage.open(join(dir, name));
    let driver!: RaftDriver;
    const transport = new PeerTransport({
      selfId: name,
      secret,
      listenHost: "127.0.0.1",
      listenPort: ports[i]!,
      onMessage: (m) => driver.step(m),
      reportUnreachable: (id) => driver.reportUnreachable(id),
      reportSnapshot: (id, ok) => driver.reportSnapshot(id, ok),
    });
    driver = new RaftDriver({
      id: name,
      storage,
      transport,
      stateMachine: new CountingMachine(),
      initialCluster: initial,
      tickMs: 50,
      electionTicks: 10,
      snapshotEvery: 1_000_000,
    });
    await transport.start();
    await driver.start();
    members.push({ name, storage, transport, driver });
  }
  for (;;) {
    const leader = members.find((m) => m.driver.isLeader());
    if (leader) return { members, leader };
    await new Promise((r) => setTimeout(r, 20));
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

export async function benchRaft(
  opts: { inFlight?: number[]; seconds?: number } = {},
): Promise<RaftBenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "berth-bench-raft-"));
  const { members, leader } = await startCluster(dir);
  const payload = new Uint8Array(256).fill(7);
  const rows: RaftBenchRow[] = [];
  try {
    for (const inFlight of opts.inFlight ?? [1, 16, 64, 256]) {
      const seconds = opts.seconds ?? 3;
      const latencies: number[] = [];
      const end = performance.now() + seconds * 1000;
      const worker = async () => {
        while (performance.now() < end) {
          const t = performance.now();
          await leader.driver.propose(payload);
          latencies.push(performance.now() - t);
        }
      };
      const started = performance.now();
      await Promise.all(Array.from({ length: inFlight }, worker));
      const elapsed = (performance.now() - started) / 1000;
      latencies.sort((a, b) => a - b);
      rows.push({
        inFlight,
        commits: latencies.length,
        seconds: elapsed,
        commitsPerSec: latencies.length / elapsed,
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
      });
    }
  } finally {
    for (const m of members) {
      await m.driver.stop();
      await m.transport.stop();
      await m.storage.close();
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
