// A foreground plugin's Ctrl-C reaches the console as well (the terminal signals its whole process group), and the
// console may handle it only after it saw the command exit: it must still be ignored then, not end the console.
// Run in a separate Bun process (the console's runtime): a failure ends that process, not the test runner.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

describe("a foreground plugin", () => {
  it("leaves the console alive when the terminal's SIGINT is handled after the command exited", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-plugin-signal-"));
    try {
      const script = join(dir, "run.ts");
      writeFileSync(
        script,
        `import { runPluginInForeground } from ${JSON.stringify(resolve("src/tui/plugin.ts"))};
// The command ends at once; the signal it was ended with comes to this process a moment later.
await runPluginInForeground("sig", "(sleep 0.2; kill -INT $CONSOLE_PID) & exit 0", { CONSOLE_PID: String(process.pid) });
await new Promise((r) => setTimeout(r, 400));
console.log("alive");
`,
      );
      const child = spawn(resolve("node_modules/.bin/bun"), [script], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      child.stdout.on("data", (b: Buffer) => {
        out += b.toString();
      });
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done) =>
        child.on("close", (c, s) => done([c, s])),
      );
      expect({ code, signal, out: out.trim() }).toEqual({ code: 0, signal: null, out: "alive" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
