// A node's configuration as the node uses it (resolved from flags, variables, a --config file and the data
// directory by src/cli/node-config.ts), and what the data directory keeps of it for a restart.
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { FORMAT_FILE, formatRecord } from "../datadir/format.ts";
import { type HostPort, joinHostPort } from "../host-port.ts";

export interface NodeConfig {
  name: string;
  dataDir: string;
  /** The peer address the cluster knows this member by (in --initial-cluster and the Raft configuration). */
  peerAddr: HostPort;
  /** Where the peer listener binds (--peer-listen-addr; default peerAddr), as etcd's listen vs advertise URLs. */
  peerListenAddr: HostPort;
  clientAddr: HostPort;
  /** The unix socket admins reach the node on (absolute path), or null (--client-socket off). */
  clientSocket: string | null;
  /** --client-socket as given (saved so a restart keeps it), or null for the default DATA_DIR/berth.sock. */
  clientSocketFlag: string | null;
  httpAddr: HostPort | null;
  /** Founding members: name -> peer address. Empty when joining an existing cluster. */
  initialCluster: Map<string, string>;
  join: boolean;
  clusterSecret: string;
  publicIp: string;
  metadata: Record<string, string>;
  agentTtlMs: number;
  tickMs: number;
  electionTicks: number;
  snapshotEvery: number;
  walSegmentBytes: number;
  /** The largest frame accepted from a peer (--peer-max-frame): bounds log appends and snapshot chunks. */
  peerMaxFrameBytes: number;
  requestTimeoutMs: number;
  /** Explicit --max-client-connections, or null for the default derived from the file descriptor limit. */
  maxClientConnections: number | null;
  dockerSocket: string;
  /** Peer TLS (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file), or null for plaintext peers. */
  peerTls: TlsFiles | null;
  /** TLS of the client (msgpack) and HTTP listeners (--cert-file, --key-file, --trusted-ca-file). */
  clientTls: TlsFiles | null;
  /** --client-cert-auth: clients must present a certificate signed by --trusted-ca-file. */
  clientCertAuth: boolean;
  /** --insecure-listen: allow client/HTTP listeners on non-loopback addresses without TLS client auth. */
  insecureListen: boolean;
  /** --discovery: the token URL a first start bootstraps from (etcd's v2 discovery), or null. */
  discovery: string | null;
  /** --discovery-fallback: what a first start does when the token is full ("join" as a learner, or "exit"). */
  discoveryFallback: "join" | "exit";
}

/** Certificate files (absolute paths) and their PEM contents, checked when the configuration is resolved. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string | null;
  cert: Buffer;
  key: Buffer;
  ca: Buffer | null;
}

/** What the data directory remembers from the first start (flags, as a --config file holds them). */
export const SAVED_FILE = "node.json";
export const SECRET_FILE = "cluster-secret";

/** Writes what a restart needs into the data directory (first start, or after flags changed it). */
export function saveNodeConfig(config: NodeConfig): void {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const saved = {
    name: config.name,
    "peer-addr": fmt(config.peerAddr),
    "peer-listen-addr": sameHostPort(config.peerListenAddr, config.peerAddr)
      ? undefined
      : fmt(config.peerListenAddr),
    "client-addr": fmt(config.clientAddr),
    "client-socket": config.clientSocketFlag === null ? undefined : (config.clientSocket ?? "off"),
    "http-addr": config.httpAddr ? fmt(config.httpAddr) : "off",
    "initial-cluster": [...config.initialCluster].map(([n, a]) => `${n}=${a}`).join(","),
    join: config.join,
    "public-ip": config.publicIp,
    metadata: Object.entries(config.metadata)
      .map(([k, v]) => `${k}=${v}`)
      .join(","),
    // Tuning given at the first start stays in force across restarts (durations in ms).
    "agent-ttl": config.agentTtlMs,
    tick: config.tickMs,
    "election-ticks": config.electionTicks,
    "snapshot-count": config.snapshotEvery,
    "wal-segment-size": config.walSegmentBytes,
    "peer-max-frame": config.peerMaxFrameBytes,
    "request-timeout": config.requestTimeoutMs,
    "max-client-connections": config.maxClientConnections ?? undefined,
    "docker-socket": config.dockerSocket,
    ...(config.peerTls && {
      "peer-cert-file": config.peerTls.certFile,
      "peer-key-file": config.peerTls.keyFile,
      "peer-trusted-ca-file": config.peerTls.caFile ?? undefined,
    }),
    ...(config.clientTls && {
      "cert-file": config.clientTls.certFile,
      "key-file": config.clientTls.keyFile,
      "trusted-ca-file": config.clientTls.caFile ?? undefined,
    }),
    "client-cert-auth": config.clientCertAuth,
    "insecure-listen": config.insecureListen,
  };
  writeIfChanged(join(config.dataDir, FORMAT_FILE), formatRecord(), 0o644);
  writeIfChanged(join(config.dataDir, SAVED_FILE), `${JSON.stringify(saved, null, 2)}\n`, 0o644);
  writeIfChanged(join(config.dataDir, SECRET_FILE), `${config.clusterSecret}\n`, 0o600);
}

/**
 * Replaces a small file whole (written beside it, synced, renamed over it), and only when its content changes: a
 * restart on a full disk rewrites nothing, and a write that fails leaves the old file and no temporary one.
 */
function writeIfChanged(path: string, content: string, mode: number): void {
  try {
    if (readFileSync(path, "utf8") === content) return;
  } catch {
    // missing or unreadable: write it
  }
  const tmp = `${path}.tmp`;
  try {
    rmSync(tmp, { force: true }); // a leftover would keep its own mode
    const fd = openSync(tmp, "w", mode);
    try {
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new Error(`cannot write ${path}: ${(err as Error).message}`);
  }
}

/** 127.0.0.0/8, ::1, ::ffff:127.x and "localhost": addresses other machines cannot reach. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

export function fmt(hp: HostPort): string {
  return joinHostPort(hp.host, hp.port);
}

export function sameHostPort(a: HostPort, b: HostPort): boolean {
  return a.host === b.host && a.port === b.port;
}
