// Node mode: one Berth member. Wires the durable Raft log, the replicated key/value store, the peer network and
// the client listener together, and shuts down gracefully (leadership handed over first) on SIGTERM.
import { mkdirSync } from "node:fs";
import { isIP, type Socket } from "node:net";
import { join } from "node:path";
import { AgentBridge } from "../agent/agent-bridge.ts";
import { fenceForTtl } from "../agent/lease.ts";
import { MachineContainersService } from "../agent/machine-containers.ts";
import { type ClusterAccess, KEEPALIVE_METHOD } from "../agent/machine-keepalive.ts";
import { SupervisorLink } from "../agent/supervisor-link.ts";
import { UnitStatusService } from "../agent/unit-status.ts";
import type { DesiredState, NodeStatus, SavedSnapshot, UnitSubmission } from "../client/protocol.ts";
import { type DataDirLock, lockDataDir } from "../datadir/lock.ts";
import { ADMIN, AUTH_DISABLED, type Caller, GUEST, type KeyAccess } from "../etcdv2/access.ts";
import { createKeyAccess } from "../etcdv2/auth/access.ts";
import { httpCaller, upgradeCaller } from "../etcdv2/auth/http.ts";
import { AuthStore } from "../etcdv2/auth/store.ts";
import { verifiedCertName } from "../etcdv2/client-cert.ts";
import { type HttpApi, startHttpApi } from "../etcdv2/index.ts";
import { RaftTrafficStats } from "../etcdv2/raft-stats.ts";
import { splitHostPort } from "../host-port.ts";
import { TtlExpirer } from "../kv/expiry.ts";
import { KvStore } from "../kv/store.ts";
import { NodeMetrics } from "../metrics/node-metrics.ts";
import { RaftDriver } from "../raft/driver.ts";
import { bestSuccessor } from "../raft/progress.ts";
import { FileRaftStorage } from "../raft/storage/file.ts";
import { PeerTransport } from "../raft/transport.ts";
import { retry, UNTIL_A_LEADER_ANSWERS } from "../retry.ts";
import { loadMachineId } from "../sched/machine.ts";
import { Scheduling } from "../sched/scheduling.ts";
import { ClusterClock } from "../service/cluster-clock.ts";
import { ServiceError } from "../service/errors.ts";
import { LeaderRouter } from "../service/leader-router.ts";
import { VERSION } from "../version.ts";
import { connect, type WireTls } from "../wire/client.ts";
import { ConnectionBudget, defaultClientConnectionLimit, openFileLimit } from "../wire/connection-budget.ts";
import { type Listener, listen } from "../wire/server.ts";
import { withOwnerOnlyUmask } from "../wire/unix-socket.ts";
import { CLIENT_METHODS, type ClientApiDeps, serveClient } from "./client-api.ts";
import { prepareSocketPath, restrictSocket } from "./client-socket.ts";
import { CLUSTER_ID_KEY, ClusterService } from "./cluster-service.ts";
import { httpDeps } from "./http-deps.ts";
import { KvService } from "./kv-service.ts";
import { KvStateMachine } from "./kv-state-machine.ts";
import { listening } from "./listen-error.ts";
import { fmt, isLoopback, type NodeConfig, saveNodeConfig } from "./node-config.ts";
import { runtimeOptionsNote } from "./runtime-options.ts";

export type Logger = (line: string) => void;

/** Requests one client connection may have in progress before the node stops reading from it for a while. */
const CLIENT_MAX_SERVED_REQUESTS = 4096;
/** Watches and other streams one client connection may keep open. */
const CLIENT_MAX_STREAMS = 1024;

