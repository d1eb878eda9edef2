// The per-unit state machine for a `[Container]` unit: one Docker container run through dockerode against the
// node's engine, with the same restart rules as a service's main process (Restart=, RestartSec=, TimeoutStartSec=,
// TimeoutStopSec=, StartLimit*=).
//
//   start:  [start limit] → adopt (a labelled container a previous agent left running) or
//           remove leftovers → image (pulled only when missing) → create → start → running
//   watch:  container wait → exit status (128+n = killed by signal n) → remove → auto-restart per Restart=;
//           an engine that goes away: engine-lost until it answers again, then the container is read afresh
//   stop:   docker stop (SIGTERM, SIGKILL after TimeoutStopSec) → remove → dead / failed
//
// Start limits, timeouts, Restart= and the state the agent sees are UnitLifecycle's (unit-lifecycle.ts); this
// file creates, watches and removes the container.
import { constants as osConstants } from "node:os";
import { PassThrough } from "node:stream";
import type Docker from "dockerode";
import { type ContainerConfig, LABEL_HASH, LABEL_MACHINE, LABEL_UNIT } from "./container-config.ts";
import { DockerDemux } from "./docker-demux.ts";
import {
  connectDocker,
  dockerErrorText,
  EngineUnreachable,
  engineAnswered,
  engineGone,
  reconnectDocker,
  statusOf,
  waitContainer,
} from "./docker-engine.ts";
import { exitText, failureResult, isClean } from "./exit-status.ts";
import { type TeardownReason, UnitLifecycle } from "./unit-lifecycle.ts";
import type { ExitInfo, RunnerContext, StepRecord, UnitState } from "./unit-types.ts";

export const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";
/** How long state() may report a memory figure before it is refreshed (in the background). */
const MEMORY_REFRESH_MS = 2_000;
/** After a container exits, how long to wait for its last log lines before reporting the exit. */
const LOG_DRAIN_MS = 500;

