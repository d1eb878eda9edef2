// .socket and .path units through the compiled binary, whose unit supervisor has listening sockets and inotify
// (Bun's FFI, src/agent/activation.ts; under Node the agent has none): a real client connects to a socket unit's
// port before its service runs and is served by it (the service gets the socket as fd 3, LISTEN_FDS/LISTEN_PID),
// a datagram starts a service that reads it, stopping the socket closes it, PathChanged= fires on close after a
// write and PathModified= on the write itself, and the unit types Berth cannot run are refused at submit.

import { createSocket } from "node:dgram";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { UnitStatus } from "../src/client/protocol.ts";
import { TestCluster, waitFor } from "./support/cluster.ts";

const HOST = "127.0.1.7";

/** A port free on HOST now (bound to port 0 and released). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, HOST, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Connects, sends `text`, and resolves with everything the server answers before it closes. */
function ask(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = createConnection({ host: HOST, port });
    let got = "";
    c.setEncoding("utf8");
    c.on("connect", () => c.end(text));
    c.on("data", (d) => {
      got += d;
    });
    c.on("error", reject);
    c.on("close", () => resolve(got));
  });
}

// Serves one connection on the socket it was given (fd 3), saying what sd_listen_fds(3) would see.
const SERVE = `import os, socket
assert int(os.environ["LISTEN_PID"]) == os.getpid()
s = socket.socket(fileno=3)
c, _ = s.accept()
got = c.recv(100).decode()
c.sendall(("served %s fds=%s names=%s pid-ok" % (got, os.environ["LISTEN_FDS"], os.environ["LISTEN_FDNAMES"])).encode())
c.close()
`;
// Reads the datagram waiting on fd 3 into a file.
const RECV = (out: string): string => `import os, socket
s = socket.socket(fileno=3)
open(${JSON.stringify(out)}, "w").write(s.recv(100).decode())
`;