export class BerthNode {
  readonly startedAt = new Date();
  private storage!: FileRaftStorage;
  private transport!: PeerTransport;
  private readonly raftStats = new RaftTrafficStats();
  /** When each peer's last Raft message came (performance.now()): the router's sign of a silent old leader. */
  private readonly peerHeardAt = new Map<string, number>();
  /** /metrics on the HTTP listener. */
  private readonly metrics = new NodeMetrics(CLIENT_METHODS);
  private clientBudget: ConnectionBudget | null = null;
  private httpBudget: ConnectionBudget | null = null;
  private socketBudget: ConnectionBudget | null = null;
  private driver!: RaftDriver;
  private expirer!: TtlExpirer;
  private clientListener: Listener | null = null;
  /** The unix socket: who can open it is admin (see src/etcdv2/access.ts). */
  private socketListener: Listener | null = null;
  /** etcd v2's users and roles for key permissions (v2auth's store; AUTH_DISABLED only before start). */
  keys: KeyAccess = AUTH_DISABLED;
  private httpApi: HttpApi | null = null;
  private readonly store = new KvStore();
  private kv!: KvService;
  /** etcd's v2 users and roles: /v2/auth, Basic auth on the HTTP API, and (via createKeyAccess) the msgpack API. */
  v2auth!: AuthStore;
  private cluster!: ClusterService;
  private router!: LeaderRouter;
  private scheduling!: Scheduling;
  private agentBridge: AgentBridge | null = null;
  private agent: SupervisorLink | null = null;
  private clock!: ClusterClock;
  /** The cluster's members and their peer addresses, as Raft last set them. */
  private members = new Map<string, string>();
  private unitStatus!: UnitStatusService;
  private machineContainers!: MachineContainersService;
  machineId = "";
  private stopping = false;
  private dataDirLock: DataDirLock | null = null;

