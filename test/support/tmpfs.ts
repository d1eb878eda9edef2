// A small tmpfs of the test's own, to run out of disk space for real (needs root, as the suite runs).
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, rmdirSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Tmpfs {
  dir: string;
  /** Unmounts (lazily if something still holds it open) and removes the mount point. */
  remove(): void;
}

export function mountTmpfs(bytes: number): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), "berth-tmpfs-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${bytes},mode=0700`, "tmpfs", dir]);
  } catch (err) {
    rmdirSync(dir);
    throw err;
  }
  return {
    dir,
    remove() {
      try {
        execFileSync("umount", [dir], { stdio: "ignore" });
      } catch {
        execFileSync("umount", ["-l", dir], { stdio: "ignore" });
      }
      rmdirSync(dir);
    },
  };
}

/** Fills the file system holding `dir` with `path` until writes fail for lack of space; then frees `leave` bytes. */
export function fillUp(path: string, leave = 0): void {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(64 * 1024, 1);
  let size = 0;
  try {
    for (;;) size += writeSync(fd, chunk);
  } catch (err) {
    if ((err as { code?: string }).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
  if (leave > 0) execFileSync("truncate", ["-s", String(Math.max(0, size - leave)), path]);
}

/** Files under `dir` (recursively) whose names end in .tmp: what an interrupted write left behind. */
export function tempFiles(dir: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) found.push(...tempFiles(p));
    else if (name.endsWith(".tmp")) found.push(p);
  }
  return found;
}
