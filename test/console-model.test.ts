// The console's views as data (no terminal): rows of each view from a cluster snapshot, column fitting, scrolling.
import { describe, expect, it } from "vitest";
import type { MachineInfo, UnitStateRow } from "../src/client/protocol.ts";
import {
  EMPTY_SNAPSHOT,
  keysTable,
  machinesTable,
  membersTable,
  parentDir,
  unitsTable,
} from "../src/tui/model.ts";
import { columnWidths, fitCell, windowStart } from "../src/tui/table.tsx";
import { unitInfo } from "./support/fixtures.ts";

const M1 = "aaaaaaaa11111111aaaaaaaa11111111";
const M2 = "bbbbbbbb22222222bbbbbbbb22222222";
const machines: MachineInfo[] = [
  { id: M2, name: "n2", publicIp: "10.0.0.2", metadata: {}, state: "lost" },
  { id: M1, name: "n1", publicIp: "10.0.0.1", metadata: { zone: "b", disk: "ssd" }, state: "up" },
];
const state = (name: string, machine: string, active: string, sub: string, note?: string): UnitStateRow => ({
  name,
  machine,
  hash: "0".repeat(40),
  load: "loaded",
  active,
  sub,
  mainPid: null,
  since: 0,
  note,
});

describe("console views", () => {
  it("machines: sorted by name, short id, metadata sorted, lost ones flagged", () => {
    const t = machinesTable({ ...EMPTY_SNAPSHOT, machines });
    expect(t.columns.map((c) => c.title)).toEqual(["MACHINE", "NAME", "IP", "STATE", "METADATA"]);
    expect(t.rows.map((r) => r.cells)).toEqual([
      ["aaaaaaaa...", "n1", "10.0.0.1", "up", "disk=ssd,zone=b"],
      ["bbbbbbbb...", "n2", "10.0.0.2", "lost", "-"],
    ]);
    expect(t.rows.map((r) => r.tone)).toEqual(["good", "bad"]);
  });

  it("units: one row per machine a unit is loaded on, one for a unit running nowhere (with the reason)", () => {
    const t = unitsTable({
      ...EMPTY_SNAPSHOT,
      machines,
      units: [
        unitInfo("web@2.service", { desired: "inactive", current: "inactive" }),
        unitInfo("web@1.service"),
        unitInfo("db.service", { current: "inactive", unplaceable: "no machine has disk=hdd" }),
        unitInfo("logger.service", { global: true, current: null }),
      ],
      states: [
        state("web@1.service", M1, "active", "running"),
        state("logger.service", M2, "failed", "failed", "machine lost"),
        state("logger.service", M1, "active", "running"),
      ],
    });
    expect(t.rows.map((r) => r.cells)).toEqual([
      ["db.service", "launched", "inactive", "-", "-", "unplaceable: no machine has disk=hdd"],
      ["logger.service", "launched", "global", "aaaaaaaa.../n1", "active", "running"],
      ["logger.service", "launched", "global", "bbbbbbbb.../n2", "failed", "failed (machine lost)"],
      ["web@1.service", "launched", "launched", "aaaaaaaa.../n1", "active", "running"],
      ["web@2.service", "inactive", "inactive", "-", "-", "-"],
    ]);
    expect(t.rows.map((r) => r.id)).toEqual([
      "db.service",
      "logger.service",
      "logger.service",
      "web@1.service",
      "web@2.service",
    ]);
    expect(t.rows.map((r) => r.tone)).toEqual(["warn", "good", "bad", "good", undefined]);
  });

  it("keys: directories first, base names, one-line values, remaining TTL", () => {
    const now = Date.parse("2026-11-26T10:00:00Z");
    const t = keysTable(
      {
        ...EMPTY_SNAPSHOT,
        keys: [
          { key: "/app/z", value: "multi\nline", modifiedIndex: 9, createdIndex: 9 },
          { key: "/app/conf", dir: true, modifiedIndex: 4, createdIndex: 4 },
          {
            key: "/app/a",
            value: "v",
            expiration: "2026-11-26T10:00:14.200Z",
            ttl: 15,
            modifiedIndex: 7,
            createdIndex: 7,
          },
        ],
      },
      now,
    );
    expect(t.rows.map((r) => [r.id, r.dir, ...r.cells])).toEqual([
      ["/app/conf", true, "conf/", "(directory)", "-", "4"],
      ["/app/a", false, "a", "v", "15s", "7"],
      ["/app/z", false, "z", "multi line", "-", "9"],
    ]);
  });

  it("members: the leader and each member's health, a wrong clock as a warning", () => {
    const t = membersTable({
      ...EMPTY_SNAPSHOT,
      members: [
        {
          name: "n2",
          id: "2",
          peerAddr: "p2",
          clientAddr: "c2",
          httpAddr: null,
          role: "voter",
          isLeader: true,
        },
        {
          name: "n1",
          id: "1",
          peerAddr: "p1",
          clientAddr: null,
          httpAddr: null,
          role: "learner",
          isLeader: false,
        },
      ],
      health: [
        { name: "n1", clientAddr: null, healthy: false, detail: "unreachable" },
        { name: "n2", clientAddr: "c2", healthy: true, detail: "leader is n2", clockSkewMs: 86_400_000 },
      ],
    });
    expect(t.rows.map((r) => r.cells)).toEqual([
      ["n1", "learner", "p1", "-", "unhealthy: unreachable"],
      ["n2", "leader", "p2", "c2", "healthy; clock 86400.0 s ahead of the cluster's"],
    ]);
    expect(t.rows.map((r) => r.tone)).toEqual(["bad", "warn"]);
  });

  it("parent directories", () => {
    expect(["/", "/a", "/a/b", "/a/b/"].map(parentDir)).toEqual(["/", "/", "/a", "/a"]);
  });
});

describe("table layout", () => {
  const data = {
    columns: [{ title: "NAME" }, { title: "VALUE", flex: true }, { title: "TTL" }],
    rows: [{ id: "x", cells: ["short", "a value that is rather long for a narrow terminal", "10s"] }],
  };

  it("gives the flex column what the others leave, and shrinks the widest column when even that is too much", () => {
    expect(columnWidths(data, 80)).toEqual([5, 80 - 5 - 3 - 4, 3]);
    const narrow = columnWidths(data, 20);
    expect(narrow.reduce((a, w) => a + w, 0) + 4).toBeLessThanOrEqual(20);
    expect(narrow.every((w) => w >= 3)).toBe(true);
  });

  it("cuts cells with an ellipsis and pads the rest", () => {
    expect(fitCell("abcdef", 4)).toBe("abc…");
    expect(fitCell("ab", 4)).toBe("ab  ");
  });

  it("scrolls the window only as far as the selection needs", () => {
    expect(windowStart(0, 10, 0, 5)).toBe(0);
    expect(windowStart(12, 10, 0, 50)).toBe(3);
    expect(windowStart(5, 10, 3, 50)).toBe(3);
    expect(windowStart(2, 10, 3, 50)).toBe(2);
    expect(windowStart(49, 10, 0, 50)).toBe(40);
  });
});
