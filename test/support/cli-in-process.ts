// Runs `berth ARGS` inside the test process (the real dispatch and commands), capturing what it writes.
import { vi } from "vitest";
import type { CommandEntry } from "../../src/cli/command.ts";
import { COMMANDS } from "../../src/cli/commands.ts";
import { dispatch } from "../../src/cli/dispatch.ts";
import type { RunResult } from "./cluster.ts";

export async function berthInProcess(
  args: string[],
  commands: CommandEntry[] = COMMANDS,
): Promise<RunResult> {
  let stdout = "";
  let stderr = "";
  vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { code: await dispatch(args, commands), stdout, stderr };
  } finally {
    vi.restoreAllMocks();
  }
}
