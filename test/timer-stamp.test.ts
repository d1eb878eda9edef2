// A Persistent= timer's stamp lives in the cluster's registry (/_berth/timers/NAME), not on its machine: the agent
// bridge writes it when the timer fires, and a machine the timer moves to reads it with the unit, so an OnCalendar=
// event missed while the timer was between machines fires at once there. Real agents and the real bridge against an
// in-process store.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Agent } from "../src/agent/agent.ts";
import { AgentBridge } from "../src/agent/agent-bridge.ts";
import type { LeasedUnitHost } from "../src/agent/unit-host.ts";
import type { KvWriteRequest } from "../src/client/protocol.ts";
import { decodeCommand, encodeCommand } from "../src/kv/commands.ts";
import { commandFor } from "../src/kv/requests.ts";
import { KvStore } from "../src/kv/store.ts";
import { KvError } from "../src/kv/types.ts";
import { canonicalUnit } from "../src/sched/catalog.ts";
import { scheduleKey, timerStampKey, unitFileKey, unitKey } from "../src/sched/registry.ts";
import { registryWriteProblem } from "../src/sched/registry-records.ts";
import { agentHarness, lineCount } from "./support/agent.ts";

const harness = agentHarness({ tmpPrefix: "berth-stamp-", waitMs: 8000 });
const A = "a".repeat(32);
const B = "b".repeat(32);
const bridges: AgentBridge[] = [];
afterEach(() => {
  for (const b of bridges.splice(0)) b.stop();
});

/** The agent as the bridge's unit host (the supervisor's lease is not what this test is about). */
function host(agent: Agent): LeasedUnitHost {
  return Object.assign(Object.create(agent) as Agent, {
    renewLease() {},
    onUnfenced() {},
    onReset() {},
    close() {},
    connected: () => true,
  }) as unknown as LeasedUnitHost;
}

const runs = lineCount;

describe("Persistent= timers", () => {
  it("keeps the last trigger in the registry, and a machine the timer moves to catches up on a missed event", async () => {
    const store = new KvStore();
    const write = async (req: KvWriteRequest) => {
      const r = store.apply(decodeCommand(encodeCommand(commandFor(req, Date.now()))));
      if (r instanceof KvError) throw Object.assign(new Error(r.message), { code: "kv", data: r.toJSON() });
      return r;
    };
    const { agent: agentA, dir } = harness.makeAgent();
    const file = join(dir, "runs");
    const put = async (name: string, text: string, desired: string, machine: string) => {
      const u = canonicalUnit(name, text);
      await write({ method: "PUT", key: unitFileKey(u.hash), value: u.text });
      await write({ method: "PUT", key: unitKey(name), value: JSON.stringify({ hash: u.hash, desired }) });
      await write({ method: "PUT", key: scheduleKey(name), value: JSON.stringify({ machines: [machine] }) });
    };
    const service = `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo run >> ${file}'\n`;
    await put(
      "nightly.timer",
      "[Timer]\nOnActiveSec=0.1s\nOnCalendar=daily\nPersistent=yes\n",
      "launched",
      A,
    );
    await put("nightly.service", service, "loaded", A);
    const bridge = (machineId: string, agent: Agent) => {
      const b = new AgentBridge({
        machineId,
        store,
        units: host(agent),
        write,
        sync: async () => {},
        fenceMs: 3000,
        appliedIndex: () => store.index,
        logger: () => {},
      });
      bridges.push(b);
      b.start();
    };
    const before = Date.now();
    bridge(A, agentA);
    // It fired on A (OnActiveSec=): the bridge recorded when.
    const stamp = await harness.waitFor(
      "a stamp",
      () => store.peek(timerStampKey("nightly.timer"))?.value,
      8000,
    );
    const first = JSON.parse(stamp).lastTrigger as number;
    expect(first).toBeGreaterThanOrEqual(before);
    await harness.waitFor("one run on A", () => runs(file) === 1, 8000);

    // Machine A went away for two days (its last trigger says so); the timer moves to B, without OnActiveSec=.
    bridges.splice(0).forEach((b) => {
      b.stop();
    });
    await agentA.stop();
    harness.release(agentA);
    const twoDaysAgo = Date.now() - 2 * 86_400_000;
    await write({
      method: "PUT",
      key: timerStampKey("nightly.timer"),
      value: JSON.stringify({ lastTrigger: twoDaysAgo }),
    });
    await put("nightly.timer", "[Timer]\nOnCalendar=daily\nPersistent=yes\n", "launched", B);
    await put("nightly.service", service, "loaded", B);
    const { agent: agentB } = harness.makeAgent();
    bridge(B, agentB);
    // Daily events passed since the stamp: B fires at once and records the new trigger.
    await harness.waitFor("a catch-up run on B", () => runs(file) === 2, 8000);
    const again = await harness.waitFor("a stamp newer than two days ago", () => {
      const v = store.peek(timerStampKey("nightly.timer"))?.value;
      return v !== undefined && JSON.parse(v).lastTrigger > twoDaysAgo ? JSON.parse(v) : undefined;
    });
    expect(again.lastTrigger).toBeGreaterThanOrEqual(before);
    const b = await harness.waitState(agentB, "nightly.timer", "active", "waiting");
    expect(b.timer?.nextElapse).toBeGreaterThan(Date.now());
  });

  it("a stamp is a registry record: a malformed one is refused", () => {
    const put = (value: string) =>
      registryWriteProblem({ method: "PUT", key: timerStampKey("x.timer"), value });
    expect(put(JSON.stringify({ lastTrigger: 5 }))).toBeNull();
    expect(put(JSON.stringify({ lastTrigger: "soon" }))).toMatch(/"lastTrigger" must be a time/);
    expect(put("{")).toMatch(/not JSON/);
  });
});
