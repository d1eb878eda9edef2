// LeaderRouter: forwarded operations retried only where they certainly did not happen, and failed at once (not
// after the timeout) when the leader's connection closed with the request on it, or when the leader it was sent to
// stopped being the leader without answering (a leader cut off the network closes nothing).
import { describe, expect, it, vi } from "vitest";
import { PeerUnreachableError } from "../src/raft/transport.ts";
import { LeaderRouter } from "../src/service/leader-router.ts";
import { ConnectionClosedError } from "../src/wire/errors.ts";

const TIMEOUT_MS = 5000;

function router(leader: () => string | null, request: (peer: string) => Promise<unknown>) {
  const sent: string[] = [];
  const r = new LeaderRouter({
    selfId: "n2",
    leader,
    timeoutMs: TIMEOUT_MS,
    peers: {
      request: (peer) => {
        sent.push(peer);
        return request(peer);
      },
    },
  });
  r.register("put", async () => "applied here");
  return { r, sent };
}

/**
 * A router on n2 whose leader the test sets: elect() changes it and tells the router, as the node's Raft does (the
 * same leader again: a heartbeat after a silence).
 */
function electable(
  initial: string | null,
  request: (peer: string, timeoutMs: number) => Promise<unknown>,
  peerSilent?: (peer: string) => boolean,
) {
  let lead = initial;
  let changed = () => {};
  const r = new LeaderRouter({
    selfId: "n2",
    leader: () => lead,
    timeoutMs: TIMEOUT_MS,
    ...(peerSilent ? { peerSilent } : {}),
    peers: { request: (peer, _method, _params, timeoutMs) => request(peer, timeoutMs) },
    onLeaderChange: (listener) => {
      changed = listener;
    },
  });
  r.register("put", async () => "applied here");
  return {
    r,
    elect: (next: string | null) => {
      lead = next;
      changed();
    },
  };
}

describe("LeaderRouter", () => {
  it("a write that never left (no connection to the old leader) goes to the new leader at once", async () => {
    let lead = "n1";
    const { r, sent } = router(
      () => lead,
      async (peer) => {
        if (peer === "n1") {
          lead = "n3"; // the election the closed connection started is won meanwhile
          throw new PeerUnreachableError("connection refused");
        }
        return "applied on n3";
      },
    );
    expect(await r.call("put", {})).toBe("applied on n3");
    expect(sent).toEqual(["n1", "n3"]);
  });

  it("a write in flight when the leader's connection closes fails at once, as possibly applied, and is not resent", async () => {
    const { r, sent } = router(
      () => "n1",
      async () => {
        throw new ConnectionClosedError("n1 closed the connection");
      },
    );
    const err = (await r.call("put", {}).catch((e: unknown) => e)) as { code: string; message: string };
    expect(err.code).toBe("timeout");
    expect(err.message).toContain("may or may not have taken effect");
    // Sent once: neither resent (it may have been applied) nor waited on until the timeout.
    expect(sent).toEqual(["n1"]);
  });

  it("a write waiting for a leader goes to the new one as soon as it is elected, not at the next poll", async () => {
    vi.useFakeTimers();
    try {
      const { r, elect } = electable(null, async (peer) => `applied on ${peer}`);
      let answer: unknown = null;
      void r.call("put", {}).then((a) => {
        answer = a;
      });
      await vi.advanceTimersByTimeAsync(10); // virtual time, short of the 50 ms poll
      elect("n3");
      await vi.advanceTimersByTimeAsync(1);
      expect(answer).toBe("applied on n3");
    } finally {
      vi.useRealTimers();
    }
  });

  it("a write forwarded to a leader that goes silent fails once another leader (or none) is known, not at the timeout", async () => {
    vi.useFakeTimers();
    try {
      const sent: string[] = [];
      // n1 falls silent right after the request went out to it.
      let silent = false;
      const { r, elect } = electable(
        "n1",
        // A silent peer: no answer, no closed connection, only the request's own timeout.
        (peer, timeoutMs) => {
          sent.push(peer);
          silent = true;
          return new Promise((_, reject) =>
            setTimeout(() => reject(Object.assign(new Error("timed out"), { code: "timeout" })), timeoutMs),
          );
        },
        (peer) => silent && peer === "n1",
      );
      let outcome: { code: string; message: string } | null = null;
      void r.call("put", {}).catch((e: { code: string; message: string }) => {
        outcome = e;
      });
      await vi.advanceTimersByTimeAsync(100);
      elect("n1"); // a heartbeat from n1 again: still the leader, keep waiting
      await vi.advanceTimersByTimeAsync(100);
      expect(outcome).toBeNull();
      elect(null); // this node stopped hearing n1 and campaigns
      await vi.advanceTimersByTimeAsync(1);
      expect(outcome).not.toBeNull();
      expect(outcome!.code).toBe("timeout");
      expect(outcome!.message).toContain("n1 stopped being the leader");
      expect(outcome!.message).toContain("may or may not have taken effect");
      // Sent once and not resent: n1 may have applied it before it went silent.
      expect(sent).toEqual(["n1"]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("a write for a leader already silent is not sent to it, and goes to the next leader once one is elected", async () => {
    vi.useFakeTimers();
    try {
      const sent: string[] = [];
      const { r, elect } = electable(
        "n1",
        async (peer) => {
          sent.push(peer);
          if (peer === "n1") return new Promise(() => {}); // cut off: never answers
          return `applied on ${peer}`;
        },
        (peer) => peer === "n1",
      );
      let answer: unknown = null;
      void r.call("put", {}).then((a) => {
        answer = a;
      });
      await vi.advanceTimersByTimeAsync(300);
      expect(sent).toEqual([]);
      elect("n3");
      await vi.advanceTimersByTimeAsync(1);
      // Certainly not applied by n1, so no "may or may not have taken effect": it simply succeeds on n3.
      expect(answer).toBe("applied on n3");
      expect(sent).toEqual(["n3"]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("a write forwarded to a leader that hands its leadership over (and still talks) waits for its answer", async () => {
    vi.useFakeTimers();
    try {
      // n1 answers 200 ms after the request, once n3 leads (cluster.move-leader sent through a follower).
      const { r, elect } = electable(
        "n1",
        () => new Promise((done) => setTimeout(() => done("moved to n3"), 200)),
        () => false,
      );
      r.register("move", async () => "ran here");
      let answer: unknown = null;
      void r.call("move", {}).then(
        (a) => {
          answer = a;
        },
        (e: Error) => {
          answer = e;
        },
      );
      await vi.advanceTimersByTimeAsync(100);
      elect("n3");
      await vi.advanceTimersByTimeAsync(150);
      expect(answer).toBe("moved to n3");
    } finally {
      vi.useRealTimers();
    }
  });
});
