// RaftDriver on its own (one member, memory storage): how it stops when something goes wrong, and what it says.
import { unpack } from "msgpackr";
import { afterEach, describe, expect, it } from "vitest";
import { RaftDriver, type StateMachine, StorageFailure } from "../src/raft/driver.ts";
import { MemoryRaftStorage } from "../src/raft/storage/memory.ts";
import type { Entry } from "../src/raft/types.ts";
import { waitFor } from "./support/processes.ts";

const enc = new TextEncoder();
const drivers: RaftDriver[] = [];
afterEach(async () => {
  for (const d of drivers.splice(0)) await d.stop();
});

class Recorder implements StateMachine {
  applied: string[] = [];
  failOn: string | null = null;
  apply(e: Entry): unknown {
    const cmd = new TextDecoder().decode(e.data);
    if (cmd === this.failOn) throw new TypeError(`cannot apply ${cmd}`);
    this.applied.push(cmd);
    return e.index;
  }
  snapshot(): Uint8Array | Iterable<Uint8Array> {
    return new Uint8Array(0);
  }
  restore(): void {}
}

async function singleMember(
  storage = new MemoryRaftStorage(),
  sm: Recorder = new Recorder(),
  snapshotEvery?: number,
) {
  const logs: string[] = [];
  const fatal: Error[] = [];
  const driver = new RaftDriver({
    snapshotEvery,
    id: "n1",
    storage,
    transport: { send: () => {}, setPeers: () => {} },
    stateMachine: sm,
    initialCluster: new Map([["n1", "mem://n1"]]),
    tickMs: 2,
    logger: (l) => logs.push(l),
    onFatal: (e) => fatal.push(e),
  });
  drivers.push(driver);
  await driver.start();
  const end = Date.now() + 5000;
  while (!driver.isLeader()) {
    if (Date.now() > end) throw new Error("no leader");
    await new Promise((r) => setTimeout(r, 2));
  }
  return { driver, sm, logs, fatal };
}

describe("RaftDriver: a fatal error", () => {
  it("from the state machine is reported as an internal error, not as a storage failure", async () => {
    const { driver, sm, logs, fatal } = await singleMember();
    await driver.propose(enc.encode("a"));
    sm.failOn = "b";
    const b = driver.propose(enc.encode("b")).catch((e: Error) => e.message);
    await waitFor("a fatal error", () => fatal.length > 0, 5000, 2);
    expect(fatal[0]).toBeInstanceOf(TypeError);
    const line = logs.find((l) => l.startsWith("fatal"))!;
    expect(line).toMatch(/^fatal: internal error \(a bug, not a storage failure\)/);
    expect(line).toContain("cannot apply b");
    await driver.stop();
    expect(await b).toMatch(/shutting down/);
    expect(await driver.propose(enc.encode("c")).catch((e: Error) => e.message)).toMatch(/shutting down/);
  });

  it("from storage is reported as a storage failure", async () => {
    const storage = new MemoryRaftStorage();
    const { driver, logs, fatal } = await singleMember(storage);
    storage.save = () => Promise.reject(new Error("EIO: i/o error"));
    void driver.propose(enc.encode("a")).catch(() => {});
    await waitFor("a fatal error", () => fatal.length > 0, 5000, 2);
    expect(fatal[0]).toBeInstanceOf(StorageFailure);
    expect(logs.find((l) => l.startsWith("fatal"))).toMatch(/^fatal: storage failed.*save: EIO: i\/o error/s);
  });
});