/** "80" → [80, 80]; "8000-8010" → [8000, 8010]. */
const range = (ports: string): [number, number] => {
  const [a, b = a] = ports.split("-").map(Number) as [number, number?];
  return [a, b!];
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const SIGNAL_BY_NUMBER = new Map<number, string>(
  Object.entries(osConstants.signals).map(([name, n]) => [n as number, name.replace(/^SIG/, "")]),
);

/** A container's exit code as a process exit: 128+n is how Docker reports death by signal n. */
export function containerExit(exitCode: number): ExitInfo {
  if (exitCode > 128 && exitCode < 128 + 65) {
    const sig = SIGNAL_BY_NUMBER.get(exitCode - 128);
    if (sig !== undefined) return { code: "killed", status: sig };
  }
  return { code: "exited", status: exitCode };
}

/**
 * The agent's view of the containers a previous agent on this machine left behind (found by label): consulted
 * once per unit on its first start.
 */
export interface Adoption {
  /** The id of a running container for this unit with this hash, once; null if there is none. */
  take(unit: string, hash: string): Promise<string | null>;
}

/**
 * Run once when an agent starts: every container labelled with this machine is either kept for adoption (a unit
 * that is wanted running, same hash, still running) or removed. Never throws; an engine that cannot be reached
 * leaves nothing to adopt (each container unit then reports the engine error itself).
 */
export async function sweepContainers(
  socketPath: string,
  machineId: string,
  wanted: Map<string, string>,
  logger: (l: string) => void,
): Promise<Map<string, string>> {
  const keep = new Map<string, string>();
  let docker: Docker;
  try {
    docker = await connectDocker(socketPath);
  } catch (e) {
    logger(`agent: container sweep skipped: ${(e as Error).message}`);
    return keep;
  }
  let list: Docker.ContainerInfo[];
  try {
    list = await docker.listContainers({ all: true, filters: { label: [`${LABEL_MACHINE}=${machineId}`] } });
  } catch (e) {
    logger(`agent: container sweep failed: ${dockerErrorText(e)}`);
    return keep;
  }
  for (const c of list) {
    const unit = c.Labels[LABEL_UNIT] ?? "";
    const hash = c.Labels[LABEL_HASH] ?? "";
    if (wanted.get(unit) === hash && c.State === "running" && !keep.has(unit)) {
      keep.set(unit, c.Id);
      logger(`agent: ${unit}: container ${c.Id.slice(0, 12)} is still running, adopting it`);
      continue;
    }
    const why = !wanted.has(unit)
      ? "its unit is not wanted here"
      : wanted.get(unit) !== hash
        ? "its unit has changed"
        : c.State !== "running"
          ? `it is ${c.State}`
          : "a duplicate";
    logger(`agent: ${unit || "?"}: removing container ${c.Id.slice(0, 12)} (${why})`);
    try {
      await docker.getContainer(c.Id).remove({ force: true });
    } catch (e) {
      if (statusOf(e) !== 404)
        logger(`agent: removing container ${c.Id.slice(0, 12)} failed: ${dockerErrorText(e)}`);
    }
  }
  return keep;
}

export interface ContainerRunnerOptions {
  socketPath: string;
  machineId: string;
  adoption?: Adoption;
}

export class ContainerRunner extends UnitLifecycle {
  private firstStart = true;
  private docker: Docker | null = null;
  private containerId: string | null = null;
  /** Resolves with the exit of the container being watched (null: the run ended before it was known). */
  private exit: Promise<ExitInfo | null> | null = null;
  private logStream: NodeJS.ReadableStream | null = null;
  private logsDone: Promise<void> = Promise.resolve();
  private memoryBytes: number | null = null;
  private memoryAt = 0;
  private memoryBusy = false;

  constructor(
    hash: string,
    private readonly cfg: ContainerConfig,
    ctx: RunnerContext,
    private readonly opts: ContainerRunnerOptions,
  ) {
    super(hash, cfg.service, ctx, cfg.warnings);
  }

  // -------------------------------------------------------------------------------------------------------------
  // State

  protected memoryReader(): () => number | null {
    const running = this.containerId !== null && this.sub === "running";
    if (running) this.refreshMemory();
    const memory = running ? this.memoryBytes : null;
    return () => memory;
  }

  protected override extraState(): Partial<UnitState> {
    return { containerId: this.containerId, image: this.cfg.image };
  }

  protected override changeKey(): string {
    return String(this.containerId);
  }

  /** Memory use from a one-shot stats call (usage less the reclaimable page cache), refreshed in the background. */
  private refreshMemory(): void {
    const id = this.containerId;
    const docker = this.docker;
    if (id === null || docker === null || this.memoryBusy || Date.now() - this.memoryAt < MEMORY_REFRESH_MS)
      return;
    this.memoryBusy = true;
    void docker
      .getContainer(id)
      .stats({ stream: false, "one-shot": true })
      .then((s) => {
        if (this.containerId !== id) return;
        const m = s.memory_stats;
        const st = (m?.stats ?? {}) as unknown as Record<string, number | undefined>;
        const cache = st.inactive_file ?? st.total_inactive_file ?? 0;
        if (typeof m?.usage === "number") this.memoryBytes = Math.max(0, m.usage - cache);
      })
      .catch(() => {})
      .finally(() => {
        this.memoryBusy = false;
        this.memoryAt = Date.now();
      });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Start

  protected async startSequence(gen: number): Promise<void> {
    const firstStart = this.firstStart;
    this.firstStart = false;
    this.set("activating", "start");
    try {
      const docker = await this.connect(gen);
      if (docker === null || gen !== this.gen) return;
      this.docker = docker;
      let adopted: Docker.ContainerInspectInfo | null = null;
      if (firstStart && this.opts.adoption !== undefined) {
        const id = await this.opts.adoption.take(this.name, this.hash);
        if (gen !== this.gen) return;
        if (id !== null) adopted = await this.inspectRunning(docker, id);
        if (gen !== this.gen) return;
      }
      let info: Docker.ContainerInspectInfo;
      if (adopted !== null) {
        info = adopted;
        this.containerId = info.Id;
        this.log(
          `${this.name}: Adopted running container ${info.Id.slice(0, 12)} (${info.Name.replace(/^\//, "")}).`,
        );
      } else {
        this.log(`Starting ${this.desc}...`);
        await this.removeLeftovers(docker, gen);
        if (gen !== this.gen) return;
        await this.ensureImage(docker, gen);
        if (gen !== this.gen) return;
        const container = await docker.createContainer(this.createOptions());
        this.containerId = container.id;
        if (gen !== this.gen) return void this.removeQuietly(container.id);
        await container.start();
        if (gen !== this.gen) return void this.removeQuietly(container.id);
        info = await container.inspect();
        if (gen !== this.gen) return;
      }
      const id = info.Id;
      const record: StepRecord = {
        step: "ExecStart",
        command: this.commandText(),
        pid: info.State.Pid || null,
        code: null,
        status: null,
        at: adopted !== null ? Date.parse(info.State.StartedAt) || this.ctx.now() : this.ctx.now(),
      };
      this.steps.set("ExecStart", record);
      // Adopted: re-attach from now on (what it wrote while no agent watched is in `docker logs`).
      this.attachLogs(docker, id, adopted !== null ? Math.floor(Date.now() / 1000) : 0);
      this.exit = this.watch(id, record);
      void this.exit.then((e) => {
        if (e !== null) this.onContainerExit(id, e, gen);
      });
      this.memoryAt = 0;
      this.clearStartTimer();
      this.set("active", "running", info.State.Pid || null);
      if (adopted === null) this.log(`Started ${this.desc}.`);
    } catch (e) {
      if (gen !== this.gen) return;
      const msg = e instanceof EngineUnreachable ? e.message : dockerErrorText(e);
      this.log(`${this.name}: ${msg}`);
      return this.failStart(gen, "resources");
    }
  }

  /**
   * The engine's client for a start. An engine that answered before but not now is most likely being restarted
   * (and Restart= has just brought this unit back after the engine stopped its container): the start waits for
   * it, within TimeoutStartSec=, rather than failing at once. null when the start was called off meanwhile.
   */
  private async connect(gen: number): Promise<Docker | null> {
    try {
      return await connectDocker(this.opts.socketPath);
    } catch (e) {
      if (!engineAnswered(this.opts.socketPath)) throw e;
      this.log(`${this.name}: ${(e as Error).message}; waiting for it to answer.`);
      return reconnectDocker(this.opts.socketPath, () => gen === this.gen);
    }
  }

  private async inspectRunning(docker: Docker, id: string): Promise<Docker.ContainerInspectInfo | null> {
    try {
      const info = await docker.getContainer(id).inspect();
      const labels = info.Config.Labels ?? {};
      if (info.State.Running && labels[LABEL_HASH] === this.hash && labels[LABEL_UNIT] === this.name)
        return info;
    } catch {}
    return null;
  }

  private commandText(): string {
    const words = [this.cfg.image, ...(this.cfg.exec ?? [])];
    return `docker run ${words.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : JSON.stringify(w))).join(" ")}`;
  }

  /** Removes what an earlier run of this unit left (by label), and refuses to touch a foreign container of our name. */
  private async removeLeftovers(docker: Docker, gen: number): Promise<void> {
    const mine = await docker.listContainers({
      all: true,
      filters: { label: [`${LABEL_UNIT}=${this.name}`, `${LABEL_MACHINE}=${this.opts.machineId}`] },
    });
    for (const c of mine) {
      if (gen !== this.gen) return;
      this.log(`${this.name}: Removing leftover container ${c.Id.slice(0, 12)} (${c.State}).`);
      await this.removeQuietly(c.Id);
    }
    try {
      const other = await docker.getContainer(this.cfg.containerName).inspect();
      const labels = other.Config.Labels ?? {};
      if (labels[LABEL_UNIT] === this.name) {
        await this.removeQuietly(other.Id);
        return;
      }
      throw new Error(
        `a container named ${this.cfg.containerName} (${other.Id.slice(0, 12)}) exists and was not created by Berth for this unit; not touching it`,
      );
    } catch (e) {
      if (statusOf(e) === 404) return;
      throw e;
    }
  }

  /** Pulls the image only when it is missing (Pull=missing), always (Pull=always), or never (Pull=never). */
  private async ensureImage(docker: Docker, gen: number): Promise<void> {
    const image = this.cfg.image;
    let present = true;
    try {
      await docker.getImage(image).inspect();
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
      present = false;
    }
    if (gen !== this.gen) return;
    if (present && this.cfg.pull !== "always") return;
    if (!present && this.cfg.pull === "never")
      throw new Error(`image ${image} is not present and Pull=never`);
    this.log(`${this.name}: Pulling image ${image}...`);
    try {
      const stream = await docker.pull(image);
      await new Promise<void>((resolve, reject) => {
        docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve()));
      });
    } catch (e) {
      if (present) {
        this.log(`${this.name}: Pulling image ${image} failed, using the local one: ${dockerErrorText(e)}`);
        return;
      }
      throw new Error(`image ${image} is not present and pulling it failed: ${dockerErrorText(e)}`);
    }
    this.log(`${this.name}: Pulled image ${image}.`);
  }

  private createOptions(): Docker.ContainerCreateOptions {
    const c = this.cfg;
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    for (const p of c.publishPorts) {
      const [cFrom, cTo] = range(p.containerPort);
      const host = p.hostPort === "" ? null : range(p.hostPort);
      for (let i = 0; i <= cTo - cFrom; i++) {
        const key = `${cFrom + i}/${p.proto}`;
        exposed[key] = {};
        // A host range maps port by port; a single host port goes with the first container port only.
        const hostPort = host === null || host[0] + i > host[1] ? "" : String(host[0] + i);
        const list = bindings[key] ?? [];
        list.push({ HostIp: p.hostIp, HostPort: hostPort });
        bindings[key] = list;
      }
    }
    const binds = c.volumes.filter((v) => v.includes(":"));
    const anonymous: Record<string, object> = {};
    for (const v of c.volumes) if (!v.includes(":")) anonymous[v] = {};
    const opts: Docker.ContainerCreateOptions = {
      name: c.containerName,
      Image: c.image,
      Env: Object.entries(c.environment).map(([k, v]) => `${k}=${v}`),
      Labels: {
        ...c.labels,
        [LABEL_UNIT]: this.name,
        [LABEL_HASH]: this.hash,
        [LABEL_MACHINE]: this.opts.machineId,
      },
      ExposedPorts: exposed,
      Volumes: anonymous,
      HostConfig: {
        PortBindings: bindings,
        Binds: binds,
        // The agent restarts it (Restart=), not the engine.
        RestartPolicy: { Name: "no" },
        AutoRemove: false,
        ...(c.network !== null ? { NetworkMode: c.network } : {}),
      },
    };
    if (c.exec !== null) opts.Cmd = c.exec;
    if (c.user !== null) opts.User = c.user;
    if (c.workingDir !== null) opts.WorkingDir = c.workingDir;
    return opts;
  }

  /** Streams the container's stdout/stderr (demultiplexed) into the journal, line by line. */
  private attachLogs(docker: Docker, id: string, since: number): void {
    this.detachLogs();
    const out = new PassThrough();
    const err = new PassThrough();
    this.output.read(out, "stdout");
    this.output.read(err, "stderr");
    const demux = new DockerDemux(out, err);
    demux.on("error", () => {}); // written to after detachLogs destroyed it: nothing left to do
    this.logsDone = (async () => {
      try {
        const stream = (await docker
          .getContainer(id)
          .logs({ follow: true, stdout: true, stderr: true, since })) as unknown as NodeJS.ReadableStream;
        if (this.containerId !== id) {
          (stream as unknown as { destroy?: () => void }).destroy?.();
          return;
        }
        this.logStream = stream;
        stream.pipe(demux);
        await new Promise<void>((resolve) => {
          // At its end, the output is all in once the demultiplexer has passed every frame on; a stream cut
          // short (detachLogs, an engine gone) leaves what it still holds behind.
          let ended = false;
          stream.on("end", () => {
            ended = true;
          });
          demux.on("finish", resolve);
          stream.on("close", () => {
            if (!ended) resolve();
          });
          stream.on("error", () => resolve());
        });
      } catch (e) {
        if (statusOf(e) !== 404)
          this.log(`${this.name}: Cannot follow the container's output: ${dockerErrorText(e)}`);
      } finally {
        demux.destroy();
        out.end();
        err.end();
      }
    })();
  }

  private detachLogs(): void {
    const s = this.logStream as unknown as { destroy?: () => void } | null;
    this.logStream = null;
    s?.destroy?.();
  }

  /** Resolves with the container's exit once it is known and its last output is in; null if the run ended first. */
  private async watch(id: string, record: StepRecord): Promise<ExitInfo | null> {
    const e = await this.exitOf(id);
    if (e === null) return null;
    await Promise.race([this.logsDone, sleep(LOG_DRAIN_MS)]);
    Object.assign(record, { code: e.code, status: e.status, at: this.ctx.now() });
    return e;
  }

  /**
   * The container's exit as the engine tells it, through engine restarts: when the engine cannot be reached, the
   * unit waits for it to answer again and then reads the container afresh (still running: watched again; exited
   * or gone: that is the exit, and Restart= applies). null when the run ended meanwhile (a stop).
   */
  private async exitOf(id: string): Promise<ExitInfo | null> {
    const current = () => this.containerId === id && this.stopping === null;
    for (;;) {
      try {
        await waitContainer(this.opts.socketPath, id);
        // wait's status is not the whole story: inspect has the exit code and the OOM flag.
        const info = await this.docker!.getContainer(id).inspect();
        if (!info.State.Running) return this.exitFrom(info);
        continue;
      } catch (err) {
        if (!engineGone(err)) return this.lostTrack(id, err);
        if (!current()) return null;
        const why =
          err instanceof EngineUnreachable
            ? err.message
            : `Docker engine at unix://${this.opts.socketPath} went away: ${dockerErrorText(err)}`;
        this.log(`${this.name}: ${why}; reading container ${id.slice(0, 12)} again once it answers.`);
      }
      // Still active (no exit was seen, and with live-restore the container does run on), but not "running": that
      // cannot be seen now, and the PID the engine gave may be reused once the container is gone. A sub-state of
      // its own says why, and lasts only until the engine answers.
      this.set("active", "engine-lost", null);
      this.detachLogs();
      const docker = await reconnectDocker(this.opts.socketPath, current);
      if (docker === null) return null;
      this.docker = docker;
      let info: Docker.ContainerInspectInfo;
      try {
        info = await docker.getContainer(id).inspect();
      } catch (err) {
        if (engineGone(err) && current()) continue;
        return current() ? this.lostTrack(id, err) : null;
      }
      if (!current()) return null;
      if (!info.State.Running) {
        this.log(`${this.name}: Docker engine is back; container ${id.slice(0, 12)} is no longer running.`);
        return this.exitFrom(info);
      }
      this.log(`${this.name}: Docker engine is back; container ${id.slice(0, 12)} is still running.`);
      this.attachLogs(docker, id, Math.floor(Date.now() / 1000));
      this.set("active", "running", info.State.Pid || null);
    }
  }

  private exitFrom(info: Docker.ContainerInspectInfo): ExitInfo {
    if (info.State.OOMKilled)
      this.log(`${this.name}: A process of this unit has been killed by the OOM killer.`);
    return containerExit(info.State.ExitCode);
  }

  /** The engine answered, but not about this container's exit (removed behind our back, or an error). */
  private lostTrack(id: string, err: unknown): ExitInfo {
    this.log(`${this.name}: Lost track of container ${id.slice(0, 12)}: ${dockerErrorText(err)}`);
    return statusOf(err) === 404 ? { code: "killed", status: "KILL" } : { code: "exited", status: 255 };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Exit and stop

  private onContainerExit(id: string, e: ExitInfo, gen: number): void {
    if (gen !== this.gen || this.stopping !== null || this.containerId !== id) return;
    ++this.gen;
    this.mainExited(e, true);
  }

  protected async stopSequence(reason: TeardownReason): Promise<void> {
    const id = this.containerId;
    const docker = this.docker;
    if (id !== null && docker !== null) {
      try {
        await this.stopAndRemove(docker, id);
      } catch (e) {
        this.containerId = null;
        throw e;
      }
    }
    this.containerId = null;
    this.exit = null;
    this.enterDead(reason);
  }

  /** docker kill and remove in one call; the container's logs stop with it. */
  protected async killEverything(): Promise<void> {
    const id = this.containerId;
    if (id === null) return;
    this.detachLogs();
    await this.removeQuietly(id);
  }

  /** Stops the container if it still runs (docker stop: SIGTERM, SIGKILL after TimeoutStopSec), then removes it. */
  private async stopAndRemove(docker: Docker, id: string): Promise<void> {
    const exit = this.exit;
    const timeoutMs = this.cfg.service.timeoutStopMs;
    const c = docker.getContainer(id);
    let running = false;
    try {
      running = (await c.inspect()).State.Running;
    } catch {}
    if (running) {
      this.set("deactivating", "stop-sigterm");
      const t = Number.isFinite(timeoutMs) ? Math.max(0, Math.ceil(timeoutMs / 1000)) : 365 * 86_400;
      const started = Date.now();
      try {
        await c.stop({ t });
      } catch (e) {
        const s = statusOf(e);
        if (s !== 304 && s !== 404) this.log(`${this.name}: docker stop failed: ${dockerErrorText(e)}`);
      }
      if (exit !== null) {
        const e = await Promise.race([exit, sleep(10_000).then(() => null)]);
        if (e !== null) {
          if (e.code === "killed" && e.status === "KILL" && Date.now() - started >= t * 1000) {
            this.stopTimedOut();
          } else if (!isClean(e, true) && this.result === "success") {
            this.log(`${this.name}: Main process exited, ${exitText(e)}`);
            this.result = failureResult(e);
          }
        }
      }
    }
    this.detachLogs();
    this.set("deactivating", "stop-post");
    await this.removeQuietly(id);
  }

  private async removeQuietly(id: string): Promise<void> {
    const docker = this.docker;
    if (docker === null) return;
    try {
      await docker.getContainer(id).remove({ force: true });
    } catch (e) {
      const s = statusOf(e);
      // 404: already gone; 409: removal already in progress.
      if (s !== 404 && s !== 409)
        this.log(`${this.name}: Removing container ${id.slice(0, 12)} failed: ${dockerErrorText(e)}`);
    }
  }
}
