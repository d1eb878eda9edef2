// The supervisor's own line to the cluster, used while its node is away (stopped, restarting, crashed): it tells
// the leader, over the peer network with the cluster secret, that this machine is alive, and learns in the answer
// that the leader confirmed its leadership (ReadIndex) after hearing it. That answer renews the machine's lease
// exactly as the node's read points do (lease.ts), so a node restart of any length moves nothing; a supervisor
// that cannot get it (the machine is cut off, no quorum) fences its units as before.
//
// On the wire: request "machine.keepalive" {member} on a peer connection; the leader answers {leader}; any other
// member refuses with code "not_leader" and the leader's name in `data.leader` when it knows it.
import { splitHostPort } from "../host-port.ts";
import { connect } from "../wire/client.ts";
import type { Connection } from "../wire/connection.ts";

/** What the node hands its supervisor so that it can speak for the machine (over the owner-only socket). */
export interface ClusterAccess {
  /** This machine's member name. */
  member: string;
  /** The other members' peer addresses, by member name. */
  peers: Record<string, string>;
  /** The cluster secret (peers prove it to each other). */
  secret: string;
  /** Peer TLS (PEM), when the cluster uses it. */
  tls: { cert: string; key: string; ca: string } | null;
  /** The local IP the node's own peer connections leave from. */
  dialFrom?: string;
}

export const KEEPALIVE_METHOD = "machine.keepalive";

export class MachineKeepalive {
  private access: ClusterAccess | null = null;
  private conn: Connection | null = null;
  private connTo: string | null = null;
  /** The member believed to lead: asked first. */
  private leader: string | null = null;

  constructor(private readonly attemptTimeoutMs: number) {}

  setAccess(access: ClusterAccess): void {
    const changed = JSON.stringify(access) !== JSON.stringify(this.access);
    this.access = access;
    if (changed) this.dropConnection();
  }

  hasAccess(): boolean {
    return this.access !== null && Object.keys(this.access.peers).length > 0;
  }

  close(): void {
    this.dropConnection();
  }

  /**
   * Resolves once the leader heard this machine and confirmed its leadership afterwards; rejects with the reason
   * of every member tried when none did within `timeoutMs`.
   */
  async once(timeoutMs: number): Promise<void> {
    const access = this.access;
    if (access === null) throw new Error("no cluster access yet (the node never connected)");
    const deadline = Date.now() + timeoutMs;
    const problems: string[] = [];
    for (const member of this.order(access)) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      try {
        const conn = await this.connection(access, member, Math.min(remaining, this.attemptTimeoutMs));
        await conn.request(
          KEEPALIVE_METHOD,
          { member: access.member },
          { timeoutMs: Math.min(deadline - Date.now(), this.attemptTimeoutMs) },
        );
        this.leader = member;
        return;
      } catch (err) {
        const e = err as { code?: string; message: string; data?: { leader?: string | null } };
        problems.push(`${member}: ${e.message}`);
        if (e.code === "not_leader") this.leader = e.data?.leader ?? null;
        else if (this.connTo === member) this.dropConnection();
      }
    }
    throw new Error(`no leader confirmed this machine (${problems.join("; ") || "no time left"})`);
  }

  /** The believed leader first, then the others (this machine's own member last: it is the one away). */
  private order(access: ClusterAccess): string[] {
    const names = Object.keys(access.peers).filter((m) => m !== access.member);
    const first = this.leader !== null && names.includes(this.leader) ? [this.leader] : [];
    return [...first, ...names.filter((m) => m !== this.leader)];
  }

  private async connection(access: ClusterAccess, member: string, timeoutMs: number): Promise<Connection> {
    if (this.conn !== null && !this.conn.closed && this.connTo === member) return this.conn;
    this.dropConnection();
    const addr = access.peers[member]!;
    const { conn, hello } = await connect({
      ...splitHostPort(addr),
      secret: Buffer.from(access.secret),
      role: "peer",
      // Not the member's own name: the peer transport keeps that name's connections for Raft traffic.
      name: `${access.member}/supervisor`,
      timeoutMs,
      tls: access.tls,
      localAddress: access.dialFrom,
    });
    if (hello.name !== member) {
      conn.close("unexpected node");
      throw new Error(`${addr} is node "${hello.name}", not "${member}"`);
    }
    // The peer may send Raft notifications on any peer connection; this one serves nothing.
    conn.serve({
      request: () => Promise.reject(new Error("a supervisor serves no requests")),
      notify: () => {},
    });
    this.conn = conn;
    this.connTo = member;
    return conn;
  }

  private dropConnection(): void {
    this.conn?.close("keepalive connection replaced");
    this.conn = null;
    this.connTo = null;
  }
}
