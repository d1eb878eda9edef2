// The data directory's format version (src/datadir/format.ts): a node records it, and a binary refuses a
// directory written in a newer format, with a message naming both, before reading or writing anything there.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { resolveNodeConfig } from "../src/cli/node-config.ts";
import { DATA_FORMAT } from "../src/datadir/format.ts";
import { saveNodeConfig } from "../src/node/node-config.ts";
import { VERSION } from "../src/version.ts";
import { berth } from "./support/cluster.ts";
import { killUnitProcesses } from "./support/processes.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) {
    killUnitProcesses(d); // a node that started where it should have refused left its supervisor
    rmSync(d, { recursive: true, force: true });
  }
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "berth-format-"));
  dirs.push(d);
  return d;
}

describe("data directory format", () => {
  it("a node records the format it writes, with its release", () => {
    const dir = join(tempDir(), "n1");
    saveNodeConfig(resolveNodeConfig({ name: "n1", "data-dir": dir, "peer-addr": "127.0.0.1:7001" }));
    expect(JSON.parse(readFileSync(join(dir, "format"), "utf8"))).toEqual({
      format: DATA_FORMAT,
      writtenBy: VERSION,
    });
    // Restarting on it is fine.
    expect(() => resolveNodeConfig({ "data-dir": dir })).not.toThrow();
  });

  it("the binary refuses a newer format with a clear message (exit 2) and leaves the directory as it was", async () => {
    const dir = tempDir();
    const newer = `${JSON.stringify({ format: DATA_FORMAT + 1, writtenBy: "9.0.0" })}\n`;
    writeFileSync(join(dir, "format"), newer);
    const r = await berth(["node", "--name=n1", `--data-dir=${dir}`, "--peer-addr=127.0.0.1:7001"], {
      timeoutMs: 10_000,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `--data-dir ${dir} holds data format ${DATA_FORMAT + 1} (written by berth 9.0.0); this berth ${VERSION} ` +
        `reads format ${DATA_FORMAT} at most`,
    );
    expect(readdirSync(dir)).toEqual(["format"]);
    expect(readFileSync(join(dir, "format"), "utf8")).toBe(newer);

    const backup = await berth(["backup", `--data-dir=${dir}`, `--backup-dir=${join(tempDir(), "b")}`]);
    expect(backup.code).not.toBe(0);
    expect(backup.stderr).toContain(`holds data format ${DATA_FORMAT + 1}`);
  });

  it("a directory from before the format file is format 1", () => {
    const dir = join(tempDir(), "n1");
    saveNodeConfig(resolveNodeConfig({ name: "n1", "data-dir": dir, "peer-addr": "127.0.0.1:7001" }));
    rmSync(join(dir, "format"));
    expect(() => resolveNodeConfig({ "data-dir": dir })).not.toThrow();
  });
});
