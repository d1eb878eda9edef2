// Node configuration: flags, then BERTH_* variables, then a --config file, then what the data directory
// remembers from the first start, then defaults. Invalid values are refused with the flag's name.
import { createPrivateKey, randomBytes, X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { checkDataFormat, DataFormatError } from "../datadir/format.ts";
import { type HostPort, HostPortError, splitHostPort } from "../host-port.ts";
import {
  fmt,
  isLoopback,
  type NodeConfig,
  SAVED_FILE,
  SECRET_FILE,
  type TlsFiles,
} from "../node/node-config.ts";
import { certificateProblem } from "../wire/certificate-problem.ts";
import { UsageError } from "./exit-codes.ts";
import { convert, defaultText, type FlagSpec, type FlagValues } from "./flags.ts";

export const NODE_FLAGS: FlagSpec[] = [
  {
    name: "name",
    type: "string",
    description: "member name, unique in the cluster",
    value: "NAME",
    env: "BERTH_NAME",
  },
  {
    name: "data-dir",
    type: "string",
    description: "where the log, snapshots and identity live",
    value: "DIR",
    env: "BERTH_DATA_DIR",
  },
  {
    name: "peer-addr",
    type: "string",
    description: "address for Raft peers",
    value: "HOST:PORT",
    env: "BERTH_PEER_ADDR",
  },
  {
    name: "peer-listen-addr",
    type: "string",
    description:
      "where the peer listener binds when it differs from --peer-addr (NAT, a proxy in front); outbound peer " +
      "connections leave from its host",
    value: "HOST:PORT",
    env: "BERTH_PEER_LISTEN_ADDR",
  },
  {
    name: "client-addr",
    type: "string",
    description: "address for berth clients (msgpack; HTTP requests there get the etcd-v2 API too)",
    value: "HOST:PORT",
    env: "BERTH_CLIENT_ADDR",
  },
  {
    name: "client-socket",
    type: "string",
    description:
      'unix socket for berth clients (msgpack); who can open it is admin: mode 0660 root:berth when the group exists, else 0600 ("off" to disable)',
    value: "PATH",
    env: "BERTH_CLIENT_SOCKET",
  },
  {
    name: "http-addr",
    type: "string",
    description: 'address of the etcd-v2 HTTP API ("off" to disable)',
    value: "HOST:PORT",
    env: "BERTH_HTTP_ADDR",
  },
  {
    name: "initial-cluster",
    type: "string",
    description: "founding members, NAME=HOST:PORT,...",
    value: "LIST",
    env: "BERTH_INITIAL_CLUSTER",
  },
  {
    name: "discovery",
    type: "string",
    description:
      "bootstrap from an etcd v2 discovery token (etcd-discovery, discovery.etcd.io, any etcd v2 or Berth " +
      "`/v2/keys/...` URL; see `berth discovery new`) instead of --initial-cluster; only a first start uses it",
    value: "URL",
    env: "BERTH_DISCOVERY",
  },
  {
    name: "discovery-fallback",
    type: "string",
    description:
      'when the token already has its size of members: "join" this cluster as a learner (a non-voting member ' +
      'that runs units), or "exit" (etcd\'s flag; "proxy", etcd\'s default, means join)',
    value: "join|exit",
    env: "BERTH_DISCOVERY_FALLBACK",
  },
  {
    name: "join",
    type: "boolean",
    description: "start empty and wait to be added with `berth cluster add`",
    env: "BERTH_JOIN",
  },
  {
    name: "cluster-secret-file",
    type: "string",
    description: "file holding the secret peers prove to each other",
    value: "FILE",
    env: "BERTH_CLUSTER_SECRET_FILE",
  },
  {
    name: "public-ip",
    type: "string",
    description: "IP address shown for this machine",
    value: "IP",
    env: "BERTH_PUBLIC_IP",
  },
  {
    name: "metadata",
    type: "string",
    description: "machine metadata for placement, k=v,k=v",
    value: "LIST",
    env: "BERTH_METADATA",
  },
  {
    name: "agent-ttl",
    type: "duration",
    description: "how long a silent machine is considered alive",
    env: "BERTH_AGENT_TTL",
  },
  { name: "tick", type: "duration", description: "Raft tick (heartbeat interval)", env: "BERTH_TICK" },
  {
    name: "election-ticks",
    type: "number",
    description: "ticks without a leader before an election",
    env: "BERTH_ELECTION_TICKS",
  },
  {
    name: "snapshot-count",
    type: "number",
    description: "applied entries between snapshots",
    env: "BERTH_SNAPSHOT_COUNT",
  },
  {
    name: "wal-segment-size",
    type: "number",
    description: "bytes per write-ahead log segment (preallocated with zeros, as etcd's 64 MiB)",
    value: "BYTES",
    env: "BERTH_WAL_SEGMENT_SIZE",
  },
  {
    name: "peer-max-frame",
    type: "number",
    description:
      "largest message accepted from a peer, in bytes (log appends are cut to a quarter of it, snapshots sent in chunks of half of it, at most 4 MiB)",
    value: "BYTES",
    env: "BERTH_PEER_MAX_FRAME",
  },
  {
    name: "max-client-connections",
    type: "number",
    description:
      "connections open at once on each of the client and HTTP ports and the admin socket; past it a newcomer replaces the oldest idle one (in its handshake, or HTTP with no request being answered), or is closed",
    env: "BERTH_MAX_CLIENT_CONNECTIONS",
  },
  {
    name: "request-timeout",
    type: "duration",
    description: "how long a client request may wait for a quorum",
    env: "BERTH_REQUEST_TIMEOUT",
  },
  {
    name: "docker-socket",
    type: "string",
    description: "Docker engine socket for container units",
    value: "PATH",
    env: "BERTH_DOCKER_SOCKET",
  },
  {
    name: "peer-cert-file",
    type: "string",
    description: "peer TLS: this member's certificate (PEM), presented to peers both ways",
    value: "FILE",
    env: "BERTH_PEER_CERT_FILE",
  },
  {
    name: "peer-key-file",
    type: "string",
    description: "peer TLS: the key of --peer-cert-file",
    value: "FILE",
    env: "BERTH_PEER_KEY_FILE",
  },
  {
    name: "peer-trusted-ca-file",
    type: "string",
    description: "peer TLS: the CA every peer certificate must be signed by",
    value: "FILE",
    env: "BERTH_PEER_TRUSTED_CA_FILE",
  },
  {
    name: "cert-file",
    type: "string",
    description: "TLS certificate (PEM) of the client and HTTP listeners",
    value: "FILE",
    env: "BERTH_SERVER_CERT_FILE",
  },
  {
    name: "key-file",
    type: "string",
    description: "the key of --cert-file",
    value: "FILE",
    env: "BERTH_SERVER_KEY_FILE",
  },
  {
    name: "trusted-ca-file",
    type: "string",
    description: "the CA client certificates must be signed by (with --client-cert-auth)",
    value: "FILE",
    env: "BERTH_TRUSTED_CA_FILE",
  },
  {
    name: "client-cert-auth",
    type: "boolean",
    description: "client and HTTP listeners require a client certificate signed by --trusted-ca-file",
    env: "BERTH_CLIENT_CERT_AUTH",
  },
  {
    name: "insecure-listen",
    type: "boolean",
    description: "allow client/HTTP listeners on non-loopback addresses without TLS and --client-cert-auth",
    env: "BERTH_INSECURE_LISTEN",
  },
  {
    name: "cloud-config",
    type: "string",
    description:
      "a #cloud-config user-data file: its berth: section sets these flags (flags given here win) and lists " +
      "cluster units to submit and start once the cluster is up (see `berth cloud-config validate`)",
    value: "FILE",
    env: "BERTH_CLOUD_CONFIG",
  },
  {
    name: "config",
    type: "string",
    description: "JSON file with any of these flags as keys",
    value: "FILE",
    env: "BERTH_CONFIG",
  },
];

const DEFAULTS: FlagValues = {
  "peer-addr": "127.0.0.1:7001",
  join: false,
  "client-cert-auth": false,
  "insecure-listen": false,
  metadata: "",
  // Sized for a lost machine's units to run elsewhere within 3 s (README, "The timing budget"): elections in
  // 0.5-1 s, the fence (72% of the TTL) outlasting them. Data directories keep the values they saved.
  "agent-ttl": 2500,
  tick: 50,
  "election-ticks": 10,
  "snapshot-count": 10_000,
  "wal-segment-size": 64 * 1024 * 1024,
  "peer-max-frame": 128 * 1024 * 1024,
  "request-timeout": 5000,
  "docker-socket": "/var/run/docker.sock",
};

/** The client and HTTP ports when --client-addr / --http-addr are not given (etcd 2's 4001 and etcd's 2379). */
const CLIENT_PORT = 4001;
const HTTP_PORT = 2379;

/**
 * Where clients are served by default: the peer address's host when it is a loopback address (so members on
 * 127.0.0.1, 127.0.0.2, 127.0.0.3 of one machine do not collide), else 127.0.0.1 (a network address would need TLS
 * with client certificates, or --insecure-listen: see the check below).
 */
function defaultClientHost(peer: HostPort): string {
  return isLoopback(peer.host) ? peer.host : "127.0.0.1";
}

/**
 * Defaults as `berth node --help` shows them. They are not the specs' `default`s: a parsed default would hide
 * --config and the data directory's node.json, which come after the flags (resolveNodeConfig).
 */
const SHOWN_DEFAULTS: Record<string, string> = {
  name: "the host name up to its first dot",
  "data-dir": "NAME.berth",
  "peer-listen-addr": "--peer-addr",
  "client-addr": `the --peer-addr host if it is a loopback address, else 127.0.0.1; port ${CLIENT_PORT}`,
  "client-socket": "DATA_DIR/berth.sock",
  "http-addr": `the --peer-addr host if it is a loopback address, else 127.0.0.1; port ${HTTP_PORT}`,
  "initial-cluster": "this member alone, NAME=PEER-ADDR (the token's members with --discovery)",
  discovery: "none",
  "discovery-fallback": "join",
  "cluster-secret-file": "the copy kept in DATA_DIR; a new random secret for a cluster of one",
  "public-ip": "the --client-addr host",
  "max-client-connections": "10000, less when the file descriptor limit is low",
  metadata: "none",
  "cloud-config": "none",
  config: "none",
};
for (const spec of NODE_FLAGS) {
  const v = DEFAULTS[spec.name];
  spec.shownDefault =
    SHOWN_DEFAULTS[spec.name] ?? (v === undefined || v === false ? undefined : defaultText(spec, v));
}

/** Room for a snapshot chunk and a useful append beside a message's own fields. */
function peerMaxFrame(n: number): number {
  if (!Number.isInteger(n) || n < 64 * 1024 || n > 1024 * 1024 * 1024)
    throw new UsageError("--peer-max-frame must be a whole number of bytes from 65536 to 1073741824");
  return n;
}

function maxConnections(v: unknown, num: (key: string) => number): number | null {
  if (v === undefined) return null;
  const n = num("max-client-connections");
  if (!Number.isInteger(n)) throw new UsageError("--max-client-connections must be a whole number");
  return n;
}

/**
 * Resolves the configuration from parsed flags (which already include BERTH_* variables) and the berth: section of
 * a --cloud-config file (`fromCloudConfig`, read by the caller), which comes before --config.
 */
export function resolveNodeConfig(flags: FlagValues, fromCloudConfig: FlagValues = {}): NodeConfig {
  const fromFile = { ...(flags.config ? readConfigFile(String(flags.config)) : {}), ...fromCloudConfig };
  const dataDirRaw = flags["data-dir"] ?? fromFile["data-dir"];
  const name0 = String(flags.name ?? fromFile.name ?? hostname().split(".")[0]);
  const dataDir = resolve(String(dataDirRaw ?? `${name0}.berth`));
  try {
    checkDataFormat(dataDir);
  } catch (err) {
    throw err instanceof DataFormatError ? new UsageError(err.message) : err;
  }
  const saved = readSaved(dataDir);
  const pick = (key: string) => flags[key] ?? fromFile[key] ?? saved[key] ?? DEFAULTS[key];

  const name = String(pick("name") ?? name0);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name)) {
    throw new UsageError(`--name "${name}" must be 1-63 letters, digits, '.', '_' or '-'`);
  }
  if (saved.name && saved.name !== name) {
    throw new UsageError(
      `--name ${name} differs from ${saved.name}, the member stored in --data-dir ${dataDir}`,
    );
  }
  const peerAddr = parseHostPort(String(pick("peer-addr")), "--peer-addr");
  const listenRaw = pick("peer-listen-addr");
  const peerListenAddr =
    listenRaw === undefined || listenRaw === ""
      ? peerAddr
      : parseHostPort(String(listenRaw), "--peer-listen-addr");
  const clientHost = defaultClientHost(peerAddr);
  const clientRaw = pick("client-addr");
  const clientAddr =
    clientRaw === undefined || clientRaw === ""
      ? { host: clientHost, port: CLIENT_PORT }
      : parseHostPort(String(clientRaw), "--client-addr");
  const socketRaw = pick("client-socket");
  const clientSocketFlag = socketRaw === undefined || socketRaw === "" ? null : String(socketRaw);
  const clientSocket =
    clientSocketFlag === "off"
      ? null
      : clientSocketFlag
        ? resolve(clientSocketFlag)
        : resolve(dataDir, "berth.sock");
  if (clientSocket && Buffer.byteLength(clientSocket) > 107)
    throw new UsageError(
      `--client-socket ${clientSocket} is longer than a unix socket path may be (107 bytes); choose a shorter one`,
    );
  const httpRaw = pick("http-addr");
  const httpAddr =
    httpRaw === undefined
      ? { host: clientHost, port: HTTP_PORT }
      : httpRaw === "off" || httpRaw === ""
        ? null
        : parseHostPort(String(httpRaw), "--http-addr");
  const join = Boolean(pick("join"));
  const discovery = discoveryUrl(flags, fromFile, saved);
  const fallbackRaw = String(pick("discovery-fallback") ?? "join");
  if (!["join", "exit", "proxy"].includes(fallbackRaw))
    throw new UsageError(`--discovery-fallback must be "join" or "exit", not "${fallbackRaw}"`);
  const initialCluster = parseInitialCluster(String(pick("initial-cluster") ?? ""), name, peerAddr, join);
  const metadata = parseMetadata(String(pick("metadata") ?? ""));
  const num = (key: string) => {
    const v = pick(key);
    const n =
      typeof v === "number"
        ? v
        : (convert({ name: key, type: "number", description: "" }, String(v)) as number);
    if (!(n > 0)) throw new UsageError(`--${key} must be positive`);
    return n;
  };
  const ms = (key: string) => {
    const v = pick(key);
    return typeof v === "number"
      ? v
      : (convert({ name: key, type: "duration", description: "" }, String(v)) as number);
  };
  const electionTicks = num("election-ticks");
  if (electionTicks < 3)
    throw new UsageError("--election-ticks must be at least 3 (heartbeats come every tick)");

  const str = (key: string) => {
    const v = pick(key);
    return v === undefined || v === null || v === "" ? null : String(v);
  };
  const peerTls = loadTls(
    { cert: "peer-cert-file", key: "peer-key-file", ca: "peer-trusted-ca-file" },
    str("peer-cert-file"),
    str("peer-key-file"),
    str("peer-trusted-ca-file"),
  );
  if (peerTls && !peerTls.ca)
    throw new UsageError(
      "--peer-trusted-ca-file is required with --peer-cert-file (peers verify each other's certificates against it)",
    );
  const clientTls = loadTls(
    { cert: "cert-file", key: "key-file", ca: "trusted-ca-file" },
    str("cert-file"),
    str("key-file"),
    str("trusted-ca-file"),
  );
  const clientCertAuth = Boolean(pick("client-cert-auth"));
  if (clientCertAuth && !clientTls)
    throw new UsageError("--client-cert-auth needs TLS: give --cert-file and --key-file");
  if (clientCertAuth && !clientTls?.ca)
    throw new UsageError(
      "--client-cert-auth needs --trusted-ca-file (the CA client certificates are signed by)",
    );
  const insecureListen = Boolean(pick("insecure-listen"));
  // "Anything reachable from the network is authenticated": refused before anything binds.
  if (!insecureListen && !(clientTls && clientCertAuth)) {
    for (const [flag, hp] of [
      ["--client-addr", clientAddr],
      ["--http-addr", httpAddr],
    ] as const) {
      if (hp && !isLoopback(hp.host))
        throw new UsageError(
          `${flag} ${fmt(hp)} is not a loopback address: serving clients there needs TLS with client ` +
            "certificates (--cert-file, --key-file, --trusted-ca-file, --client-cert-auth), or --insecure-listen " +
            "to accept unauthenticated clients from the network anyway",
        );
    }
  }

  const config: NodeConfig = {
    name,
    dataDir,
    peerAddr,
    peerListenAddr,
    clientAddr,
    clientSocket,
    clientSocketFlag,
    httpAddr,
    initialCluster,
    join,
    clusterSecret: "",
    publicIp: String(pick("public-ip") ?? clientAddr.host),
    metadata,
    agentTtlMs: ms("agent-ttl"),
    tickMs: ms("tick"),
    electionTicks,
    snapshotEvery: num("snapshot-count"),
    walSegmentBytes: num("wal-segment-size"),
    peerMaxFrameBytes: peerMaxFrame(num("peer-max-frame")),
    requestTimeoutMs: ms("request-timeout"),
    maxClientConnections: maxConnections(pick("max-client-connections"), num),
    dockerSocket: String(pick("docker-socket")),
    peerTls,
    clientTls,
    clientCertAuth,
    insecureListen,
    discovery,
    discoveryFallback: fallbackRaw === "exit" ? "exit" : "join",
  };
  config.clusterSecret = loadSecret(config, pick("cluster-secret-file") as string | undefined);
  return config;
}