describe("RaftDriver: snapshots", () => {
  it("are encoded a part at a time, the event loop running in between, while the state goes on changing", async () => {
    // Each part costs 30 ms of CPU; a turn of the event loop is counted on every setImmediate.
    let turns = 0;
    let counting = true;
    const count = () => {
      turns++;
      if (counting) setImmediate(count);
    };
    count();
    const seenAtPart: number[] = [];
    class Parts extends Recorder {
      override snapshot(): Iterable<Uint8Array> {
        const captured = this.applied.length;
        return (function* () {
          for (let i = 0; i < 4; i++) {
            const until = Date.now() + 30;
            while (Date.now() < until) {}
            seenAtPart.push(turns);
            yield enc.encode(`${captured}:${i};`);
          }
        })();
      }
    }
    const storage = new MemoryRaftStorage();
    const sm = new Parts();
    // The snapshot is taken at index 3 (the founding conf entry, the leader's empty entry, w0): w1 and w2 are
    // applied while it is being encoded, and are not in it.
    const { driver, logs } = await singleMember(storage, sm, 3);
    for (let i = 0; i < 3; i++) await driver.propose(enc.encode(`w${i}`));
    await waitFor(
      "a snapshot at index 3 logged",
      () => logs.some((l) => l.startsWith("snapshot at index 3 ")),
      5000,
      2,
    );
    counting = false;
    expect(sm.applied).toEqual(["w0", "w1", "w2"]);
    expect(seenAtPart).toHaveLength(4);
    for (let i = 1; i < 4; i++) expect(seenAtPart[i]).toBeGreaterThan(seenAtPart[i - 1]!);
    const { snapshot } = await storage.load();
    const env = unpack(snapshot!.data) as { peers: [string, string][]; app: Uint8Array };
    expect(env.peers).toEqual([["n1", "mem://n1"]]);
    expect(new TextDecoder().decode(env.app)).toBe("1:0;1:1;1:2;1:3;");
  });
});

describe("RaftDriver before start", () => {
  it("knows no leader and term 0 (peers may ask while the node still starts)", () => {
    const early = new RaftDriver({
      id: "n1",
      storage: new MemoryRaftStorage(),
      transport: { send: () => {}, setPeers: () => {} },
      stateMachine: new Recorder(),
      initialCluster: new Map([["n1", "mem://n1"]]),
      tickMs: 2,
    });
    expect(early.leader()).toBeNull();
    expect(early.isLeader()).toBe(false);
    expect(early.term()).toBe(0);
  });
});

describe("RaftDriver: what /metrics reads", () => {
  it("counts proposals refused for want of a leader, and none while they commit", async () => {
    const { driver } = await singleMember();
    await driver.propose(enc.encode("a"));
    expect(driver.proposalsFailed).toBe(0);
    expect(driver.pendingProposals()).toBe(0);
    // n2 never answers: n1 cannot be elected, and its proposals are refused.
    const lonely = new RaftDriver({
      id: "n1",
      storage: new MemoryRaftStorage(),
      transport: { send: () => {}, setPeers: () => {} },
      stateMachine: new Recorder(),
      initialCluster: new Map([
        ["n1", "mem://n1"],
        ["n2", "mem://n2"],
      ]),
      tickMs: 2,
    });
    drivers.push(lonely);
    await lonely.start();
    const refused = await Promise.allSettled([
      lonely.propose(enc.encode("x")),
      lonely.propose(enc.encode("y")),
    ]);
    expect(refused.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(lonely.proposalsFailed).toBe(2);
  });

  it("times each snapshot it saves", async () => {
    const seconds: number[] = [];
    const driver = new RaftDriver({
      id: "n1",
      storage: new MemoryRaftStorage(),
      transport: { send: () => {}, setPeers: () => {} },
      stateMachine: new Recorder(),
      initialCluster: new Map([["n1", "mem://n1"]]),
      tickMs: 2,
      snapshotEvery: 5,
      onSnapshotSaved: (s) => seconds.push(s),
    });
    drivers.push(driver);
    await driver.start();
    while (!driver.isLeader()) await new Promise((r) => setTimeout(r, 2));
    for (let i = 0; i < 12; i++) await driver.propose(enc.encode(`w${i}`));
    const end = Date.now() + 5000;
    while (seconds.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    expect(seconds.length).toBeGreaterThanOrEqual(2);
    for (const s of seconds) expect(s).toBeGreaterThanOrEqual(0);
  });
});