describe(".socket and .path units on a node (the compiled binary)", () => {
  let cluster: TestCluster;
  let dir: string;
  let port: number;
  let dport: number;
  const status = async (name: string): Promise<UnitStatus> => {
    const r = await cluster.cli(["status", name, "--output=json"]);
    if (r.code !== 0) throw new Error(`berth status ${name} exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as UnitStatus;
  };
  const sub = async (name: string): Promise<string> => {
    const s = await status(name);
    return `${s.state?.active} ${s.state?.sub}`;
  };
  const unit = (name: string, text: string): string => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const names: string[] = [];
  const cli = (args: string[]) => cluster.cli(args, cluster.endpoints(), 30_000);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-sockpath-"));
    port = await freePort();
    dport = await freePort();
    cluster = await TestCluster.start(1);
  }, 60_000);
  afterAll(async () => {
    for (const name of names) await cluster?.cli(["destroy", name]);
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("serves a client that connected before the service started, on the socket passed as LISTEN_FDS", async () => {
    writeFileSync(join(dir, "serve.py"), SERVE);
    names.push("echo.socket", "echo.service");
    unit("echo.service", `[Service]\nExecStart=python3 ${join(dir, "serve.py")}\n`);
    unit("echo.socket", `[Socket]\nListenStream=${HOST}:${port}\n`);
    expect((await cli(["load", join(dir, "echo.service")])).code).toBe(0);
    const r = await cli(["start", join(dir, "echo.socket")]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(await sub("echo.socket")).toBe("active listening");
    expect(await sub("echo.service")).toBe("inactive dead");
    const text = (await cluster.cli(["status", "echo.socket"])).stdout;
    expect(text).toContain(" Triggers: ● echo.service");
    expect(text).toContain(`   Listen: ${HOST}:${port} (Stream)`);

    // The connection is made (the kernel's backlog) before anything accepts it; the service started for it does.
    expect(await ask(port, "hello")).toBe("served hello fds=1 names=echo.socket pid-ok");
    // The service served one connection and exited: the socket listens again, and starts it for the next one.
    await waitFor(
      "the socket listening again",
      async () => (await sub("echo.socket")) === "active listening",
    );
    expect(await ask(port, "again")).toBe("served again fds=1 names=echo.socket pid-ok");

    // Stopped, the socket is closed: nothing answers on the port any more.
    await waitFor(
      "the socket listening again",
      async () => (await sub("echo.socket")) === "active listening",
    );
    expect((await cli(["stop", "echo.socket"])).code).toBe(0);
    expect(await sub("echo.socket")).toBe("inactive dead");
    await expect(ask(port, "closed")).rejects.toThrow(/ECONNREFUSED/);
  }, 60_000);

  it("starts the service for a datagram, which reads it from the socket it is given", async () => {
    const out = join(dir, "datagram.out");
    writeFileSync(join(dir, "recv.py"), RECV(out));
    names.push("dgram.socket", "reader.service");
    unit("reader.service", `[Service]\nType=oneshot\nExecStart=python3 ${join(dir, "recv.py")}\n`);
    unit("dgram.socket", `[Socket]\nListenDatagram=${HOST}:${dport}\nService=reader.service\n`);
    expect((await cli(["load", join(dir, "reader.service")])).code).toBe(0);
    expect((await cli(["start", join(dir, "dgram.socket")])).code).toBe(0);
    expect(await sub("dgram.socket")).toBe("active listening");
    const c = createSocket("udp4");
    await new Promise<void>((resolve, reject) =>
      c.send("ping", dport, HOST, (e) => (e ? reject(e) : resolve())),
    );
    c.close();
    await waitFor(
      "the datagram read by the service",
      () => existsSync(out) && readFileSync(out, "utf8") === "ping",
    );
  }, 60_000);

  it("fires PathChanged= when a written file is closed, PathModified= on the write itself", async () => {
    const spool = join(dir, "spool");
    const watched = join(spool, "file");
    const log = join(dir, "fired.log");
    names.push("changed.path", "modified.path", "onchange.service", "onmodify.service");
    const stamp = (word: string) =>
      `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo ${word} >> ${log}'\n`;
    unit("onchange.service", stamp("changed"));
    unit("onmodify.service", stamp("modified"));
    // A directory watched for writes to its files, made by MakeDirectory=yes; a file watched for a close.
    unit("modified.path", `[Path]\nPathModified=${spool}\nUnit=onmodify.service\nMakeDirectory=yes\n`);
    unit("changed.path", `[Path]\nPathChanged=${watched}\nUnit=onchange.service\n`);
    for (const s of ["onchange.service", "onmodify.service"])
      expect((await cli(["load", join(dir, s)])).code).toBe(0);
    expect((await cli(["start", join(dir, "modified.path")])).code).toBe(0);
    expect(existsSync(spool)).toBe(true);
    writeFileSync(watched, "");
    // The file's creation is a change in the directory; let that pass, then watch the file too.
    await waitFor("the creation seen", () => existsSync(log));
    expect((await cli(["start", join(dir, "changed.path")])).code).toBe(0);
    await waitFor(
      "both waiting",
      async () =>
        (await sub("changed.path")) === "active waiting" && (await sub("modified.path")) === "active waiting",
    );
    writeFileSync(log, "");
    const fd = openSync(watched, "r+");
    try {
      writeSync(fd, "data");
      await waitFor("PathModified= fired", () => readFileSync(log, "utf8").includes("modified"));
      expect(readFileSync(log, "utf8")).not.toContain("changed");
    } finally {
      closeSync(fd);
    }
    await waitFor("PathChanged= fired on close", () => readFileSync(log, "utf8").includes("changed"));
    const text = (await cluster.cli(["status", "changed.path"])).stdout;
    expect(text).toContain(" Triggers: ● onchange.service");
  }, 60_000);

  it("fires PathExists= for a path whose directory is made later, and for nothing else made beside it", async () => {
    const later = join(dir, "later");
    const flag = join(later, "flag");
    const log = join(dir, "exists.log");
    names.push("flag.path", "onflag.service");
    unit(
      "onflag.service",
      `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo fired >> ${log}; rm ${flag}'\n`,
    );
    unit("flag.path", `[Path]\nPathExists=${flag}\nUnit=onflag.service\n`);
    expect((await cli(["load", join(dir, "onflag.service")])).code).toBe(0);
    expect((await cli(["start", join(dir, "flag.path")])).code).toBe(0);
    await waitFor("waiting", async () => (await sub("flag.path")) === "active waiting");
    // Entries beside the path, then its directory, then beside it in that directory: none is the path.
    writeFileSync(join(dir, "beside"), "");
    mkdirSync(later);
    writeFileSync(join(later, "beside"), "");
    await new Promise((r) => setTimeout(r, 500));
    expect(existsSync(log)).toBe(false);
    writeFileSync(flag, "");
    await waitFor("PathExists= fired", () => existsSync(log) && readFileSync(log, "utf8") === "fired\n");
  }, 60_000);

  it("refuses the unit types it cannot run at submit, saying why", async () => {
    const reasons: Record<string, RegExp> = {
      "data.mount": /mount from a \.service/,
      "data.automount": /autofs/,
      "extra.swap": /swapon/,
      "sda.device": /udev/,
      "session.scope": /systemd-run --scope/,
      "user.slice": /own cgroup/,
      "before.snapshot": /systemctl snapshot/,
      "org.example.busname": /kdbus/,
    };
    for (const [name, why] of Object.entries(reasons)) {
      const r = await cli(["submit", unit(name, "[Unit]\nDescription=x\n")]);
      expect(r.code, name).toBe(2);
      const type = name.slice(name.lastIndexOf("."));
      expect(r.stderr, name).toContain(`${type} units cannot run on Berth: `);
      expect(r.stderr, name).toMatch(why);
    }
    const accept = await cli([
      "submit",
      unit("each.socket", `[Socket]\nListenStream=${HOST}:1\nAccept=yes\n`),
    ]);
    expect(accept.code).toBe(2);
    expect(accept.stderr).toMatch(/Accept=yes \(a service instance per connection\) is not supported/);
  }, 60_000);
});
