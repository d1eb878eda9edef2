// Berth's table of systemd's sections, keys and specifiers (src/unit/systemd-keys.ts, generated) against the real
// `systemd-analyze verify` of this machine: over the unit corpus and over generated files that use every key and
// every specifier letter, Berth refuses as unknown exactly what systemd reports as unknown (at the same line), and
// accepts — with a warning where Berth ignores the key — everything systemd knows. Needs systemd-analyze (PID 1
// need not be systemd).
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkUnit } from "../src/agent/unit-check.ts";
import { SYSTEMD_SECTION_KEYS, SYSTEMD_VERSION } from "../src/unit/systemd-keys.ts";
import { UnitFileError } from "../src/unit/unit-file.ts";
import { BERTH_KEYS } from "../src/unit/unit-keys.ts";
import { BAD, BERTH_ONLY, base, corpus } from "./support/unit-corpus.ts";

/** One message of systemd-analyze about a file: its line (0 when about the whole unit) and text. */
interface Said {
  line: number;
  text: string;
}

/** Runs systemd-analyze verify once over all files; its messages per file name. */
function systemdSays(paths: string[]): Map<string, Said[]> {
  const r = spawnSync("systemd-analyze", ["verify", "--man=no", "--recursive-errors=no", ...paths], {
    encoding: "utf8",
  });
  if (r.error) throw new Error(`systemd-analyze is needed for this test: ${r.error.message}`);
  const out = new Map<string, Said[]>();
  let last: Said | undefined;
  for (const l of `${r.stdout}${r.stderr}`.split("\n")) {
    const m =
      /^\/\S*\/([^/\s:]+):(?:(\d+):)? (.*)$/.exec(l) ??
      /^([^/\s:]+\.[a-z]+): (.*)$/.exec(l) ??
      /^Unit ([^/\s:]+\.[a-z]+) (.*)$/.exec(l);
    if (m === null) {
      // A message whose value held a line break goes on on the next line.
      if (last !== undefined) last.text += `\n${l}`;
      continue;
    }
    const [name, line, text] = m.length === 4 ? [m[1]!, m[2], m[3]!] : [m[1]!, undefined, m[2]!];
    last = { line: line === undefined ? 0 : Number(line), text };
    out.set(name, [...(out.get(name) ?? []), last]);
  }
  return out;
}

const UNKNOWN = /Unknown section|Unknown key|Invalid slot/;

type Verdict =
  | { ok: true; warnings: { line: number; message: string }[] }
  | { ok: false; line: number; reason: string };

