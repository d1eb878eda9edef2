// The console's view of the cluster: one client connection (re)opened as needed, polled every refresh interval
// and at once when the store changes (two kv.watch streams on that connection: the cluster's own records under
// /_berth, and the key directory the Keys view shows), and the actions the console's keys trigger. The units and
// their states (10,000s of rows) are fetched again only when the registry watch says they changed; a list that
// came back equal stays the same array (the views' tables are kept while their inputs are), and listeners hear
// of a poll only when something in it changed, so an idle cluster costs the console next to nothing.
import type { BerthClient, Subscription } from "../client/client.ts";
import type { DesiredState, JournalLine, KvResult, UnitStatus } from "../client/protocol.ts";
import type { KvNode } from "../kv/types.ts";
import { MACHINES_DIR, MEMBERS_DIR, REGISTRY_DIR } from "../sched/registry.ts";
import { type ClusterSnapshot, EMPTY_SNAPSHOT } from "./model.ts";

/** A unit's journal as followed live (the `l` pane). */
export interface FollowedJournal {
  unit: string;
  lines: JournalLine[];
  /** How many lines were dropped from the front (past JOURNAL_KEEP): the first kept line's number. */
  dropped: number;
  /** Why following stopped (the unit's machine went away, the connection dropped), or null while it goes on. */
  ended: string | null;
}

const STILL_RUNNING = new Set(["active", "activating", "deactivating", "reloading"]);

/** Lines kept of a followed journal: its scrollback. */
export const JOURNAL_KEEP = 10_000;

export interface SourceState {
  snapshot: ClusterSnapshot;
  journal: FollowedJournal | null;
  /** The endpoint of the open connection, or null while there is none. */
  endpoint: string | null;
  /** Why the last connection attempt or poll failed (cleared by the next success). */
  error: string | null;
  /**
   * Since when (ms since the epoch) the cluster has not answered: polls have failed since then and the snapshot is
   * what was seen before (stale). Null while polls succeed.
   */
  unreachableSince: number | null;
}

export interface SourceOptions {
  connect: () => Promise<BerthClient>;
  refreshMs: number;
}

export class ConsoleSource {
  private client: BerthClient | null = null;
  private state: SourceState = {
    snapshot: EMPTY_SNAPSHOT,
    journal: null,
    endpoint: null,
    error: null,
    unreachableSince: null,
  };
  private following: Subscription<JournalLine> | null = null;
  /** Identifies the current follow(): a stream that was replaced must not touch the state any more. */
  private followToken: object | null = null;
  private readonly listeners = new Set<(s: SourceState) => void>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private polling: Promise<void> | null = null;
  /** A change was seen while a poll ran: poll again when it ends. */
  private dirty = false;
  private changeTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private keyDir = "/";
  /** The watch on `keyDir`, replaced when another directory is opened. */
  private keyWatch: Subscription<unknown> | null = null;
  private detailUnit: string | null = null;
  /** The Containers view shows: ask every machine for its containers on each poll (an agent and an engine each). */
  private containersShown = false;
  /** The registry watch saw units, schedules or states change since the last fetch of them (or it is new). */
  private unitsStale = true;

  /** Counts reconnect()s: an answer from the cluster before the switch is not shown. */
  private generation = 0;

  constructor(private opts: SourceOptions) {}

  get current(): SourceState {
    return this.state;
  }

  onChange(listener: (s: SourceState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    void this.pollLoop();
  }

  stop(): void {
    this.stopFollowing();
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.changeTimer) clearTimeout(this.changeTimer);
    this.client?.close();
    this.client = null;
  }

  /**
   * From now on shows the cluster `connect` reaches (:ctx): the connection, the watches and the followed journal
   * are dropped, and the snapshot starts empty (what the last cluster had is not this one's).
   */
  reconnect(connect: () => Promise<BerthClient>): void {
    this.generation++;
    this.opts = { ...this.opts, connect };
    this.stopFollowing();
    this.keyWatch?.close();
    this.keyWatch = null;
    this.client?.close();
    this.client = null;
    this.unitsStale = true;
    this.keyDir = "/";
    this.detailUnit = null;
    this.update({ snapshot: EMPTY_SNAPSHOT, endpoint: null, error: null, unreachableSince: null });
    this.changed();
  }