/**
 * Reads and checks a certificate/key (and optional CA) given by flags: both or neither of cert and key, files
 * readable, PEM that parses, and a key that belongs to the certificate. Errors name the flag.
 */
function loadTls(
  flags: { cert: string; key: string; ca: string },
  certPath: string | null,
  keyPath: string | null,
  caPath: string | null,
): TlsFiles | null {
  if (!certPath && !keyPath) {
    if (caPath)
      throw new UsageError(
        `--${flags.ca} is only used with TLS: give --${flags.cert} and --${flags.key} too`,
      );
    return null;
  }
  if (!certPath) throw new UsageError(`--${flags.key} needs --${flags.cert} (the certificate of that key)`);
  if (!keyPath) throw new UsageError(`--${flags.cert} needs --${flags.key} (the certificate's private key)`);
  const read = (flag: string, path: string): Buffer => {
    if (!existsSync(path)) throw new UsageError(`--${flag} ${path}: no such file`);
    try {
      return readFileSync(path);
    } catch (e) {
      throw new UsageError(`--${flag} ${path} is unreadable: ${(e as Error).message}`);
    }
  };
  const cert = read(flags.cert, certPath);
  const key = read(flags.key, keyPath);
  const ca = caPath ? read(flags.ca, caPath) : null;
  const certCheck = certificateProblem(cert);
  if (certCheck) throw new UsageError(`--${flags.cert} ${certPath} ${certCheck}`);
  const caCheck = ca && certificateProblem(ca);
  if (caCheck) throw new UsageError(`--${flags.ca} ${caPath} ${caCheck}`);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new UsageError(
      `--${flags.cert} ${certPath} cannot be read as a certificate: ${(e as Error).message}`,
    );
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new UsageError(`--${flags.key} ${keyPath} is not a PEM private key: ${(e as Error).message}`);
  }
  if (!x509.checkPrivateKey(privateKey))
    throw new UsageError(
      `--${flags.key} ${keyPath} does not match --${flags.cert} ${certPath} (the key belongs to another certificate)`,
    );
  if (ca && caPath) {
    try {
      new X509Certificate(ca);
    } catch (e) {
      throw new UsageError(
        `--${flags.ca} ${caPath} cannot be read as a certificate: ${(e as Error).message}`,
      );
    }
  }
  return {
    certFile: resolve(certPath),
    keyFile: resolve(keyPath),
    caFile: caPath ? resolve(caPath) : null,
    cert,
    key,
    ca,
  };
}