  constructor(
    readonly config: NodeConfig,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const c = this.config;
    // Nothing in the data directory is touched before this node holds it (a second node there exits here).
    mkdirSync(c.dataDir, { recursive: true, mode: 0o700 });
    this.dataDirLock = await lockDataDir(c.dataDir);
    saveNodeConfig(c);
    this.machineId = loadMachineId(c.dataDir);
    this.storage = await FileRaftStorage.open(join(c.dataDir, "raft"), {
      segmentBytes: c.walSegmentBytes,
      logger: (l) => this.log(`[wal] ${l}`),
      onFsync: (seconds) => this.metrics.walFsync.observe(seconds),
    });
    const stateMachine = new KvStateMachine(this.store, (l) => this.log(`[kv] ${l}`));
    this.transport = new PeerTransport({
      selfId: c.name,
      secret: Buffer.from(c.clusterSecret),
      listenHost: c.peerListenAddr.host,
      listenPort: c.peerListenAddr.port,
      dialFrom: dialSource(c.peerListenAddr.host),
      tls: c.peerTls ? { cert: c.peerTls.cert, key: c.peerTls.key, ca: c.peerTls.ca ?? "" } : null,
      onMessage: (m) => {
        this.peerHeardAt.set(m.from, performance.now());
        this.scheduling.heardFrom(m.from);
        this.raftStats.received(m);
        this.driver.step(m);
      },
      onRequest: (method, params) => this.servePeerRequest(method, params),
      reportUnreachable: (id) => {
        this.raftStats.unreachable(id);
        this.driver.reportUnreachable(id);
      },
      reportSnapshot: (id, ok) => this.driver.reportSnapshot(id, ok),
      peerConnectionClosed: (id) => this.driver.peerConnectionClosed(id),
      logger: (l) => this.log(`[peer] ${l}`),
      snapshotDir: join(c.dataDir, "raft", "snap-recv"),
      maxFrameBytes: c.peerMaxFrameBytes,
    });
    const peers = this.transport;
    this.driver = new RaftDriver({
      id: c.name,
      storage: this.storage,
      // Every message the driver sends passes the traffic stats (/v2/stats/self and /v2/stats/leader).
      transport: {
        send: (messages) => {
          this.raftStats.sent(messages);
          peers.send(messages);
        },
        setPeers: (p) => {
          peers.setPeers(p);
          this.members = p;
          this.agent?.refreshClusterAccess();
        },
      },
      stateMachine,
      initialCluster: c.initialCluster,
      join: c.join,
      tickMs: c.tickMs,
      // An append must fit a peer frame beside its own fields.
      maxSizePerMsg: Math.min(1024 * 1024, Math.floor(c.peerMaxFrameBytes / 4)),
      electionTicks: c.electionTicks,
      snapshotEvery: c.snapshotEvery,
      logger: (l) => this.log(`[raft] ${l}`),
      onSnapshotSaved: (seconds) => this.metrics.snapshotSave.observe(seconds),
      // The driver has logged why it stopped; the process ends with a failure status (the error goes unhandled).
      onFatal: (err) => {
        process.exitCode = 1;
        throw err;
      },
    });
    const router = new LeaderRouter({
      selfId: c.name,
      leader: () => this.driver.leader(),
      peers: this.transport,
      timeoutMs: c.requestTimeoutMs,
      onLeaderChange: (listener) => this.driver.onLeaderChange(listener),
      peerSilent: (peer) =>
        performance.now() - (this.peerHeardAt.get(peer) ?? 0) > (c.tickMs * c.electionTicks) / 2,
    });
    this.router = router;
    this.clock = new ClusterClock({
      self: c.name,
      members: () => [...new Set([c.name, ...this.members.keys()])],
      askTime: async (member, timeoutMs) =>
        Number(await this.transport.request(member, CLOCK_METHOD, {}, timeoutMs)),
      wallNow: Date.now,
      logger: this.log,
      onShift: () => this.expirer?.replan(true),
    });
    this.kv = new KvService(this.store, this.driver, router, c.requestTimeoutMs, this.clock);
    const kv = this.kv;
    this.v2auth = new AuthStore({
      peek: (key) => this.store.peek(key),
      write: (req) => kv.writeAuthRecord(req),
      sync: () => kv.sync(),
    });
    this.keys = createKeyAccess(this.v2auth);
    this.cluster = new ClusterService({
      selfName: c.name,
      store: this.store,
      driver: this.driver,
      router,
      kv: this.kv,
      probe: (addr, ms) => probeStatus(addr, ms, clientSideTls(c)),
      status: () => this.status(),
      clockSkews: () => this.clock.skews(),
      catchUpTimeoutMs: Math.max(30_000, c.requestTimeoutMs),
    });
    this.scheduling = new Scheduling({
      name: c.name,
      machineId: this.machineId,
      publicIp: c.publicIp,
      metadata: c.metadata,
      agentTtlMs: c.agentTtlMs,
      store: this.store,
      kv: this.kv,
      writeAsLeader: (req) =>
        this.driver.isLeader() ? this.kv.write(req) : Promise.reject(new Error("no longer the leader")),
      leadership: () => ({ leader: this.driver.leader(), term: this.driver.term() }),
      logger: this.log,
    });
    this.unitStatus = new UnitStatusService({
      selfName: c.name,
      machineId: this.machineId,
      store: this.store,
      sync: () => this.kv.sync(),
      description: (hash) => this.scheduling.units.catalog.description(hash),
      agent: () => this.agent,
      peers: this.transport,
      timeoutMs: c.requestTimeoutMs,
    });
    this.machineContainers = new MachineContainersService({
      selfName: c.name,
      machineId: this.machineId,
      store: this.store,
      sync: () => this.kv.sync(),
      agent: () => this.agent,
      peers: this.transport,
      timeoutMs: c.requestTimeoutMs,
      dockerSocket: c.dockerSocket,
    });
    this.expirer = new TtlExpirer({
      store: this.store,
      isLeader: () => this.driver.isLeader(),
      propose: (data) => this.driver.propose(data),
      now: () => this.clock.now(),
      clockReady: () => this.clock.settled(),
      logger: (l) => this.log(`[ttl] ${l}`),
    });
    stateMachine.onChange(() => this.expirer.replan());
    this.driver.onLeaderChange((lead, term) => {
      this.metrics.leaderChanged(lead);
      this.log(`[raft] leader is ${lead ?? "(none)"} at term ${term}`);
      this.expirer.replan();
      if (lead === c.name) void this.onBecameLeader();
      this.scheduling.onLeaderChange(lead);
    });

    if (!c.peerTls && !isLoopback(c.peerListenAddr.host))
      this.log(
        `[peer] warning: the peer listener ${fmt(c.peerListenAddr)} is reachable from the network without peer TLS: ` +
          "the cluster secret keeps strangers out, but Raft traffic (all keys and values) crosses it in " +
          "plaintext; see --peer-cert-file, --peer-key-file and --peer-trusted-ca-file",
      );
    this.metrics.attach({
      driver: this.driver,
      store: this.store,
      connections: () => [
        ...(this.clientBudget ? [{ listener: "client", count: this.clientBudget.count }] : []),
        ...(this.httpBudget ? [{ listener: "http", count: this.httpBudget.count }] : []),
        ...(this.socketBudget ? [{ listener: "socket", count: this.socketBudget.count }] : []),
      ],
      units: () => (this.agent ? { connected: this.agent.connected(), states: this.agent.states() } : null),
    });
    const peerFlag = fmt(c.peerListenAddr) === fmt(c.peerAddr) ? "--peer-addr" : "--peer-listen-addr";
    await listening(peerFlag, fmt(c.peerListenAddr), () => this.transport.start());
    this.clock.start();
    const { notes } = await this.driver.start();
    for (const n of notes) this.log(`[wal] recovery: ${n}`);
    // Clients and the HTTP API share one TLS setup (etcd's --cert-file/--key-file/--client-cert-auth).
    const clientTls = c.clientTls
      ? {
          cert: c.clientTls.cert,
          key: c.clientTls.key,
          ca: c.clientTls.ca ?? undefined,
          requestCert: c.clientCertAuth,
        }
      : null;
    const clientLimit = c.maxClientConnections ?? defaultClientConnectionLimit(openFileLimit());
    // Each listener has its own limit: a flood on the HTTP port leaves msgpack clients (the CLI) alone.
    const clientBudget = new ConnectionBudget(clientLimit, "client", (l) => this.log(`[client] ${l}`));
    this.clientBudget = clientBudget;
    this.clientListener = await listening("--client-addr", fmt(c.clientAddr), () =>
      listen({
        gate: clientBudget,
        // One client connection cannot hold unbounded work: past these it is read more slowly, or refused streams.
        maxServedRequests: CLIENT_MAX_SERVED_REQUESTS,
        maxServedStreams: CLIENT_MAX_STREAMS,
        host: c.clientAddr.host,
        port: c.clientAddr.port,
        secret: null,
        role: "client",
        name: c.name,
        tls: clientTls,
        onRefused: (reason, remote, code) => {
          if (code === "tls_failed")
            this.log(`[client] refused a client connection from ${remote}: ${reason}`);
        },
        onConnection: (conn, _hello, socket) =>
          serveClient(conn, this.clientApiDeps(), this.tcpCaller(socket)),
        // The client port also answers etcd's HTTP API, as etcd 2 served clients on both 2379 and 4001.
        onHttp: (socket) => (this.httpApi ? this.httpApi.serve(socket) : socket.destroy()),
      }),
    );
    let socketMode = "";
    if (c.clientSocket) {
      const path = c.clientSocket;
      await prepareSocketPath(path);
      // Its own limit too: idle connections opened by a stuck or looping local script cannot take the descriptors
      // the node needs, and make room for an admin's command.
      const socketBudget = new ConnectionBudget(clientLimit, "admin socket", (l) =>
        this.log(`[client] ${l}`),
      );
      this.socketBudget = socketBudget;
      this.socketListener = await listening("--client-socket", path, () =>
        withOwnerOnlyUmask(() =>
          listen({
            gate: socketBudget,
            host: "",
            port: 0,
            path,
            maxServedRequests: CLIENT_MAX_SERVED_REQUESTS,
            maxServedStreams: CLIENT_MAX_STREAMS,
            secret: null,
            role: "client",
            name: c.name,
            onConnection: (conn) => serveClient(conn, this.clientApiDeps(), ADMIN),
          }),
        ),
      );
      socketMode = restrictSocket(path);
    }
    // Without --http-addr the API still serves the client port's HTTP requests.
    const httpAddr = c.httpAddr;
    const httpBudget = new ConnectionBudget(clientLimit, "HTTP", (l) => this.log(`[http] ${l}`));
    this.httpBudget = httpBudget;
    const metrics = this.metrics;
    this.httpApi = await listening("--http-addr", httpAddr ? fmt(httpAddr) : "", () =>
      startHttpApi({
        gate: httpBudget,
        metrics: {
          render: () => metrics.registry.render(),
          observe: (method, status, seconds) => metrics.http.observe(method, status, seconds),
        },
        ...(httpAddr && { host: httpAddr.host, port: httpAddr.port }),
        peerTls: c.peerTls !== null,
        tls: clientTls,
        logger: (l) => this.log(`[http] ${l}`),
        keys: this.keys,
        callerOf: (req) => httpCaller(this.v2auth, req),
        // `--endpoint http://...`: the connection becomes a client connection of the caller the request names.
        upgrader: {
          caller: (req) => upgradeCaller(this.v2auth, req),
          take: (stream, caller, remote) =>
            this.clientListener?.adopt(stream, remote, (conn) =>
              serveClient(conn, this.clientApiDeps(), caller),
            ),
        },
        deps: httpDeps({
          name: c.name,
          startedAt: this.startedAt,
          store: this.store,
          driver: this.driver,
          kv: this.kv,
          cluster: this.cluster,
          clusterId: () => this.clusterId(),
          raftStats: this.raftStats,
          auth: this.v2auth,
        }),
      }),
    );
    this.log(
      `berth ${VERSION} node ${c.name} serving clients on ${fmt(c.clientAddr)}` +
        (c.httpAddr ? ` and HTTP${c.clientTls ? "S" : ""} (etcd v2 API) on ${fmt(c.httpAddr)}` : "") +
        (c.clientTls ? ` with TLS${c.clientCertAuth ? " and client certificates" : ""}` : "") +
        (c.clientSocket ? `, admins on unix://${c.clientSocket} (${socketMode})` : "") +
        `, peers on ${fmt(c.peerListenAddr)}${c.peerTls ? " with TLS" : ""}` +
        (fmt(c.peerListenAddr) === fmt(c.peerAddr) ? "" : ` (known to the cluster as ${fmt(c.peerAddr)})`) +
        ` (data in ${c.dataDir}; at most ${clientLimit} connections on each client port${c.clientSocket ? " and the socket" : ""})`,
    );
    const runtime = runtimeOptionsNote();
    if (runtime)
      this.log(`runtime options: ${runtime} (set by berth at start; setting them yourself overrides)`);
    void this.publishAttributes();
    void this.scheduling.register();
    const fenceMs = fenceForTtl(c.agentTtlMs);
    const units = new SupervisorLink({
      agentDir: join(c.dataDir, "agent"),
      machineId: this.machineId,
      dockerSocket: c.dockerSocket,
      fenceMs,
      readPoint: () => this.kv.sync(),
      clusterAccess: () => this.clusterAccess(),
      logger: this.log,
    });
    this.agent = units;
    units.onStateChange((s) => this.metrics.unitState(s));
    units.onForget((name) => this.metrics.unitForgotten(name));
    this.agentBridge = new AgentBridge({
      machineId: this.machineId,
      store: this.store,
      units,
      write: (req) => this.kv.write(req),
      sync: () => this.kv.sync(),
      fenceMs,
      appliedIndex: () => this.driver.status().applied,
      logger: this.log,
    });
    this.agentBridge.start();
    units.start();
  }

