// `berth journal UNIT [-n N] [-f]`: fleetctl's journal, through any node (the node asks the machine running the
// unit). Lines print like `journalctl` short output: `Nov 25 12:00:00 hello.service[1240]: Hello World`, and
// `berth:` instead of the unit for the agent's own lines about the unit.
import type { JournalLine } from "../client/protocol.ts";
import { CLIENT_FLAGS, withClient } from "./client-command.ts";
import type { Command } from "./command.ts";
import { EXIT, UsageError } from "./exit-codes.ts";
import { printJson } from "./output.ts";
import { checkName, mangle } from "./unit-support.ts";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const pad = (n: number) => String(n).padStart(2, "0");

/** journalctl's short timestamp, local time: `Nov 25 12:00:00`. */
export function shortTime(ms: number): string {
  const d = new Date(ms);
  return `${MONTHS[d.getMonth()]} ${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** One journal line as `journalctl -o short` prints it (without the host name). */
export function formatJournalLine(l: JournalLine): string {
  const who = l.stream === "berth" ? "berth" : l.pid ? `${l.unit}[${l.pid}]` : l.unit;
  return `${shortTime(l.at)} ${who}: ${l.text}`;
}

export const journal: Command = {
  name: "journal",
  summary: "print the journal (log lines) of a unit from the machine it runs on",
  usage: "[-n|--lines N] [-f|--follow] UNIT",
  description: `Prints the last N lines (default 10) of the unit's output and of Berth's own lines about it, as
journalctl's short output ("Nov 25 12:00:00 hello.service[1240]: Hello World"). Works through any node: the request
reaches the machine running the unit over the cluster's own connections. With --follow, new lines are printed as
they are written until Ctrl-C (exit 0). With --output json, one JSON document per line. A unit the cluster does not
know exits 4; one that is not loaded on any machine exits 1.`,
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
    ...CLIENT_FLAGS,
  ],
  run: async (parsed) => {
    if (parsed.positionals.length !== 1) throw new UsageError("One unit name must be provided");
    const { name } = mangle(parsed.positionals[0]!);
    checkName(name);
    const lines = Number(parsed.flags.lines ?? 10);
    if (!Number.isInteger(lines) || lines < 0) throw new UsageError("--lines must be a whole number ≥ 0");
    return withClient(parsed.flags, async (ctx) => {
      const print = (l: JournalLine) =>
        ctx.output === "json" ? printJson(l) : process.stdout.write(`${formatJournalLine(l)}\n`);
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
