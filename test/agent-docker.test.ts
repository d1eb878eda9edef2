// [Container] units against a real, private Docker engine (see test/support/docker.ts): no pulls, network none.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Agent, type UnitSpec, type UnitState } from "../src/agent/agent.ts";
import {
  defaultContainerName,
  loadContainerConfig,
  parsePublishPort,
} from "../src/agent/container-config.ts";
import {
  buildBusyboxImage,
  type PrivateDocker,
  requireDocker,
  startPrivateDocker,
  which,
} from "./support/docker.ts";

const MACHINE = "m1abc";
let d: PrivateDocker;
const agents: Agent[] = [];
const dirs: string[] = [];
const children: ChildProcess[] = [];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function killChild(c: ChildProcess): void {
  if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
  try {
    process.kill(c.pid, "SIGKILL");
  } catch {}
}

function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-agent-dk-"));
  dirs.push(dir);
  return dir;
}

function makeAgent(dataDir = join(tmp(), "data")): Agent {
  const agent = new Agent({ machineId: MACHINE, hostname: "node-1", dataDir, dockerSocket: d.socket });
  agents.push(agent);
  return agent;
}

const spec = (
  name: string,
  text: string,
  hash = "h1",
  desired: UnitSpec["desired"] = "launched",
): UnitSpec => ({
  name,
  hash,
  text,
  desired,
});