/**
 * A node address flag: HOST:PORT as src/host-port.ts reads it, with a host and a port other than 0 (the address
 * is advertised to peers and clients, who cannot dial either).
 */
export function parseHostPort(raw: string, flag: string): HostPort {
  let hp: HostPort;
  try {
    hp = splitHostPort(raw.trim());
  } catch (err) {
    if (!(err instanceof HostPortError)) throw err;
    throw new UsageError(`${flag} must be HOST:PORT, not "${raw}" (${err.reason})`);
  }
  if (hp.host === "") throw new UsageError(`${flag} must be HOST:PORT, not "${raw}" (no host)`);
  if (hp.port === 0) throw new UsageError(`${flag} must be HOST:PORT, not "${raw}" (port 0)`);
  return hp;
}

export function parseInitialCluster(
  raw: string,
  self: string,
  peerAddr: HostPort,
  join: boolean,
): Map<string, string> {
  const members = new Map<string, string>();
  if (join) {
    if (raw)
      throw new UsageError(
        "--join and --initial-cluster exclude each other: a joining node learns the members",
      );
    return members;
  }
  if (!raw) {
    members.set(self, fmt(peerAddr));
    return members;
  }
  for (const part of raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new UsageError(`--initial-cluster entry "${part}" must be NAME=HOST:PORT`);
    const name = part.slice(0, eq);
    if (members.has(name)) throw new UsageError(`--initial-cluster names ${name} twice`);
    members.set(name, fmt(parseHostPort(part.slice(eq + 1), `--initial-cluster (${name})`)));
  }
  const mine = members.get(self);
  if (!mine) throw new UsageError(`--initial-cluster does not list this member (--name ${self})`);
  if (mine !== fmt(peerAddr)) {
    throw new UsageError(
      `--initial-cluster gives ${self} the address ${mine} but --peer-addr is ${fmt(peerAddr)}`,
    );
  }
  return members;
}

