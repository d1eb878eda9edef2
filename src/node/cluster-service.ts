// Membership and health. Raft's configuration knows each member's peer address; the client-facing addresses
// each node publishes itself under a hidden key (/_berth/members/NAME), as etcd publishes member attributes.
import { createHash } from "node:crypto";
import type { MemberHealth, MemberInfo, NodeStatus } from "../client/protocol.ts";
import { splitHostPort } from "../host-port.ts";
import type { KvStore } from "../kv/store.ts";
import { KvError, type KvEvent } from "../kv/types.ts";
import type { RaftDriver } from "../raft/driver.ts";
import { CLUSTER_ID_KEY, MEMBERS_DIR } from "../sched/registry.ts";
import { badRequest, ServiceError } from "../service/errors.ts";
import type { LeaderRouter } from "../service/leader-router.ts";
import type { KvService } from "./kv-service.ts";

export { CLUSTER_ID_KEY, MEMBERS_DIR };

export interface MemberAttributes {
  clientAddr: string;
  httpAddr: string | null;
  version: string;
}

/** etcd-style member id: 16 hex digits, stable for a name. */
export function memberId(name: string): string {
  return createHash("sha256").update(`berth-member:${name}`).digest("hex").slice(0, 16);
}

export interface ClusterDeps {
  selfName: string;
  store: KvStore;
  driver: RaftDriver;
  router: LeaderRouter;
  kv: KvService;
  /** Asks another member for its status through its client address. */
  probe(clientAddr: string, timeoutMs: number): Promise<NodeStatus>;
  status(): NodeStatus;
  /** Each member's clock minus the cluster's time, as this member measured them (src/service/cluster-clock.ts). */
  clockSkews(): Map<string, number>;
  /** How long `cluster add` waits for a new learner to catch up before promoting it. */
  catchUpTimeoutMs: number;
}

export class ClusterService {
  constructor(private readonly d: ClusterDeps) {
    d.router.register("cluster.add", (p) =>
      this.addAsLeader(p as { name: string; peerAddr: string; learner?: boolean }),
    );
    d.router.register("cluster.remove", (p) => this.removeAsLeader(p as { name: string }));
    d.router.register("cluster.promote", (p) => this.promoteAsLeader(p as { name: string }));
    d.router.register("cluster.move-leader", (p) => this.moveLeaderAsLeader(p as { name: string }));
  }

  members(): MemberInfo[] {
    const st = this.d.driver.status();
    const attrs = this.attributes();
    const toInfo = (name: string, role: "voter" | "learner"): MemberInfo => ({
      name,
      id: memberId(name),
      peerAddr: st.peers[name] ?? "",
      clientAddr: attrs.get(name)?.clientAddr ?? null,
      httpAddr: attrs.get(name)?.httpAddr ?? null,
      role,
      isLeader: st.lead === name,
    });
    return [
      ...st.conf.voters.map((n) => toInfo(n, "voter")),
      ...st.conf.learners.map((n) => toInfo(n, "learner")),
    ].sort((a, b) => a.name.localeCompare(b.name));
  }

  async health(timeoutMs: number): Promise<MemberHealth[]> {
    const skews = this.d.clockSkews();
    return Promise.all(
      this.members().map(async (m): Promise<MemberHealth> => {
        const skew = skews.get(m.name);
        const base = {
          name: m.name,
          clientAddr: m.clientAddr,
          ...(skew === undefined ? {} : { clockSkewMs: Math.round(skew) }),
        };
        if (m.name === this.d.selfName) return { ...base, ...healthOf(this.d.status()) };
        if (!m.clientAddr) return { ...base, healthy: false, detail: "has not published a client address" };
        try {
          return { ...base, ...healthOf(await this.d.probe(m.clientAddr, timeoutMs)) };
        } catch (err) {
          return { ...base, healthy: false, detail: (err as Error).message };
        }
      }),
    );
  }