type Maybe<T> = T | undefined | null | false;
async function until<T>(what: string, f: () => Maybe<T> | Promise<Maybe<T>>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const stateOf = (a: Agent, name: string): UnitState | undefined => a.states().find((s) => s.name === name);
const running = (a: Agent, name: string) => {
  const s = stateOf(a, name);
  return s?.active === "active" && s.sub === "running" && s.containerId ? s : undefined;
};
const texts = async (a: Agent, name: string) => (await a.journal(name, { lines: 500 })).map((l) => l.text);
const ps = (...filters: string[]) =>
  d
    .cli(
      "ps",
      "-a",
      "--no-trunc",
      "--format",
      "{{.ID}} {{.State}}",
      ...filters.flatMap((f) => ["--filter", f]),
    )
    .split("\n")
    .filter(Boolean);

// sh as PID 1 ignores SIGTERM unless it traps it: the trap makes `docker stop` a clean exit 0.
const LOOP = `Exec=/bin/sh -c "trap 'exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"`;
const unit = (extra = "", service = "Restart=on-failure\nRestartSec=1\nTimeoutStopSec=5\n") =>
  `[Unit]\nDescription=busybox loop\n[Container]\nImage=local/busybox\nNetwork=none\n${LOOP}\n${extra}[Service]\n${service}`;

describe("container units (private dockerd)", () => {
  requireDocker();
  beforeAll(async () => {
    d = await startPrivateDocker();
    buildBusyboxImage(d);
  }, 40_000);

  afterAll(async () => {
    await Promise.all(agents.splice(0).map((a) => a.stop()));
    for (const c of children) killChild(c);
    await d?.stop();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.stop()));
    for (const c of children.splice(0)) killChild(c);
    const left = d.cli("ps", "-aq");
    if (left !== "") d.cli("rm", "-f", ...left.split("\n"));
  }, 20_000);

  it("runs a container unit: active/running, container id, labels, its output in the journal; stop removes it", async () => {
    const a = makeAgent();
    a.reconcile([spec("loop@1.service", unit("Label=app=demo\nEnvironment=GREETING=hi\n"))]);
    const s = await until("running", () => running(a, "loop@1.service"));
    expect(s.mainPid).toBeGreaterThan(0);
    expect(s.image).toBe("local/busybox");
    const id = s.containerId!;
    const labels = JSON.parse(d.cli("inspect", "--format", "{{json .Config.Labels}}", id));
    expect(labels).toMatchObject({
      "berth.unit": "loop@1.service",
      "berth.hash": "h1",
      "berth.machine": MACHINE,
      app: "demo",
    });
    expect(d.cli("inspect", "--format", "{{.Name}} {{.HostConfig.NetworkMode}}", id)).toBe(
      "/berth-loop-1 none",
    );
    await until(
      "stdout lines",
      async () => (await texts(a, "loop@1.service")).includes("tick 2") || undefined,
    );
    const lines = await a.journal("loop@1.service", { lines: 200 });
    expect(lines.some((l) => l.stream === "stdout" && l.text === "tick 1")).toBe(true);
    await until("memory", () => (stateOf(a, "loop@1.service")?.memoryBytes ?? 0) > 0, 6_000);

    a.reconcile([spec("loop@1.service", unit(), "h1", "loaded")]);
    await a.settled();
    expect(stateOf(a, "loop@1.service")).toMatchObject({
      active: "inactive",
      sub: "dead",
      containerId: null,
    });
    expect(ps(`id=${id}`)).toEqual([]);
  }, 20_000);

  it("docker kill → restarted within RestartSec with a new container; docker stop (exit 0) → not restarted", async () => {
    const a = makeAgent();
    a.reconcile([spec("heal.service", unit())]);
    const first = (await until("running", () => running(a, "heal.service"))).containerId!;
    const killedAt = Date.now();
    d.cli("kill", first);
    const second = await until("restarted", () => {
      const s = running(a, "heal.service");
      return s && s.containerId !== first ? s : undefined;
    });
    expect(Date.now() - killedAt).toBeLessThan(4_000);
    expect(second.restarts).toBe(1);
    expect(ps(`id=${first}`)).toEqual([]); // the dead one was removed
    const log = await texts(a, "heal.service");
    expect(log).toContain("heal.service: Main process exited, code=killed, status=9/KILL");

    d.cli("stop", second.containerId!);
    await until("dead", () => stateOf(a, "heal.service")?.active === "inactive");
    await sleep(1_500); // past RestartSec: nothing comes back
    expect(stateOf(a, "heal.service")).toMatchObject({ active: "inactive", sub: "dead", restarts: 1 });
    expect(ps("label=berth.unit=heal.service")).toEqual([]);
  }, 20_000);

  it("a restarted agent re-adopts its running container and removes stale ones", async () => {
    const dataDir = join(tmp(), "data");
    // Agent 1 runs in its own process (bun), and is SIGKILLed: a crash, leaving its container behind.
    const script = join(tmp(), "agent1.ts");
    const unitText = unit();
    writeFileSync(
      script,
      `import { Agent } from ${JSON.stringify(resolve("src/agent/agent.ts"))};
const a = new Agent({ machineId: ${JSON.stringify(MACHINE)}, hostname: "node-1", dataDir: ${JSON.stringify(dataDir)}, dockerSocket: ${JSON.stringify(d.socket)} });
a.reconcile([{ name: "keep.service", hash: "h1", text: ${JSON.stringify(unitText)}, desired: "launched" }]);
const t = setInterval(() => {
  const s = a.states()[0];
  if (s?.active === "active" && s.containerId) { console.log("RUNNING " + s.containerId); clearInterval(t); }
}, 50);
`,
    );
    const child = spawn(resolve("node_modules/.bin/bun"), [script], { stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    let out = "";
    child.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
    });
    const kept = await until("agent 1 running its container", () => /RUNNING (\w+)/.exec(out)?.[1], 15_000);
    process.kill(child.pid!, "SIGKILL");
    await until("agent 1 gone", () => child.exitCode !== null || child.signalCode !== null);

    // Leftovers a crash could leave: the same unit under an old hash, and a unit no longer wanted here.
    const label = (u: string, h: string) => [
      "--label",
      `berth.unit=${u}`,
      "--label",
      `berth.hash=${h}`,
      "--label",
      `berth.machine=${MACHINE}`,
    ];
    // A container as a crashed agent would have left it: sleeping, with the given labels.
    const leftover = (...labels: string[]) =>
      d.cli("run", "-d", "--network", "none", ...labels, "local/busybox", "sleep", "300");
    const stale = leftover(...label("changed.service", "old"));
    const unknown = leftover(...label("gone.service", "h1"));
    const foreign = leftover(...label("x.service", "h1").slice(0, 2), "--label", "berth.machine=other");

    const b = makeAgent(dataDir);
    b.reconcile([spec("keep.service", unitText), spec("changed.service", unit(), "new")]);
    const s = await until("adopted", () => running(b, "keep.service"));
    expect(s.containerId).toBe(kept);
    expect(s.restarts).toBe(0);
    const changed = await until("changed running", () => running(b, "changed.service"));
    expect(changed.containerId).not.toBe(stale);
    expect(ps(`id=${stale}`)).toEqual([]);
    expect(ps(`id=${unknown}`)).toEqual([]);
    expect(ps(`id=${foreign}`)).toHaveLength(1); // another machine's container is not ours to touch
    expect(ps("label=berth.unit=keep.service")).toEqual([`${kept} running`]);
    expect(await texts(b, "keep.service")).toContain(
      `keep.service: Adopted running container ${kept.slice(0, 12)} (berth-keep).`,
    );
    // Logs are re-attached.
    const before = (await b.journal("keep.service", { lines: 500 })).filter(
      (l) => l.stream === "stdout",
    ).length;
    await sleep(600);
    const after = (await b.journal("keep.service", { lines: 500 })).filter(
      (l) => l.stream === "stdout",
    ).length;
    expect(after).toBeGreaterThan(before);
    d.cli("rm", "-f", foreign);
  }, 30_000);

  it("fails with a clear reason when the image is missing or the engine is unreachable", async () => {
    const a = makeAgent();
    a.reconcile([spec("noimg.service", "[Container]\nImage=local/missing:1\nNetwork=none\n")]);
    const s = await until("failed", () =>
      stateOf(a, "noimg.service")?.active === "failed" ? stateOf(a, "noimg.service") : undefined,
    );
    expect(s.sub).toBe("failed");
    const log = (await texts(a, "noimg.service")).join("\n");
    expect(log).toMatch(/image local\/missing:1 is not present and pulling it failed: /);
    expect(log).toContain("Failed with result 'resources'");

    const b = new Agent({
      machineId: MACHINE,
      hostname: "n",
      dataDir: join(tmp(), "data"),
      dockerSocket: join(tmp(), "nope.sock"),
    });
    agents.push(b);
    b.reconcile([spec("nodocker.service", unit("", "TimeoutStopSec=5\n"))]);
    await until("failed", () => stateOf(b, "nodocker.service")?.active === "failed");
    const log2 = (await texts(b, "nodocker.service")).join("\n");
    expect(log2).toMatch(/Docker engine at unix:\/\/.*nope\.sock is unreachable: /);
  }, 20_000);

  it("an engine restart is noticed: Restart=always runs a new container, a unit without Restart= fails, a docker-run unit ends", async () => {
    const docker = which("docker")!;
    const a = makeAgent();
    // dockerd stops running containers with SIGTERM when it shuts down (no live-restore): both trap it.
    const trapped = (code: number, service: string) =>
      `[Container]\nImage=local/busybox\nNetwork=none\nExec=/bin/sh -c "trap 'exit ${code}' TERM; while true; do sleep 0.2; done"\n[Service]\n${service}`;
    const cli = `[Service]
Environment=DOCKER_HOST=unix://${d.socket}
ExecStartPre=-${docker} rm -f cli1
ExecStart=${docker} run --name cli1 --network none local/busybox /bin/sh -c "trap 'exit 0' TERM; while true; do sleep 0.2; done"
`;
    a.reconcile([
      spec("always.service", trapped(0, "Restart=always\n")),
      spec("once.service", trapped(3, "")),
      spec("cli.service", cli),
    ]);
    const first = (await until("always running", () => running(a, "always.service"))).containerId!;
    await until("once running", () => running(a, "once.service"));
    const cliPid = (
      await until("cli running", () =>
        stateOf(a, "cli.service")?.sub === "running" ? stateOf(a, "cli.service") : undefined,
      )
    ).mainPid!;
    await until("cli container up", () => ps("name=cli1").some((l) => l.endsWith(" running")));

    await d.restart();

    const again = await until(
      "always running again in a new container",
      () => {
        const s = running(a, "always.service");
        return s && s.containerId !== first ? s : undefined;
      },
      30_000,
    );
    expect(again.restarts).toBe(1);
    expect(ps(`id=${again.containerId}`)).toEqual([`${again.containerId} running`]);
    expect(ps(`id=${first}`)).toEqual([]); // the one dockerd stopped was removed
    const once = await until(
      "once failed",
      () => (stateOf(a, "once.service")?.active === "failed" ? stateOf(a, "once.service") : undefined),
      30_000,
    );
    expect(once).toMatchObject({ sub: "failed", containerId: null, restarts: 0 });
    const log = await texts(a, "once.service");
    expect(log).toContain("once.service: Main process exited, code=exited, status=3/NOTIMPLEMENTED");
    expect(log).toContain("once.service: Failed with result 'exit-code'.");
    expect(ps("label=berth.unit=once.service")).toEqual([]);
    // The docker-run unit is a process unit: its `docker` client ends when the engine goes away.
    const cliState = await until(
      "cli unit ended",
      () => (stateOf(a, "cli.service")?.active !== "active" ? stateOf(a, "cli.service") : undefined),
      30_000,
    );
    expect(["inactive", "failed"]).toContain(cliState.active);
    expect(() => process.kill(cliPid, 0)).toThrow();
  }, 60_000);

  it("the fence kills a [Container] unit's container and the container a docker-run unit started, through the engine", async () => {
    const docker = which("docker")!;
    const a = makeAgent();
    const cli = `[Service]
ExecStartPre=-${docker} -H unix://${d.socket} rm -f fenced-cli
ExecStart=${docker} -H unix://${d.socket} run --network none --name fenced-cli local/busybox sleep 1000
`;
    a.reconcile([spec("box.service", unit("")), spec("cli.service", cli)]);
    const box = (await until("box running", () => running(a, "box.service"))).containerId!;
    await until("cli running", () => stateOf(a, "cli.service")?.sub === "running");
    await until("its container up", () => ps("name=fenced-cli").some((l) => l.endsWith(" running")));
    await a.fence();
    expect(ps(`id=${box}`)).toEqual([]);
    // Killing the docker client alone leaves its container running in the engine.
    expect(ps("name=fenced-cli").filter((l) => l.endsWith(" running"))).toEqual([]);
    expect(a.states()).toEqual([]);
    // Fenced: a reconcile changes nothing until the lease is back.
    a.reconcile([spec("box.service", unit(""))]);
    await sleep(300);
    expect(a.states()).toEqual([]);
    d.cli("rm", "-f", "fenced-cli");
  }, 60_000);

  it("an engine crash: a unit shows engine-lost while it is down and restarts once the engine has stopped its container; one started meanwhile waits", async () => {
    const a = makeAgent();
    a.reconcile([spec("crash.service", unit("", "Restart=always\n"))]);
    const first = (await until("running", () => running(a, "crash.service"))).containerId!;

    await d.crash();
    // No exit was seen, so the unit stays active; but it cannot say the container is running.
    const lost = await until(
      "engine-lost",
      () => (stateOf(a, "crash.service")?.sub === "engine-lost" ? stateOf(a, "crash.service") : undefined),
      15_000,
    );
    expect(lost).toMatchObject({ active: "active", mainPid: null, containerId: first });
    // A unit started meanwhile waits for the engine it has seen before, rather than failing at once.
    a.reconcile([
      spec("crash.service", unit("", "Restart=always\n")),
      spec("late.service", unit("", "TimeoutStartSec=60\n")),
    ]);
    await until("late waiting", async () =>
      (await texts(a, "late.service")).some((l) => l.endsWith("; waiting for it to answer.")),
    );
    expect(stateOf(a, "late.service")).toMatchObject({ active: "activating", sub: "start" });

    await d.restart(); // without live-restore, the engine stops the containers it finds running
    const again = await until(
      "running again in a new container",
      () => {
        const s = running(a, "crash.service");
        return s && s.containerId !== first ? s : undefined;
      },
      30_000,
    );
    expect(again.restarts).toBe(1);
    expect(ps(`id=${first}`)).toEqual([]);
    const log = await texts(a, "crash.service");
    expect(log).toContain(
      `crash.service: Docker engine is back; container ${first.slice(0, 12)} is no longer running.`,
    );
    expect(log).toContain("crash.service: Main process exited, code=exited, status=0/SUCCESS");
    expect(await until("late running", () => running(a, "late.service"), 30_000)).toMatchObject({
      restarts: 0,
    });
  }, 60_000);

  it("the seed's docker-CLI process unit runs unchanged", async () => {
    const docker = which("docker")!;
    const a = makeAgent();
    const text = `[Unit]
Description=busybox via the docker CLI
[Service]
Environment=DOCKER_HOST=unix://${d.socket}
TimeoutStartSec=0
ExecStartPre=-${docker} kill busybox1
ExecStartPre=-${docker} rm busybox1
ExecStart=${docker} run --name busybox1 --network none local/busybox /bin/sh -c "trap 'exit 0' TERM; while true; do echo Hello World; sleep 0.2; done"
ExecStop=${docker} stop busybox1
`;
    a.reconcile([spec("busybox1.service", text)]);
    await until("running", () => stateOf(a, "busybox1.service")?.sub === "running");
    await until("Hello World", async () => (await texts(a, "busybox1.service")).includes("Hello World"));
    expect(d.cli("inspect", "--format", "{{.State.Running}}", "busybox1")).toBe("true");
    a.reconcile([spec("busybox1.service", text, "h1", "loaded")]);
    await a.settled();
    expect(stateOf(a, "busybox1.service")?.active).toBe("inactive");
    expect(d.cli("inspect", "--format", "{{.State.Running}}", "busybox1")).toBe("false");
  }, 20_000);
});

