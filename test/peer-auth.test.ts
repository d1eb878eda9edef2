// Peer authentication against an impostor, with real nodes (dist/berth) on loopback: a member is SIGKILLed and a
// process without the cluster secret (or with a wrong one; with peer TLS, holding a certificate of the cluster CA
// but no secret, or a certificate of another CA) listens on its peer address, answering the members' dials and
// dialling them itself. It must receive no Raft message and no forwarded request, and nothing it sends (a write for
// the leader to commit, a huge term to force elections) may reach Raft.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeStatus } from "../src/client/protocol.ts";
import { connect, type WireTls } from "../src/wire/client.ts";
import type { Connection } from "../src/wire/connection.ts";
import { type Listener, listen } from "../src/wire/server.ts";
import { makeTestCerts, type TestCerts } from "./support/certs.ts";
import { clientFor, currentLeader, TestCluster, waitFor } from "./support/cluster.ts";

const HUGE_TERM = 1_000_000;

/** A process on a member's peer address, calling itself that member; records what reaches it. */
class Impostor {
  /** Handshakes the members started with it (completed on its side or not). */
  attempts = 0;
  /** Raft messages and requests it received. */
  readonly received: unknown[] = [];
  private listener: Listener | null = null;
  private readonly conns: Connection[] = [];

  constructor(
    private readonly name: string,
    private readonly secret: Buffer | null,
    /** Its certificate (and the CA it trusts when dialling), with peer TLS. */
    private readonly tls: WireTls | null,
  ) {}

  async listen(host: string, port: number): Promise<void> {
    this.listener = await listen({
      host,
      port,
      secret: this.secret,
      role: "peer",
      name: this.name,
      tls: this.tls && { cert: this.tls.cert, key: this.tls.key },
      onConnection: (conn, hello) => {
        this.attempts++;
        this.attack(conn, hello.name);
      },
      onRefused: () => {
        this.attempts++;
      },
    });
  }

  /** Dials a member as `name`; returns why it was refused (or "accepted"). */
  async dial(host: string, port: number): Promise<string> {
    try {
      const { conn, hello } = await connect({
        host,
        port,
        secret: this.secret,
        role: "peer",
        name: this.name,
        timeoutMs: 3000,
        tls: this.tls,
      });
      this.attack(conn, hello.name);
      return "accepted";
    } catch (err) {
      return `${(err as { code?: string }).code}: ${(err as Error).message}`;
    }
  }

  /** What the review's impostor did: record everything, send a huge term and a write for the leader. */
  private attack(conn: Connection, member: string): void {
    this.conns.push(conn);
    conn.serve({
      notify: (method, params) => this.received.push({ method, params }),
      request: (method, params) => {
        this.received.push({ method, params });
        return true;
      },
    });
    try {
      conn.notify("raft", [
        { type: "heartbeatResp", from: this.name, to: member, term: HUGE_TERM },
        { type: "vote", from: this.name, to: member, term: HUGE_TERM, logTerm: HUGE_TERM, index: 1e9 },
      ]);
      conn
        .request("leader.kv.write", { method: "PUT", key: "/impostor", value: "owned" }, { timeoutMs: 3000 })
        .catch(() => {});
    } catch {
      // the member closed the connection already
    }
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.close("impostor done");
    await this.listener?.close();
  }
}

interface Variant {
  what: string;
  secret: Buffer | null;
  /** Which certificate it holds (peer TLS only). */
  cert?: "cluster" | "foreign";
  /** What the leader logs about its dial (null: not checked; it logs a reason once a minute per peer). */
  refusal: RegExp | null;
  /** How the members refuse its own dials. */
  dialRefusal: RegExp;
}

const WRONG_SECRET = Buffer.from("a-wrong-cluster-secret-0123456789");
const NO_SECRET_REFUSAL = /cannot reach \w+: .*does not hold the cluster secret/;
const SETUPS: { peers: string; tls: boolean; variants: Variant[] }[] = [
  {
    peers: "plain peers",
    tls: false,
    variants: [
      {
        what: "no secret",
        secret: null,
        refusal: NO_SECRET_REFUSAL,
        dialRefusal: /^auth_failed: .*cluster secret/,
      },
      {
        what: "a wrong secret",
        secret: WRONG_SECRET,
        refusal: null,
        dialRefusal: /^auth_failed: .*cluster secret/,
      },
    ],
  },
  {
    peers: "peer TLS",
    tls: true,
    variants: [
      {
        what: "a certificate of the cluster CA and no secret",
        secret: null,
        cert: "cluster",
        refusal: NO_SECRET_REFUSAL,
        dialRefusal: /^auth_failed: .*cluster secret/,
      },
      {
        what: "a certificate of another CA",
        secret: null,
        cert: "foreign",
        // Not checked in the log: a failed TLS dial may surface as a reset or a timeout under load, logged under
        // the same once-a-minute key as the previous variant's. Nothing received and no term change still hold.
        refusal: null,
        dialRefusal: /^unavailable: .*(TLS|certificate)/,
      },
    ],
  },
];