  /** The unit operations with every right, for the units of `berth node --cloud-config` (src/cloud-config/apply.ts). */
  unitsApi() {
    const units = this.scheduling.units;
    return {
      list: () => units.list(),
      submit: (list: UnitSubmission[]) => units.submit(list, false),
      setDesired: (names: string[], desired: DesiredState) => units.setDesired(names, desired),
    };
  }

  /** True once stop() has begun. */
  isStopping(): boolean {
    return this.stopping;
  }

  private clientApiDeps(): ClientApiDeps {
    return {
      kv: this.kv,
      cluster: this.cluster,
      units: this.scheduling.units,
      unitStatus: this.unitStatus,
      machineContainers: this.machineContainers,
      status: () => this.status(),
      healthTimeoutMs: Math.min(2000, this.config.requestTimeoutMs),
      keys: this.keys,
      metrics: this.metrics.client,
      saveSnapshot: () => this.saveSnapshot(),
    };
  }

  /**
   * The whole store at a linearizable read point (every write committed before the request is in it), taken on
   * this member whatever its role: captured in one turn of the event loop with the index it reflects, then
   * encoded part by part between turns while entries go on being applied.
   */
  private async saveSnapshot(): Promise<SavedSnapshot> {
    await this.kv.sync();
    const st = this.driver.status();
    const header = {
      clusterId: this.clusterId(),
      index: st.applied,
      term: st.term,
      etcdIndex: this.store.index,
      member: this.config.name,
      version: VERSION,
      savedAt: Date.now(),
    };
    const parts: Uint8Array[] = [];
    for (const part of this.store.snapshotParts()) {
      parts.push(part);
      await new Promise((r) => setImmediate(r));
    }
    return { ...header, data: Buffer.concat(parts) };
  }