  /** Shows `dir` in the Keys view (polled from now on). */
  setKeyDir(dir: string): void {
    this.keyDir = dir;
    this.update({ snapshot: { ...this.state.snapshot, keyDir: dir, keys: [] } });
    if (this.client) this.watchKeys(this.client);
    this.changed();
  }

  /** The unit whose status the detail pane shows, or null. */
  setDetail(unit: string | null): void {
    this.detailUnit = unit;
    this.update({ snapshot: { ...this.state.snapshot, detail: null } });
    if (unit) this.changed();
  }

  /** Whether the Containers view shows (its data is asked for only then). */
  showContainers(shown: boolean): void {
    if (shown === this.containersShown) return;
    this.containersShown = shown;
    if (shown) this.changed();
  }

  /** Follows `unit`'s journal (its last 100 lines, then each new one) until stopFollowing(). */
  follow(unit: string): void {
    this.stopFollowing();
    const token = {};
    this.followToken = token;
    const journal: FollowedJournal = { unit, lines: [], dropped: 0, ended: null };
    this.update({ journal });
    let showing = false;
    // One render per burst of lines, not per line.
    const show = () => {
      if (showing) return;
      showing = true;
      setTimeout(() => {
        showing = false;
        if (this.followToken === token) this.update({ journal: { ...journal, lines: [...journal.lines] } });
      }, 50);
    };
    void (async () => {
      try {
        const client = this.client ?? (await this.connect());
        if (this.followToken !== token) return;
        const sub = client.subscribe("units.journal.follow", { name: unit, lines: 100 });
        this.following = sub;
        for await (const line of sub) {
          journal.lines.push(line);
          if (journal.lines.length > JOURNAL_KEEP) {
            const extra = journal.lines.length - JOURNAL_KEEP;
            journal.lines.splice(0, extra);
            journal.dropped += extra;
          }
          show();
        }
        journal.ended = "the journal stream ended";
      } catch (err) {
        journal.ended = (err as Error).message ?? String(err);
      }
      if (this.followToken === token) this.update({ journal: { ...journal, lines: [...journal.lines] } });
    })();
  }

  stopFollowing(): void {
    this.followToken = null;
    this.following?.close();
    this.following = null;
    if (this.state.journal) this.update({ journal: null });
  }

  /** Polls now (also after an action, so its effect shows at once). */
  async refresh(): Promise<void> {
    if (!this.polling)
      this.polling = this.poll().finally(() => {
        this.polling = null;
        if (this.dirty && !this.stopped) {
          this.dirty = false;
          this.changed();
        }
      });
    await this.polling;
  }

  async setDesired(names: string[], desired: DesiredState): Promise<void> {
    await this.withClient((c) => c.call("units.setDesired", { names, desired }));
  }

