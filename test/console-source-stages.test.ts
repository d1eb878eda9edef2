// The console's first frame with data does not wait for the units: a poll shows the machines and members as soon as
// they are answered, then the units, then their states (10,000s of rows each, answered last by a big cluster).
import { describe, expect, it } from "vitest";
import type { BerthClient } from "../src/client/client.ts";
import { ConsoleSource, type SourceState } from "../src/tui/source.ts";

const MACHINES = [{ id: "m1", name: "n1", ip: "127.0.0.1", metadata: {} }];
const UNITS = [{ name: "a.service", hash: "h", desired: "launched", machines: ["m1"] }];
const STATES = [{ name: "a.service", machine: "m1", active: "active" }];

describe("ConsoleSource", () => {
  it("shows the machines before the units arrive, and the units before their states", async () => {
    const release: Record<string, () => void> = {};
    const later = (method: string, value: unknown) =>
      new Promise((resolve) => {
        release[method] = () => resolve(value);
      });
    const client = {
      endpoint: "test",
      call: (method: string) => {
        if (method === "machines.list") return Promise.resolve(MACHINES);
        if (method === "units.list") return later(method, UNITS);
        if (method === "units.states") return later(method, STATES);
        if (method === "kv.get")
          return Promise.resolve({ event: { node: { key: "/", dir: true, nodes: [] } } });
        return Promise.resolve([]);
      },
      subscribe: () => ({ close() {}, async *[Symbol.asyncIterator]() {} }),
      close() {},
    } as unknown as BerthClient;
    const seen: SourceState[] = [];
    const source = new ConsoleSource({ connect: async () => client, refreshMs: 60_000 });
    source.onChange((s) => seen.push(s));
    const until = async (what: string, ok: () => boolean) => {
      for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
      if (!ok()) throw new Error(`${what}: not seen`);
    };
    try {
      source.start();
      await until("the machines", () => source.current.snapshot.machines.length === 1);
      expect(source.current.snapshot.units).toEqual([]);
      release["units.list"]!();
      await until("the units", () => source.current.snapshot.units.length === 1);
      expect(source.current.snapshot.states).toEqual([]);
      release["units.states"]!();
      await until("the states", () => source.current.snapshot.states.length === 1);
      expect(seen.some((s) => s.snapshot.machines.length === 1 && s.snapshot.units.length === 0)).toBe(true);
    } finally {
      source.stop();
    }
  });
});
