// scripts/setup.sh and a shared install: a git worktree whose node_modules is a symlink to another checkout's must
// not run `npm ci`, which empties the directory the link points to (for every checkout sharing it). Run in a copy of
// the script's layout with a stand-in npm on PATH that records its calls; the system packages the script checks for
// are already there (npm test runs the real script first), so it reaches the npm step without apt-get.
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const SETUP = resolve(import.meta.dirname, "../scripts/setup.sh");

describe("scripts/setup.sh with a node_modules shared by symlink", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("leaves the shared install alone although the worktree's package-lock.json is newer", () => {
    dir = mkdtempSync(join(tmpdir(), "berth-setup-"));
    const shared = join(dir, "main-node_modules");
    const worktree = join(dir, "worktree");
    mkdirSync(join(shared, ".bin"), { recursive: true });
    writeFileSync(join(shared, ".bin", "bun"), "#!/bin/sh\necho 1.0.0\n", { mode: 0o755 });
    writeFileSync(join(shared, ".package-lock.json"), "{}");
    utimesSync(join(shared, ".package-lock.json"), new Date(0), new Date(0)); // older than the worktree's lock
    mkdirSync(join(worktree, "scripts"), { recursive: true });
    copyFileSync(SETUP, join(worktree, "scripts", "setup.sh"));
    writeFileSync(join(worktree, "package-lock.json"), "{}");
    symlinkSync(shared, join(worktree, "node_modules"));
    const bin = join(dir, "bin");
    mkdirSync(bin);
    const calls = join(dir, "npm-calls");
    writeFileSync(join(bin, "npm"), `#!/bin/sh\necho "$@" >> ${calls}\n`, { mode: 0o755 });

    const run = spawnSync("bash", [join(worktree, "scripts", "setup.sh")], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      encoding: "utf8",
    });
    expect(run.status, run.stderr).toBe(0);
    expect(existsSync(calls) ? readFileSync(calls, "utf8") : "", "npm calls").toBe("");
  });
});
