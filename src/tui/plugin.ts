// A console plugin's command (config "plugins"): run by sh with the selected row in its environment (BERTH_UNIT,
// BERTH_MACHINE, BERTH_KEY, BERTH_MEMBER, BERTH_MARKED, BERTH_VIEW, and BERTH_ENDPOINT: the console's cluster).
// By default it runs in the background with no terminal (the console keeps the screen): its last line of output,
// or its exit status, is what the console shows. With "background": false it has the terminal (k9s's
// background: false: less on a journal, ssh to a machine) while the console steps aside (app.tsx).
import { type ChildProcess, spawn } from "node:child_process";

/** Output kept of a plugin (its last line is shown). */
const KEEP = 64 * 1024;

export function runPlugin(label: string, command: string, env: Record<string, string>): Promise<string> {
  const child = spawn("sh", ["-c", command], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const keep = (b: Buffer) => {
    out = (out + b.toString("utf8")).slice(-KEEP);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  return outcome(label, child, () => out.trimEnd().split("\n").at(-1) ?? "");
}

/** How long after a foreground command's exit the signals the terminal sent along with its end are ignored. */
const SIGNAL_GRACE_MS = 500;

/**
 * Runs the command on the console's terminal (stdin, stdout and stderr inherited) and settles when it exits.
 * Ctrl-C and Ctrl-\ meanwhile are the command's: the terminal sends them to its whole process group, the console
 * included, which ignores them (as a shell does while a job is in the foreground).
 */
export async function runPluginInForeground(
  label: string,
  command: string,
  env: Record<string, string>,
): Promise<string> {
  const ignore = () => {};
  process.on("SIGINT", ignore);
  process.on("SIGQUIT", ignore);
  const resumeReading = stopReading(process.stdin);
  try {
    const child = spawn("sh", ["-c", command], { env: { ...process.env, ...env }, stdio: "inherit" });
    return await outcome(label, child, () => "");
  } finally {
    resumeReading();
    // The Ctrl-C that ended the command reached this process too, and its handler may run only after the command's
    // exit was seen: ignored a while longer, or the signal's default would end the console.
    setTimeout(() => {
      process.off("SIGINT", ignore);
      process.off("SIGQUIT", ignore);
    }, SIGNAL_GRACE_MS);
  }
}

/**
 * The console's runtime keeps a read pending on the terminal after the last listener is gone, and the command and
 * the console would race for the keys typed (the console won them all under Bun). Stopped here, once Ink has
 * let go of the terminal (its listener removed a tick before): pause() releases Bun's reader, and Node's read is
 * stopped on its handle (pause() stops nothing on a Node terminal). The function returned restarts Node's read;
 * Bun's is taken again by Ink's next listener.
 */
function stopReading(stdin: NodeJS.ReadStream): () => void {
  stdin.pause();
  const handle = (
    stdin as unknown as { _handle?: { reading: boolean; readStop(): number; readStart(): number } }
  )._handle;
  if (!handle?.reading) return () => {};
  handle.reading = false;
  handle.readStop();
  return () => {
    if (handle.reading) return;
    handle.reading = true;
    handle.readStart();
  };
}

/** "label: LAST" (or "label: done") when the command exits 0, else an error naming its exit status. */
function outcome(label: string, child: ChildProcess, last: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const line = last();
      if (code === 0) resolve(`${label}: ${line || "done"}`);
      else
        reject(
          new Error(`${label}: ${signal ? `killed by ${signal}` : `exit ${code}`}${line ? `: ${line}` : ""}`),
        );
    });
  });
}
