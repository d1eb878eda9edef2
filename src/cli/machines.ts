// `berth list-machines`: fleetctl's list-machines (MACHINE IP METADATA), every Berth node being a machine.
import type { MachineInfo } from "../client/protocol.ts";
import { CLIENT_FLAGS, withClient } from "./client-command.ts";
import type { Command } from "./command.ts";
import { EXIT, UsageError } from "./exit-codes.ts";
import { type Column, printJson, renderTable } from "./output.ts";
import { metadataText, pickColumns } from "./unit-support.ts";

const MACHINE_FIELDS = "machine,ip,metadata";

export const listMachines: Command = {
  name: "list-machines",
  summary: "list the machines in the cluster with their public IP and metadata",
  usage: "[--fields KEY,...] [--no-legend] [-l|--full]",
  description: `Columns (fleetctl's): MACHINE IP METADATA; more with --fields: name (the node's member name) and
state (up, or lost while its agent does not report). MACHINE is the first 8 hex digits and "..." (the full id
with --full); METADATA is k=v pairs sorted by key, comma-joined, "-" when empty.`,
  flags: [
    {
      name: "fields",
      type: "string",
      value: "KEY,...",
      description: `columns to print (default ${MACHINE_FIELDS}; valid: ip,machine,metadata,name,state)`,
    },
    { name: "no-legend", type: "boolean", description: "omit the header line" },
    { name: "full", short: "l", type: "boolean", description: "do not ellipsize machine ids" },
    ...CLIENT_FLAGS,
  ],
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      if (parsed.positionals.length > 0) throw new UsageError("list-machines takes no arguments");
      const full = parsed.flags.full === true;
      const all: Record<string, Column<MachineInfo>> = {
        machine: { header: "MACHINE", value: (m) => (full ? m.id : `${m.id.slice(0, 8)}...`) },
        ip: { header: "IP", value: (m) => m.publicIp || "-" },
        metadata: { header: "METADATA", value: (m) => metadataText(m.metadata) },
        name: { header: "NAME", value: (m) => m.name || "-" },
        state: { header: "STATE", value: (m) => m.state },
      };
      const { columns } = pickColumns(parsed.flags.fields as string | undefined, MACHINE_FIELDS, all);
      const machines = (await ctx.client.call("machines.list", {})).sort((a, b) =>
        a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
      );
      if (ctx.output === "json") {
        printJson(machines);
        return EXIT.ok;
      }
      const table = renderTable(machines, columns, {
        legend: parsed.flags["no-legend"] !== true,
        full: true,
      });
      if (table !== "") process.stdout.write(`${table}\n`);
      return EXIT.ok;
    }),
};
