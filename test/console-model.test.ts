// The console's views as data (no terminal): rows of each view from a cluster snapshot, column fitting, scrolling;
// the Units table built from an index equal to its plain definition, and tables kept while their inputs are.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { MachineInfo, UnitInfo, UnitStateRow } from "../src/client/protocol.ts";
import {
  type ClusterSnapshot,
  containersTable,
  EMPTY_SNAPSHOT,
  filterRows,
  keysTable,
  machineDetailLines,
  machinesTable,
  memberDetailLines,
  membersTable,
  parentDir,
  type Row,
  tableFor,
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

/** The Units view as first written: every unit scans every state row (units x rows). The oracle for the index. */
function unitsTableByScanning(s: ClusterSnapshot): Row[] {
  const byId = new Map(s.machines.map((m) => [m.id, m]));
  const rows: Row[] = [];
  for (const u of [...s.units].sort((a, b) => a.name.localeCompare(b.name))) {
    const machineName = (id: string) => byId.get(id)?.name ?? id;
    const states = s.states
      .filter((r) => r.name === u.name && r.machine !== "")
      .sort((a, b) => machineName(a.machine).localeCompare(machineName(b.machine)));
    const current = u.global ? "global" : (u.current ?? "-");
    if (states.length === 0) {
      const sub = u.unplaceable ? `unplaceable: ${u.unplaceable}` : "-";
      rows.push({
        id: u.name,
        cells: [u.name, u.desired, current, "-", "-", sub],
        tone: u.unplaceable ? "warn" : undefined,
      });
      continue;
    }
    for (const r of states) {
      const m = byId.get(r.machine);
      const machine =
        r.machine === "" || r.machine === "-" ? "-" : `${r.machine.slice(0, 8)}...${m ? `/${m.name}` : ""}`;
      const active = r.active;
      rows.push({
        id: u.name,
        key: `${u.name} ${r.machine}`,
        machine: r.machine,
        cells: [u.name, u.desired, current, machine, active, r.note ? `${r.sub} (${r.note})` : r.sub],
        tone:
          active === "active"
            ? "good"
            : active === "failed"
              ? "bad"
              : active === "activating" || active === "deactivating"
                ? "warn"
                : undefined,
      });
    }
  }
  return rows;
}

describe("the Units table at scale", () => {
  const name = fc.constantFrom("a", "B", "web@1", "web@10", "web@2", "ä", "db", "x-y", "Z");
  const machineId = fc.constantFrom(M1, M2, "", "-", "cccccccc33333333", "unknown-machine");
  const snapshot = fc.record({
    machines: fc.subarray(machines),
    units: fc.array(
      fc.record({
        name: name.map((n) => `${n}.service`),
        desired: fc.constantFrom("inactive", "loaded", "launched" as const),
        current: fc.constantFrom("inactive", "loaded", "launched", null),
        global: fc.boolean(),
        unplaceable: fc.constantFrom(null, "no machine has disk=hdd"),
      }),
      { maxLength: 12 },
    ),
    states: fc.array(
      fc.record({
        name: name.map((n) => `${n}.service`),
        machine: machineId,
        active: fc.constantFrom("active", "failed", "activating", "inactive", "-"),
        sub: fc.constantFrom("running", "dead", "failed"),
        note: fc.constantFrom(undefined, "machine lost"),
      }),
      { maxLength: 30 },
    ),
  });

  it("indexed by unit and machine, it has exactly the rows of scanning every state row per unit", () => {
    fc.assert(
      fc.property(snapshot, (g) => {
        const s: ClusterSnapshot = {
          ...EMPTY_SNAPSHOT,
          machines: g.machines,
          units: g.units.map((u) => unitInfo(u.name, u as Partial<UnitInfo>)),
          states: g.states.map((r) => state(r.name, r.machine, r.active, r.sub, r.note)),
        };
        expect(unitsTable(s).rows).toEqual(unitsTableByScanning(s));
      }),
      { numRuns: 500 },
    );
  });

  it("filters as typed (each character searching the rows the filter before it matched) as a full search does", () => {
    const cell = fc.constantFrom("ab", "AbC", "b", "ca", "", "x y");
    fc.assert(
      fc.property(
        fc.array(fc.array(cell, { minLength: 2, maxLength: 2 }), { maxLength: 15 }),
        fc.array(fc.constantFrom("a", "b", "c", "B", "A", " ", "back"), { maxLength: 8 }),
        (cells, typed) => {
          const table = {
            columns: [{ title: "A" }, { title: "B" }],
            rows: cells.map((c, i) => ({ id: `${i}`, cells: c })),
          };
          let filter = "";
          for (const k of typed) {
            filter = k === "back" ? filter.slice(0, -1) : filter + k;
            const f = filter.toLowerCase();
            const expected = table.rows.filter((r) => r.cells.some((c) => c.toLowerCase().includes(f)));
            expect(filterRows(table, filter).rows).toEqual(expected);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("keeps a view's table (and its filtered rows) while the data it is built from stays the same", () => {
    const units = Array.from({ length: 2000 }, (_, i) => unitInfo(`u${i}.service`));
    const states = units.map((u, i) => state(u.name, i % 2 ? M1 : M2, "active", "running"));
    const s: ClusterSnapshot = { ...EMPTY_SNAPSHOT, machines, units, states, updatedAt: 1 };
    const t = tableFor("units", s, 0);
    expect(t.rows).toHaveLength(2000);
    // A new snapshot (health polled again, a later time) with the same unit lists: the same table, not a rebuild.
    expect(tableFor("units", { ...s, health: [], updatedAt: 2 }, 5000)).toBe(t);
    expect(filterRows(t, "u19")).toBe(filterRows(t, "u19"));
    // u19, u190-u199, u1900-u1999
    expect(filterRows(t, "U19").rows).toEqual(t.rows.filter((r) => /^u19/.test(r.id)));
    expect(filterRows(t, "U19").rows).toHaveLength(111);
    // A filter never matches across two cells ("running" then the unit name of the next row's…).
    expect(filterRows(t, "activerunning").rows).toEqual([]);
    // New states: a new table.
    expect(tableFor("units", { ...s, states: [...states] }, 0)).not.toBe(t);
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

  it("shrinks columns in order of importance: the Units table's SUB first, the unit name last", () => {
    const units = unitsTable({
      machines,
      units: [unitInfo("web-frontend@1.service")],
      states: [state("web-frontend@1.service", M1, "activating", "start-pre", "waiting for the mount")],
    });
    const at = (width: number) => columnWidths(units, width).join(" ");
    expect(units.columns.map((c) => c.title).join(" ")).toBe("UNIT DESIRED STATE MACHINE ACTIVE SUB");
    // 80 columns: only SUB gives; 60: SUB down to 3, then DESIRED, STATE, MACHINE; 40: the name at last.
    expect(at(80)).toBe("22 8 8 14 10 8");
    expect(at(60)).toBe("22 3 3 9 10 3");
    expect(at(40)).toBe("15 3 3 3 3 3");
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

describe("console containers and detail panes", () => {
  const container = (unit: string, id: string | null, state: string | null) => ({
    unit,
    containerId: id,
    image: "local/busybox",
    name: id ? `berth-${unit}` : null,
    state,
    status: state === "running" ? "Up 5 seconds" : null,
    created: null,
    active: state === "running" ? "active" : "activating",
    sub: state === "running" ? "running" : "start",
  });

  it("containers: a row per container, sorted by machine name, a machine that did not answer says why", () => {
    const t = containersTable({
      containers: [
        { machine: M2, machineName: "n2", publicIp: null, containers: [], error: "connection refused" },
        {
          machine: M1,
          machineName: "n1",
          publicIp: null,
          containers: [
            container("web.service", "0123456789ab", "running"),
            container("db.service", null, null),
          ],
        },
      ],
    });
    expect(t.columns.map((c) => c.title)).toEqual(["MACHINE", "CONTAINER", "IMAGE", "STATE", "UNIT", "NAME"]);
    expect(t.rows.map((r) => r.cells)).toEqual([
      ["aaaaaaaa.../n1", "0123456789ab", "local/busybox", "Up 5 seconds", "web.service", "berth-web.service"],
      ["aaaaaaaa.../n1", "-", "local/busybox", "activating/start", "db.service", "-"],
      ["bbbbbbbb.../n2", "-", "-", "unreachable: connection refused", "-", "-"],
    ]);
    expect(t.rows.map((r) => [r.id, r.machine, r.tone])).toEqual([
      ["web.service", M1, "good"],
      ["db.service", M1, "warn"],
      [M2, M2, "bad"],
    ]);
    expect(containersTable({ containers: null }).rows).toEqual([]);
  });

  it("a machine's detail: metadata, health, the units on it; a member's: Raft term, index and lag", () => {
    const s: ClusterSnapshot = {
      ...EMPTY_SNAPSHOT,
      machines,
      states: [state("b.service", M1, "active", "running"), state("a.service", M1, "failed", "failed")],
      members: [
        {
          name: "n1",
          id: "1",
          peerAddr: "p1",
          clientAddr: "c1",
          httpAddr: null,
          role: "voter",
          isLeader: true,
        },
        {
          name: "n2",
          id: "2",
          peerAddr: "p2",
          clientAddr: null,
          httpAddr: null,
          role: "voter",
          isLeader: false,
        },
      ],
      health: [
        { name: "n1", clientAddr: "c1", healthy: true, detail: "ok", raftIndex: 120, raftTerm: 3 },
        { name: "n2", clientAddr: null, healthy: true, detail: "ok", raftIndex: 100, raftTerm: 3 },
      ],
    };
    const m = machineDetailLines(s, M1);
    expect(m).toContain("     Name: n1");
    expect(m).toContain("   Health: healthy: ok");
    expect(m.slice(m.indexOf(" Metadata:") + 1, m.indexOf(" Metadata:") + 3)).toEqual([
      "   disk=ssd",
      "   zone=b",
    ]);
    expect(m.slice(m.indexOf("Units (2):") + 1)).toEqual([
      "   a.service  failed (failed)",
      "   b.service  active (running)",
    ]);
    expect(machineDetailLines(s, "cccccccc")).toEqual(["machine cccccccc... is gone"]);
    expect(memberDetailLines(s, "n2")).toEqual(
      expect.arrayContaining([
        "     Role: follower",
        "     Term: 3",
        "    Index: 100",
        "      Lag: 20 entries behind n1",
      ]),
    );
    expect(memberDetailLines(s, "n1")).toContain("      Lag: 0 (the leader)");
  });
});
