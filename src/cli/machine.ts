// `berth machine drain|undrain MACHINE`: take a machine out of placement and move its units off it (each through
// the handoff, so no unit ever runs on two machines: src/sched/handoff.ts), or put it back. As `nomad node drain
// -enable|-disable`: drain waits until the machine holds no unit (--no-block returns at once, as -detach), and the
// drain stays in effect until undrain (the machine is then offered units again; nothing moves back by itself).
import type { BerthClient } from "../client/client.ts";
import type { DrainStatus } from "../client/protocol.ts";
import { metadataText } from "../format/metadata.ts";
import { CLIENT_FLAGS, type ClientContext, withClient } from "./client-command.ts";
import type { Command, CommandGroup } from "./command.ts";
import { CliError, EXIT, type ExitCode, UsageError } from "./exit-codes.ts";
import type { Parsed } from "./flags.ts";
import { printJson } from "./output.ts";

/** How drain polls while it waits, and its default limit (tests shorten the poll). */
export const DRAIN_TIMING = { pollMs: 250, defaultTimeoutMs: 5 * 60_000 };

const out = (s: string) => process.stdout.write(`${s}\n`);

function machineArg(parsed: Parsed, verb: string): string {
  if (parsed.positionals.length !== 1 || parsed.positionals[0] === "")
    throw new UsageError(`machine ${verb} takes one MACHINE (id, id prefix or member name)`);
  return parsed.positionals[0]!;
}

function who(s: DrainStatus): string {
  return `Machine ${s.machine.id.slice(0, 8)}... (${s.machine.name || "?"})`;
}

function unitList(units: string[]): string {
  const shown = units.slice(0, 10).join(", ");
  return units.length > 10 ? `${shown} and ${units.length - 10} more` : shown;
}

const drain: Command = {
  name: "drain",
  summary: "move every unit off a machine and place no new ones there (until undrain)",
  usage: "[--no-block] [--timeout DURATION] MACHINE",
  description: `MACHINE is a machine id, an id prefix or the node's member name (as list-machines --containers takes
it). The machine gets no new units and each of its units is stopped there and then started on another machine
that its [X-Fleet] rules allow, never on two at once: the new machine starts it only after the drained one has
stopped it. Global units just stop there. A unit that fits no other machine stays unplaced (list-units says why).
list-machines --fields machine,state shows the machine "draining", then "drained" once it holds no unit.

Waits until the machine holds no unit, then exits 0; with --no-block it returns at once. When --timeout (default
5m; 0: no limit) runs out first it names the units still there and exits 3; the drain stays in effect either way.
Exit 1 when the drain is lifted (undrain) while it waits, 4 when MACHINE does not exist, 2 when it is ambiguous.
--output json prints {"machine": {...}, "units": [the units it still holds]} at the end.`,
  flags: [
    { name: "no-block", type: "boolean", description: "do not wait for the units to leave" },
    {
      name: "timeout",
      type: "duration",
      value: "DURATION",
      description: "how long to wait for the units to leave (default 5m; 0: no limit)",
    },
    ...CLIENT_FLAGS,
  ],
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      const machine = machineArg(parsed, "drain");
      const limit = (parsed.flags.timeout as number | undefined) ?? DRAIN_TIMING.defaultTimeoutMs;
      const first = await ctx.client.call("machines.drain", { machine, drain: true });
      if (parsed.flags["no-block"] === true || first.units.length === 0) return report(ctx, first);
      if (ctx.output !== "json")
        out(`${who(first)} is draining: ${first.units.length} unit(s) to move: ${unitList(first.units)}`);
      return waitDrained(ctx, machine, limit);
    }),
};

async function waitDrained(ctx: ClientContext, machine: string, limitMs: number): Promise<ExitCode> {
  const deadline = limitMs > 0 ? Date.now() + limitMs : Number.POSITIVE_INFINITY;
  for (;;) {
    await new Promise((r) => setTimeout(r, DRAIN_TIMING.pollMs));
    const s = await status(ctx.client, machine);
    // "up" again: someone lifted the drain meanwhile (a lost machine stays "lost" and its units move anyway).
    if (s.machine.state === "up") {
      if (ctx.output === "json") printJson(s);
      throw new CliError(
        `${who(s)} was undrained before its units had left; it still holds ${unitList(s.units)}`,
      );
    }
    if (s.units.length === 0) return report(ctx, s);
    if (Date.now() >= deadline) {
      if (ctx.output === "json") printJson(s);
      throw new CliError(
        `${who(s)} still holds ${s.units.length} unit(s) after ${limitMs / 1000} s: ${unitList(s.units)}. ` +
          "It stays draining; `berth list-units` shows where they are.",
        EXIT.unavailable,
      );
    }
  }
}

