// `berth list-machines --containers` (client method "machines.containers"): the containers each machine's agent
// manages, docker-ps-like. The node that takes the request asks every machine's node over the cluster's peer
// connections (peer method "agent.containers") and answers for its own machine itself. A machine answers from
// its agent's container units (unit, container id, image, unit state) and adds what its Docker engine says about
// the containers labelled berth.machine=<its id> (name, state, status text, creation time), when the engine
// answers quickly; a labelled container the agent does not run (a leftover) is listed too, with unit state "-".
import { existsSync } from "node:fs";
import type Docker from "dockerode";
import type { MachineContainer, MachineContainers, MachineInfo } from "../client/protocol.ts";
import type { KvStore } from "../kv/store.ts";
import { resolveMachine } from "../sched/machine.ts";
import { readRegistry } from "../sched/registry.ts";
import { ServiceError } from "../service/errors.ts";
import type { PeerRequester } from "../service/leader-router.ts";
import { RemoteError } from "../wire/errors.ts";
import { LABEL_MACHINE, LABEL_UNIT } from "./container-config.ts";
import { connectDocker, dockerErrorText } from "./docker-engine.ts";
import type { UnitHost } from "./unit-host.ts";

export interface MachineContainersDeps {
  selfName: string;
  machineId: string;
  store: KvStore;
  /** Linearizable read barrier (so a machine that just joined is asked too). */
  sync(): Promise<void>;
  /** This machine's agent (null while the node is starting). */
  agent(): UnitHost | null;
  peers: PeerRequester;
  timeoutMs: number;
  /** The node's --docker-socket. */
  dockerSocket: string;
}

/** What one machine answers to "agent.containers". */
export interface AgentContainersResult {
  containers: MachineContainer[];
  /** Why the engine's view is missing (unreachable engine), or absent. */
  engineError?: string;
}

/** How long a machine waits for its Docker engine's list before answering with the agent's view alone. */
const ENGINE_LIST_MS = 2_000;

export class MachineContainersService {
  constructor(private readonly d: MachineContainersDeps) {}

  // ---- client side (any node) -------------------------------------------------------------------------------

  /** Every machine (or the one named by id, id prefix or member name) with its containers. */
  async containers(machine?: string): Promise<MachineContainers[]> {
    await this.d.sync();
    let machines = [...readRegistry(this.d.store).machines.values()].sort((a, b) =>
      a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
    );
    if (machine !== undefined && machine !== "") machines = [resolveMachine(machines, machine)];
    return Promise.all(machines.map((m) => this.ofMachine(m)));
  }

  private async ofMachine(m: MachineInfo): Promise<MachineContainers> {
    const base = { machine: m.id, machineName: m.name, publicIp: m.publicIp };
    const local = m.id === this.d.machineId || (m.name !== "" && m.name === this.d.selfName);
    try {
      const r = local
        ? await this.agentContainers({})
        : ((await this.d.peers.request(
            m.name,
            "agent.containers",
            {},
            this.d.timeoutMs,
          )) as AgentContainersResult);
      const out: MachineContainers = { ...base, containers: r.containers ?? [] };
      if (r.engineError) out.engineError = r.engineError;
      return out;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const why =
        err instanceof RemoteError && e.code !== "timeout"
          ? (e.message ?? String(err))
          : `node ${m.name || "?"} is unreachable${m.state === "lost" ? " (machine lost)" : ""}: ${e.message ?? String(err)}`;
      return { ...base, containers: [], error: why };
    }
  }

  // ---- machine side ------------------------------------------------------------------------------------------

  /** Peer method "agent.containers" {}: this machine's containers. */
  async agentContainers(_params: unknown): Promise<AgentContainersResult> {
    const agent = this.d.agent();
    if (agent === null)
      throw new ServiceError("unavailable", `the agent of ${this.d.selfName} is not running yet`);
    const rows = new Map<string, MachineContainer>();
    const units = new Map<string, MachineContainer>();
    for (const s of agent.states()) {
      // Container units only (process units have no image).
      if (s.image === undefined) continue;
      const row: MachineContainer = {
        unit: s.name,
        containerId: s.containerId ? s.containerId.slice(0, 12) : null,
        image: s.image,
        name: null,
        state: null,
        status: null,
        created: null,
        active: s.active,
        sub: s.sub,
      };
      units.set(s.name, row);
      if (s.containerId) rows.set(s.containerId, row);
    }
    let engineError: string | undefined;
    let list: Docker.ContainerInfo[] = [];
    try {
      list = await withTimeout(this.engineList(units.size > 0), ENGINE_LIST_MS);
    } catch (e) {
      engineError = (e as Error).message;
    }
    for (const c of list) {
      let row = rows.get(c.Id);
      if (row === undefined) {
        const unit = c.Labels?.[LABEL_UNIT] ?? "";
        const known = units.get(unit);
        // A unit between containers (restarting) shows its old one as the engine reports it, not as the unit's.
        row = {
          unit,
          containerId: c.Id.slice(0, 12),
          image: c.Image,
          name: null,
          state: null,
          status: null,
          created: null,
          active: known && known.containerId === null ? known.active : "-",
          sub: known && known.containerId === null ? known.sub : "-",
        };
        if (known && known.containerId === null) units.delete(unit);
        rows.set(c.Id, row);
      }
      row.name = (c.Names?.[0] ?? "").replace(/^\//, "") || null;
      row.state = c.State ?? null;
      row.status = c.Status ?? null;
      row.created = typeof c.Created === "number" ? c.Created * 1000 : null;
    }
    // Container units with no container at the moment (starting, failed, pulling).
    const out = [...new Set([...rows.values(), ...units.values()])];
    out.sort((a, b) => (a.unit < b.unit ? -1 : a.unit > b.unit ? 1 : cmpId(a.containerId, b.containerId)));
    return engineError === undefined ? { containers: out } : { containers: out, engineError };
  }

  private async engineList(withUnits: boolean): Promise<Docker.ContainerInfo[]> {
    // As the agent: no socket, no engine (a machine without Docker runs process units only: nothing to say).
    if (!existsSync(this.d.dockerSocket)) {
      if (!withUnits) return [];
      throw new Error(`no Docker engine at unix://${this.d.dockerSocket}`);
    }
    let docker: Docker;
    try {
      docker = await connectDocker(this.d.dockerSocket);
    } catch (e) {
      throw new Error((e as Error).message);
    }
    try {
      return await docker.listContainers({
        all: true,
        filters: { label: [`${LABEL_MACHINE}=${this.d.machineId}`] },
      });
    } catch (e) {
      throw new Error(`listing containers failed: ${dockerErrorText(e)}`);
    }
  }
}

function cmpId(a: string | null, b: string | null): number {
  return (a ?? "") < (b ?? "") ? -1 : (a ?? "") > (b ?? "") ? 1 : 0;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the Docker engine did not answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