for (const setup of SETUPS) {
  describe(`peer authentication against an impostor on a down member's address (${setup.peers})`, () => {
    let cluster: TestCluster;
    let certs: TestCerts | null = null;
    let victim: string;
    let before: NodeStatus;

    const status = async (name: string): Promise<NodeStatus> => {
      const c = await clientFor(cluster, name);
      try {
        return (await c.call("node.status", {}, 3000)) as NodeStatus;
      } finally {
        c.close();
      }
    };
    const live = () => cluster.nodes.filter((n) => n.name !== victim);
    const impostorTls = (which: Variant["cert"]): WireTls | null => {
      if (!certs || !which) return null;
      const [cert, key] =
        which === "cluster" ? [certs.nodeCert, certs.nodeKey] : [certs.otherNodeCert, certs.otherNodeKey];
      return { cert: readFileSync(cert), key: readFileSync(key), ca: readFileSync(certs.caCert) };
    };

    beforeAll(async () => {
      if (setup.tls) certs = makeTestCerts();
      const extraArgs = certs
        ? [
            `--peer-cert-file=${certs.nodeCert}`,
            `--peer-key-file=${certs.nodeKey}`,
            `--peer-trusted-ca-file=${certs.caCert}`,
          ]
        : [];
      cluster = await TestCluster.start(3, { extraArgs });
      const leader = await currentLeader(cluster);
      // A follower goes down: the leader keeps dialling its address to replicate to it.
      victim = cluster.nodes.find((n) => n.name !== leader)!.name;
      await cluster.kill(victim);
      before = await status(leader);
    }, 60_000);
    afterAll(async () => {
      await cluster?.stop();
      certs?.cleanup();
    });

    for (const variant of setup.variants) {
      it(`with ${variant.what}: no replicated data or forwarded request reaches it, and nothing it sends reaches Raft`, async () => {
        const v = cluster.node(victim);
        const impostor = new Impostor(victim, variant.secret, impostorTls(variant.cert));
        await impostor.listen(v.host, v.peerPort);
        try {
          // Writes while it listens: the leader has entries to replicate to the "member" on that address.
          for (let i = 0; i < 3; i++) {
            const r = await cluster.cli(
              ["kv", "set", `/during-${i}`, "replicated"],
              cluster.endpoint(before.leader!),
            );
            expect(r.code).toBe(0);
          }
          // The leader dials it again and again (backing off up to 1 s): let it try a few times.
          await waitFor(
            "three dials from the members, or anything received",
            () => impostor.attempts >= 3 || impostor.received.length > 0,
            15_000,
          );
          // It dials the members too, as the down member.
          const dials = await Promise.all(live().map((n) => impostor.dial(n.host, n.peerPort)));
          for (const d of dials) expect(d).toMatch(variant.dialRefusal);
          // Give anything it sent time to show: a round of heartbeats and more.
          await new Promise((r) => setTimeout(r, 500));

          expect(impostor.received).toEqual([]);
          if (variant.refusal) {
            // The dial's refusal is logged once its TLS or secret check ends, which may trail the dial itself.
            const refusal = variant.refusal;
            await waitFor(
              `the leader logging ${refusal}`,
              () => refusal.test(readFileSync(cluster.node(before.leader!).logFile, "utf8")),
              5000,
            ).catch(() => {});
            expect(readFileSync(cluster.node(before.leader!).logFile, "utf8")).toMatch(refusal);
          }
          for (const n of live()) {
            const s = await status(n.name);
            expect({ leader: s.leader, term: s.term }).toEqual({ leader: before.leader, term: before.term });
          }
          const got = await cluster.cli(["kv", "get", "/impostor"], cluster.endpoint(before.leader!));
          expect(got.code).not.toBe(0);
          expect(got.stderr).toMatch(/not found/i);
        } finally {
          await impostor.close();
        }
      }, 40_000);
    }
  });
}
