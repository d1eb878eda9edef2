// A real terminal for full-screen programs: a private tmux server (its own socket), keys sent with send-keys,
// the screen read with capture-pane, the bytes the program writes counted through pipe-pane. The program's exit
// code is written to a file by the shell around it.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "./processes.ts";

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export class TestTerminal {
  private constructor(private readonly dir: string) {}

  private get socket(): string {
    return join(this.dir, "tmux.sock");
  }

  private tmux(...args: string[]): string {
    return execFileSync("tmux", ["-S", this.socket, ...args], {
      encoding: "utf8",
      timeout: 5000,
      stdio: ["ignore", "pipe", "pipe"],
    });
  }

  /** Runs `argv` in a new terminal of `columns` x `rows`. */
  static start(
    argv: string[],
    opts: { columns?: number; rows?: number; env?: Record<string, string> } = {},
  ): TestTerminal {
    const t = new TestTerminal(mkdtempSync(join(tmpdir(), "berth-term-")));
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${quote(v)}`);
    const command = `env ${env.join(" ")} ${argv.map(quote).join(" ")}; echo $? > ${quote(join(t.dir, "exit"))}`;
    t.tmux(
      "new-session",
      "-d",
      "-s",
      "t",
      "-x",
      String(opts.columns ?? 150),
      "-y",
      String(opts.rows ?? 40),
      command,
    );
    return t;
  }

  screen(): string {
    try {
      return this.tmux("capture-pane", "-p", "-t", "t");
    } catch {
      return "";
    }
  }

  /** A tmux format about the pane ("#{mouse_sgr_flag}": whether the program asked for SGR mouse reports). */
  paneFormat(format: string): string {
    return this.tmux("display-message", "-p", "-t", "t", format).trim();
  }

  /** The screen with its colours and attributes as escape sequences (reverse video marks the selected row). */
  styledScreen(): string {
    try {
      return this.tmux("capture-pane", "-p", "-e", "-t", "t");
    } catch {
      return "";
    }
  }

  /** From now on, every byte the program writes to the terminal is appended to a file (see outputBytes). */
  recordOutput(): void {
    this.tmux("pipe-pane", "-o", "-t", "t", `cat >> ${quote(this.outputFile)}`);
  }

  /** Bytes the program wrote since recordOutput(). */
  outputBytes(): number {
    return existsSync(this.outputFile) ? statSync(this.outputFile).size : 0;
  }

  /** What the program wrote since recordOutput(), escape sequences and all. */
  output(): string {
    return existsSync(this.outputFile) ? readFileSync(this.outputFile, "utf8") : "";
  }

  private get outputFile(): string {
    return join(this.dir, "output");
  }

  /** The pid of the program (the child of the shell the pane runs). */
  programPid(): number {
    const shell = this.tmux("display-message", "-p", "-t", "t", "#{pane_pid}").trim();
    const children = readFileSync(`/proc/${shell}/task/${shell}/children`, "utf8").trim().split(/\s+/);
    const pid = Number(children[0]);
    if (!pid) throw new Error(`the program in the terminal is not running (shell ${shell})`);
    return pid;
  }

  /** tmux key names ("Enter", "Escape", "Down") or literal text. */
  keys(...keys: string[]): void {
    this.tmux("send-keys", "-t", "t", ...keys);
  }

  /** Waits until the screen contains `what` (text), matches it (RegExp) or satisfies it (function). */
  async waitForScreen(
    what: string | RegExp | ((screen: string) => boolean),
    timeoutMs = 15_000,
  ): Promise<string> {
    let last = "";
    try {
      return await waitFor(
        `the screen to show ${what}`,
        () => {
          last = this.screen();
          const ok =
            typeof what === "string"
              ? last.includes(what)
              : typeof what === "function"
                ? what(last)
                : what.test(last);
          return ok ? last : null;
        },
        timeoutMs,
        100,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- screen ---\n${last}`);
    }
  }

  /** The program's exit code once it has ended. */
  async exitCode(timeoutMs = 10_000): Promise<number> {
    const file = join(this.dir, "exit");
    await waitFor(
      "the program to exit",
      () => existsSync(file) && readFileSync(file, "utf8").trim() !== "",
      timeoutMs,
    );
    return Number(readFileSync(file, "utf8").trim());
  }

  stop(): void {
    try {
      this.tmux("kill-server");
    } catch {}
    rmSync(this.dir, { recursive: true, force: true });
  }
}
