// A private OpenSSH server on a loopback port for the tunnel tests: its own host key, one authorized client key,
// forwarding limited to the given destinations (so a test can tell traffic went through it). Started by PID,
// killed by PID, its directory removed.
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, signalAndWait, waitFor } from "./processes.ts";

export const SSHD = "/usr/sbin/sshd";

export class TestSshd {
  private proc: ChildProcess | null = null;

  private constructor(
    readonly dir: string,
    readonly port: number,
    /** The address it listens on (127.0.0.1 unless started inside a test machine). */
    readonly host: string,
    /** Prefixes the commands that reach it (ssh-keyscan): empty, or how to enter the network it is on. */
    private readonly clientPrefix: string[],
  ) {}

  get hostKeyFile(): string {
    return join(this.dir, "host_ed25519");
  }
  /** The private key sshd accepts for root. */
  get clientKeyFile(): string {
    return join(this.dir, "client_ed25519");
  }
  get target(): string {
    return `root@${this.host}:${this.port}`;
  }
  /** A HOME for client runs (no ~/.ssh of the machine's user leaks in), removed with the server. */
  get home(): string {
    return join(this.dir, "home");
  }
  /** In `home`: a known_hosts file holding this server's key, as ssh-keyscan reads it. */
  get knownHostsFile(): string {
    return join(this.home, "known_hosts");
  }
  /** The environment of a client run: `home`, no ssh-agent. */
  clientEnv(extra: Record<string, string> = {}): Record<string, string> {
    return { HOME: this.home, SSH_AUTH_SOCK: "", ...extra };
  }
  /** --tunnel through this server, with its authorized key and `knownHostsFile`. */
  tunnelFlags(): string[] {
    return [
      `--tunnel=${this.target}`,
      `--ssh-identity=${this.clientKeyFile}`,
      `--known-hosts-file=${this.knownHostsFile}`,
    ];
  }
  /** sshd's log so far. */
  get output(): string {
    try {
      return readFileSync(join(this.dir, "sshd.log"), "utf8");
    } catch {
      return "";
    }
  }

  /** --tunnel as another user of this machine (see start's `anyUser`). */
  targetFor(user: string): string {
    return `${user}@${this.host}:${this.port}`;
  }

  /**
   * Starts sshd on 127.0.0.1; only `permitOpen` (HOST:PORT, or "self": this sshd) may be reached through it.
   * `anyUser`: every user of the machine may log in with the client key (sshd reads the keys file as that user).
   * Inside a test machine (test/support/netns.ts): `host` and `port` to listen on, `serverPrefix` to run sshd
   * there, `clientPrefix` to reach it from where the clients run.
   */
  static async start(
    permitOpen: string[],
    opts: {
      anyUser?: boolean;
      host?: string;
      port?: number;
      serverPrefix?: string[];
      clientPrefix?: string[];
    } = {},
  ): Promise<TestSshd> {
    const dir = mkdtempSync(join(tmpdir(), "berth-sshd-"));
    if (opts.anyUser) chmodSync(dir, 0o711);
    const host = opts.host ?? "127.0.0.1";
    const port = opts.port ?? (await freePort(host));
    const s = new TestSshd(dir, port, host, opts.clientPrefix ?? []);
    keygen(s.hostKeyFile);
    keygen(s.clientKeyFile);
    writeFileSync(join(dir, "authorized_keys"), readFileSync(`${s.clientKeyFile}.pub`), {
      mode: opts.anyUser ? 0o644 : 0o600,
    });
    writeFileSync(
      join(dir, "sshd_config"),
      [
        `Port ${s.port}`,
        `ListenAddress ${host}`,
        `HostKey ${s.hostKeyFile}`,
        `PidFile ${join(dir, "sshd.pid")}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "StrictModes no",
        "AllowTcpForwarding yes",
        `PermitOpen ${permitOpen.map((p) => (p === "self" ? `${host}:${s.port}` : p)).join(" ")}`,
        "LogLevel DEBUG1", // logs each direct-tcpip channel with its target
        "",
      ].join("\n"),
    );
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // privilege separation directory
    // -E: the log goes to a file (with -e, a session's own debug lines would reach the client's stderr).
    const [cmd, ...args] = [
      ...(opts.serverPrefix ?? []),
      SSHD,
      "-D",
      "-E",
      join(dir, "sshd.log"),
      "-f",
      join(dir, "sshd_config"),
    ];
    const proc = spawn(cmd!, args, { stdio: "ignore" });
    s.proc = proc;
    try {
      await waitFor(`sshd on port ${s.port}`, () => s.hostKeyLine() !== "", 10_000, 100);
    } catch (err) {
      await s.stop();
      throw new Error(`${(err as Error).message}\n${s.output}`);
    }
    mkdirSync(s.home);
    writeFileSync(s.knownHostsFile, `${s.hostKeyLine()}\n`);
    return s;
  }

  /** What the real ssh-keyscan reads from this server (`-H`: with the host name hashed). */
  hostKeyLine(hashed = false): string {
    try {
      const [cmd, ...args] = [
        ...this.clientPrefix,
        "ssh-keyscan",
        ...(hashed ? ["-H"] : []),
        ...["-t", "ed25519", "-p", String(this.port), this.host],
      ];
      return execFileSync(cmd!, args, {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
        timeout: 5000,
      }).trim();
    } catch {
      return "";
    }
  }

  /** The host key's SHA256 fingerprint as ssh-keygen prints it. */
  fingerprint(): string {
    const out = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", `${this.hostKeyFile}.pub`], {
      encoding: "utf8",
    });
    return out.split(/\s+/)[1]!;
  }

  /** Ends every client connection (the per-connection sshd processes), as a network drop would; keeps listening. */
  dropConnections(): number {
    const pid = this.proc?.pid;
    if (!pid) return 0;
    const children = spawnSync("pgrep", ["-P", String(pid)], { encoding: "utf8" })
      .stdout.split(/\s+/)
      .filter(Boolean);
    for (const child of children) process.kill(Number(child), "SIGTERM"); // children of the sshd this file started
    return children.length;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (p) await signalAndWait(p, "SIGTERM");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function keygen(file: string): void {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "berth-test", "-f", file]);
}
