// The CLI framework: flag parsing, help, unknown commands, and the mapping of node errors to exit codes.
import { describe, expect, it } from "vitest";
import { CLIENT_FLAGS, toCliError } from "../src/cli/client-command.ts";
import type { Command, CommandEntry } from "../src/cli/command.ts";
import { EXIT, UsageError } from "../src/cli/exit-codes.ts";
import { type FlagSpec, type Parsed, parseArgs, parseDuration } from "../src/cli/flags.ts";
import { renderTable } from "../src/cli/output.ts";
import { berthInProcess } from "./support/cli-in-process.ts";

const SPECS: FlagSpec[] = [
  { name: "ttl", type: "number", description: "" },
  { name: "recursive", type: "boolean", description: "" },
  { name: "p", type: "boolean", description: "" },
  {
    name: "endpoint",
    type: "list",
    description: "",
    env: "TEST_BERTH_ENDPOINT",
    default: ["127.0.0.1:4001"],
  },
  { name: "timeout", type: "duration", description: "", default: 5000 },
];

describe("parseArgs", () => {
  it("accepts flags anywhere, in both spellings, with --no- and --", () => {
    const p = parseArgs(
      ["set", "/k", "--ttl", "15", "v", "--recursive", "-p", "--timeout=250ms", "--", "--x"],
      SPECS,
      "t",
    );
    expect(p.positionals).toEqual(["set", "/k", "v", "--x"]);
    expect(p.flags).toMatchObject({ ttl: 15, recursive: true, p: true, timeout: 250 });
    expect(parseArgs(["--no-recursive"], SPECS, "t").flags.recursive).toBe(false);
  });

  it("takes defaults and environment variables, flags first", () => {
    expect(parseArgs([], SPECS, "t").flags.endpoint).toEqual(["127.0.0.1:4001"]);
    process.env.TEST_BERTH_ENDPOINT = "127.0.0.2:1,127.0.0.3:2";
    try {
      expect(parseArgs([], SPECS, "t").flags.endpoint).toEqual(["127.0.0.2:1", "127.0.0.3:2"]);
      expect(parseArgs(["--endpoint", "a:1"], SPECS, "t").flags.endpoint).toEqual(["a:1"]);
    } finally {
      delete process.env.TEST_BERTH_ENDPOINT;
    }
  });

  it("refuses unknown flags, missing values and bad numbers with the flag's name", () => {
    expect(() => parseArgs(["--nope"], SPECS, "berth kv set")).toThrow(
      /unknown flag --nope for `berth kv set`/,
    );
    expect(() => parseArgs(["--ttl"], SPECS, "t")).toThrow(/--ttl needs a value/);
    expect(() => parseArgs(["--ttl", "abc"], SPECS, "t")).toThrow(/--ttl must be a number/);
    expect(() => parseArgs(["--timeout", "soon"], SPECS, "t")).toThrow(UsageError);
  });

  it("parses durations", () => {
    expect(parseDuration("1.5s", "x")).toBe(1500);
    expect(parseDuration("2m", "x")).toBe(120_000);
    expect(parseDuration("7", "x")).toBe(7000);
  });
});