function berthSays(path: string, text: string): Verdict {
  try {
    return { ok: true, warnings: checkUnit(base(path), text, { hostname: "h", machineId: "m" }).warnings };
  } catch (e) {
    if (e instanceof UnitFileError) return { ok: false, line: e.line, reason: e.reason };
    throw e;
  }
}

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "berth-crosscheck-"));
  const v = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" });
  expect(v.stdout, "the table was generated from this systemd version").toContain(
    `systemd ${SYSTEMD_VERSION} `,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("Berth and systemd-analyze agree on what is unknown", () => {
  it("the corpus (bad, good, fleet): same unknown sections, keys and specifiers, at the same lines", () => {
    const paths = [...corpus("bad"), ...corpus("good"), ...corpus("fleet")].map((p) => {
      // Each file under its own name in one directory (systemd-analyze verify reads a unit's siblings too).
      const copy = join(dir, base(p));
      copyFileSync(p, copy);
      return copy;
    });
    const systemd = systemdSays(paths);
    for (const p of paths) {
      const name = base(p);
      const said = systemd.get(name) ?? [];
      const unknown = said.filter((s) => UNKNOWN.test(s.text));
      const berth = berthSays(p, spawnSync("cat", [p], { encoding: "utf8" }).stdout);
      if (unknown.length > 0) {
        // systemd says something is unknown: Berth refuses the file, at one of those lines, as unknown.
        expect(berth.ok, `${name}: systemd says ${JSON.stringify(unknown)}`).toBe(false);
        if (!berth.ok) {
          expect(
            unknown.map((s) => s.line),
            name,
          ).toContain(berth.line);
          expect(berth.reason, name).toMatch(/^unknown (section|key|specifier)|^section .* does not belong/);
        }
        continue;
      }
      if (!berth.ok) {
        // Berth refuses for another reason: systemd refuses or complains too, unless listed as Berth's own rule.
        expect(berth.reason, name).not.toMatch(
          /^unknown (section|key|specifier)|^section .* does not belong/,
        );
        expect(BAD[name], name).toEqual(berth.line > 0 ? [berth.line, berth.reason] : [0, berth.reason]);
        if (!BERTH_ONLY.has(name))
          expect(said.length, `${name}: systemd accepts it silently`).toBeGreaterThan(0);
      } else {
        expect(BAD[name], `${name} is accepted`).toBeUndefined();
      }
    }
  });

  it("the committed table is systemd's own list of sections and keys (systemd --dump-configuration-items)", () => {
    const bin = ["/usr/lib/systemd/systemd", "/lib/systemd/systemd"].find(
      (b) => spawnSync(b, ["--version"]).status === 0,
    );
    expect(bin, "systemd's binary").toBeDefined();
    const dump = spawnSync(bin!, ["--dump-configuration-items"], { encoding: "utf8" }).stdout;
    const sections: Record<string, string[]> = {};
    let current: string[] = [];
    for (const line of dump.split("\n")) {
      const header = /^\[(.+)\]$/.exec(line);
      if (header) current = sections[header[1]!] ??= [];
      else if (line.includes("=")) {
        const key = line.slice(0, line.indexOf("="));
        if (!current.includes(key)) current.push(key);
      }
    }
    expect(sections).toEqual(SYSTEMD_SECTION_KEYS);
  });

  // For a unit type: a file setting every key systemd lists for its sections to the empty value (a reset, which
  // every key accepts), plus what makes it loadable.
  const everyKey = (sections: string[], extra: Record<string, string>): string =>
    sections
      .map((s) => [`[${s}]`, ...SYSTEMD_SECTION_KEYS[s]!.map((k) => `${k}=`), extra[s] ?? ""].join("\n"))
      .join("\n");

  it.each([
    ["all.service", ["Unit", "Service", "Install"], { Service: "ExecStart=/bin/true" }],
    ["all.socket", ["Unit", "Socket", "Install"], { Socket: "ListenStream=127.0.0.1:1" }],
    ["all.timer", ["Unit", "Timer", "Install"], { Timer: "OnCalendar=daily" }],
    ["all.path", ["Unit", "Path", "Install"], { Path: "PathExists=/tmp" }],
  ] as const)(
    "every key systemd %s knows is accepted; Berth warns for the ones it ignores",
    (name, sections, extra) => {
      const path = join(dir, name);
      const text = everyKey([...sections], extra);
      writeFileSync(path, text);
      const said = systemdSays([path]).get(name) ?? [];
      expect(said.filter((s) => UNKNOWN.test(s.text))).toEqual([]);
      const berth = berthSays(path, text);
      expect(berth).toMatchObject({ ok: true });
      if (berth.ok && name === "all.service") {
        const warned = berth.warnings.map((w) => w.message.replace(/=.*/, "")).sort();
        const ignored = ["Unit", "Service", "Install"].flatMap((s) =>
          SYSTEMD_SECTION_KEYS[s]!.filter((k) => !BERTH_KEYS[s]!.includes(k)),
        );
        expect(warned).toEqual(ignored.sort());
      }
    },
  );

  it("every specifier letter: Berth refuses exactly those systemd cannot resolve (Invalid slot)", () => {
    const letters = [..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"];
    const paths = letters.map((c) => {
      const path = join(dir, `spec-${c.charCodeAt(0)}.service`);
      writeFileSync(path, `[Unit]\nDescription=%${c}\n[Service]\nExecStart=/bin/true\n`);
      return path;
    });
    const systemd = systemdSays(paths);
    letters.forEach((c, i) => {
      const text = `[Unit]\nDescription=%${c}\n[Service]\nExecStart=/bin/true\n`;
      const systemdUnknown = (systemd.get(base(paths[i]!)) ?? []).some((s) => /Invalid slot/.test(s.text));
      const berth = berthSays(paths[i]!, text);
      const berthUnknown = !berth.ok && berth.reason.startsWith(`unknown specifier "%${c}"`);
      expect(berthUnknown, `%${c}`).toBe(systemdUnknown);
    });
  });
});
