// A .socket unit on its machine (systemd.socket(5), Accept=no): when it starts, its ListenStream=/ListenDatagram=
// sockets are bound (state `listening`); the first connection or datagram starts its service on this machine
// (state `running` while that runs), which finds the sockets from fd 3 on with LISTEN_FDS, LISTEN_PID and
// LISTEN_FDNAMES (runner.ts passes them, sd_listen_fds(3)). Nothing is accepted or read here: the connection
// waits in the socket's backlog until the service accepts it. Stopping the unit closes the sockets (a running
// service keeps its copies). Unix socket files are made with SocketMode= in directories made with DirectoryMode=,
// a stale file is replaced, and RemoveOnStop=yes removes it again.
import { chmodSync, mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import type { Activation } from "./activation.ts";
import { Activator, type ActivatorHooks } from "./activator.ts";
import type { SocketConfig } from "./socket-config.ts";
import type { RunnerContext, TriggerInfo } from "./unit-types.ts";

export class SocketRunner extends Activator {
  protected readonly waitingSub = "listening";
  private fds: number[] = [];
  private act: Activation | null = null;

  constructor(
    hash: string,
    readonly config: SocketConfig,
    ctx: RunnerContext,
    hooks: ActivatorHooks,
    activation: Activation | null,
  ) {
    super(config.name, hash, config.service, config.triggerLimit, ctx, hooks, activation);
  }

  /** The bound sockets while the unit is active, in the order of its Listen lines. */
  listenFds(): { fds: number[]; names: string[] } {
    const fds = this.active === "active" ? [...this.fds] : [];
    return { fds, names: fds.map(() => this.config.fdName) };
  }

  protected open(activation: Activation): void {
    this.act = activation;
    try {
      for (const a of this.config.listen) {
        const file = a.family === "unix" && !a.host.startsWith("@") ? a.host : null;
        if (file !== null) {
          mkdirSync(dirname(file), { recursive: true, mode: this.config.directoryMode });
          rmSync(file, { force: true });
        }
        this.fds.push(activation.listen(a, this.config.backlog));
        if (file !== null) chmodSync(file, this.config.socketMode);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  protected close(): void {
    for (const fd of this.fds) this.act?.close(fd);
    this.fds = [];
    if (!this.config.removeOnStop) return;
    for (const a of this.config.listen)
      if (a.family === "unix" && !a.host.startsWith("@")) rmSync(a.host, { force: true });
  }

  protected arm(): boolean {
    return this.poll();
  }

  protected poll(): boolean {
    return this.act?.waiting(this.fds) ?? false;
  }

  protected info(): TriggerInfo {
    const kind = (k: string): string => (k === "stream" ? "Stream" : "Datagram");
    return {
      unit: this.config.service,
      listen: this.config.listen.map((a) => `${a.text} (${kind(a.kind)})`),
    };
  }
}
