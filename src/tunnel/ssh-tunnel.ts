// Reaching a node through SSH (`--tunnel [user@]host[:port]`, as fleetctl --tunnel): one SSH connection to a
// cluster machine or a bastion, and a direct-tcpip channel per node connection, so the endpoints are addresses
// as the SSH server sees them (127.0.0.1:4001 is the node on that machine). The server's host key is checked
// against known_hosts files like OpenSSH's StrictHostKeyChecking=yes; a new host is trusted only when a person
// says so at a terminal. Authentication: the ssh-agent (SSH_AUTH_SOCK), then identity files.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { dirname, join } from "node:path";
import type { Duplex } from "node:stream";
// ssh2 is loaded when a tunnel is opened: every other subcommand (and `berth node`) starts without it.
import type { AuthenticationType, Client, ConnectConfig } from "ssh2";
import { checkHostKey, fingerprint, keyTypeOf, knownHostLine, parseKnownHosts } from "./known-hosts.ts";

export interface TunnelOptions {
  /** `[user@]host[:port]` of the SSH server; port 22 when none is given. */
  target: string;
  /** The user when `target` names none (default: the local user name). */
  username?: string;
  /** Limit for TCP connect, key exchange and authentication together. */
  timeoutMs: number;
  /** false: accept any host key (as fleetctl --strict-host-key-checking=false). */
  strictHostKeyChecking: boolean;
  /** Read, and appended to when a person trusts a new host. */
  knownHostsFile: string;
  /** Also read (never written), e.g. ~/.ssh/known_hosts. */
  extraKnownHostsFiles?: string[];
  /** Private keys (OpenSSH or PEM, unencrypted) tried after the agent; one that cannot be used is an error. */
  identityFiles?: string[];
  /** Also try OpenSSH's default keys (~/.ssh/id_ed25519, id_ecdsa, id_rsa), those that exist and need no passphrase. */
  defaultIdentities?: boolean;
  /** The ssh-agent's socket (default SSH_AUTH_SOCK). */
  agentSocket?: string;
  /** Asked when the host is not known; without it (no terminal) an unknown host is refused. */
  confirmNewHost?: (question: string) => Promise<boolean>;
}

/** The tunnel could not be set up: the SSH server is unreachable, or it (or its key) was refused. */
export class TunnelError extends Error {
  constructor(
    message: string,
    /** "unavailable": trying again later may work; "refused": something must be fixed first; "usage": bad flag. */
    readonly code: "unavailable" | "refused" | "usage",
  ) {
    super(message);
  }
}

export function parseTarget(target: string): { user: string | null; host: string; port: number } {
  const at = target.lastIndexOf("@");
  const user = at >= 0 ? target.slice(0, at) : null;
  const rest = at >= 0 ? target.slice(at + 1) : target;
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest) ?? /^([^:]+)(?::(\d+))?$/.exec(rest);
  const port = m?.[2] ? Number(m[2]) : 22;
  if (!m || (user !== null && user === "") || !(port > 0 && port < 65536))
    throw new TunnelError(`--tunnel "${target}": expected [USER@]HOST[:PORT]`, "usage");
  return { user, host: m[1]!, port };
}

const DEFAULT_IDENTITIES = ["id_ed25519", "id_ecdsa", "id_rsa"];

export class SshTunnel {
  /** close() was called: no more dials. */
  private closed = false;
  /** The SSH connection dropped (the server restarted, the network blinked): the next dial reconnects. */
  private lost = false;
  private reconnecting: Promise<void> | null = null;

  private constructor(
    private ssh: Client,
    readonly label: string,
    private readonly opts: TunnelOptions,
  ) {
    this.watch(ssh);
  }

  static async open(opts: TunnelOptions): Promise<SshTunnel> {
    const { ssh, label } = await connectSsh(opts);
    return new SshTunnel(ssh, label, opts);
  }

  /** A byte stream to `host:port` as the SSH server reaches it. */
  dial(host: string, port: number): Promise<Duplex> {
    return this.channel(`${host}:${port}`, (ssh, cb) => ssh.forwardOut("127.0.0.1", 0, host, port, cb));
  }

  /**
   * A byte stream to the unix socket `path` on the SSH server (OpenSSH's streamlocal forwarding, as fleetctl
   * --tunnel ran `fleetctl fd-forward`): sshd opens it as the SSH user, so that user's access to it decides.
   */
  dialUnix(path: string): Promise<Duplex> {
    return this.channel(
      path,
      (ssh, cb) => ssh.openssh_forwardOutStreamLocal(path, cb),
      (why) =>
        /open failed|connect failed|prohibited/i.test(why)
          ? `${why}: the SSH user cannot open it (it is for root and the berth group), or no node listens there`
          : why,
    );
  }

  private async channel(
    what: string,
    open: (ssh: Client, cb: (err: Error | undefined, channel: Duplex) => void) => void,
    explain: (why: string) => string = (why) => why,
  ): Promise<Duplex> {
    if (this.closed) throw new TunnelError(`the SSH tunnel to ${this.label} is closed`, "unavailable");
    if (this.lost) {
      this.reconnecting ??= connectSsh(this.opts)
        .then(({ ssh }) => {
          this.ssh = ssh;
          this.lost = false;
          this.watch(ssh);
        })
        .finally(() => {
          this.reconnecting = null;
        });
      await this.reconnecting;
    }
    return new Promise((resolve, reject) => {
      open(this.ssh, (err, channel) => {
        if (err)
          return reject(
            new TunnelError(`${this.label} cannot reach ${what}: ${explain(err.message)}`, "unavailable"),
          );
        resolve(channel);
      });
    });
  }

  close(): void {
    this.closed = true;
    this.ssh.end();
  }