describe("dispatch", () => {
  // A command that records what it was given, declared like the real ones: its own flags plus the client's.
  const runs: Parsed[] = [];
  const record = (name: string): Command => ({
    name,
    summary: `records its arguments`,
    usage: "ARGS...",
    flags: [
      ...SPECS.filter((s) => s.name !== "endpoint"),
      { name: "full", short: "l", type: "boolean", description: "" },
      ...CLIENT_FLAGS,
    ],
    async run(parsed) {
      runs.push(parsed);
      return EXIT.ok;
    },
  });
  const TREE: CommandEntry[] = [
    record("rec"),
    { name: "grp", summary: "a group", subcommands: [record("sub")] },
  ];
  const run = async (args: string[]) => {
    runs.length = 0;
    return { ...(await berthInProcess(args, TREE)), parsed: runs[0] };
  };

  it("passes everything after -- to the command, --help and -h included", async () => {
    const r = await run(["rec", "m", "--", "ls", "--help", "-h"]);
    expect(r.stdout).toBe("");
    expect(r.parsed?.positionals).toEqual(["m", "ls", "--help", "-h"]);
    const g = await run(["grp", "sub", "/k", "--", "--help"]);
    expect(g.parsed?.positionals).toEqual(["/k", "--help"]);
  });

  it("prints the command's help for --help or -h before --, from its declarations", async () => {
    for (const args of [
      ["rec", "x", "--help"],
      ["rec", "-h", "--", "y"],
      ["grp", "sub", "-lh"],
      ["help", "rec"],
    ]) {
      const r = await run(args);
      expect(r, args.join(" ")).toMatchObject({ code: 0, parsed: undefined });
      expect(r.stdout).toMatch(/^Usage: berth (rec|grp sub) ARGS\.\.\./);
      expect(r.stdout).toMatch(
        /--request-timeout DURATION +how long to wait for the cluster \(default 5s, env BERTH_REQUEST_TIMEOUT or FLEETCTL_REQUEST_TIMEOUT\)/,
      );
    }
  });

  it("applies client flags given before the command (fleetctl's order) without moving them past --", async () => {
    const r = await run(["--endpoint", "127.0.8.1:1", "-o", "json", "grp", "sub", "a", "--", "b", "--ttl"]);
    expect(r.parsed?.positionals).toEqual(["a", "b", "--ttl"]);
    expect(r.parsed?.flags).toMatchObject({ endpoint: ["127.0.8.1:1"], output: "json" });
    expect((await run(["--request-timeout=2s", "--help"])).stdout).toMatch(
      /^berth .*\n\nUsage: berth COMMAND/,
    );
  });

  it("reads negative numbers and a lone - as arguments, short flags grouped, values that start with -", async () => {
    const r = await run(["rec", "-5", "-", "-lp", "--ttl", "-1", "--timeout=2m", "--no-recursive"]);
    expect(r.parsed?.positionals).toEqual(["-5", "-"]);
    expect(r.parsed?.flags).toMatchObject({
      full: true,
      p: true,
      ttl: -1,
      timeout: 120_000,
      recursive: false,
    });
  });

  it("refuses unknown flags and missing values with exit 2 and the command's name", async () => {
    for (const [args, message] of [
      [["rec", "--nope"], /^Error: unknown flag --nope for `berth rec` \(see `berth rec --help`\)\n$/],
      [["grp", "sub", "-lz"], /^Error: unknown flag -z \(in -lz\) for `berth grp sub`/],
      [["rec", "--ttl"], /^Error: flag --ttl needs a value\n$/],
      [["rec", "--full=maybe"], /^Error: --full must be true or false, not "maybe"\n$/],
      [["rec", "--no-full=1"], /^Error: --no-full=1 takes no value\n$/],
      [["--nope", "rec"], /^Error: unknown flag --nope for `berth rec`/],
    ] as const) {
      const r = await run([...args]);
      expect(r, args.join(" ")).toMatchObject({ code: EXIT.usage, stdout: "", parsed: undefined });
      expect(r.stderr).toMatch(message);
    }
  });
});

describe("toCliError", () => {
  it("prints store errors as etcdctl does and gives each kind its exit code", () => {
    const notFound = toCliError({
      code: "kv",
      message: "Key not found",
      data: { errorCode: 100, message: "Key not found", cause: "/nokey", index: 23 },
    });
    expect(notFound.message).toBe("100: Key not found (/nokey) [23]");
    expect(notFound.exitCode).toBe(EXIT.notFound);
    const cas = toCliError({
      code: "kv",
      message: "",
      data: { errorCode: 101, message: "Compare failed", cause: "[a != b]", index: 3 },
    });
    expect(cas.exitCode).toBe(EXIT.conflict);
    expect(toCliError({ code: "unavailable", message: "no leader" }).exitCode).toBe(EXIT.unavailable);
    expect(toCliError({ code: "no_space", message: "disk full" }).exitCode).toBe(EXIT.noSpace);
    expect(toCliError({ code: "timeout", message: "slow" }).exitCode).toBe(EXIT.unavailable);
    expect(toCliError({ code: "bad_request", message: "bad" }).exitCode).toBe(EXIT.usage);
    expect(toCliError(new Error("boom")).exitCode).toBe(EXIT.error);
  });
});

describe("renderTable", () => {
  it("pads columns with tabs as fleetctl's tabwriter (0, 8, 1, '\\t', 0) and truncates unless full", () => {
    const rows = [
      { a: "1", b: "short" },
      { a: "22", b: "a-rather-long-value" },
    ];
    const cols = [
      { header: "ID", value: (r: (typeof rows)[0]) => r.a },
      { header: "VALUE", value: (r: (typeof rows)[0]) => r.b, maxWidth: 8 },
    ];
    expect(renderTable(rows, cols)).toBe("ID\tVALUE\n1\tshort\n22\ta-rather...");
    expect(renderTable(rows, cols, { full: true }).split("\n")[2]).toBe("22\ta-rather-long-value");
    // Widths as Go's tabwriter computes them: widest cell + 1, rounded up to 8; a cell of exactly 7 takes one tab,
    // one of 8 takes two columns' worth (16) for everyone.
    const wide = [{ a: "1234567" }, { a: "12345678" }];
    const three = [
      { header: "A", value: (r: (typeof wide)[0]) => r.a },
      { header: "B", value: () => "x" },
    ];
    expect(renderTable([wide[0]!], three, { legend: false })).toBe("1234567\tx");
    expect(renderTable(wide, three, { legend: false })).toBe("1234567\t\tx\n12345678\tx");
  });
});