describe("container unit config", () => {
  it("parses Quadlet keys", () => {
    const c = loadContainerConfig(
      "web@a.service",
      `[Container]
Image=local/busybox
Exec=/bin/sh -c "echo 'a b'"
Environment=A=1 "B=two words"
PublishPort=127.0.0.1:8080:80
PublishPort=53/udp
Volume=/srv:/data:ro
Network=host
Label=tier=web
[Service]
Restart=always
RestartSec=2
`,
      { hostname: "h", machineId: "m" },
    );
    expect(c).toMatchObject({
      image: "local/busybox",
      exec: ["/bin/sh", "-c", "echo 'a b'"],
      containerName: "berth-web-a",
      environment: { A: "1", B: "two words" },
      volumes: ["/srv:/data:ro"],
      network: "host",
      labels: { tier: "web" },
      pull: "missing",
      service: { restart: "always", restartMs: 2000 },
    });
    expect(c.publishPorts).toEqual([
      { hostIp: "127.0.0.1", hostPort: "8080", containerPort: "80", proto: "tcp" },
      { hostIp: "", hostPort: "", containerPort: "53", proto: "udp" },
    ]);
    expect(defaultContainerName("x.service")).toBe("berth-x");
    expect(() => parsePublishPort("a:b:c:d")).toThrow();
    expect(() => loadContainerConfig("a.service", "[Container]\nExec=/bin/true\n", {})).toThrow(/no Image=/);
  });
});
