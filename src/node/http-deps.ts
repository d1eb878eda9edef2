// What a node hands its etcd-v2 HTTP API: the same KvService and ClusterService the msgpack clients use, plus
// etcd's stats documents built from the Raft driver's status.
import type { KvStore } from "../kv/store.ts";
import type { RaftDriver } from "../raft/driver.ts";
import { type ClusterService, memberId } from "./cluster-service.ts";
import type { HttpDeps } from "./http/types.ts";
import type { KvService } from "./kv-service.ts";

/** The etcd release whose v2 API Berth speaks; clients parse /version as semver. */
export const ETCD_API_VERSION = { etcdserver: "3.4.23", etcdcluster: "3.4.0" };

const RAFT_STATE: Record<string, string> = {
  leader: "StateLeader",
  follower: "StateFollower",
  candidate: "StateCandidate",
  preCandidate: "StateCandidate",
};

export interface HttpDepsSources {
  name: string;
  startedAt: Date;
  store: KvStore;
  driver: RaftDriver;
  kv: KvService;
  cluster: ClusterService;
  clusterId(): string;
}

export function httpDeps(s: HttpDepsSources): HttpDeps {
  // When this node last saw the leadership change, for leaderInfo.startTime/uptime.
  let leaderSince = new Date();
  s.driver.onLeaderChange(() => {
    leaderSince = new Date();
  });
  const indexes = () => {
    const st = s.driver.status();
    return { etcdIndex: s.store.index, raftIndex: st.commit, raftTerm: st.term };
  };
  return {
    kv: s.kv,
    indexes,
    members: () => s.cluster.members(),
    addMember: (name, peerAddr) => s.cluster.add(name, peerAddr, false),
    removeMember: (name) => s.cluster.remove(name),
    clusterId: () => s.clusterId() || null,
    selfStats: () => {
      const st = s.driver.status();
      return {
        name: s.name,
        id: memberId(s.name),
        state: RAFT_STATE[st.role] ?? "StateFollower",
        startTime: s.startedAt.toISOString(),
        leaderInfo: {
          leader: st.lead ? memberId(st.lead) : "",
          uptime: `${((Date.now() - leaderSince.getTime()) / 1000).toFixed(9)}s`,
          startTime: leaderSince.toISOString(),
        },
      };
    },
    leaderStats: () => {
      const st = s.driver.status();
      if (st.role !== "leader") return null;
      const followers: Record<string, object> = {};
      for (const p of st.progress) {
        if (p.id === s.name) continue;
        followers[memberId(p.id)] = { match: p.match, state: p.state, recentActive: p.recentActive };
      }
      return { leader: memberId(s.name), followers };
    },
    storeStats: () => s.store.stats(),
    versions: () => ETCD_API_VERSION,
    health: () => s.driver.leader() !== null,
  };
}