function status(client: BerthClient, machine: string): Promise<DrainStatus> {
  return client.call("machines.drainStatus", { machine });
}

function report(ctx: ClientContext, s: DrainStatus): ExitCode {
  if (ctx.output === "json") printJson(s);
  else if (s.units.length === 0)
    out(`${who(s)} is ${s.machine.state === "lost" ? "lost (and draining)" : "drained"}: it holds no units`);
  else out(`${who(s)} is draining: ${s.units.length} unit(s) still to move: ${unitList(s.units)}`);
  return EXIT.ok;
}

const undrain: Command = {
  name: "undrain",
  summary: "let a drained machine take units again (nothing moves back by itself)",
  usage: "MACHINE",
  description: `Lifts the drain of MACHINE (id, id prefix or member name): new units may be placed there again.
Units that moved away stay where they run now. Exit 4 when MACHINE does not exist. --output json prints
{"machine": {...}, "units": [...]}.`,
  flags: CLIENT_FLAGS,
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      const s = await ctx.client.call("machines.drain", {
        machine: machineArg(parsed, "undrain"),
        drain: false,
      });
      if (ctx.output === "json") printJson(s);
      else out(`${who(s)} is ${s.machine.state}: units may be placed on it again`);
      return EXIT.ok;
    }),
};

const setMetadata: Command = {
  name: "set-metadata",
  summary: "change a machine's metadata while its node runs; units are placed again against it",
  usage: "MACHINE [KEY=VALUE...] [--unset KEY,...] [--reset]",
  description: `Sets (KEY=VALUE) or removes (--unset KEY) metadata of MACHINE (id, id prefix or member name) without
restarting its node. The leader places units against the new metadata at once: a unit whose MachineMetadata= the
machine no longer matches moves to a machine that matches (stopped here before it starts there, as a drain moves
it), and units waiting for such a machine start on it. list-machines shows the metadata placement uses.

The change is kept in the cluster (/_berth/machines/<id>/metadata), not in the node's flags: it survives
restarts of the node and wins over --metadata / BERTH_METADATA for the keys it sets or removes (the node's other
keys still come from its flags). --reset drops every change made here first: the machine has its node's own
metadata again. Exit 4 when MACHINE does not exist, 2 for a malformed KEY=VALUE. --output json prints the
machine.

Examples:
  berth machine set-metadata core-02 disk=ssd region=us-east
  berth machine set-metadata core-02 --unset disk
  berth machine set-metadata core-02 --reset`,
  flags: [
    { name: "unset", type: "list", value: "KEY,...", description: "remove these keys" },
    {
      name: "reset",
      type: "boolean",
      description: "drop every run-time change first (back to the node's flags)",
    },
    ...CLIENT_FLAGS,
  ],
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      const [machine, ...pairs] = parsed.positionals;
      if (!machine) throw new UsageError("machine set-metadata takes a MACHINE and KEY=VALUE pairs");
      const set: Record<string, string> = {};
      for (const p of pairs) {
        const eq = p.indexOf("=");
        if (eq <= 0) throw new UsageError(`"${p}" must be KEY=VALUE`);
        set[p.slice(0, eq)] = p.slice(eq + 1);
      }
      const unset = (parsed.flags.unset as string[] | undefined) ?? [];
      const reset = parsed.flags.reset === true;
      if (pairs.length === 0 && unset.length === 0 && !reset)
        throw new UsageError("nothing to change: give KEY=VALUE pairs, --unset KEY or --reset");
      const m = await ctx.client.call("machines.setMetadata", { machine, set, unset, reset });
      if (ctx.output === "json") printJson(m);
      else out(`Machine ${m.id.slice(0, 8)}... (${m.name || "?"}) metadata: ${metadataText(m.metadata)}`);
      return EXIT.ok;
    }),
};

export const machineCommands: CommandGroup = {
  name: "machine",
  summary: "drain a machine (move its units off) or undrain it; change its metadata",
  subcommands: [drain, undrain, setMetadata],
};