export function parseMetadata(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new UsageError(`--metadata entry "${part}" must be KEY=VALUE`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

function readConfigFile(path: string): FlagValues {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new UsageError(`--config ${path}: ${(e as Error).message}`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("expected a JSON object");
    const known = new Set(NODE_FLAGS.map((f) => f.name));
    for (const key of Object.keys(v)) {
      if (!known.has(key))
        throw new Error(`unknown key "${key}" (keys are the flag names, e.g. "peer-addr")`);
    }
    return v as FlagValues;
  } catch (e) {
    throw new UsageError(`--config ${path}: ${(e as Error).message}`);
  }
}

/**
 * --discovery for a first start: an http(s) URL, alone (not with --initial-cluster or --join). A data directory
 * that already holds a member ignores it, as etcd does: the cluster is bootstrapped.
 */
function discoveryUrl(flags: FlagValues, fromFile: FlagValues, saved: FlagValues): string | null {
  const raw = flags.discovery ?? fromFile.discovery;
  if (raw === undefined || raw === "" || saved.name !== undefined) return null;
  const url = String(raw);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--discovery must be an http:// or https:// URL, not "${url}"`);
  }
  if (!/^https?:$/.test(parsed.protocol) || parsed.search || parsed.hash)
    throw new UsageError(`--discovery must be an http:// or https:// URL without a query, not "${url}"`);
  for (const other of ["initial-cluster", "join"])
    if (flags[other] || fromFile[other])
      throw new UsageError(`--discovery and --${other} exclude each other: the token names the members`);
  return url;
}

function readSaved(dataDir: string): FlagValues {
  const path = join(dataDir, SAVED_FILE);
  if (!existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, "utf8")) as FlagValues;
  } catch (e) {
    throw new UsageError(`${path} is unreadable (${(e as Error).message}); fix it or pass every flag again`);
  }
}

/**
 * The cluster secret: from --cluster-secret-file, else the copy kept in the data directory, else (a node
 * founding a cluster alone) a fresh random one. Several founding members must share a file.
 */
function loadSecret(config: NodeConfig, file: string | undefined): string {
  const kept = join(config.dataDir, SECRET_FILE);
  let secret: string | undefined;
  if (file) {
    try {
      secret = readFileSync(file, "utf8").trim();
    } catch (e) {
      throw new UsageError(`--cluster-secret-file ${file}: ${(e as Error).message}`);
    }
    if (secret.length < 16)
      throw new UsageError(`--cluster-secret-file ${file} must hold at least 16 characters`);
  } else if (existsSync(kept)) {
    secret = readFileSync(kept, "utf8").trim();
  } else if (config.initialCluster.size <= 1 && !config.join && !config.discovery) {
    secret = randomBytes(32).toString("base64url");
  } else {
    throw new UsageError("--cluster-secret-file is required when the cluster has several members");
  }
  return secret; // kept in the data directory by saveNodeConfig, once the node holds the directory's lock
}
