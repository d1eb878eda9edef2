// `berth console` in a real terminal (tmux) against a real 3-node cluster: the views show what the CLI sees and
// follow changes, keys start/stop/destroy units and delete keys, it reconnects when its node is killed, it works
// through an SSH --tunnel, and it quits cleanly.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BINARY, berth, freePort, TestCluster } from "./support/cluster.ts";
import { TestSshd } from "./support/sshd.ts";
import { TestTerminal } from "./support/terminal.ts";

describe("berth console", () => {
  let cluster: TestCluster;
  let term: TestTerminal | null = null;

  beforeAll(async () => {
    cluster = await TestCluster.start(3);
  }, 60_000);
  afterEach(() => {
    term?.stop();
    term = null;
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  const open = (extra: string[] = [], env: Record<string, string> = {}) => {
    term = TestTerminal.start(
      [BINARY, "console", `--endpoint=${cluster.endpoints()}`, "--refresh=300ms", ...extra],
      {
        env,
      },
    );
    return term;
  };

  it("shows machines, units, keys and members live, and acts on units and keys", async () => {
    const t = open();
    await t.waitForScreen(/n1\s+127\.0\.0\.1\s+up[\s\S]*n2\s+127\.0\.0\.2\s+up[\s\S]*n3\s+127\.0\.0\.3\s+up/);
    await t.waitForScreen("machines 3/3 up");
    // "/" filters the rows; Esc brings them back.
    t.keys("/", "n2", "Enter");
    await t.waitForScreen(
      (screen) =>
        screen.includes("/n2\n") &&
        /n2\s+127\.0\.0\.2\s+up/.test(screen) &&
        !/n[13]\s+127\.0\.0\.[13]/.test(screen),
    );
    t.keys("Escape");
    await t.waitForScreen(/n1\s+127\.0\.0\.1\s+up/);

    // A unit submitted elsewhere appears; s starts it, Enter shows its status and journal.
    const file = join(cluster.dir, "hello.service");
    writeFileSync(
      file,
      '[Unit]\nDescription=Hello\n[Service]\nExecStart=/bin/sh -c "while true; do echo Hello World; sleep 0.2; done"\n',
    );
    expect((await cluster.cli(["submit", file])).code).toBe(0);
    t.keys("2");
    await t.waitForScreen(/hello\.service\s+inactive\s+inactive\s+-\s+-\s+-/);
    t.keys("s");
    await t.waitForScreen(/hello\.service\s+launched\s+launched\s+\w{8}\.\.\.\/n\d\s+active\s+running/);
    await t.waitForScreen("started hello.service");
    t.keys("Enter");
    await t.waitForScreen(/Active: active \(running\)[\s\S]* sh\[\d+\]: Hello World/);
    t.keys("Escape");
    // (a key right after Escape would arrive as Alt+key, as in any terminal)
    await t.waitForScreen(/UNIT\s+DESIRED/);
    // Enter on a machine lists its units: the unit's machine has it, another machine has none.
    const where = /hello\.service\s+launched\s+launched\s+(\w{8})\.\.\.\/(n\d)/.exec(t.screen())!;
    const other = ["n1", "n2", "n3"].find((n) => n !== where[2])!;
    for (const [machine, expected] of [
      [where[2]!, /hello\.service\s+launched/],
      [other, /nothing matches \/\w{8}/],
    ] as const) {
      t.keys("1");
      await t.waitForScreen(/MACHINE\s+NAME/);
      t.keys("g", ...Array(Number(machine.slice(1)) - 1).fill("j"), "Enter");
      await t.waitForScreen((screen) => screen.includes("UNIT") && expected.test(screen));
    }
    t.keys("2");
    await t.waitForScreen(/hello\.service\s+launched/);
    // l follows the journal live: new lines keep coming.
    t.keys("l");
    const first = await t.waitForScreen(/ sh\[\d+\]: Hello World[\s\S]*-- following hello\.service/);
    const lastLine = (screen: string) => screen.match(/^.*Hello World$/gm)?.at(-1);
    await t.waitForScreen((screen) => lastLine(screen) !== lastLine(first));
    t.keys("Escape");
    await t.waitForScreen(/UNIT\s+DESIRED/);
    t.keys("x");
    await t.waitForScreen("Stop hello.service? (y/n)");
    t.keys("y");
    await t.waitForScreen(/hello\.service\s+loaded\s+loaded\s+\w{8}\.\.\.\/n\d\s+inactive\s+dead/);
    const units = await cluster.cli(["list-units", "--no-legend"]);
    expect(units.stdout).toMatch(/hello\.service\s+\S+\s+inactive\s+dead/);
    t.keys("d");
    await t.waitForScreen("Destroy hello.service? (y/n)");
    t.keys("y");
    await t.waitForScreen("no units (berth submit UNIT)");
    expect((await cluster.cli(["list-unit-files", "--no-legend"])).stdout).not.toContain("hello.service");

    // Keys: a directory opens with Enter; d deletes the selected key after the question; Esc goes up.
    for (const [k, v] of [
      ["/console/a", "first"],
      ["/console/b", "second"],
    ])
      expect((await cluster.cli(["kv", "set", k!, v!])).code).toBe(0);
    t.keys("3");
    await t.waitForScreen(/console\/\s+\(directory\)/);
    t.keys("g", "Enter");
    await t.waitForScreen(/a\s+first[\s\S]*b\s+second/);
    t.keys("d");
    await t.waitForScreen("Delete /console/a? (y/n)");
    t.keys("n");
    await t.waitForScreen("cancelled");
    t.keys("d");
    t.keys("y");
    await t.waitForScreen("deleted /console/a");
    expect((await cluster.cli(["kv", "get", "/console/a"])).code).toBe(4);
    expect((await cluster.cli(["kv", "get", "/console/b"])).stdout).toBe("second\n");
    // A change made elsewhere shows up without a key press.
    expect((await cluster.cli(["kv", "set", "/console/c", "third"])).code).toBe(0);
    await t.waitForScreen(/c\s+third/);
    t.keys("Escape");
    await t.waitForScreen(/console\/\s+\(directory\)/);

    t.keys("4");
    await t.waitForScreen(/n\d\s+leader\s+127\.0\.0\.\d:\d+\s+127\.0\.0\.\d:\d+\s+healthy/);
    t.keys("q");
    expect(await t.exitCode()).toBe(0);
  }, 90_000);

  it("keeps the selection on the unit chosen when a unit sorts above it, and acts on that one", async () => {
    const t = open();
    const submit = async (name: string) => {
      const file = join(cluster.dir, name);
      writeFileSync(file, "[Service]\nExecStart=/bin/sleep 600\n");
      expect((await cluster.cli(["submit", file])).code).toBe(0);
    };
    await submit("sel-b.service");
    t.keys("2");
    await t.waitForScreen(/sel-b\.service\s+inactive/);
    t.keys("/", "sel-", "Enter", "g");
    await submit("sel-a.service");
    await t.waitForScreen(/sel-a\.service\s+inactive[^\n]*\n[^\n]*sel-b\.service\s+inactive/);
    // The selected row (reverse video) is still sel-b, now the second row, and d asks about it.
    expect(t.styledScreen()).toMatch(/\x1b\[7m[^\n]*sel-b\.service/);
    t.keys("d");
    await t.waitForScreen("Destroy sel-b.service? (y/n)");
    t.keys("y");
    await t.waitForScreen("destroyed sel-b.service");
    const files = (await cluster.cli(["list-unit-files", "--no-legend"])).stdout;
    expect(files).toContain("sel-a.service");
    expect(files).not.toContain("sel-b.service");
    expect((await cluster.cli(["destroy", "sel-a.service"])).code).toBe(0);
    t.keys("q");
    expect(await t.exitCode()).toBe(0);
  });

  it("in --readonly mode says so in the header and refuses every action on units and keys", async () => {
    const file = join(cluster.dir, "ro.service");
    writeFileSync(file, "[Service]\nExecStart=/bin/sleep 600\n");
    expect((await cluster.cli(["start", file])).code).toBe(0);
    expect((await cluster.cli(["kv", "set", "/ro/key", "kept"])).code).toBe(0);
    const t = open(["--readonly"]);
    await t.waitForScreen(/^Berth console {2}READ-ONLY/);
    t.keys("2");
    await t.waitForScreen(/ro\.service\s+launched\s+launched\s+\w{8}\.\.\.\/n\d\s+active/);
    t.keys("/", "ro.service", "Enter");
    for (const [key, label] of [
      ["s", "start"],
      ["x", "stop"],
      ["R", "restart"],
      ["u", "unload"],
      ["d", "destroy"],
    ]) {
      t.keys(key!, "y");
      await t.waitForScreen(`read-only: ${label} is disabled`);
    }
    t.keys("3");
    await t.waitForScreen(/ro\/\s+\(directory\)/);
    t.keys("/", "ro/", "Enter", "Enter");
    await t.waitForScreen(/key\s+kept/);
    t.keys("d", "y");
    await t.waitForScreen("read-only: delete is disabled");
    expect((await cluster.cli(["kv", "get", "/ro/key"])).stdout).toBe("kept\n");
    expect((await cluster.cli(["list-units", "--no-legend"])).stdout).toMatch(
      /ro\.service\s+\S+\s+active\s+running/,
    );
    expect((await cluster.cli(["destroy", "ro.service"])).code).toBe(0);
    t.keys("q");
    expect(await t.exitCode()).toBe(0);
  });

  it("at 80x24: one header line, the name whole, ? help and q quit visible; the help readable at 60x15", async () => {
    const name = "a-web-frontend-with-a-long-name@1.service";
    const file = join(cluster.dir, name);
    writeFileSync(file, "[Service]\nExecStart=/bin/sleep 600\n");
    expect((await cluster.cli(["start", file])).code).toBe(0);
    term = TestTerminal.start(
      [BINARY, "console", `--endpoint=${cluster.endpoints()}`, "--refresh=300ms", "--readonly"],
      { columns: 80, rows: 24 },
    );
    const t = term;
    await t.waitForScreen(/machines 3\/3 up {2}units \d+/);
    t.keys("2");
    // Too narrow for every column: DESIRED and STATE give first, the name and ACTIVE stay whole.
    await t.waitForScreen((screen) =>
      screen
        .split("\n")
        .some((l) =>
          /^a-web-frontend-with-a-long-name@1\.service\s+la…\s+la…\s+\w{8}\.\.\.\/n\d\s+active/.test(l),
        ),
    );
    const lines = t.screen().split("\n");
    expect(lines[0]).toMatch(/^Berth console {2}READ-ONLY {2}….*units \d+\s*$/);
    expect(lines[1]).toMatch(/^ 1 Machines {2}2 Units/);
    expect(lines.filter((l) => l.trim()).at(-1)).toMatch(/\? help {2}q quit\s*$/);
    expect(lines.every((l) => l.length <= 80)).toBe(true);
    t.keys("q");
    expect(await t.exitCode()).toBe(0);

    term = TestTerminal.start([BINARY, "console", `--endpoint=${cluster.endpoints()}`], {
      columns: 60,
      rows: 15,
    });
    await term.waitForScreen(/machines 3\/3 up/);
    term.keys("?");
    const help = await term.waitForScreen(/↑↓ scroll \(1-\d+ of \d+\)/);
    expect(help).toMatch(
      /Enter\s+machine: its units; unit or container:\n\s+the unit's status; key: its value or/,
    );
    expect(help).not.toContain("…");
    term.keys("G");
    await term.waitForScreen(/\?\s+this help\n(.*\n)?q Ctrl-C\s+quit/);
    term.keys("Escape");
    await term.waitForScreen(/\? help {2}q quit/);
    expect((await cluster.cli(["destroy", name])).code).toBe(0);
  });

  it("follows its config file: default view, remapped keys, columns, a plugin with the selected unit", async () => {
    const file = join(cluster.dir, "cfg.service");
    writeFileSync(file, "[Service]\nExecStart=/bin/sleep 600\n");
    expect((await cluster.cli(["start", file])).code).toBe(0);
    const out = join(cluster.dir, "plugin.out");
    const config = join(cluster.dir, "console.json");
    writeFileSync(
      config,
      JSON.stringify({
        view: "units",
        keys: { stop: "S" },
        columns: { units: ["UNIT", "ACTIVE"] },
        plugins: [
          {
            key: "P",
            label: "note",
            views: ["units"],
            command: `echo "$BERTH_UNIT on $BERTH_MACHINE" > ${out}; echo noted`,
          },
        ],
      }),
    );
    const t = open([], { BERTH_CONSOLE_CONFIG: config });
    await t.waitForScreen(/UNIT\s+ACTIVE\n(.*\n)*cfg\.service\s+active\s*\n/);
    expect(t.screen()).not.toContain("DESIRED");
    expect(t.screen()).toMatch(/S stop .*P note/);
    t.keys("/", "cfg", "Enter", "P");
    await t.waitForScreen("note: noted");
    expect(readFileSync(out, "utf8")).toMatch(/^cfg\.service on \w{32}\n$/);
    t.keys("x");
    await new Promise((r) => setTimeout(r, 300));
    expect(t.screen()).not.toContain("Stop cfg.service?");
    t.keys("S");
    await t.waitForScreen("Stop cfg.service? (y/n)");
    t.keys("n", "q");
    expect(await t.exitCode()).toBe(0);
    expect((await cluster.cli(["destroy", "cfg.service"])).code).toBe(0);

    // A configuration it cannot use: exit 2, the file and the line.
    writeFileSync(config, '{\n  "view": "units",\n  "keys": { "stop": "d" }\n}\n');
    const r = await berth(["console", `--endpoint=${cluster.endpoints()}`, `--console-config=${config}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${config}:3: keys.stop: d is bound to both stop and destroy in units`);
  });

  it(":ctx NAME connects as the context's etcd user, with the password from the variable its password-env names", async () => {
    const r = await fetch(`${cluster.httpUrl("n1")}/v2/auth/users/ctx-alice`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user: "ctx-alice", password: "alice:pw" }),
    });
    expect(r.status, await r.text()).toBeLessThan(300);
    const config = join(cluster.dir, "ctx-console.json");
    const as = (variable: string) => ({
      endpoint: cluster.tcpEndpoint("n2"),
      username: "ctx-alice",
      "password-env": variable,
    });
    writeFileSync(config, JSON.stringify({ contexts: { right: as("CTX_PW"), wrong: as("CTX_WRONG_PW") } }));
    const t = open([], { BERTH_CONSOLE_CONFIG: config, CTX_PW: "alice:pw", CTX_WRONG_PW: "bob" });
    await t.waitForScreen(/n1\s+127\.0\.0\.1\s+up/);
    t.keys(":", "ctx wrong", "Enter");
    await t.waitForScreen("authentication as etcd user ctx-alice failed (unknown user or wrong password)");
    t.keys(":", "ctx right", "Enter");
    await t.waitForScreen(
      (screen) =>
        screen.includes(`${cluster.tcpEndpoint("n2")}  ctx right`) &&
        /n1\s+127\.0\.0\.1\s+up/.test(screen) &&
        !screen.includes("authentication as"),
    );
    t.keys("q");
    expect(await t.exitCode()).toBe(0);
  });

  it("gives a foreground plugin (background: false) the terminal, and comes back when it exits", async () => {
    const out = join(cluster.dir, "fg-plugin.out");
    const config = join(cluster.dir, "fg-console.json");
    writeFileSync(
      config,
      JSON.stringify({
        plugins: [
          {
            key: "F",
            label: "fg",
            background: false,
            // The keys are typed during the sleep: waiting in the terminal, they go to whoever reads first.
            command: `echo "FG-$BERTH_MACHINE"; sleep 1; read x; echo "read $x" > ${out}`,
          },
          { key: "W", label: "wait", background: false, command: "echo WAITING; sleep 60" },
        ],
      }),
    );
    const t = open([], { BERTH_CONSOLE_CONFIG: config });
    await t.waitForScreen(/n1\s+127\.0\.0\.1\s+up/);
    const machine = /^(\w{8})\.\.\.\s+n1\s/m.exec(t.screen())![1];
    t.keys("F");
    // The shell's screen, the command's output on it, and none of the console's.
    await t.waitForScreen(new RegExp(`^FG-${machine}\\w+\\s*$`, "m"));
    expect(t.screen()).not.toContain("Berth console");
    expect(t.paneFormat("#{alternate_on}#{mouse_sgr_flag}#{cursor_flag}")).toBe("001");
    // What is typed is the command's (the console does not read the terminal meanwhile).
    t.keys("typed-here", "Enter");
    // The console's whole frame again, in place (the header on the first line).
    const back = (screen: string) =>
      /^Berth console.*\n 1 Machines.*\n.*\nMACHINE/.test(screen) &&
      /n1\s+127\.0\.0\.1\s+up/.test(screen) &&
      screen.includes("fg: done");
    await t.waitForScreen(back);
    expect(readFileSync(out, "utf8")).toBe("read typed-here\n");
    // Again: the frame it comes back to is the one it left (drawn anew all the same).
    t.keys("F");
    await t.waitForScreen(/^FG-/m);
    t.keys("again", "Enter");
    await t.waitForScreen(back);
    expect(readFileSync(out, "utf8")).toBe("read again\n");
    expect(t.paneFormat("#{alternate_on}#{mouse_sgr_flag}#{cursor_flag}")).toBe("110");
    // Ctrl-C is the command's: it ends the plugin, not the console.
    t.keys("W");
    await t.waitForScreen(/^WAITING\s*$/m);
    t.keys("C-c");
    await t.waitForScreen("wait: killed by SIGINT");
    // The console reads its keys again.
    t.keys("4");
    await t.waitForScreen(/n\d\s+leader\s+127\.0\.0\.\d:\d+/);
    t.keys("q");
    expect(await t.exitCode()).toBe(0);
  });

  it("takes : commands with Tab completion, sorts by a column, filters by regex and inverse", async () => {
    for (const [k, v] of [
      ["/cmd/b", "2"],
      ["/cmd/a10", "1"],
      ["/cmd/a9", "3"],
    ])
      expect((await cluster.cli(["kv", "set", k!, v!])).code).toBe(0);
    const t = open();
    await t.waitForScreen(/n1\s+127\.0\.0\.1\s+up/);
    t.keys(":", "ke", "Tab");
    await t.waitForScreen(":keys ▏");
    t.keys("/cmd", "Enter");
    await t.waitForScreen(/KEY\s+VALUE[^\n]*\na10\s+1\s[^\n]*\na9\s+3\s[^\n]*\nb\s+2\s/);
    t.keys(":", "sort val", "Tab", "Enter");
    await t.waitForScreen(/VALUE↑[^\n]*\na10\s+1\s[^\n]*\nb\s+2\s[^\n]*\na9\s+3\s/);
    t.keys("/", "!^a", "Enter");
    await t.waitForScreen((screen) => /\nb\s+2\s/.test(screen) && !/\na(9|10)\s/.test(screen));
    t.keys("Escape", ":", "q", "Enter");
    expect(await t.exitCode()).toBe(0);
  });

  it("draws no colours under NO_COLOR or FORCE_COLOR=0, the selected row still in reverse video", async () => {
    const colour = /\x1b\[(?:\d+;)*(?:3[0-8]|9[0-7]|4[0-8]|10[0-7])[;m]/;
    const selected = /\x1b\[(?:\d+;)*7m(?:\x1b\[[\d;]*m)*\w{8}\.\.\.\s+n1\s/;
    for (const [env, coloured] of [
      [{}, true],
      [{ NO_COLOR: "1" }, false],
      [{ FORCE_COLOR: "0" }, false],
    ] as const) {
      const t = open([], env);
      await t.waitForScreen(/n1\s+127\.0\.0\.1\s+up[\s\S]*n3\s+127\.0\.0\.3\s+up/);
      const styled = t.styledScreen();
      expect(styled, JSON.stringify(env)).toMatch(selected);
      expect(colour.test(styled), JSON.stringify(env)).toBe(coloured);
      t.keys("q");
      expect(await t.exitCode()).toBe(0);
      term = null;
    }
  });

  it("selects rows with the mouse wheel and a click where the terminal reports them, and turns reporting off on exit", async () => {
    const selected = (name: string) =>
      new RegExp(`\\x1b\\[(?:\\d+;)*7m(?:\\x1b\\[[\\d;]*m)*\\w{8}\\.\\.\\.\\s+${name}\\s`);
    // The shell stays a moment after the console: the pane's mouse mode is read after it quit.
    term = TestTerminal.start([
      "sh",
      "-c",
      `${BINARY} console --endpoint=${cluster.endpoints()} --refresh=300ms; echo console-done; sleep 10`,
    ]);
    const t = term;
    await t.waitForScreen(/n1\s+127\.0\.0\.1\s+up[\s\S]*n3\s+127\.0\.0\.3\s+up/);
    expect(t.paneFormat("#{mouse_standard_flag}#{mouse_sgr_flag}")).toBe("11");
    expect(t.styledScreen()).toMatch(selected("n1"));
    t.keys("-l", "\x1b[<65;5;6M"); // the wheel, down
    await t.waitForScreen(() => selected("n2").test(t.styledScreen()));
    t.keys("-l", "\x1b[<0;5;7M", "\x1b[<0;5;7m"); // a left click (press, release) on n3's line (the 7th)
    await t.waitForScreen(() => selected("n3").test(t.styledScreen()));
    t.keys("-l", "\x1b[<64;5;6M"); // the wheel, up
    await t.waitForScreen(() => selected("n2").test(t.styledScreen()));
    t.keys("q");
    await t.waitForScreen("console-done");
    expect(t.paneFormat("#{mouse_standard_flag}#{mouse_sgr_flag}")).toBe("00");
  });

  it("shows changes as they happen (watches on the store), not only at the refresh interval", async () => {
    const t = open(["--refresh=10m"]);
    await t.waitForScreen(/n1\s+127\.0\.0\.1\s+up/);
    t.keys("3");
    await t.waitForScreen(/KEY\s+VALUE/);
    expect((await cluster.cli(["kv", "set", "/pushed/now", "1"])).code).toBe(0);
    await t.waitForScreen(/pushed\/\s+\(directory\)/, 5000);
    // The watch follows the directory the view opens (found with the filter; opening it clears the filter).
    t.keys("/", "pushed", "Enter");
    await t.waitForScreen((screen) => /pushed\/\s+\(directory\)/.test(screen) && !/console\//.test(screen));
    t.keys("Enter");
    await t.waitForScreen(/now\s+1/);
    expect((await cluster.cli(["kv", "set", "/pushed/later", "2"])).code).toBe(0);
    await t.waitForScreen(/later\s+2/, 5000);
    t.keys("2");
    const file = join(cluster.dir, "pushed.service");
    writeFileSync(file, "[Service]\nExecStart=/bin/sleep 600\n");
    expect((await cluster.cli(["start", file])).code).toBe(0);
    await t.waitForScreen(
      /pushed\.service\s+launched\s+launched\s+\w{8}\.\.\.\/n\d\s+active\s+running/,
      5000,
    );
    expect((await cluster.cli(["destroy", "pushed.service"])).code).toBe(0);
    t.keys("q");
    expect(await t.exitCode()).toBe(0);
  });

  it("writes nothing to the terminal while nothing changes, and only the lines that change when something does", async () => {
    const t = open();
    await t.waitForScreen(/n1\s+127\.0\.0\.1\s+up[\s\S]*n3\s+127\.0\.0\.3\s+up/);
    await new Promise((r) => setTimeout(r, 1500)); // the first polls' answers drawn
    t.recordOutput();
    // 10 s of a cluster where nothing changes: about 30 polls at --refresh=300ms, and not one byte.
    await new Promise((r) => setTimeout(r, 10_000));
    expect(t.outputBytes()).toBe(0);
    // A key that changes the screen draws it: the two rows whose selection changed, not the header or the rest.
    t.keys("j");
    await t.waitForScreen(() => t.outputBytes() > 0);
    await new Promise((r) => setTimeout(r, 300)); // the whole frame written
    expect(t.output()).toMatch(/n2\s+127\.0\.0\.2/);
    expect(t.output()).not.toMatch(/Berth console|n3\s+127\.0\.0\.3/);
    t.keys("2");
    await t.waitForScreen(/^Berth console.*\n 1 Machines {2}2 Units.*\n\nUNIT\s+DESIRED/);
    t.keys("q");
    expect(await t.exitCode()).toBe(0);
  }, 30_000);

  it("says so while no endpoint answers (and still quits cleanly)", async () => {
    const nowhere = `127.0.0.1:${await freePort()}`;
    term = TestTerminal.start([BINARY, "console", `--endpoint=${nowhere}`, "--refresh=200ms"]);
    await term.waitForScreen(
      /not connected[\s\S]*cannot reach the cluster: .*connection refused.*\(retrying\)/,
    );
    term.keys("q");
    expect(await term.exitCode()).toBe(0);
  });

  it("needs a terminal: without one it exits 2 and says what to use instead", async () => {
    const r = await berth(["console", `--endpoint=${cluster.endpoints()}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("needs a terminal");
  });

  it("works through an SSH --tunnel, and opens a new SSH connection when the first one drops", async () => {
    const endpoint = cluster.tcpEndpoint("n2");
    const sshd = await TestSshd.start([endpoint]);
    try {
      term = TestTerminal.start([BINARY, "console", `--endpoint=${endpoint}`, ...sshd.tunnelFlags()], {
        env: sshd.clientEnv(),
      });
      await term.waitForScreen(`${endpoint} via ${sshd.target}`);
      await term.waitForScreen(/n1\s+127\.0\.0\.1\s+up/);
      // The SSH connection drops: the console opens a new one and carries on.
      term.keys("3");
      await term.waitForScreen(/KEY\s+VALUE/);
      expect(sshd.dropConnections()).toBeGreaterThan(0);
      expect((await cluster.cli(["kv", "set", "/after-ssh-drop", "yes"])).code).toBe(0);
      await term.waitForScreen(/after-ssh-drop\s+yes/);
      term.keys("q");
      expect(await term.exitCode()).toBe(0);
    } finally {
      await sshd.stop();
    }
  }, 60_000);

  it("reconnects to another endpoint when its node is killed, and shows that machine lost", async () => {
    const t = open();
    await t.waitForScreen(`${cluster.endpoint("n1")}  leader`);
    await cluster.crash("n1");
    await t.waitForScreen(/\/n[23]\/berth\.sock {2}leader/);
    await t.waitForScreen(/n1\s+127\.0\.0\.1\s+lost/, 30_000);
    t.keys("q");
    expect(await t.exitCode()).toBe(0);
  }, 60_000);
});
