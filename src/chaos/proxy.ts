// Fault-injecting TCP proxies for the peer network of a chaos run: one proxy per directed link (from -> to),
// listening on an address that `from` was told is `to`'s peer address (its --initial-cluster), forwarding bytes
// to `to`'s real --peer-addr. A blocked link either drops (connections reset, new ones refused) or black-holes
// (connections stay open but every byte is discarded, so dials and requests time out rather than fail fast).
// Partitions block both directed links of every pair that straddles two groups; heal unblocks everything.
import { createConnection, createServer, type Server, type Socket } from "node:net";

export type BlockMode = "drop" | "blackhole";

export class LinkProxy {
  private server: Server | null = null;
  private readonly pairs = new Set<{ a: Socket; b: Socket }>();
  private mode: BlockMode | null = null;
  port = 0;

  constructor(
    readonly from: string,
    readonly to: string,
    readonly listenHost: string,
    private readonly target: { host: string; port: number },
  ) {}

  get blocked(): BlockMode | null {
    return this.mode;
  }

  async start(): Promise<void> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, this.listenHost, () => {
        this.port = (server.address() as { port: number }).port;
        resolve();
      });
    });
  }

  get address(): string {
    return `${this.listenHost}:${this.port}`;
  }

  private accept(client: Socket): void {
    client.on("error", () => {});
    if (this.mode === "drop") {
      client.destroy();
      return;
    }
    if (this.mode === "blackhole") {
      // Swallow everything; the connection dies when the link heals (the dialer's handshake timed out anyway).
      client.on("data", () => {});
      const pair = { a: client, b: client };
      this.pairs.add(pair);
      client.on("close", () => this.pairs.delete(pair));
      return;
    }
    const upstream = createConnection({ host: this.target.host, port: this.target.port });
    upstream.on("error", () => {});
    const pair = { a: client, b: upstream };
    this.pairs.add(pair);
    const forward = (src: Socket, dst: Socket) =>
      src.on("data", (chunk) => {
        if (this.mode !== null) return; // black-holed mid-connection: discard
        if (!dst.write(chunk)) {
          src.pause();
          dst.once("drain", () => src.resume());
        }
      });
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end);
    upstream.on("close", end);
  }

  block(mode: BlockMode): void {
    this.mode = mode;
    if (mode === "drop") this.resetAll();
  }

  heal(): void {
    if (this.mode === null) return;
    const wasBlackhole = this.mode === "blackhole";
    this.mode = null;
    // Black-holed connections have lost bytes mid-stream: they cannot carry a framed protocol any more.
    if (wasBlackhole) this.resetAll();
  }

  private resetAll(): void {
    for (const { a, b } of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.resetAll();
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

/** The full mesh of directed link proxies between named nodes. */
export class PeerNetwork {
  readonly links = new Map<string, LinkProxy>();

  private constructor() {}

  /** `nodes`: name -> real peer address (host, port). Proxy i->j listens on j's host with a random port. */
  static async create(nodes: { name: string; host: string; peerPort: number }[]): Promise<PeerNetwork> {
    const net = new PeerNetwork();
    for (const from of nodes) {
      for (const to of nodes) {
        if (from === to) continue;
        const p = new LinkProxy(from.name, to.name, to.host, { host: to.host, port: to.peerPort });
        await p.start();
        net.links.set(`${from.name}->${to.name}`, p);
      }
    }
    return net;
  }

  link(from: string, to: string): LinkProxy {
    const p = this.links.get(`${from}->${to}`);
    if (!p) throw new Error(`no link ${from}->${to}`);
    return p;
  }

  /** The address `from` must use for `to`. */
  addressFor(from: string, to: string): string {
    return this.link(from, to).address;
  }

  /** Blocks every link between nodes of different groups (both directions); links inside a group stay up. */
  partition(groups: string[][], mode: BlockMode = "drop"): void {
    const groupOf = new Map<string, number>();
    groups.forEach((g, i) => {
      for (const n of g) groupOf.set(n, i);
    });
    for (const p of this.links.values()) {
      const gf = groupOf.get(p.from);
      const gt = groupOf.get(p.to);
      if (gf !== undefined && gt !== undefined && gf !== gt) p.block(mode);
    }
  }

  heal(): void {
    for (const p of this.links.values()) p.heal();
  }

  blockedLinks(): string[] {
    return [...this.links.entries()].filter(([, p]) => p.blocked !== null).map(([k]) => k);
  }

  async close(): Promise<void> {
    await Promise.all([...this.links.values()].map((p) => p.close()));
  }
}
