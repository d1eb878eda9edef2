// A console plugin's command (config "plugins"): run by sh with the selected row in its environment (BERTH_UNIT,
// BERTH_MACHINE, BERTH_KEY, BERTH_MEMBER, BERTH_MARKED, BERTH_VIEW, and BERTH_ENDPOINT: the console's cluster). It
// runs in the background with no terminal (the console keeps the screen): its last line of output, or its exit
// status, is what the console shows.
import { spawn } from "node:child_process";

/** Output kept of a plugin (its last line is shown). */
const KEEP = 64 * 1024;

export function runPlugin(label: string, command: string, env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", command], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const keep = (b: Buffer) => {
      out = (out + b.toString("utf8")).slice(-KEEP);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const last = out.trimEnd().split("\n").at(-1) ?? "";
      if (code === 0) resolve(`${label}: ${last || "done"}`);
      else
        reject(
          new Error(`${label}: ${signal ? `killed by ${signal}` : `exit ${code}`}${last ? `: ${last}` : ""}`),
        );
    });
  });
}
