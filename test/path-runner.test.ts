// The path runner against a scripted inotify: which events it acts on, and that watching afresh never loses one.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  ACTIVATION_POLL_MS,
  type Activation,
  IN_CLOSE_WRITE,
  IN_CREATE,
  type InotifyEvent,
} from "../src/agent/activation.ts";
import { Journal } from "../src/agent/journal.ts";
import { PathRunner } from "../src/agent/path-runner.ts";

/** One inotify instance: events are queued by the test; closing it loses what was still queued, as the kernel does. */
class FakeInotify {
  readonly watches = new Map<string, number>();
  queued: InotifyEvent[] = [];
  /** Events the kernel queues while the runner handles the last drain (between it and the next). */
  late: InotifyEvent[] = [];
  closed = false;
  add(path: string): number {
    if (this.closed) return -1;
    const wd = this.watches.get(path) ?? this.watches.size + 1;
    this.watches.set(path, wd);
    return wd;
  }
  drain(): InotifyEvent[] {
    const out = this.queued;
    this.queued = this.late;
    this.late = [];
    return out;
  }
  close(): void {
    this.closed = true;
    this.queued = [];
  }
  /** Queues an event for `path` (a watched one); `name` for an entry of a watched directory. */
  event(path: string, mask: number, name?: string, queue = this.queued): void {
    const wd = this.watches.get(path);
    if (wd === undefined) throw new Error(`${path} is not watched`);
    if (!this.closed) queue.push(name === undefined ? { wd, mask } : { wd, mask, name });
  }
}

describe("PathRunner", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "berth-path-runner-"));
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
    rmSync(dir, { recursive: true, force: true });
  });

  function changedPath(path: string) {
    const instances: FakeInotify[] = [];
    const activation: Activation = {
      listen: () => {
        throw new Error("no sockets here");
      },
      waiting: () => false,
      close: () => {},
      inotify: () => {
        const i = new FakeInotify();
        instances.push(i);
        return i;
      },
    };
    const triggered: string[] = [];
    const runner = new PathRunner(
      "h1",
      {
        name: "changed.path",
        description: "changed.path",
        unit: "onchange.service",
        specs: [{ kind: "PathChanged", path }],
        makeDirectory: false,
        directoryMode: 0o755,
        triggerLimit: { intervalMs: 2000, burst: 200 },
      },
      {
        journal: new Journal(join(dir, "journal")),
        now: () => Date.now(),
        logger: () => {},
        onChange: () => {},
      },
      {
        trigger: (unit) => {
          triggered.push(unit);
          return true;
        },
        watch: () => () => {},
        unitState: () => null,
      },
      activation,
    );
    runner.start();
    const current = () => instances.at(-1)!;
    return { runner, triggered, instances, current };
  }

  it("fires on a close after a write, and on nothing that happens beside the path in its directories", async () => {
    const path = join(dir, "spool", "file");
    const { runner, triggered, instances, current } = changedPath(path);
    expect(runner.state().sub).toBe("waiting");
    expect([...current().watches.keys()]).toEqual(
      expect.arrayContaining(["/", dir, join(dir, "spool"), path]),
    );
    // Another test's file appears in the same directories (not on the way to the path), and the watched file is
    // closed after a write while the runner handles those: watching afresh then would have lost the close.
    const first = current();
    first.event(dir, IN_CREATE, "other-file");
    first.event("/", IN_CREATE, "other-dir");
    first.event(path, IN_CLOSE_WRITE, undefined, first.late);
    await vi.advanceTimersByTimeAsync(ACTIVATION_POLL_MS);
    await vi.advanceTimersByTimeAsync(ACTIVATION_POLL_MS);
    expect(triggered).toEqual(["onchange.service"]);
    expect(instances).toEqual([first]);
    await runner.stop();
  });

  it("watches afresh when an entry on the way to the path comes or goes", async () => {
    const path = join(dir, "spool", "file");
    const { runner, triggered, instances, current } = changedPath(path);
    current().event(dir, IN_CREATE, "spool");
    await vi.advanceTimersByTimeAsync(ACTIVATION_POLL_MS);
    expect(instances).toHaveLength(2);
    expect(instances[0]!.closed).toBe(true);
    expect(triggered).toEqual([]);
    await runner.stop();
  });
});