  /** A TCP client is guest, or with --client-cert-auth the etcd user its certificate's CN names (as etcd). */
  private tcpCaller(socket: Socket): Caller {
    if (!this.config.clientCertAuth) return GUEST;
    const cn = verifiedCertName(socket);
    return cn !== null ? { kind: "user", name: cn } : GUEST;
  }

  status(): NodeStatus {
    const s = this.driver.status();
    return {
      name: this.config.name,
      version: VERSION,
      leader: s.lead,
      role: s.role,
      term: s.term,
      commitIndex: s.commit,
      appliedIndex: s.applied,
      etcdIndex: this.store.index,
      clusterId: this.clusterId(),
      startedAt: this.startedAt.toISOString(),
      ...(this.driver.diskFull() !== null && { diskFull: this.driver.diskFull()! }),
    };
  }

  /** Graceful stop: hand leadership to the most up-to-date voter, then close everything. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.driver?.isLeader()) await this.handOverLeadership();
    this.expirer?.stop();
    this.clock?.stop();
    await this.scheduling?.stop();
    // The units stay with their supervisor: a node restart moves nothing (see src/agent/supervisor.ts).
    this.agentBridge?.stop();
    await this.clientListener?.close();
    await this.socketListener?.close();
    await this.httpApi?.close();
    await this.driver?.stop();
    await this.transport?.stop();
    await this.storage?.close();
    await this.dataDirLock?.release();
    this.log(`node ${this.config.name} stopped`);
  }

  private async handOverLeadership(): Promise<void> {
    // Only a voter heard from lately: a transfer to one that cannot answer would only delay the shutdown.
    const active = this.driver.status().progress.filter((p) => p.recentActive);
    const candidate = bestSuccessor(active, this.config.name);
    if (candidate === null) return;
    this.log(`[raft] transferring leadership to ${candidate} before shutting down`);
    this.driver.transferLeadership(candidate);
    const deadline = Date.now() + 2 * this.config.electionTicks * this.config.tickMs;
    while (Date.now() < deadline && this.driver.leader() === this.config.name)
      await new Promise((r) => setTimeout(r, 20));
  }

  /** What this machine's unit supervisor needs to speak for it while the node is away. */
  private clusterAccess(): ClusterAccess | null {
    const c = this.config;
    if (this.members.size === 0) return null;
    return {
      member: c.name,
      peers: Object.fromEntries([...this.members].filter(([id]) => id !== c.name)),
      secret: c.clusterSecret,
      tls: c.peerTls
        ? { cert: `${c.peerTls.cert}`, key: `${c.peerTls.key}`, ca: `${c.peerTls.ca ?? ""}` }
        : null,
      dialFrom: dialSource(c.peerListenAddr.host),
    };
  }

