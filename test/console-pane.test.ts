// The console's detail pane as data: what it draws (cut sideways or wrapped, matches marked), its status line, and
// the journal's scrollback: the source keeps the last JOURNAL_KEEP lines of a followed journal and counts the ones
// it dropped (a paused pane stays on its lines while older ones go).
import { describe, expect, it } from "vitest";
import type { BerthClient } from "../src/client/client.ts";
import type { JournalLine } from "../src/client/protocol.ts";
import { initialPane, type PaneContent, paneRows, paneStatus, paneTop } from "../src/tui/pane.ts";
import { ConsoleSource, JOURNAL_KEEP } from "../src/tui/source.ts";

const content: PaneContent = { lines: ["0123456789abcdef", "short", "another long line"], offset: 0 };

describe("console detail pane", () => {
  it("cuts lines at the width, scrolled sideways, or wraps them; marks the lines matching the search", () => {
    const pane = { ...initialPane("key"), left: 4, search: "long" };
    expect(paneRows(pane, content, 8, 10)).toEqual([
      { text: "456789abcdef", match: false, current: false },
      { text: "t", match: false, current: false },
      { text: "her long line", match: true, current: false },
    ]);
    const wrapped = paneRows({ ...initialPane("key"), wrap: true, search: "long", match: 2 }, content, 8, 5);
    expect(wrapped.map((r) => r.text)).toEqual(["01234567", "89abcdef", "short", "another ", "long lin"]);
    expect(wrapped.at(-1)).toEqual({ text: "long lin", match: true, current: true });
  });

  it("says where it is, and whether the journal is followed or paused", () => {
    const long: PaneContent = { lines: Array.from({ length: 50 }, (_, i) => `l${i}`), offset: 200 };
    const j = { kind: "journal" as const, id: "a.service" };
    expect(paneStatus(j, initialPane("journal"), long, 10, null)).toBe(
      "-- following a.service, lines 241-250 of 250, f pauses, Esc: back --",
    );
    expect(paneStatus(j, { ...initialPane("journal"), top: 0, wrap: true }, long, 10, null)).toBe(
      "-- paused a.service, lines 201-210 of 250, wrapped, f or G follows, Esc: back --",
    );
    expect(paneStatus(j, initialPane("journal"), long, 10, "the journal stream ended")).toBe(
      "-- the journal stream ended, lines 241-250 of 250, Esc: back --",
    );
    expect(paneStatus({ kind: "key", id: "/k" }, { ...initialPane("key"), left: 8 }, content, 10, null)).toBe(
      "-- from column 9, Esc: back --",
    );
    // A paused position older than the scrollback: the oldest line kept.
    expect(paneTop({ ...initialPane("journal"), top: 3 }, long, 10)).toBe(200);
  });

  it("keeps the last 10,000 lines of a followed journal and counts the dropped ones", async () => {
    const total = JOURNAL_KEEP + 250;
    const line = (i: number): JournalLine => ({
      at: i,
      unit: "a.service",
      stream: "stdout",
      text: `line ${i}`,
    });
    const forever = () => ({
      close() {},
      async *[Symbol.asyncIterator]() {
        await new Promise(() => {});
      },
    });
    const client = {
      endpoint: "fake",
      call: () => new Promise(() => {}),
      close() {},
      subscribe(method: string) {
        if (method !== "units.journal.follow") return forever();
        return {
          close() {},
          async *[Symbol.asyncIterator]() {
            for (let i = 0; i < total; i++) yield line(i);
          },
        };
      },
    } as unknown as BerthClient;
    const source = new ConsoleSource({ connect: async () => client, refreshMs: 60_000 });
    try {
      source.follow("a.service");
      for (let i = 0; i < 100 && !source.current.journal?.ended; i++)
        await new Promise((r) => setTimeout(r, 10));
      const j = source.current.journal!;
      expect(j.ended).toBe("the journal stream ended");
      expect(j.lines).toHaveLength(JOURNAL_KEEP);
      expect(j.dropped).toBe(250);
      expect(j.lines[0]!.text).toBe("line 250");
      expect(j.lines.at(-1)!.text).toBe(`line ${total - 1}`);
    } finally {
      source.stop();
    }
  });
});
