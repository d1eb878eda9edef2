// A cluster of real dist/berth node processes whose peer traffic all goes through fault-injecting proxies: the
// real-cluster harness (test/support/cluster.ts: spawning, flags, logs, pause and kill, cleanup) with every node
// known by its proxy's address and listening behind it (--peer-listen-addr), see test/chaos/proxy.ts.
import { BerthClient } from "../../src/client/client.ts";
import { requireBinary, TestCluster, type TestNode } from "../support/cluster.ts";
import { PeerNetwork } from "./proxy.ts";

export type ChaosNode = TestNode;

export class ChaosCluster extends TestCluster {
  net!: PeerNetwork;

  private constructor(tickMs: number) {
    super("berth-chaos-");
    this.tickMs = tickMs;
    this.http = false;
  }

  /** `extraArgs` go on every start (first and restarts), e.g. --agent-ttl, which node.json does not remember. */
  static override async start(
    size: number,
    opts: { tickMs?: number; requestTimeoutMs?: number; extraArgs?: string[] } = {},
  ): Promise<ChaosCluster> {
    requireBinary();
    const c = new ChaosCluster(opts.tickMs ?? 50);
    try {
      for (let i = 1; i <= size; i++) await c.define(`n${i}`, `127.0.0.${i}`, opts.extraArgs ?? []);
      c.net = await PeerNetwork.create(c.nodes);
      // Every member is known by its proxy's address (the same list for all); each listens behind its proxy.
      for (const n of c.nodes) n.peerAddr = c.net.addressOf(n.name);
      const initial = c.initialCluster();
      for (const n of c.nodes)
        c.spawn(n, [`--request-timeout=${opts.requestTimeoutMs ?? 2000}ms`, `--initial-cluster=${initial}`]);
      await c.waitHealthy(30_000);
      return c;
    } catch (err) {
      await c.stop();
      throw err;
    }
  }

  /**
   * Every member answers cluster.health as healthy, asked through each node in turn with in-process clients
   * (a CLI process per try would compete with the nodes for the CPU the faults leave them).
   */
  override async waitHealthy(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      for (const n of this.nodes) {
        let c: BerthClient | null = null;
        try {
          c = await BerthClient.connect({
            endpoints: [this.endpoint(n.name)],
            timeoutMs: 1000,
            name: "chaos",
          });
          const h = await c.call("cluster.health", {}, 1500);
          if (h.length === this.nodes.length && h.every((m) => m.healthy)) return;
          last = JSON.stringify(h.filter((m) => !m.healthy));
        } catch (err) {
          last = (err as Error).message;
        } finally {
          c?.close();
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`cluster not healthy after ${timeoutMs} ms: ${last}\n${this.logs(3000)}`);
  }

  override logs(tail = 3000): string {
    return super.logs(tail);
  }

  /** Kills the nodes and their units, closes the proxies, removes the data unless kept. */
  override async stop(keepDir = false): Promise<void> {
    await super.stop(keepDir);
    await this.net?.close();
  }
}
