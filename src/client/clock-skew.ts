// How far a member's clock may be off the cluster's time (the median of the members' clocks, see
// src/service/cluster-clock.ts) before it is reported, and how the skew is worded: the node's log, `berth cluster
// health` and the console say it the same way.

/** Clocks further apart than this are reported (etcd warns past 1 s too). */
export const SKEW_BOUND_MS = 1000;

/** "86400.0 s ahead of" / "2.5 s behind". */
export function describeSkew(skewMs: number): string {
  return `${(Math.abs(skewMs) / 1000).toFixed(1)} s ${skewMs > 0 ? "ahead of" : "behind"}`;
}

/** The skew worth reporting of a member (null when within the bound or not measured). */
export function reportedSkew(skewMs: number | undefined): number | null {
  return skewMs !== undefined && Math.abs(skewMs) > SKEW_BOUND_MS ? skewMs : null;
}
