// `berth status` and `berth journal` through any node: the node that takes the request finds the machine the unit
// is scheduled on (registry), and answers from its own agent when that is this machine, else asks that machine's
// node over the cluster's peer connections ("agent.status" / "agent.journal"). Following a journal on another
// machine polls its "agent.journal" with a cursor; following one here subscribes to the agent's journal.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type {
  AgentUnitState,
  JournalLine,
  MachineInfo,
  UnitProcess,
  UnitStatus,
} from "../client/protocol.ts";
import type { KvStore } from "../kv/store.ts";
import { readRegistry, unitKey } from "../sched/registry.ts";
import { badRequest, ServiceError } from "../service/errors.ts";
import type { PeerRequester } from "../service/leader-router.ts";
import { asObject, str } from "../service/params.ts";
import { expandSpecifiers } from "../unit/unit-file.ts";
import type { StreamSink } from "../wire/connection.ts";
import { RemoteError } from "../wire/errors.ts";
import type { JournalLine as AgentJournalLine } from "./agent.ts";
import { groupProcesses } from "./unit-cgroup.ts";
import type { UnitHost } from "./unit-host.ts";

export interface UnitStatusDeps {
  selfName: string;
  machineId: string;
  store: KvStore;
  /** Linearizable read barrier (so a unit just started is found). */
  sync(): Promise<void>;
  description(hash: string): string | null;
  /** This machine's agent (null while the node is starting). */
  agent(): UnitHost | null;
  peers: PeerRequester;
  timeoutMs: number;
  /** How often a follow of a journal on another machine polls it. */
  followPollMs?: number;
}

/** Where a journal was read up to: the time of the last line and how many lines had that time. */
export interface JournalCursor {
  at: number;
  count: number;
}

export interface AgentStatusResult {
  state: AgentUnitState | null;
  mainCommand: string | null;
  journal: JournalLine[];
  /** Missing from older nodes' answers. */
  processes?: UnitProcess[];
  hostname?: string;
}

export interface AgentJournalResult {
  lines: JournalLine[];
  cursor: JournalCursor;
}

export const STATUS_JOURNAL_LINES = 10;
/** A poll with a cursor reads at most this many lines back (more than a unit writes in one poll interval). */
const AFTER_WINDOW = 2000;
const MAX_LINES = 100_000;

interface Target {
  machine: string;
  info: MachineInfo | undefined;
  /** The member name of the machine's node ("" when the machine is unknown). */
  memberName: string;
  local: boolean;
}

export class UnitStatusService {
  constructor(private readonly d: UnitStatusDeps) {}

  // ---- client side (any node) -------------------------------------------------------------------------------

  async status(names: string[]): Promise<UnitStatus[]> {
    await this.d.sync();
    const view = readRegistry(this.d.store);
    const missing = names.filter((n) => !view.units.has(n));
    if (missing.length > 0)
      throw new ServiceError(
        "not_found",
        missing.length === 1
          ? `Unit ${missing[0]} does not exist.`
          : `Units do not exist: ${missing.join(", ")}`,
      );
    const out: UnitStatus[] = [];
    for (const name of names) {
      const targets = this.targets(name);
      const rec = view.units.get(name)!;
      for (const t of targets) {
        const r = await this.onMachine<AgentStatusResult>(t, "agent.status", {
          name,
          lines: STATUS_JOURNAL_LINES,
        });
        if (r.state === null) throw notLoaded(name);
        out.push({
          name,
          description: expandedDescription(this.d.description(rec.hash), name, t.machine, r.hostname),
          machine: t.machine,
          machineName: t.memberName,
          publicIp: t.info?.publicIp ?? null,
          state: r.state,
          mainCommand: r.mainCommand,
          journal: r.journal,
          ...(r.processes ? { processes: r.processes } : {}),
          ...(r.hostname ? { hostname: r.hostname } : {}),
          path: unitKey(name),
        });
      }
    }
    return out;
  }

  async journal(name: string, lines: number): Promise<JournalLine[]> {
    await this.d.sync();
    this.known(name);
    const t = this.journalTarget(name);
    return (await this.onMachine<AgentJournalResult>(t, "agent.journal", { name, lines })).lines;
  }

  /** Streams the last `lines` lines, then new ones, until the client closes the stream. */
  async follow(name: string, lines: number, sink: StreamSink): Promise<void> {
    await this.d.sync();
    this.known(name);
    const t = this.journalTarget(name);
    if (t.local) return this.followLocal(name, lines, sink);
    return this.followRemote(t, name, lines, sink);
  }

  private async followLocal(name: string, lines: number, sink: StreamSink): Promise<void> {
    const agent = this.requireAgent();
    // Subscribe before reading the tail so nothing written in between is lost; drop what the tail already has.
    let buffered: AgentJournalLine[] | null = [];
    const stop = agent.followJournal(name, (l) => {
      if (sink.closed) return;
      if (buffered !== null) buffered.push(l);
      else sink.push(toLine(l));
    });
    sink.onClose(stop);
    const tail = await agent.journal(name, { lines });
    if (sink.closed) return;
    const pending = buffered;
    buffered = null;
    const skip = overlap(tail, pending);
    for (const l of tail) sink.push(toLine(l));
    for (const l of pending.slice(skip)) sink.push(toLine(l));
  }