  private watch(ssh: Client): void {
    ssh.on("close", () => {
      if (ssh === this.ssh) this.lost = true;
    });
  }
}

/** One authenticated SSH connection, its host key checked; TunnelErrors say what failed. */
async function connectSsh(opts: TunnelOptions): Promise<{ ssh: Client; label: string }> {
  const { user, host, port } = parseTarget(opts.target);
  const username = user ?? opts.username ?? userInfo().username;
  const label = `${username}@${host}:${port}`;
  const ssh2 = await import("ssh2");
  const auth = authMethods(username, opts, ssh2.utils.parseKey);
  if (auth.length === 0)
    throw new TunnelError(
      `no SSH credentials for ${label}: start an ssh-agent with your key (SSH_AUTH_SOCK) or pass --ssh-identity`,
      "refused",
    );
  const ssh = new ssh2.Client();
  let hostKeyProblem: string | null = null;
  const config: ConnectConfig = {
    host,
    port,
    username,
    readyTimeout: opts.timeoutMs,
    keepaliveInterval: 15_000,
    authHandler: auth,
    hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
      verifyHostKey(opts, host, port, key).then(
        (problem) => {
          hostKeyProblem = problem;
          verify(problem === null);
        },
        (err) => {
          hostKeyProblem = (err as Error).message;
          verify(false);
        },
      );
    },
  };
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error & { level?: string; code?: string }) => {
      ssh.end();
      if (hostKeyProblem) return reject(new TunnelError(hostKeyProblem, "refused"));
      if (err.level === "client-authentication")
        return reject(
          new TunnelError(
            `SSH authentication as ${username} to ${host}:${port} failed: no key was accepted`,
            "refused",
          ),
        );
      const why = err.code === "ECONNREFUSED" ? "connection refused (is sshd running there?)" : err.message;
      reject(new TunnelError(`cannot open the SSH tunnel to ${host}:${port}: ${why}`, "unavailable"));
    };
    ssh.once("ready", () => {
      ssh.off("error", fail);
      ssh.on("error", () => {}); // later errors end the connection: channels see it as a close
      resolve();
    });
    ssh.once("error", fail);
    ssh.connect(config);
  });
  return { ssh, label };
}

type ParseKey = typeof import("ssh2").utils.parseKey;

function authMethods(
  username: string,
  opts: TunnelOptions,
  parseKey: ParseKey,
): ConnectConfig["authHandler"] & object[] {
  const methods: { type: AuthenticationType; username: string; agent?: string; key?: Buffer }[] = [];
  const agent = opts.agentSocket ?? process.env.SSH_AUTH_SOCK;
  if (agent && existsSync(agent)) methods.push({ type: "agent", username, agent });
  if (opts.defaultIdentities) {
    for (const f of DEFAULT_IDENTITIES) {
      const key = readIfExists(join(homedir(), ".ssh", f));
      // An encrypted default key is the agent's business (ssh would ask for its passphrase): skipped here.
      if (key && !(parseKey(key) instanceof Error)) methods.push({ type: "publickey", username, key });
    }
  }
  for (const file of opts.identityFiles ?? []) {
    let key: Buffer;
    try {
      key = readFileSync(file);
    } catch (err) {
      throw new TunnelError(`--ssh-identity ${file}: ${(err as Error).message}`, "usage");
    }
    const parsed = parseKey(key);
    if (parsed instanceof Error) {
      // An encrypted key cannot be used without a prompt: say so rather than fail later with "not accepted".
      throw new TunnelError(`${file}: ${parsed.message} (encrypted keys: add them to an ssh-agent)`, "usage");
    }
    methods.push({ type: "publickey", username, key });
  }
  return methods as ConnectConfig["authHandler"] & object[];
}

function readIfExists(path: string): Buffer | null {
  try {
    return readFileSync(path);
  } catch {
    return null;
  }
}

/** null when the key may be used; otherwise why not, in OpenSSH's terms. */
async function verifyHostKey(
  opts: TunnelOptions,
  host: string,
  port: number,
  key: Buffer,
): Promise<string | null> {
  if (!opts.strictHostKeyChecking) return null;
  const files = [opts.knownHostsFile, ...(opts.extraKnownHostsFiles ?? [])];
  const entries = files.flatMap((f) => (existsSync(f) ? parseKnownHosts(readFileSync(f, "utf8")) : []));
  const verdict = checkHostKey(entries, host, port, key);
  const fp = fingerprint(key);
  switch (verdict.kind) {
    case "match":
      return null;
    case "revoked":
      return `the host key of ${host}:${port} (${keyTypeOf(key)} ${fp}) is marked as revoked in known_hosts`;
    case "mismatch":
      return (
        `WARNING: the host key of ${host}:${port} has changed (now ${keyTypeOf(key)} ${fp}); ` +
        `someone may be intercepting the connection. If the machine was reinstalled, remove its old line from ` +
        `${files.join(" or ")}`
      );
    case "unknown": {
      const question =
        `The authenticity of host ${host}:${port} can't be established.\n` +
        `${keyTypeOf(key)} key fingerprint is ${fp}.\n` +
        "Are you sure you want to continue connecting (yes/no)? ";
      if (!opts.confirmNewHost || !(await opts.confirmNewHost(question)))
        return (
          `the host key of ${host}:${port} (${keyTypeOf(key)} ${fp}) is not in ${files.join(" or ")}; ` +
          `check the fingerprint and add it (ssh-keyscan -p ${port} ${host} >> ${opts.knownHostsFile}), or ` +
          "connect once from a terminal to be asked"
        );
      mkdirSync(dirname(opts.knownHostsFile), { recursive: true, mode: 0o700 });
      appendFileSync(opts.knownHostsFile, knownHostLine(host, port, key), { mode: 0o600 });
      return null;
    }
  }
}
