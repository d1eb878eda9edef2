// `berth ssh MACHINE|UNIT [-- COMMAND...]`: fleetctl ssh. Opens a shell (or runs COMMAND) on a machine of the
// cluster, named by id prefix or member name, or on the machine running a unit. It runs the system's OpenSSH
// client, so the terminal, agent and the user's ssh configuration behave as with ssh itself; --tunnel becomes a
// ProxyCommand through the same bastion, with the same identity and host key settings as the tunnel's.
import { spawn } from "node:child_process";
import type { MachineInfo, UnitInfo } from "../client/protocol.ts";
import { parseTarget } from "../tunnel/ssh-tunnel.ts";
import { CLIENT_FLAGS, withClient } from "./client-command.ts";
import type { Command } from "./command.ts";
import { CliError, EXIT, UsageError } from "./exit-codes.ts";
import type { FlagValues } from "./flags.ts";
import { sshSettings } from "./tunnel-flags.ts";

export const ssh: Command = {
  name: "ssh",
  summary: "open a shell (or run a command) on a machine, or on the machine running a unit",
  usage:
    "[-A|--forward-agent] [--ssh-port N] (-m|--machine MACHINE | -u|--unit UNIT | MACHINE|UNIT) [-- COMMAND...]",
  description: `
MACHINE is a machine id prefix (unique, as list-machines shows it) or a member name; UNIT is a unit loaded on one
machine. When an argument is both, -m or -u says which: \`-m ID\`, \`--machine=ID\`, \`-u NAME\`, \`--unit=NAME\`
(fleetctl's forms). Connects to the machine's public IP with the system's ssh
client as --ssh-username (default: your user name), with the ssh-agent, --ssh-identity files and known_hosts as
for --tunnel; through --tunnel when given. With COMMAND, runs it and exits with its exit code (255: ssh itself
failed); without, opens an interactive shell.

Examples:
  berth ssh 113f16a7 -- docker ps
  berth ssh hello@1.service
  berth --tunnel core@10.0.0.11 ssh n2`,
  flags: [
    {
      name: "forward-agent",
      short: "A",
      type: "boolean",
      description: "forward the ssh-agent to the machine",
    },
    {
      name: "ssh-port",
      type: "number",
      description: "the machines' SSH port",
      env: "BERTH_SSH_PORT",
      default: 22,
    },
    {
      name: "machine",
      short: "m",
      type: "string",
      value: "MACHINE",
      description: "the machine to connect to",
    },
    {
      name: "unit",
      short: "u",
      type: "string",
      value: "UNIT",
      description: "connect to the machine running UNIT",
    },
    ...CLIENT_FLAGS,
  ],
  async run(parsed) {
    const flags = parsed.flags;
    const { target, only, command } = sshTarget(flags, parsed.positionals);
    const port = Number(flags["ssh-port"]);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new UsageError(`--ssh-port ${port}: not a port`);
    const machine = await withClient(flags, async ({ client }) => {
      const [machines, units] = await Promise.all([
        client.call("machines.list", {}),
        client.call("units.list", {}),
      ]);
      return pickMachine(target, machines, units, only);
    });
    if (!machine.publicIp)
      throw new CliError(`machine ${machine.id.slice(0, 8)} (${machine.name}) has no public IP`);
    return runSsh(sshArgs(flags, machine.publicIp, port, command));
  },
};

/** What to connect to: -m/--machine ID or -u/--unit NAME (fleetctl's), else the first argument; the rest is the command. */
export function sshTarget(
  flags: FlagValues,
  positionals: string[],
): { target: string; only: "machine" | "unit" | null; command: string[] } {
  const machine = typeof flags.machine === "string" ? flags.machine : undefined;
  const unit = typeof flags.unit === "string" ? flags.unit : undefined;
  if (machine !== undefined && unit !== undefined) throw new UsageError("-m and -u exclude each other");
  const named = machine ?? unit;
  if (named !== undefined) {
    if (named === "") throw new UsageError(`--${machine !== undefined ? "machine" : "unit"} needs a value`);
    return { target: named, only: machine !== undefined ? "machine" : "unit", command: positionals };
  }
  const [target, ...command] = positionals;
  if (!target) throw new UsageError("ssh needs a MACHINE or UNIT (see `berth ssh --help`)");
  return { target, only: null, command };
}

