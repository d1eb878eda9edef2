// A member that finds the discovery token full still becomes a machine of the cluster: it asks the founding
// members, over the peer network with the cluster secret, to add it as a learner (a non-voting member that follows
// the log and runs units), as `berth cluster add --learner` would. Only the leader adds; the others answer
// "not_leader", so each founding member is asked in turn until the leader is found (it may still be elected).
import { splitHostPort } from "../../host-port.ts";
import { retry } from "../../retry.ts";
import { connect, type WireTls } from "../../wire/client.ts";

export interface LearnerJoin {
  name: string;
  /** This member's peer address, HOST:PORT. */
  peerAddr: string;
  /** Founding members, name -> HOST:PORT. */
  members: Map<string, string>;
  secret: string;
  tls: WireTls | null;
  dialFrom?: string;
  log: (line: string) => void;
  /** How long to keep asking (default 120 s: the founders may still be starting). */
  timeoutMs?: number;
}

export async function joinAsLearner(j: LearnerJoin): Promise<void> {
  try {
    await retry(() => askEachMember(j), {
      firstMs: 250,
      maxMs: 1000,
      deadline: Date.now() + (j.timeoutMs ?? 120_000),
      retriable: (err) => err instanceof NotAddedYet,
    });
  } catch (err) {
    if (err instanceof NotAddedYet)
      throw new Error(`no founding member added this node as a learner (${err.message})`);
    throw err;
  }
}

/** Every founding member answered, none added this node (no leader yet, or unreachable): what each said. */
class NotAddedYet extends Error {}

async function askEachMember(j: LearnerJoin): Promise<void> {
  const problems: string[] = [];
  for (const [member, addr] of j.members) {
    try {
      await askToAdd(j, member, addr);
      j.log(`[discovery] added to the cluster as a learner (asked ${member})`);
      return;
    } catch (err) {
      const e = err as { code?: string; message: string };
      // Added before (a restart between the add and the first save of the data directory): nothing to do.
      if (e.code === "conflict" && e.message.includes("already a member")) return;
      if (e.code === "conflict") throw new Error(`cannot join: ${e.message}`);
      problems.push(`${member}: ${e.message}`);
    }
  }
  throw new NotAddedYet(problems.join("; "));
}

async function askToAdd(j: LearnerJoin, member: string, addr: string): Promise<void> {
  const { conn, hello } = await connect({
    ...splitHostPort(addr),
    secret: Buffer.from(j.secret),
    role: "peer",
    // Not the member's own name: a peer keeps that name's connections for Raft traffic.
    name: `${j.name}/discovery`,
    timeoutMs: 3000,
    tls: j.tls,
    localAddress: j.dialFrom,
  });
  try {
    if (hello.name !== member) throw new Error(`${addr} is node "${hello.name}", not "${member}"`);
    conn.serve({ request: () => Promise.reject(new Error("serves no requests")), notify: () => {} });
    await conn.request(
      "leader.cluster.add",
      { name: j.name, peerAddr: j.peerAddr, learner: true },
      { timeoutMs: 10_000 },
    );
  } finally {
    conn.close("done");
  }
}
