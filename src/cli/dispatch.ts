import { VERSION } from "../version.ts";
import { CLIENT_FLAGS } from "./client-command.ts";
import { type Command, type CommandEntry, isGroup } from "./command.ts";
import { CliError, EXIT, UsageError } from "./exit-codes.ts";
import { asksForHelp, firstWordAfterFlags, flagHelp, parseArgs } from "./flags.ts";

const EXIT_CODE_HELP = `Exit codes: 0 ok, 1 error, 2 usage, 3 cluster unavailable or timed out, 4 not found, 5 precondition failed, 6 no space left on a member's disk (writes refused).`;

/** Runs `berth ARGS...` against the command tree; returns the process exit code. */
export async function dispatch(argv: string[], commands: CommandEntry[]): Promise<number> {
  const { leading, words } = leadingClientFlags(argv);
  const [first, ...rest] = words;
  if (first === undefined || first === "help" || first === "--help" || first === "-h") {
    if (first === "help" && rest.length > 0) return dispatch([...rest, "--help"], commands);
    process.stdout.write(topHelp(commands));
    return EXIT.ok;
  }
  if (first === "--version" || first === "-v" || first === "version") {
    process.stdout.write(`berth ${VERSION}\n`);
    return EXIT.ok;
  }
  try {
    const { command, path, args } = resolve(first, rest, commands);
    const all = [...leading, ...args];
    if (asksForHelp(all, command.flags)) {
      process.stdout.write(commandHelp(command, path));
      return EXIT.ok;
    }
    const parsed = parseArgs(all, command.flags, path);
    return await command.run(parsed);
  } catch (err) {
    return reportError(err);
  }
}

/**
 * `berth --tunnel core@host list-machines` (fleetctl's order): client flags given before the command are
 * parsed with the command's own, as if given right after it (so never after a `--` in its arguments).
 */
function leadingClientFlags(argv: string[]): { leading: string[]; words: string[] } {
  const at = firstWordAfterFlags(argv, CLIENT_FLAGS);
  if (at <= 0) return { leading: [], words: argv };
  return { leading: argv.slice(0, at), words: argv.slice(at) };
}

function resolve(
  first: string,
  rest: string[],
  commands: CommandEntry[],
): { command: Command; path: string; args: string[] } {
  const entry = commands.find((c) => c.name === first);
  if (!entry)
    throw new UsageError(
      `unknown command "${first}"${suggest(
        first,
        commands.map((c) => c.name),
      )}; see \`berth --help\``,
    );
  if (!isGroup(entry)) return { command: entry, path: `berth ${entry.name}`, args: rest };
  const [sub, ...args] = rest;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    process.stdout.write(groupHelp(entry.name, entry.subcommands));
    throw new HelpShown();
  }
  const command = entry.subcommands.find((c) => c.name === sub);
  if (!command) {
    const names = entry.subcommands.map((c) => c.name);
    throw new UsageError(
      `unknown command "${entry.name} ${sub}"${suggest(sub, names)}; see \`berth ${entry.name} --help\``,
    );
  }
  return { command, path: `berth ${entry.name} ${command.name}`, args };
}

class HelpShown extends Error {}

function reportError(err: unknown): number {
  if (err instanceof HelpShown) return EXIT.ok;
  if (err instanceof CliError) {
    process.stderr.write(`Error: ${err.message}\n`);
    return err.exitCode;
  }
  process.stderr.write(`Error: ${(err as Error)?.message ?? String(err)}\n`);
  return EXIT.error;
}

function suggest(word: string, names: string[]): string {
  const close = names.filter((n) => distance(n, word) <= 2 || n.startsWith(word));
  return close.length > 0 ? ` (did you mean ${close.map((c) => `"${c}"`).join(" or ")}?)` : "";
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)] as number[]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
    }
  }
  return d[a.length]![b.length]!;
}

function topHelp(commands: CommandEntry[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `berth ${VERSION}: a cluster init system (Raft, an etcd-v2 style store, a fleet-style scheduler)

Usage: berth COMMAND [ARGS...] [FLAGS...]

Commands:
${lines.join("\n")}

Run \`berth COMMAND --help\` for a command's flags. ${EXIT_CODE_HELP}
`;
}

function groupHelp(name: string, subcommands: Command[]): string {
  const width = Math.max(...subcommands.map((c) => c.name.length));
  const lines = subcommands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `Usage: berth ${name} COMMAND [ARGS...] [FLAGS...]\n\nCommands:\n${lines.join("\n")}\n\nRun \`berth ${name} COMMAND --help\` for a command's flags.\n`;
}

function commandHelp(c: Command, path: string): string {
  const desc = c.description ? `\n${c.description.trim()}\n` : "";
  const flags = c.flags.length > 0 ? `\nFlags:\n${flagHelp(c.flags)}\n` : "";
  return `Usage: ${path}${c.usage ? ` ${c.usage}` : ""}\n\n${c.summary}\n${desc}${flags}\n${EXIT_CODE_HELP}\n`;
}
