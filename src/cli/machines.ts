// `berth list-machines`: fleetctl's list-machines (MACHINE IP METADATA), every Berth node being a machine.
// `berth list-machines --containers [MACHINE]` (Berth's own; fleet has no such view): the containers each
// machine's agent manages, docker-ps-like, collected from every machine through the node asked.
import type { MachineContainer, MachineContainers, MachineInfo } from "../client/protocol.ts";
import { metadataText } from "../format/metadata.ts";
import { CLIENT_FLAGS, type ClientContext, withClient } from "./client-command.ts";
import type { Command } from "./command.ts";
import { EXIT, type ExitCode, UsageError } from "./exit-codes.ts";
import { type Column, printJson, renderTable } from "./output.ts";
import { pickColumns } from "./unit-support.ts";

const MACHINE_FIELDS = "machine,ip,metadata";
const CONTAINER_FIELDS = "machine,container,image,unit,status";

export const listMachines: Command = {
  name: "list-machines",
  summary: "list the machines in the cluster with their public IP and metadata",
  usage: "[--all] [--fields KEY,...] [--no-legend] [-l|--full] | --containers [MACHINE]",
  description: `The live machines, as fleetctl lists them; --all adds the lost ones (their nodes do not answer).
Columns (fleetctl's): MACHINE IP METADATA, tab-separated as fleetctl's (cut -f1 takes MACHINE); more with
--fields: name (the node's member name) and state (up; draining while \`berth machine drain\` moves its units
off, drained once it holds none: both are live and listed; lost, with --all). MACHINE is the first 8 hex digits
and "..." (the full id with --full); METADATA is k=v pairs sorted by key, comma-joined, "-" when empty.
--output json prints the same machines (every one with --all), each with its state.
A machine record under /_berth that cannot be read (written there by hand, around berth's checks) is left
out and named in a warning on stderr; the exit status stays 0.

With --containers: the containers the agents run for [Container] units (and leftovers labelled with the
machine), one row per container, of every machine or of MACHINE (id, id prefix or member name). Columns:
MACHINE CONTAINER IMAGE UNIT STATUS; more with --fields: name (the container's), state (Docker's: running,
exited...), created (ISO time), active (the unit's ACTIVE/SUB on its agent), host (the node's member name).
STATUS is Docker's status text ("Up 5 seconds"), or the unit's ACTIVE/SUB while it has no container. A machine
that cannot be asked is named on stderr and the exit status is 3; --output json prints every machine with its
containers (and "error" / "engineError" where a machine or its Docker engine did not answer).`,
  flags: [
    {
      name: "fields",
      type: "string",
      value: "KEY,...",
      description: `columns to print (default ${MACHINE_FIELDS}; valid: ip,machine,metadata,name,state)`,
    },
    { name: "all", type: "boolean", description: "list lost machines too (state lost)" },
    { name: "no-legend", type: "boolean", description: "omit the header line" },
    { name: "full", short: "l", type: "boolean", description: "do not ellipsize machine ids" },
    {
      name: "containers",
      type: "boolean",
      description: "list the containers each machine's agent runs (docker ps through the agents)",
    },
    ...CLIENT_FLAGS,
  ],
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      const full = parsed.flags.full === true;
      if (parsed.flags.containers === true) {
        if (parsed.positionals.length > 1)
          throw new UsageError("list-machines --containers takes at most one MACHINE");
        return listContainers(ctx, parsed.positionals[0], parsed.flags, full);
      }
      if (parsed.positionals.length > 0) throw new UsageError("list-machines takes no arguments");
      const all: Record<string, Column<MachineInfo>> = {
        machine: { header: "MACHINE", value: (m) => (full ? m.id : `${m.id.slice(0, 8)}...`) },
        ip: { header: "IP", value: (m) => m.publicIp || "-" },
        metadata: { header: "METADATA", value: (m) => metadataText(m.metadata) },
        name: { header: "NAME", value: (m) => m.name || "-" },
        state: { header: "STATE", value: (m) => m.state },
      };
      const { columns } = pickColumns(parsed.flags.fields as string | undefined, MACHINE_FIELDS, all);
      const machines = (await ctx.client.call("machines.list", {}))
        .filter((m) => parsed.flags.all === true || m.state !== "lost")
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      if (ctx.output === "json") printJson(machines);
      else {
        const table = renderTable(machines, columns, {
          legend: parsed.flags["no-legend"] !== true,
          full: true,
        });
        if (table !== "") process.stdout.write(`${table}\n`);
      }
      await warnUnreadableRecords(ctx);
      return EXIT.ok;
    }),
};

/** Registry records the scheduler leaves out (written around its checks): named on stderr; the listing stands. */
async function warnUnreadableRecords(ctx: ClientContext): Promise<void> {
  let problems: { key: string; problem: string }[];
  try {
    problems = await ctx.client.call("registry.problems", {});
  } catch (err) {
    if ((err as { code?: string }).code === "unknown_method") return; // a node of an older version
    throw err;
  }
  for (const p of problems) process.stderr.write(`Warning: registry record ${p.key} skipped: ${p.problem}\n`);
}

type ContainerRow = MachineContainer & { machine: string; machineName: string };

async function listContainers(
  ctx: ClientContext,
  machine: string | undefined,
  flags: Record<string, unknown>,
  full: boolean,
): Promise<ExitCode> {
  const all: Record<string, Column<ContainerRow>> = {
    machine: { header: "MACHINE", value: (r) => (full ? r.machine : `${r.machine.slice(0, 8)}...`) },
    container: { header: "CONTAINER", value: (r) => r.containerId ?? "-" },
    image: { header: "IMAGE", value: (r) => r.image || "-" },
    unit: { header: "UNIT", value: (r) => r.unit || "-" },
    status: {
      header: "STATUS",
      value: (r) => r.status ?? (r.containerId === null ? `${r.active}/${r.sub}` : (r.state ?? "-")),
    },
    name: { header: "NAME", value: (r) => r.name ?? "-" },
    state: { header: "STATE", value: (r) => r.state ?? "-" },
    created: { header: "CREATED", value: (r) => (r.created ? new Date(r.created).toISOString() : "-") },
    active: { header: "ACTIVE", value: (r) => (r.active === "-" ? "-" : `${r.active}/${r.sub}`) },
    host: { header: "HOST", value: (r) => r.machineName || "-" },
  };
  const { columns } = pickColumns(flags.fields as string | undefined, CONTAINER_FIELDS, all);
  const machines: MachineContainers[] = await ctx.client.call(
    "machines.containers",
    machine === undefined ? {} : { machine },
  );
  const failed = machines.filter((m) => m.error !== undefined);
  if (ctx.output === "json") {
    printJson(machines);
    return failed.length > 0 ? EXIT.unavailable : EXIT.ok;
  }
  const rows: ContainerRow[] = machines.flatMap((m) =>
    m.containers.map((c) => ({ ...c, machine: m.machine, machineName: m.machineName })),
  );
  const table = renderTable(rows, columns, { legend: flags["no-legend"] !== true, full: true });
  if (table !== "") process.stdout.write(`${table}\n`);
  for (const m of machines) {
    const who = `machine ${m.machine.slice(0, 8)}... (${m.machineName || "?"})`;
    if (m.error !== undefined) process.stderr.write(`Error: ${who}: ${m.error}\n`);
    else if (m.engineError !== undefined)
      process.stderr.write(`Warning: ${who}: Docker engine: ${m.engineError} (showing the agent's view)\n`);
  }
  return failed.length > 0 ? EXIT.unavailable : EXIT.ok;
}
