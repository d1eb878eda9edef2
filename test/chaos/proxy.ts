// Fault-injecting TCP proxies for the peer network of a chaos run. Every node advertises its proxy's address as
// its peer address (--peer-addr) and listens behind it (--peer-listen-addr), so the addresses in every node's
// configuration, Raft log and snapshots are the proxies' and all peer traffic passes them, also after a snapshot
// install. Nodes dial from their own loopback IP (127.0.0.N), which tells the proxy who is calling: faults apply
// per directed link (from -> to). A blocked link either drops (its connections reset, new ones refused) or
// black-holes (connections stay open but every byte is discarded, so dials and requests time out rather than
// fail fast). A connection carries traffic both ways; partitions block both directed links of every pair that
// straddles two groups; heal unblocks everything.
import { createConnection, createServer, type Server, type Socket } from "node:net";

export type BlockMode = "drop" | "blackhole";

interface Pair {
  from: string;
  a: Socket;
  b: Socket;
}

/** The proxy in front of one node's peer listener. */
export class NodeProxy {
  private server: Server | null = null;
  private readonly pairs = new Set<Pair>();
  /** Blocked callers (by name) and how. */
  private readonly blocked = new Map<string, BlockMode>();
  port = 0;

  constructor(
    readonly to: string,
    readonly listenHost: string,
    private readonly target: { host: string; port: number },
    /**
     * The node dialling from an IP and port (to this proxy's HOST:PORT), or undefined for a stranger (forwarded,
     * never blocked). The port tells callers apart that all dial from one IP (etcd does not bind its peer dials to
     * its own address).
     */
    private readonly callerOf: (ip: string, port: number, proxy: string) => string | undefined,
  ) {}

  blockedMode(from: string): BlockMode | null {
    return this.blocked.get(from) ?? null;
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
    const from =
      this.callerOf(
        client.remoteAddress?.replace(/^::ffff:/, "") ?? "",
        client.remotePort ?? 0,
        this.address,
      ) ?? "";
    const mode = this.blocked.get(from);
    if (mode === "drop") {
      client.destroy();
      return;
    }
    if (mode === "blackhole") {
      // Swallow everything; the connection dies when the link heals (the dialer's handshake timed out anyway).
      client.on("data", () => {});
      const pair = { from, a: client, b: client };
      this.pairs.add(pair);
      client.on("close", () => this.pairs.delete(pair));
      return;
    }
    const upstream = createConnection({ host: this.target.host, port: this.target.port });
    upstream.on("error", () => {});
    const pair = { from, a: client, b: upstream };
    this.pairs.add(pair);
    const forward = (src: Socket, dst: Socket) =>
      src.on("data", (chunk) => {
        if (this.blocked.has(from)) return; // black-holed mid-connection: discard
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

  block(from: string, mode: BlockMode): void {
    this.blocked.set(from, mode);
    if (mode === "drop") this.reset(from);
  }

  heal(): void {
    const blackholed = [...this.blocked].filter(([, m]) => m === "blackhole").map(([f]) => f);
    this.blocked.clear();
    // Black-holed connections have lost bytes mid-stream: they cannot carry a framed protocol any more.
    for (const from of blackholed) this.reset(from);
  }

  private reset(from: string | null): void {
    for (const p of this.pairs) {
      if (from !== null && p.from !== from) continue;
      p.a.destroy();
      p.b.destroy();
      this.pairs.delete(p);
    }
  }

  async close(): Promise<void> {
    this.reset(null);
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

/** One proxy per node; links are (caller, node) pairs told apart by the caller's IP. */
export class PeerNetwork {
  readonly proxies = new Map<string, NodeProxy>();

  private constructor() {}

  /**
   * `nodes`: name, the IP it dials from (its own, distinct per node) and the real peer listener. The proxy of a
   * node listens on that node's host with a random port. `callerOf` replaces telling callers apart by IP, for
   * programs that do not dial from their own address.
   */
  static async create(
    nodes: { name: string; host: string; peerPort: number }[],
    callerOf?: (ip: string, port: number, proxy: string) => string | undefined,
  ): Promise<PeerNetwork> {
    const net = new PeerNetwork();
    const byIp = new Map(nodes.map((n) => [n.host, n.name]));
    if (!callerOf && byIp.size !== nodes.length)
      throw new Error("every node needs its own IP to be told apart");
    const caller = callerOf ?? ((ip: string) => byIp.get(ip));
    for (const n of nodes) {
      const p = new NodeProxy(n.name, n.host, { host: n.host, port: n.peerPort }, caller);
      await p.start();
      net.proxies.set(n.name, p);
    }
    return net;
  }

  private proxy(name: string): NodeProxy {
    const p = this.proxies.get(name);
    if (!p) throw new Error(`no node ${name}`);
    return p;
  }

  /** The peer address every member knows `name` by (its proxy). */
  addressOf(name: string): string {
    return this.proxy(name).address;
  }

  /** Blocks every link between nodes of different groups (both directions); links inside a group stay up. */
  partition(groups: string[][], mode: BlockMode = "drop"): void {
    const groupOf = new Map<string, number>();
    groups.forEach((g, i) => {
      for (const n of g) groupOf.set(n, i);
    });
    for (const [from, gf] of groupOf)
      for (const [to, gt] of groupOf) if (gf !== gt) this.proxy(to).block(from, mode);
  }

  heal(): void {
    for (const p of this.proxies.values()) p.heal();
  }

  /** "from->to" for every blocked link. */
  blockedLinks(): string[] {
    const out: string[] = [];
    for (const [to, p] of this.proxies)
      for (const from of this.proxies.keys()) if (p.blockedMode(from) !== null) out.push(`${from}->${to}`);
    return out;
  }

  async close(): Promise<void> {
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
  }
}