  private servePeerRequest(method: string, params: unknown): Promise<unknown> {
    if (method.startsWith("leader."))
      return this.router.serveForwarded(method.slice("leader.".length), params);
    // Another member measuring how far our clocks are apart (src/service/cluster-clock.ts).
    if (method === CLOCK_METHOD) return Promise.resolve(Date.now());
    // A unit supervisor keeping its machine alive while its node is away.
    if (method === KEEPALIVE_METHOD) return this.scheduling.keepalive(params);
    // `berth status` / `berth journal` asked on another node for a unit running here.
    if (method === "agent.status") return this.unitStatus.agentStatus(params);
    if (method === "agent.journal") return this.unitStatus.agentJournal(params);
    // `berth list-machines --containers` asked on another node.
    if (method === "agent.containers") return this.machineContainers.agentContainers(params);
    throw new ServiceError("unknown_method", `unknown peer method "${method}"`);
  }

  private async onBecameLeader(): Promise<void> {
    // The cluster id is fixed by the first leader ever (create-only, so later leaders keep it).
    if (this.clusterId() !== "") return;
    const id = Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString("hex");
    await this.kv.write({ method: "PUT", key: CLUSTER_ID_KEY, value: id, prevExist: false }).catch(() => {});
  }

  private clusterId(): string {
    const r = this.store.get(CLUSTER_ID_KEY, { recursive: false, sorted: false }, Date.now());
    return "node" in r ? (r.node.value ?? "") : "";
  }