  private async followRemote(t: Target, name: string, lines: number, sink: StreamSink): Promise<void> {
    const pollMs = this.d.followPollMs ?? 300;
    let r = await this.onMachine<AgentJournalResult>(t, "agent.journal", { name, lines });
    let cursor = r.cursor;
    for (const l of r.lines) sink.push(l);
    let failingSince: number | null = null;
    let timer: ReturnType<typeof setTimeout> | null = null;
    sink.onClose(() => {
      if (timer) clearTimeout(timer);
    });
    const poll = async (): Promise<void> => {
      timer = null;
      if (sink.closed) return;
      try {
        r = await this.onMachine<AgentJournalResult>(t, "agent.journal", { name, after: cursor });
        failingSince = null;
        if (sink.closed) return;
        cursor = r.cursor;
        for (const l of r.lines) sink.push(l);
      } catch (err) {
        // A machine that stays unreachable ends the follow; a blip (leader change, reconnect) does not.
        const now = Date.now();
        failingSince ??= now;
        if (now - failingSince > 2 * this.d.timeoutMs) {
          const e = err as ServiceError;
          sink.end({ code: e.code ?? "unavailable", message: e.message });
          return;
        }
      }
      if (!sink.closed) timer = setTimeout(() => void poll(), pollMs);
    };
    timer = setTimeout(() => void poll(), pollMs);
  }

  // ---- machine side (the node running the unit) ------------------------------------------------------------

  /** Peer method "agent.status" {name, lines}. */
  async agentStatus(params: unknown): Promise<AgentStatusResult> {
    const p = asObject(params);
    const name = str(p, "name");
    const lines = count(p.lines, STATUS_JOURNAL_LINES);
    const agent = this.requireAgent();
    const state = ((await agent.status(name)) as AgentUnitState | null) ?? null;
    const journal = (await agent.journal(name, { lines })).map(toLine);
    return {
      state,
      mainCommand: state?.mainPid ? commandOf(state.mainPid) : null,
      journal,
      processes: state ? processesOf(state) : [],
      hostname: hostname(),
    };
  }

  /** Peer method "agent.journal" {name, lines} or {name, after: cursor}: lines and the cursor after them. */
  async agentJournal(params: unknown): Promise<AgentJournalResult> {
    const p = asObject(params);
    const name = str(p, "name");
    const agent = this.requireAgent();
    const after = cursorOf(p.after);
    if (after === null) {
      const lines = count(p.lines, STATUS_JOURNAL_LINES);
      // One line more than asked, so the cursor is right even for lines=0.
      const tail = await agent.journal(name, { lines: Math.max(lines, 1) });
      return {
        lines: tail.slice(tail.length - lines).map(toLine),
        cursor: cursorAfter(tail, { at: 0, count: 0 }),
      };
    }
    const window = await agent.journal(name, { lines: AFTER_WINDOW });
    const fresh = linesAfter(window, after);
    return { lines: fresh.map(toLine), cursor: cursorAfter(window, after) };
  }

  // ---- helpers ----------------------------------------------------------------------------------------------

  private known(name: string): void {
    if (!readRegistry(this.d.store).units.has(name))
      throw new ServiceError("not_found", `Unit ${name} does not exist.`);
  }

  /** The machines a unit is scheduled on; none is an error (fleet's "does not appear to be loaded"). */
  private targets(name: string): Target[] {
    const view = readRegistry(this.d.store);
    const sched = view.schedule.get(name);
    const machines = sched?.machines ?? [];
    if (machines.length === 0)
      throw notLoaded(name, view.units.get(name)?.desired === "inactive" ? undefined : sched?.reason);
    return machines.map((machine) => {
      const info = view.machines.get(machine);
      const memberName = info?.name ?? "";
      return {
        machine,
        info,
        memberName,
        local: machine === this.d.machineId || (memberName !== "" && memberName === this.d.selfName),
      };
    });
  }

  private journalTarget(name: string): Target {
    const targets = this.targets(name);
    if (targets.length > 1)
      throw badRequest(
        `Unable to get the journal of global unit ${name} (it runs on ${targets.length} machines); use \`berth status\``,
      );
    return targets[0]!;
  }

