// The console over `npm start`'s local cluster (scripts/local-cluster.ts): that script writes what went wrong with
// its nodes (one that failed to start, one that exited) to a file, a line each, and the console shows those lines:
// behind the console's full screen, anything the script printed would stay hidden until it quits.
import { readFileSync, writeFileSync } from "node:fs";

/** The question `q` asks under `npm start`: quitting the console stops the local cluster. */
export const LOCAL_CLUSTER_QUIT = "Quit and stop the local cluster";

/** The lines of the problems file (none when it does not exist or is empty). */
export function readNodeProblems(file: string): string[] {
  try {
    return readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "");
  } catch {
    return [];
  }
}

/** Adds `line` to the problems file (the script's side). */
export function reportNodeProblem(file: string, line: string): void {
  writeFileSync(file, `${line}\n`, { flag: "a" });
}
