// The machine's side of the handoff (src/sched/handoff.ts): the agent bridge writes its acted index only once the
// supervisor no longer holds a unit the registry took away from it. The dangerous case is the one where nothing
// in the registry shows the unit here yet: the agent started it from the old schedule, its state not mirrored
// and its report not written. The supervisor's own answer (asked after the reconcile) is what counts.
import { afterEach, describe, expect, it } from "vitest";
import type { UnitSpec, UnitState } from "../src/agent/agent.ts";
import { AgentBridge } from "../src/agent/agent-bridge.ts";
import type { LeasedUnitHost } from "../src/agent/unit-host.ts";
import type { KvWriteRequest } from "../src/client/protocol.ts";
import { decodeCommand, encodeCommand } from "../src/kv/commands.ts";
import { commandFor } from "../src/kv/requests.ts";
import { KvStore } from "../src/kv/store.ts";
import { KvError } from "../src/kv/types.ts";
import { canonicalUnit } from "../src/sched/catalog.ts";
import { machineActedKey, machineInfoKey, scheduleKey, unitFileKey, unitKey } from "../src/sched/registry.ts";
import { waitFor } from "./support/processes.ts";

const A = "a".repeat(32);

/** A supervisor that holds whatever the test says, and whose states the node has not heard of yet. */
class QuietHost implements LeasedUnitHost {
  readonly held = new Set<string>();
  reconciled: UnitSpec[][] = [];
  private forgetCbs: ((name: string) => void)[] = [];
  reconcile(specs: UnitSpec[]): void {
    this.reconciled.push(specs);
  }
  state(): UnitState | null {
    return null;
  }
  states(): UnitState[] {
    return [];
  }
  async status(name: string): Promise<UnitState | null> {
    return this.held.has(name) ? ({ name, active: "activating" } as UnitState) : null;
  }
  forget(name: string): void {
    this.held.delete(name);
    for (const cb of this.forgetCbs) cb(name);
  }
  onStateChange(): void {}
  onForget(cb: (name: string) => void): void {
    this.forgetCbs.push(cb);
  }
  async journal() {
    return [];
  }
  followJournal() {
    return () => {};
  }
  renewLease(): void {}
  onUnfenced(): void {}
  onReset(): void {}
  close(): void {}
  connected(): boolean {
    return true;
  }
}

let bridge: AgentBridge | null = null;
afterEach(() => {
  bridge?.stop();
  bridge = null;
});

describe("agent bridge handoff", () => {
  it("writes acted only once the supervisor no longer holds the unit, though nothing reported it", async () => {
    const store = new KvStore();
    const write = async (req: KvWriteRequest) => {
      const r = store.apply(decodeCommand(encodeCommand(commandFor(req, Date.now()))));
      if (r instanceof KvError) throw Object.assign(new Error(r.message), { code: "kv", data: r.toJSON() });
      return r;
    };
    await write({
      method: "PUT",
      key: machineInfoKey(A),
      value: JSON.stringify({ id: A, name: "a", publicIp: null, metadata: {} }),
    });
    const u = canonicalUnit("probe.service", "[Service]\nExecStart=/bin/sleep 100\n");
    await write({ method: "PUT", key: unitFileKey(u.hash), value: u.text });
    await write({
      method: "PUT",
      key: unitKey("probe.service"),
      value: JSON.stringify({ hash: u.hash, desired: "launched" }),
    });
    // The engine took the unit off this machine and waits for it.
    await write({
      method: "PUT",
      key: scheduleKey("probe.service"),
      value: JSON.stringify({ machines: [], reason: "waiting for a to stop it", leaving: [A] }),
    });
    const unscheduledAt = store.peek(scheduleKey("probe.service"))!.modifiedIndex;

    const host = new QuietHost();
    host.held.add("probe.service"); // started from the old schedule a moment ago; no state, no report yet
    bridge = new AgentBridge({
      machineId: A,
      store,
      units: host,
      write,
      sync: async () => {},
      fenceMs: 3000,
      appliedIndex: () => store.index,
      logger: () => {},
    });
    bridge.start();
    await waitFor("a reconcile without the unit", () => host.reconciled.length > 0);
    expect(host.reconciled.at(-1)).toEqual([]);
    await new Promise((r) => setTimeout(r, 300));
    expect(store.peek(machineActedKey(A))).toBeNull();

    host.forget("probe.service");
    const acted = await waitFor("acted written", () => store.peek(machineActedKey(A))?.value);
    expect(Number(acted)).toBeGreaterThanOrEqual(unscheduledAt);
  });
});