  private async onMachine<T>(
    t: Target,
    method: "agent.status" | "agent.journal",
    params: unknown,
  ): Promise<T> {
    if (t.local) {
      return (method === "agent.status" ? this.agentStatus(params) : this.agentJournal(params)) as Promise<T>;
    }
    const who = `machine ${t.machine.slice(0, 8)}...${t.info?.publicIp ? `/${t.info.publicIp}` : ""}`;
    if (t.memberName === "")
      throw new ServiceError("unavailable", `${who} is not known to the cluster (no machine record)`);
    try {
      return (await this.d.peers.request(t.memberName, method, params, this.d.timeoutMs)) as T;
    } catch (err) {
      const e = err as { code?: string; message?: string; data?: unknown };
      // The machine's node answered with an error of its own: pass it on as it is.
      if (err instanceof RemoteError && e.code !== "timeout")
        throw new ServiceError((e.code ?? "internal") as ServiceError["code"], e.message ?? "", e.data);
      throw new ServiceError(
        "unavailable",
        `${who} (node ${t.memberName}) is unreachable: ${e.message ?? String(err)}`,
      );
    }
  }

  private requireAgent(): UnitHost {
    const a = this.d.agent();
    if (a === null)
      throw new ServiceError("unavailable", `the agent of ${this.d.selfName} is not running yet`);
    return a;
  }
}

/** A journal line as clients get it, with this machine's host name (journalctl's _HOSTNAME). */
function toLine(l: AgentJournalLine): JournalLine {
  const line: JournalLine = { at: l.at, unit: l.unit, stream: l.stream, text: l.text };
  if (l.pid) line.pid = l.pid;
  if (l.ident) line.ident = l.ident;
  line.hostname = hostname();
  return line;
}

/** A unit's processes: its cgroup's, else (no cgroups on this machine) its main process alone. */
function processesOf(state: AgentUnitState): UnitProcess[] {
  if (state.cgroup) return groupProcesses(state.cgroup);
  if (state.mainPid === null) return [];
  const command = commandOf(state.mainPid);
  return command === null ? [] : [{ pid: state.mainPid, command }];
}

/** Description= as systemctl shows it: specifiers expanded (%i of a template's instance); as written when one
 * needs a value only the unit's machine has. */
function expandedDescription(
  text: string | null,
  unitName: string,
  machineId: string,
  host: string | undefined,
): string | null {
  if (text === null) return null;
  try {
    return expandSpecifiers(text, { unitName, machineId, ...(host ? { hostname: host } : {}) });
  } catch {
    return text;
  }
}

/** fleet's message; for a unit the engine cannot place (or is moving), why: the reason list-units --all shows. */
function notLoaded(name: string, reason?: string): ServiceError {
  return new ServiceError(
    "not_loaded",
    `Unit ${name} does not appear to be loaded.${reason ? ` It is not placed on any machine: ${reason}` : ""}`,
  );
}

/** /proc/PID/comm, as systemctl shows it after "Main PID:". */
function commandOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim() || null;
  } catch {
    return null;
  }
}

/** The cursor after the last line of `lines` (the old one when there are none). */
export function cursorAfter(lines: { at: number }[], prev: JournalCursor): JournalCursor {
  const last = lines[lines.length - 1];
  if (!last) return prev;
  let n = 0;
  for (let i = lines.length - 1; i >= 0 && lines[i]!.at === last.at; i--) n++;
  // The window may have started inside a run of lines with the same time that the old cursor had counted.
  if (last.at === prev.at) n = Math.max(n, prev.count);
  return { at: last.at, count: n };
}

/** The lines of a window (the journal's tail, oldest first) that come after the cursor. */
export function linesAfter<T extends { at: number }>(window: T[], c: JournalCursor): T[] {
  const out: T[] = [];
  const sameAt = window.filter((l) => l.at === c.at).length;
  // Lines with the cursor's time: the first `count` were seen (the window may hold fewer if it was cut there).
  let skip = Math.min(c.count, sameAt);
  for (const l of window) {
    if (l.at < c.at) continue;
    if (l.at === c.at && skip > 0) {
      skip--;
      continue;
    }
    out.push(l);
  }
  return out;
}

/** How many leading lines of `live` the tail already ends with (lines written while the tail was read). */
export function overlap<T extends { at: number; stream: string; text: string }>(
  tail: T[],
  live: T[],
): number {
  const same = (a: T, b: T) => a.at === b.at && a.stream === b.stream && a.text === b.text;
  for (let k = Math.min(tail.length, live.length); k > 0; k--) {
    let ok = true;
    for (let i = 0; i < k && ok; i++) ok = same(tail[tail.length - k + i]!, live[i]!);
    if (ok) return k;
  }
  return 0;
}

/** A line count: absent → the default; else a whole number 0..MAX_LINES. */
export function count(v: unknown, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > MAX_LINES)
    throw badRequest(`"lines" must be a whole number from 0 to ${MAX_LINES}`);
  return v as number;
}

function cursorOf(v: unknown): JournalCursor | null {
  if (v === undefined || v === null) return null;
  const c = v as Partial<JournalCursor>;
  if (
    typeof v !== "object" ||
    !Number.isFinite(c.at) ||
    !Number.isInteger(c.count) ||
    (c.count as number) < 0
  )
    throw badRequest(`"after" must be a cursor {at, count}`);
  return { at: c.at as number, count: c.count as number };
}
