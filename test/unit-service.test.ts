// UnitService's desired-state changes on a real KvStore (writes applied at once, as a one-member cluster would):
// a stop takes along the launched units of the same machine bound to the stopped one (Requires=/BindsTo=/PartOf=,
// transitively), and a request resent after a timeout, racing the original, is not refused.
import { describe, expect, it } from "vitest";
import type { KvWriteRequest } from "../src/client/protocol.ts";
import { commandFor } from "../src/kv/requests.ts";
import { KvStore } from "../src/kv/store.ts";
import { KvError } from "../src/kv/types.ts";
import type { KvService } from "../src/node/kv-service.ts";
import { canonicalUnit } from "../src/sched/catalog.ts";
import { scheduleKey, unitFileKey, unitKey } from "../src/sched/registry.ts";
import { UnitService } from "../src/sched/unit-service.ts";
import { kvFailure } from "../src/service/errors.ts";

const M1 = "11111111111111111111111111111111";
const M2 = "22222222222222222222222222222222";

function service(): {
  units: UnitService;
  store: KvStore;
  beforeWrite: (f: (req: KvWriteRequest) => void) => void;
} {
  const store = new KvStore();
  let hook: ((req: KvWriteRequest) => void) | null = null;
  const apply = (req: KvWriteRequest) => {
    const r = store.apply(commandFor(req, Date.now()));
    if (r instanceof KvError) throw kvFailure(r);
    return r;
  };
  const kv = {
    sync: async () => {},
    write: async (req: KvWriteRequest) => {
      const h = hook;
      hook = null;
      h?.(req);
      return apply(req);
    },
  } as unknown as KvService;
  return {
    units: new UnitService(store, kv),
    store,
    beforeWrite: (f) => {
      hook = (req) => f(req);
    },
  };
}

const svc = (unit = "") => `[Unit]\n${unit}[Service]\nExecStart=/bin/sleep 100\n`;

describe("UnitService.setDesired", () => {
  it("a stop takes along what Requires=/BindsTo=/PartOf= the unit on its machine, transitively; not Wants= or other machines", async () => {
    const { units, store } = service();
    const files: Record<string, [string, string]> = {
      "x.service": [svc(), M1],
      "req.service": [svc("Requires=x.service\n"), M1],
      "bind.service": [svc("BindsTo=x.service\n"), M1],
      "part.service": [svc("PartOf=x.service\n"), M1],
      "sub.service": [svc("PartOf=req.service\n"), M1],
      "wants.service": [svc("Wants=x.service\n"), M1],
      "far.service": [svc("Requires=x.service\n"), M2],
    };
    await units.submit(
      Object.entries(files).map(([name, [text]]) => ({ name, text })),
      false,
    );
    await units.setDesired(Object.keys(files), "launched");
    for (const [name, [, machine]] of Object.entries(files))
      store.apply(
        commandFor(
          { method: "PUT", key: scheduleKey(name), value: JSON.stringify({ machines: [machine] }) },
          0,
        ),
      );

    const changed = await units.setDesired(["x.service"], "loaded");
    expect(changed.map((u) => u.name).sort()).toEqual(
      ["bind.service", "part.service", "req.service", "sub.service", "x.service"].sort(),
    );
    const desired = new Map((await units.list()).map((u) => [u.name, u.desired]));
    expect(Object.fromEntries(desired)).toEqual({
      "x.service": "loaded",
      "req.service": "loaded",
      "bind.service": "loaded",
      "part.service": "loaded",
      "sub.service": "loaded",
      "wants.service": "launched",
      "far.service": "launched",
    });
    // Destroying a unit stops what is bound to it in the same way.
    await units.setDesired(["x.service", "req.service"], "launched");
    expect(await units.destroy(["x.service"])).toEqual({
      destroyed: ["x.service"],
      stopped: ["req.service"],
    });
  });

  it("a resent request that loses the compare-and-swap to the original (same state) succeeds", async () => {
    const { units, store, beforeWrite } = service();
    await units.submit([{ name: "a.service", text: svc() }], false);
    // The original request's write lands between the resent one's read and its write.
    beforeWrite((req) => {
      const rec = JSON.parse(req.value ?? "{}");
      store.apply(commandFor({ method: "PUT", key: req.key, value: JSON.stringify(rec) }, 0));
    });
    const [a] = await units.setDesired(["a.service"], "launched");
    expect(a?.desired).toBe("launched");
  });
});

describe("UnitService.submit", () => {
  it("a copy of a new unit submitted concurrently (N machines, one cloud-config) leaves the state the first set", async () => {
    const { units, store, beforeWrite } = service();
    const text = svc();
    const { hash } = canonicalUnit("a.service", text);
    // Between this submit's read and its writes, another machine submits the same unit and starts it.
    beforeWrite(() => {
      store.apply(commandFor({ method: "PUT", key: unitFileKey(hash), value: text }, Date.now()));
      store.apply(
        commandFor(
          { method: "PUT", key: unitKey("a.service"), value: JSON.stringify({ hash, desired: "launched" }) },
          Date.now(),
        ),
      );
    });
    const [info] = await units.submit([{ name: "a.service", text }], false);
    expect(info!.desired).toBe("launched");
  });
});
