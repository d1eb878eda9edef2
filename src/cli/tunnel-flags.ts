// --tunnel and its SSH settings (fleetctl's names), shared by every client subcommand and the console.

import { homedir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { SshTunnel, TunnelError } from "../tunnel/ssh-tunnel.ts";
import { CliError, EXIT } from "./exit-codes.ts";
import type { FlagSpec, FlagValues } from "./flags.ts";

export const TUNNEL_FLAGS: FlagSpec[] = [
  {
    name: "tunnel",
    type: "string",
    description: "reach the nodes through SSH to this machine; --endpoint is then as that machine sees it",
    value: "[USER@]HOST[:PORT]",
    env: "BERTH_TUNNEL",
  },
  {
    name: "ssh-username",
    type: "string",
    description: "SSH user when --tunnel names none (default: your user name)",
    value: "USER",
    env: "BERTH_SSH_USERNAME",
  },
  {
    name: "ssh-identity",
    type: "list",
    description:
      "private keys for the tunnel, tried after the ssh-agent (default: ~/.ssh/id_ed25519, id_ecdsa, id_rsa)",
    value: "FILE,...",
    env: "BERTH_SSH_IDENTITY",
  },
  {
    name: "ssh-timeout",
    type: "duration",
    description: "how long to wait for the SSH connection",
    env: "BERTH_SSH_TIMEOUT",
    default: 10_000,
  },
  {
    name: "strict-host-key-checking",
    type: "boolean",
    description: "check the tunnel host's key against known_hosts (false: accept any key)",
    env: "BERTH_STRICT_HOST_KEY_CHECKING",
    default: true,
  },
  {
    name: "known-hosts-file",
    type: "string",
    description:
      "host keys trusted for --tunnel, appended to when you accept a new one (~/.ssh/known_hosts is read too)",
    value: "FILE",
    env: "BERTH_KNOWN_HOSTS_FILE",
    default: "~/.berth/known_hosts",
  },
];

/** The SSH settings the flags give, as the tunnel (ssh2) and `berth ssh` (OpenSSH's client) both use them. */
export function sshSettings(flags: FlagValues) {
  const identities = ((flags["ssh-identity"] as string[] | undefined) ?? []).map(expandHome);
  return {
    username: flags["ssh-username"] ? String(flags["ssh-username"]) : undefined,
    timeoutMs: Number(flags["ssh-timeout"]),
    strictHostKeyChecking: flags["strict-host-key-checking"] !== false,
    /** Berth's own file (read, and appended to when a new host is trusted), then the user's OpenSSH one. */
    knownHostsFile: expandHome(String(flags["known-hosts-file"])),
    userKnownHostsFile: join(homedir(), ".ssh", "known_hosts"),
    /** Explicit keys; none given means OpenSSH's default ones. */
    identityFiles: identities,
  };
}

/** The SSH tunnel --tunnel asks for, or null; failures become CliErrors (3: unreachable, 1: refused, 2: bad flag). */
export async function openTunnel(flags: FlagValues): Promise<SshTunnel | null> {
  const target = flags.tunnel ? String(flags.tunnel) : "";
  if (target === "") return null;
  const ssh = sshSettings(flags);
  try {
    return await SshTunnel.open({
      target,
      username: ssh.username,
      timeoutMs: ssh.timeoutMs,
      strictHostKeyChecking: ssh.strictHostKeyChecking,
      knownHostsFile: ssh.knownHostsFile,
      extraKnownHostsFiles: [ssh.userKnownHostsFile],
      identityFiles: ssh.identityFiles,
      defaultIdentities: ssh.identityFiles.length === 0,
      confirmNewHost: process.stdin.isTTY && process.stderr.isTTY ? askOnTerminal : undefined,
    });
  } catch (err) {
    if (err instanceof TunnelError)
      throw new CliError(
        err.message,
        { unavailable: EXIT.unavailable, refused: EXIT.error, usage: EXIT.usage }[err.code],
      );
    throw err;
  }
}

function expandHome(path: string): string {
  return path === "~" || path.startsWith("~/") ? join(homedir(), path.slice(1)) : path;
}

/** OpenSSH's question: only "yes" trusts the key. */
async function askOnTerminal(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    for (;;) {
      const answer = (await new Promise<string>((r) => rl.question(question, r))).trim().toLowerCase();
      if (answer === "yes") return true;
      if (answer === "no" || answer === "") return false;
      question = "Please type 'yes' or 'no': ";
    }
  } finally {
    rl.close();
  }
}

/** fleetctl's status and journal ran systemctl/journalctl over SSH on the unit's machine and took --ssh-port for
 * it; Berth asks the machine over the cluster's own connections, so the flag is accepted (scripts keep working)
 * and has no effect. */
export const IGNORED_SSH_PORT: FlagSpec = {
  name: "ssh-port",
  type: "number",
  value: "N",
  description: "accepted for fleetctl's scripts and ignored: no SSH is needed here",
};
