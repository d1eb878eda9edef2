// `berth journal UNIT [-n N] [-f]`: fleetctl's journal, through any node (the node asks the machine running the
// unit). Lines print like `journalctl` short output: `Nov 25 12:00:00 hello.service[1240]: Hello World`, and
// `berth:` instead of the unit for the agent's own lines about the unit.
import type { JournalLine } from "../client/protocol.ts";
import { formatJournalLine, JOURNAL_MODES, type JournalMode } from "../format/journal.ts";
import { CLIENT_FLAGS, withClient } from "./client-command.ts";
import type { Command } from "./command.ts";
import { EXIT, UsageError } from "./exit-codes.ts";
import { IGNORED_SSH_PORT } from "./tunnel-flags.ts";
import { checkName, mangle } from "./unit-support.ts";

export function journalMode(output: unknown): JournalMode {
  const o = String(output ?? "short");
  if (o === "table") return "short";
  if ((JOURNAL_MODES as string[]).includes(o)) return o as JournalMode;
  throw new UsageError(
    `--output must be one of ${JOURNAL_MODES.join(", ")} (journalctl's modes); not "${o}"`,
  );
}

export const journal: Command = {
  name: "journal",
  summary: "print the journal (log lines) of a unit from the machine it runs on",
  usage: "[-n|--lines N] [-f|--follow] [-o short|cat|json|verbose] UNIT",
  description: `Prints the last N lines (default 10) of the unit's output and of Berth's own lines about it, as
journalctl does on the unit's machine. --output takes journalctl's modes: short (the default): "Nov 25 12:00:00
core-01 sh[1240]: Hello World", the machine's host name and the program's name and pid (SYSLOG_IDENTIFIER[_PID]),
Berth's own lines about the unit as "berth[PID]:" (the process running the agent), as systemd's are "systemd[1]:";
cat: the message alone; json: one JSON object per line with journalctl's field names and string values
(__REALTIME_TIMESTAMP in µs, _HOSTNAME, PRIORITY, SYSLOG_FACILITY, SYSLOG_IDENTIFIER, _PID, _TRANSPORT, and
_SYSTEMD_UNIT and BERTH_STREAM (stdout, stderr) for the unit's output or UNIT for Berth's lines, MESSAGE): -o json no
longer prints Berth's own {at, unit, stream, text} documents; verbose: each entry's time, then one FIELD=value
per line. Works through any node: the request reaches the machine running the unit over the cluster's own
connections. With --follow, new lines are printed as they are written until Ctrl-C (exit 0). A unit the cluster
does not know exits 4; one that is not loaded on any machine exits 1.`,
  flags: [
    {
      name: "lines",
      short: "n",
      type: "number",
      value: "N",
      description: "number of recent lines to print",
      default: 10,
    },
    { name: "follow", short: "f", type: "boolean", description: "keep printing new lines until interrupted" },
    ...CLIENT_FLAGS.map((f) =>
      f.name === "output"
        ? { ...f, description: "journalctl's mode: short, cat, json or verbose", default: "short" }
        : f,
    ),
    IGNORED_SSH_PORT,
  ],
  run: async (parsed) => {
    if (parsed.positionals.length !== 1) throw new UsageError("One unit name must be provided");
    const { name } = mangle(parsed.positionals[0]!);
    checkName(name);
    const lines = Number(parsed.flags.lines ?? 10);
    if (!Number.isInteger(lines) || lines < 0) throw new UsageError("--lines must be a whole number ≥ 0");
    const mode = journalMode(parsed.flags.output);
    // -o is journalctl's here; the connection itself needs none of it.
    return withClient({ ...parsed.flags, output: "table" }, async (ctx) => {
      const print = (l: JournalLine) => process.stdout.write(`${formatJournalLine(l, mode)}\n`);
      if (parsed.flags.follow !== true) {
        for (const l of await ctx.client.call("units.journal", { name, lines })) print(l);
        return EXIT.ok;
      }
      const sub = ctx.client.subscribe("units.journal.follow", { name, lines });
      let interrupted = false;
      const onSignal = () => {
        interrupted = true;
        sub.close();
      };
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      try {
        for await (const l of sub) print(l);
      } catch (err) {
        if (!interrupted) throw err;
      } finally {
        process.removeListener("SIGINT", onSignal);
        process.removeListener("SIGTERM", onSignal);
      }
      return EXIT.ok;
    });
  },
};
