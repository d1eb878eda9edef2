// What a node hands its etcd-v2 HTTP API: the same KvService and ClusterService the msgpack clients use, plus
// etcd's stats documents built from the Raft driver's status.

import type { AuthStore } from "../etcdv2/auth/store.ts";
import type { RaftTrafficStats } from "../etcdv2/raft-stats.ts";
import { formatId } from "../etcdv2/respond.ts";
import type { HttpDeps } from "../etcdv2/types.ts";
import type { KvStore } from "../kv/store.ts";
import type { RaftDriver } from "../raft/driver.ts";
import { type ClusterService, memberId } from "./cluster-service.ts";
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
  raftStats: RaftTrafficStats;
  /** The v2 auth users and roles (the same store the msgpack API's KeyAccess reads). */
  auth: AuthStore;
}

/** Go's time.Duration.String() for a non-negative duration in nanoseconds: "9.892316548s", "1m5.2s", "2h0m1s". */
export function goDuration(ns: bigint): string {
  if (ns === 0n) return "0s";
  if (ns < 1_000_000_000n) {
    // Below a second Go switches units; etcd's leader uptime is practically never this short.
    const [unit, div] = ns < 1000n ? ["ns", 1n] : ns < 1_000_000n ? ["µs", 1000n] : ["ms", 1_000_000n];
    return `${fraction(ns, div)}${unit}`;
  }
  const h = ns / 3_600_000_000_000n;
  const m = (ns / 60_000_000_000n) % 60n;
  const secNs = ns % 60_000_000_000n;
  const sec = `${fraction(secNs, 1_000_000_000n)}s`;
  if (h > 0n) return `${h}h${m}m${sec}`;
  if (m > 0n) return `${m}m${sec}`;
  return sec;
}

function fraction(v: bigint, div: bigint): string {
  const whole = v / div;
  const digits = div.toString().length - 1;
  if (digits === 0) return whole.toString();
  const frac = (v % div).toString().padStart(digits, "0").replace(/0+$/, "");
  return frac === "" ? whole.toString() : `${whole}.${frac}`;
}

/** Go's RFC3339Nano: trailing zeros of the fraction (and a zero fraction) are left out. */
export function goTime(d: Date): string {
  return d.toISOString().replace(/\.?0+Z$/, "Z");
}

export function httpDeps(s: HttpDepsSources): HttpDeps {
  // When this node last saw the leadership change, for leaderInfo.startTime/uptime.
  let leaderSince = new Date();
  let leaderSinceNs = process.hrtime.bigint();
  s.driver.onLeaderChange(() => {
    leaderSince = new Date();
    leaderSinceNs = process.hrtime.bigint();
  });
  const indexes = () => {
    const { commit, term } = s.driver.commitAndTerm();
    return { etcdIndex: s.store.index, raftIndex: commit, raftTerm: term };
  };
  return {
    // KvService.write answers once this member applied the write, as etcd does (read-your-writes).
    kv: s.kv,
    indexes,
    members: () => s.cluster.members(),
    addMember: (name, peerAddr) => s.cluster.add(name, peerAddr, false),
    removeMember: (name) => s.cluster.remove(name),
    clusterId: () => s.clusterId() || null,
    selfStats: () => {
      const st = s.driver.status();
      const { send, recv } = s.raftStats.rates();
      // etcd's field order; the rates are omitempty there (a leader receives no appends, a follower sends none).
      const rate = (name: string, v: number) => (v !== 0 ? { [name]: v } : {});
      return {
        name: s.name,
        id: formatId(memberId(s.name)),
        state: RAFT_STATE[st.role] ?? "StateFollower",
        startTime: goTime(s.startedAt),
        leaderInfo: {
          leader: st.lead ? formatId(memberId(st.lead)) : "",
          uptime: goDuration(process.hrtime.bigint() - leaderSinceNs),
          startTime: goTime(leaderSince),
        },
        recvAppendRequestCnt: s.raftStats.recvAppendCount,
        ...rate("recvPkgRate", recv[0]),
        ...rate("recvBandwidthRate", recv[1]),
        sendAppendRequestCnt: s.raftStats.sendAppendCount,
        ...rate("sendPkgRate", send[0]),
        ...rate("sendBandwidthRate", send[1]),
      };
    },
    leaderStats: () => {
      const st = s.driver.status();
      if (st.role !== "leader") return null;
      // Per follower, the leader's append round trips (seconds) and answered/failed appends, as etcd reports them.
      const followers: Record<string, object> = {};
      for (const p of st.progress) {
        if (p.id === s.name) continue;
        followers[formatId(memberId(p.id))] = s.raftStats.followerStats(p.id);
      }
      return { leader: formatId(memberId(s.name)), followers };
    },
    storeStats: () => s.store.stats(),
    versions: () => ETCD_API_VERSION,
    // As etcd's /health while an alarm (NOSPACE) is raised: false while this member's disk is full.
    health: () => s.driver.leader() !== null && s.driver.diskFull() === null,
    auth: s.auth,
  };
}