  /**
   * Stops the units, waits until none of them runs any more (at most `stopWaitMs`), and starts them again: a
   * restart, as `berth restart` does it, without its per-unit progress lines.
   */
  async restart(names: string[], stopWaitMs = 30_000): Promise<void> {
    await this.setDesired(names, "loaded");
    const wanted = new Set(names);
    const deadline = Date.now() + stopWaitMs;
    for (;;) {
      const states = await this.withClient((c) => c.call("units.states", {}));
      if (!states.some((r) => wanted.has(r.name) && STILL_RUNNING.has(r.active))) break;
      if (Date.now() > deadline)
        throw new Error(`${names.join(", ")} did not stop within ${stopWaitMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await this.setDesired(names, "launched");
  }

  async destroy(names: string[]): Promise<void> {
    await this.withClient((c) => c.call("units.destroy", { names }));
  }

  async deleteKey(key: string, dir: boolean): Promise<void> {
    await this.withClient((c) =>
      c.call("kv.write", { method: "DELETE", key, ...(dir ? { dir: true, recursive: true } : {}) }),
    );
  }

  private async withClient<T>(fn: (c: BerthClient) => Promise<T>): Promise<T> {
    const client = this.client ?? (await this.connect());
    const result = await fn(client);
    this.changed();
    return result;
  }

  private async pollLoop(): Promise<void> {
    if (this.stopped) return;
    await this.refresh();
    if (!this.stopped) this.timer = setTimeout(() => void this.pollLoop(), this.opts.refreshMs);
  }

  private async connect(): Promise<BerthClient> {
    const generation = this.generation;
    const client = await this.opts.connect();
    if (this.stopped || generation !== this.generation) {
      client.close();
      throw new Error(this.stopped ? "the console is closing" : "switched to another cluster");
    }
    this.client = client;
    this.update({ endpoint: client.endpoint, error: null });
    void this.watchChanges(
      client,
      REGISTRY_DIR,
      () => true,
      // A new watch missed what happened before it: fetch the units once more.
      () => {
        this.unitsStale = true;
      },
      (key) => {
        // Machines and members are polled every time anyway; anything else concerns the units.
        if (!key.startsWith(`${MACHINES_DIR}/`) && !key.startsWith(`${MEMBERS_DIR}/`)) this.unitsStale = true;
      },
    );
    this.watchKeys(client);
    return client;
  }

  private watchKeys(client: BerthClient): void {
    this.keyWatch?.close();
    const dir = this.keyDir;
    void this.watchChanges(
      client,
      dir,
      () => this.keyDir === dir,
      (sub) => {
        this.keyWatch = sub;
      },
    );
  }

  /**
   * Polls soon after each change under `key`, while `client` is the connection and `wanted()` holds. A watch that
   * ends while still wanted (the node dropped a stream that fell behind) is opened again.
   */
  private async watchChanges(
    client: BerthClient,
    key: string,
    wanted: () => boolean,
    opened: (sub: Subscription<unknown>) => void = () => {},
    seen: (key: string) => void = () => {},
  ): Promise<void> {
    const current = () => !this.stopped && this.client === client && wanted();
    while (current()) {
      let sub: Subscription<KvResult> | null = null;
      try {
        sub = client.subscribe("kv.watch", { key, recursive: true, forever: true });
        opened(sub);
        for await (const r of sub) {
          if (!current()) break;
          seen(r.event?.node?.key ?? "");
          this.changed();
        }
      } catch {
        // The connection went away: the next poll reconnects, and watches again.
      } finally {
        sub?.close();
      }
      if (current()) await new Promise((r) => setTimeout(r, 500));
    }
  }

  /**
   * Polls soon: a burst of changes (or of key presses) becomes one poll, and one more after a poll already
   * running, whose answers may predate the change.
   */
  private changed(): void {
    if (this.polling) {
      this.dirty = true;
      return;
    }
    this.changeTimer ??= setTimeout(() => {
      this.changeTimer = null;
      void this.refresh();
    }, 30);
  }

  private async poll(): Promise<void> {
    let fetchUnits = false;
    const generation = this.generation;
    try {
      const c = this.client ?? (await this.connect());
      const keyDir = this.keyDir;
      const detailUnit = this.detailUnit;
      const containersShown = this.containersShown;
      // Every change to them passes the registry watch, and a watch (re)opened marks them stale: no periodic
      // re-fetch of 10,000s of rows (its garbage alone stalls a busy console).
      fetchUnits = this.unitsStale;
      this.unitsStale = false;
      // The small answers are asked for first, so that the node answers them before it builds the big ones.
      const small = Promise.all([
        c.call("machines.list", {}),
        c.call("cluster.members", {}),
        c.call("cluster.health", {}),
        listDir(c, keyDir),
        detailUnit ? unitStatus(c, detailUnit) : Promise.resolve(null),
        containersShown ? c.call("machines.containers", {}) : null,
      ]);
      const unitsCall = fetchUnits ? c.call("units.list", {}) : Promise.resolve(null);
      // Settled by the stage below, or abandoned (a stage failed, or the view moved on): never unhandled.
      unitsCall.catch(() => {});
      const [machines, members, health, keys, detail, containers] = await small;
      // Shown in stages, each as soon as it is there: the machines and members first (a few rows), then the units,
      // then their states (10,000s of rows each, answered last): the first frame with data does not wait for them.
      const current = () => {
        if (generation !== this.generation) return false; // another cluster since (:ctx)
        if (keyDir === this.keyDir && detailUnit === this.detailUnit) return true;
        if (fetchUnits) this.unitsStale = true; // what was fetched is not shown: fetch it next time
        return false; // moved on meanwhile
      };
      if (!current()) return;
      const old = this.state.snapshot;
      this.show({
        machines: sameOr(old.machines, machines),
        members: sameOr(old.members, members),
        health: sameOr(old.health, health),
        keyDir,
        keys: sameOr(old.keys, keys),
        containers: containers ? sameOr(old.containers, containers) : old.containers,
        detail: sameOr(old.detail, detail),
      });
      if (!fetchUnits) return;
      const units = await unitsCall;
      if (!current()) return;
      this.show({ units: sameOr(this.state.snapshot.units, units!) });
      // Asked for only now: asked together, the node built both answers before it sent the first.
      const states = await c.call("units.states", {});
      if (!current()) return;
      this.show({ states: sameOr(this.state.snapshot.states, states!) });
    } catch (err) {
      if (generation !== this.generation) return;
      if (fetchUnits) this.unitsStale = true;
      const e = err as { code?: string; message?: string };
      // A connection that failed is dropped; the next poll opens a new one (to whichever endpoint answers).
      if (e.code === "unavailable" || e.code === "timeout" || this.client === null) {
        this.client?.close();
        this.client = null;
        this.update({
          endpoint: null,
          error: e.message ?? String(err),
          unreachableSince: this.state.unreachableSince ?? Date.now(),
        });
      } else
        this.update({
          error: e.message ?? String(err),
          unreachableSince: this.state.unreachableSince ?? Date.now(),
        });
    }
  }

  /** A poll's answers into the snapshot; listeners hear of it only when something changed (or on the first). */
  private show(patch: Partial<ClusterSnapshot>): void {
    const old = this.state.snapshot;
    const changed = (Object.keys(patch) as (keyof ClusterSnapshot)[]).some((k) => patch[k] !== old[k]);
    if (!changed && old.updatedAt && this.state.error === null) return; // nothing to draw
    this.update({
      snapshot: changed || !old.updatedAt ? { ...old, ...patch, updatedAt: Date.now() } : old,
      error: null,
      unreachableSince: null,
    });
  }

  private update(patch: Partial<SourceState>): void {
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l(this.state);
  }
}

/** `previous` when `next` has the same contents (answers are plain JSON), so that what is unchanged stays identical. */
export function sameOr<T>(previous: T, next: T): T {
  return sameJson(previous, next) ? previous : next;
}

/**
 * Whether two plain JSON values are equal, compared in place: no text of 10,000 units built twice per answer (its
 * garbage alone is tens of MiB), and a first difference ends it.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    const k = ka[i]!;
    // Same keys in the same order, as JSON.stringify compared them.
    if (k !== kb[i] || !sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
      return false;
  }
  return true;
}

/** The children of `dir` (null when it does not exist); a key's own node when `dir` is a key. */
async function listDir(c: BerthClient, dir: string): Promise<KvNode[] | null> {
  try {
    const r = await c.call("kv.get", { key: dir, sorted: true });
    const node = r.event.node;
    return node.dir ? (node.nodes ?? []) : [node];
  } catch (err) {
    if (
      (err as { code?: string }).code === "kv" &&
      (err as { data?: { errorCode?: number } }).data?.errorCode === 100
    )
      return null;
    throw err;
  }
}

/** The unit's status, or why there is none (not loaded, gone, its machine unreachable) for the pane to show. */
async function unitStatus(c: BerthClient, name: string): Promise<UnitStatus[] | string> {
  try {
    return await c.call("units.status", { names: [name] });
  } catch (err) {
    // A lost connection fails the poll's other requests too, which reconnects.
    return (err as Error).message ?? String(err);
  }
}
