// Real users and groups of this machine for the authorization tests (they run as root): made with useradd and
// groupadd, removed by the test that made them (and on exit, should the test die first). Existing ones are used
// and never removed.
import { execFileSync, spawnSync } from "node:child_process";

const made: { kind: "user" | "group"; name: string }[] = [];
process.on("exit", () => removeCreated());

function exists(db: "passwd" | "group", name: string): boolean {
  return spawnSync("getent", [db, name]).status === 0;
}

/** Makes the group unless it exists; true when this call made it. */
export function ensureGroup(name: string): boolean {
  if (exists("group", name)) return false;
  execFileSync("groupadd", [name]);
  made.push({ kind: "group", name });
  return true;
}

/** Makes a user with no home (password "*": sshd lets it in by key), in the given supplementary groups. */
export function createUser(name: string, groups: string[] = []): void {
  if (exists("passwd", name)) execFileSync("userdel", [name]); // a leftover of an earlier, killed run
  execFileSync("useradd", [
    "-M",
    "-s",
    "/bin/sh",
    "-p",
    "*",
    ...(groups.length ? ["-G", groups.join(",")] : []),
    name,
  ]);
  made.push({ kind: "user", name });
}

/** Removes what this file made, users first (a group cannot go while it is a user's primary group). */
export function removeCreated(): void {
  for (const kind of ["user", "group"] as const) {
    for (const m of made.filter((x) => x.kind === kind).reverse()) {
      spawnSync(kind === "user" ? "userdel" : "groupdel", [m.name]);
      made.splice(made.indexOf(m), 1);
    }
  }
}