  add(name: string, peerAddr: string, learner = false): Promise<MemberInfo[]> {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name)) throw badRequest(`invalid member name "${name}"`);
    if (!dialable(peerAddr)) throw badRequest(`peer address "${peerAddr}" must be HOST:PORT`);
    return this.d.router.call("cluster.add", { name, peerAddr, learner }) as Promise<MemberInfo[]>;
  }

  remove(name: string): Promise<MemberInfo[]> {
    return this.d.router.call("cluster.remove", { name }) as Promise<MemberInfo[]>;
  }

  /** Hands leadership to another voter (etcdctl move-leader); answers once it leads. */
  moveLeader(name: string): Promise<MemberInfo[]> {
    return this.d.router.call("cluster.move-leader", { name }) as Promise<MemberInfo[]>;
  }

  promote(name: string): Promise<MemberInfo[]> {
    return this.d.router.call("cluster.promote", { name }) as Promise<MemberInfo[]>;
  }

  /** Publishes this node's client addresses so others (and `cluster members`) can find it. */
  async publish(attrs: MemberAttributes): Promise<void> {
    const key = `${MEMBERS_DIR}/${this.d.selfName}`;
    const value = JSON.stringify(attrs);
    const current = this.d.store.get(key, { recursive: false, sorted: false }, Date.now());
    if (!(current instanceof KvError) && current.node.value === value) return;
    await this.d.kv.write({ method: "PUT", key, value });
  }

  private attributes(): Map<string, MemberAttributes> {
    const out = new Map<string, MemberAttributes>();
    const dir = this.d.store.get(MEMBERS_DIR, { recursive: false, sorted: false }, Date.now());
    if (dir instanceof KvError) return out;
    for (const n of (dir as KvEvent).node.nodes ?? []) {
      try {
        out.set(n.key.slice(MEMBERS_DIR.length + 1), JSON.parse(n.value ?? "") as MemberAttributes);
      } catch {
        // A hand-edited attribute record: show the member without addresses rather than fail.
      }
    }
    return out;
  }

  private isMember(name: string): "voter" | "learner" | null {
    const { conf } = this.d.driver.status();
    if (conf.voters.includes(name)) return "voter";
    if (conf.learners.includes(name)) return "learner";
    return null;
  }

  private async addAsLeader(p: { name: string; peerAddr: string; learner?: boolean }): Promise<MemberInfo[]> {
    if (this.isMember(p.name)) throw new ServiceError("conflict", `${p.name} is already a member`);
    const taken = Object.entries(this.d.driver.status().peers).find(([, addr]) => addr === p.peerAddr);
    if (taken) throw new ServiceError("conflict", `peer address ${p.peerAddr} belongs to ${taken[0]}`);
    // One server at a time, as a learner first: a new voter with an empty log could cost the cluster its quorum.
    await this.d.driver.proposeConfChange({ type: "addLearner", id: p.name, context: p.peerAddr });
    if (p.learner) return this.members();
    await this.waitCaughtUp(p.name);
    return this.promoteAsLeader({ name: p.name });
  }

  private async promoteAsLeader(p: { name: string }): Promise<MemberInfo[]> {
    const role = this.isMember(p.name);
    if (role === null) throw new ServiceError("not_found", `${p.name} is not a member`);
    if (role === "voter") return this.members();
    await this.d.driver.proposeConfChange({ type: "promote", id: p.name });
    return this.members();
  }

  private async moveLeaderAsLeader(p: { name: string }): Promise<MemberInfo[]> {
    const role = this.isMember(p.name);
    if (role === null) throw new ServiceError("not_found", `${p.name} is not a member`);
    if (role === "learner") throw badRequest(`${p.name} is a learner; only a voter can lead`);
    if (p.name !== this.d.selfName) {
      this.d.driver.transferLeadership(p.name);
      const deadline = Date.now() + this.d.catchUpTimeoutMs;
      while (this.d.driver.leader() !== p.name) {
        if (Date.now() > deadline)
          throw new ServiceError(
            "timeout",
            `${p.name} did not take the leadership (is it up to date and reachable?)`,
          );
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    return this.members();
  }

  private async removeAsLeader(p: { name: string }): Promise<MemberInfo[]> {
    if (this.isMember(p.name) === null) throw new ServiceError("not_found", `${p.name} is not a member`);
    await this.d.driver.proposeConfChange({ type: "remove", id: p.name });
    // Forget its published addresses too, without waiting: when the leader removed itself, the delete has to
    // find the next leader first, and the caller's answer must not wait for that (members() lists only members).
    void this.d.kv.write({ method: "DELETE", key: `${MEMBERS_DIR}/${p.name}` }).catch(() => {});
    return this.members();
  }

  /** Waits until the learner's log matches the leader's commit index. */
  private async waitCaughtUp(name: string): Promise<void> {
    const deadline = Date.now() + this.d.catchUpTimeoutMs;
    while (Date.now() < deadline) {
      const st = this.d.driver.status();
      const pr = st.progress.find((p) => p.id === name);
      if (pr && pr.match >= st.commit) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new ServiceError(
      "timeout",
      `${name} was added as a learner but has not caught up within ${this.d.catchUpTimeoutMs} ms; ` +
        `start it with --join, then run \`berth cluster promote ${name}\``,
    );
  }
}

/** A member's health as `berth cluster health` shows it, from the status it reports. */
function healthOf(s: NodeStatus): { healthy: boolean; detail: string; raftIndex: number; raftTerm: number } {
  if (s.diskFull)
    return {
      healthy: false,
      detail: `disk full, refusing writes: ${s.diskFull}`,
      raftIndex: s.commitIndex,
      raftTerm: s.term,
    };
  const healthy = s.leader !== null;
  return {
    healthy,
    detail: healthy ? `leader is ${s.leader}, term ${s.term}` : "no leader known (no quorum?)",
    raftIndex: s.commitIndex,
    raftTerm: s.term,
  };
}

/** An address the members can dial: HOST:PORT with a host and a port other than 0. */
function dialable(addr: string): boolean {
  try {
    const { host, port } = splitHostPort(addr);
    return host !== "" && port !== 0;
  } catch {
    return false;
  }
}
