// OnCalendar= against the real `systemd-analyze calendar` of this machine: for every expression of the corpus
// (test/fixtures/calendar-specs.txt) Berth's next five elapse times from a fixed base equal systemd's, and what
// systemd refuses Berth refuses. Both sides run in UTC as the machine's zone (the corpus names other zones).
process.env.TZ = "UTC";

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { nextElapse, parseCalendarSpec } from "../src/agent/calendar.ts";

const corpus = readFileSync(join(import.meta.dirname, "fixtures", "calendar-specs.txt"), "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "" && !l.startsWith("#"));
const BASES = ["2026-01-15 10:20:30", "2026-03-28 23:59:59", "2026-10-24 23:59:59"];
const ITERATIONS = 5;

/** systemd's answer: the elapse times as "YYYY-MM-DD HH:MM:SS" (UTC), or "invalid". */
function systemdSays(expr: string, base: string): string[] | "invalid" {
  const r = spawnSync(
    "systemd-analyze",
    ["calendar", `--iterations=${ITERATIONS}`, `--base-time=${base} UTC`, "--", expr],
    { encoding: "utf8", env: { ...process.env, TZ: "UTC", SYSTEMD_COLORS: "0" } },
  );
  if (r.error) throw new Error(`systemd-analyze is needed for this test: ${r.error.message}`);
  if (r.status !== 0) return "invalid";
  const out: string[] = [];
  for (const l of r.stdout.split("\n")) {
    const m = /^\s*(?:Next elapse|Iter\. #\d+): (?:\w+ )?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|never)/.exec(l);
    if (m && m[1] !== "never") out.push(m[1]!);
  }
  return out;
}

function berthSays(expr: string, base: string): string[] | "invalid" {
  let spec: ReturnType<typeof parseCalendarSpec>;
  try {
    spec = parseCalendarSpec(expr);
  } catch {
    return "invalid";
  }
  const out: string[] = [];
  let t: number | null = Date.parse(`${base.replace(" ", "T")}Z`);
  for (let i = 0; i < ITERATIONS; i++) {
    t = nextElapse(spec, t!);
    if (t === null) break;
    out.push(new Date(t).toISOString().slice(0, 19).replace("T", " "));
  }
  return out;
}

describe("OnCalendar= next elapse, against systemd-analyze calendar", () => {
  it("has a corpus of at least 50 expressions", () => {
    expect(corpus.length).toBeGreaterThanOrEqual(50);
  });
  for (const base of BASES) {
    it(`matches systemd for every expression from ${base}`, () => {
      const diffs: string[] = [];
      for (const expr of corpus) {
        const want = systemdSays(expr, base);
        const got = berthSays(expr, base);
        if (JSON.stringify(want) !== JSON.stringify(got))
          diffs.push(`${expr}: systemd ${JSON.stringify(want)}, Berth ${JSON.stringify(got)}`);
      }
      expect(diffs).toEqual([]);
    });
  }
});