/** fleetctl's lookup: a unique machine id prefix (or, in Berth, a member name), or a unit's one machine. */
export function pickMachine(
  arg: string,
  machines: MachineInfo[],
  units: UnitInfo[],
  only: "machine" | "unit" | null,
): MachineInfo {
  const byName = machines.filter((m) => m.name === arg);
  const byPrefix = machines.filter((m) => m.id.startsWith(arg.toLowerCase()));
  const asMachine = byName.length > 0 ? byName : byPrefix;
  const unit = units.find((u) => u.name === arg || u.name === `${arg}.service`);
  if (only !== "unit" && asMachine.length > 1)
    throw new CliError(
      `found more than one machine for "${arg}": ${asMachine.map((m) => m.name).join(", ")}`,
    );
  if (only === null && asMachine.length === 1 && unit)
    throw new UsageError(`"${arg}" is both a machine and a unit: use -m or -u`);
  if (only !== "unit" && asMachine.length === 1) return asMachine[0]!;
  if (only !== "machine" && unit) {
    if (unit.global) throw new CliError(`unit ${unit.name} is global: name one of its machines instead`);
    const where = machines.find((m) => m.id === unit.machines[0]);
    if (!where) throw new CliError(`unit ${unit.name} is not loaded on any machine`);
    return where;
  }
  throw new CliError(
    `no ${only ?? "machine or unit"} "${arg}" (see \`berth list-machines\`${only === "machine" ? "" : " and `berth list-units`"})`,
    EXIT.notFound,
  );
}

/** The OpenSSH client's arguments: the target, then the same identity and host key settings as --tunnel. */
export function sshArgs(flags: FlagValues, host: string, port: number, command: string[]): string[] {
  const common = commonOptions(flags);
  const args = [...common, "-p", String(port)];
  if (flags["forward-agent"] === true) args.push("-A");
  const tunnel = flags.tunnel ? String(flags.tunnel) : "";
  if (tunnel) {
    const t = parseTarget(tunnel);
    const jump = [
      "ssh",
      ...common,
      "-p",
      String(t.port),
      ...(t.user ? ["-l", t.user] : userFlag(flags)),
      "-W",
      "%h:%p",
      t.host,
    ];
    args.push("-o", `ProxyCommand=${jump.map(shellQuote).join(" ")}`);
  }
  args.push(...userFlag(flags), host);
  if (command.length > 0) args.push("--", ...command);
  return args;
}

function commonOptions(flags: FlagValues): string[] {
  const ssh = sshSettings(flags);
  const out: string[] = [];
  for (const f of ssh.identityFiles) out.push("-i", f);
  if (!ssh.strictHostKeyChecking)
    out.push("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR");
  else {
    // ssh reads every file listed and adds new keys to the first: keys accepted by ssh or by --tunnel both count.
    out.push("-o", `UserKnownHostsFile=${ssh.userKnownHostsFile} ${ssh.knownHostsFile}`);
    if (!process.stdin.isTTY) out.push("-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes");
  }
  out.push("-o", `ConnectTimeout=${Math.max(1, Math.ceil(ssh.timeoutMs / 1000))}`);
  return out;
}

function userFlag(flags: FlagValues): string[] {
  const { username } = sshSettings(flags);
  return username ? ["-l", username] : [];
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Runs ssh on this terminal and returns its exit code (the remote command's, or 255 for ssh's own failures). */
function runSsh(args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn("ssh", args, { stdio: "inherit" });
    // The terminal's Ctrl-C belongs to the remote side (ssh forwards it); this process just waits.
    const ignore = () => {};
    process.on("SIGINT", ignore);
    child.on("error", (err) => {
      process.off("SIGINT", ignore);
      process.stderr.write(`Error: cannot run ssh: ${err.message} (install OpenSSH's client)\n`);
      resolve(EXIT.error);
    });
    child.on("exit", (code, signal) => {
      process.off("SIGINT", ignore);
      resolve(code ?? (signal ? 128 : EXIT.error));
    });
  });
}