  /** Retries until this node's client addresses are in the store (there may be no leader yet). */
  private async publishAttributes(): Promise<void> {
    const c = this.config;
    const attributes = {
      clientAddr: fmt(c.clientAddr),
      httpAddr: c.httpAddr ? fmt(c.httpAddr) : null,
      version: VERSION,
    };
    await retry(() => this.cluster.publish(attributes), {
      ...UNTIL_A_LEADER_ANSWERS,
      stopped: () => this.stopping,
      onRetry: (err) =>
        this.log(`[cluster] publishing member attributes failed, retrying: ${(err as Error).message}`),
    }).catch((err) => {
      if (!this.stopping) throw err;
    });
  }
}

/** Outbound peer connections leave from the listener's IP (not from a wildcard or a host name). */
/** A peer request answered with this member's wall clock (Date.now()). */
const CLOCK_METHOD = "clock.now";

export function dialSource(listenHost: string): string | undefined {
  return isIP(listenHost) !== 0 && listenHost !== "0.0.0.0" && listenHost !== "::" ? listenHost : undefined;
}

/**
 * How this node connects to members' client addresses (health probes): with the cluster's client TLS when this
 * node serves it, presenting its own certificate in case they require client certificates.
 */
function clientSideTls(c: NodeConfig): WireTls | null {
  if (!c.clientTls) return null;
  return { cert: c.clientTls.cert, key: c.clientTls.key, ca: c.clientTls.ca ?? undefined };
}

async function probeStatus(addr: string, timeoutMs: number, tls: WireTls | null): Promise<NodeStatus> {
  const { conn } = await connect({
    ...splitHostPort(addr),
    secret: null,
    role: "client",
    name: "health-probe",
    timeoutMs,
    tls,
  });
  try {
    return (await conn.request("node.status", {}, { timeoutMs })) as NodeStatus;
  } finally {
    conn.close();
  }
}
