import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SYSTEMD_SPECIFIERS } from "../src/unit/systemd-keys.ts";
import {
  expandSpecifiers,
  expandUnitFile,
  get,
  getAll,
  instanceName,
  KNOWN_SPECIFIERS,
  parseBoolean,
  parsePrefixes,
  parseUnitFile,
  parseUnitFileWithWarnings,
  parseUnitName,
  serializeUnitFile,
  splitCommandLine,
  splitFleetMultivalue,
  templateOf,
  type UnitFile,
  UnitFileError,
  UnitNameError,
  unescapeUnitNamePart,
  unitFile,
  xfleetOf,
} from "../src/unit/unit-file.ts";
import { EMPTY_XFLEET, type XFleetOptions } from "../src/unit/xfleet.ts";

const SEED = `[Unit]
Description=My Service
After=docker.service

[Service]
TimeoutStartSec=0
ExecStartPre=-/usr/bin/docker kill busybox1
ExecStartPre=-/usr/bin/docker rm busybox1
ExecStartPre=/usr/bin/docker pull busybox
ExecStart=/usr/bin/docker run --name busybox1 busybox /bin/sh -c "trap 'exit 0' INT TERM; while true; do echo Hello World; sleep 1; done"
ExecStop=/usr/bin/docker stop busybox1

[X-Fleet]
Conflicts=hello-world@*.service
`;

/** Plain-object view of a UnitFile, for readable equality checks. */
const plain = (f: UnitFile): Record<string, Record<string, string[]>> =>
  Object.fromEntries([...f.sections].map(([s, keys]) => [s, Object.fromEntries(keys)]));

const xf = (o: Partial<XFleetOptions> = {}): XFleetOptions => ({ ...EMPTY_XFLEET, ...o });

const parseError = (text: string, name?: string): UnitFileError => {
  try {
    parseUnitFile(text, name);
  } catch (e) {
    expect(e).toBeInstanceOf(UnitFileError);
    return e as UnitFileError;
  }
  throw new Error("expected a UnitFileError");
};

describe("parseUnitFile: the seed's unit", () => {
  const f = parseUnitFile(SEED, "hello-world@1.service");

  it("reads every section and key in order", () => {
    expect([...f.sections.keys()]).toEqual(["Unit", "Service", "X-Fleet"]);
    expect(get(f, "Unit", "Description")).toBe("My Service");
    expect(get(f, "Unit", "After")).toBe("docker.service");
    expect(get(f, "Service", "TimeoutStartSec")).toBe("0");
    expect(getAll(f, "Service", "ExecStartPre")).toEqual([
      "-/usr/bin/docker kill busybox1",
      "-/usr/bin/docker rm busybox1",
      "/usr/bin/docker pull busybox",
    ]);
    expect(get(f, "X-Fleet", "Conflicts")).toBe("hello-world@*.service");
    expect(get(f, "Nope", "X")).toBeUndefined();
    expect(getAll(f, "Unit", "Nope")).toEqual([]);
  });

  it("keeps values raw and splits ExecStart with systemd's quoting", () => {
    const exec = get(f, "Service", "ExecStart")!;
    expect(exec).toContain(`"trap 'exit 0' INT TERM;`);
    expect(splitCommandLine(exec)).toEqual([
      "/usr/bin/docker",
      "run",
      "--name",
      "busybox1",
      "busybox",
      "/bin/sh",
      "-c",
      "trap 'exit 0' INT TERM; while true; do echo Hello World; sleep 1; done",
    ]);
  });

  it("decodes ExecStartPre prefixes", () => {
    const cmd = parsePrefixes(getAll(f, "Service", "ExecStartPre")[0]!);
    expect(cmd.ignoreFailure).toBe(true);
    expect(cmd.path).toBe("/usr/bin/docker");
    expect(cmd.argv).toEqual(["/usr/bin/docker", "kill", "busybox1"]);
    expect(parsePrefixes(getAll(f, "Service", "ExecStartPre")[2]!).ignoreFailure).toBe(false);
  });

  it("yields the seed's X-Fleet options", () => {
    expect(xfleetOf(f, { unitName: "hello-world@1.service" })).toEqual(
      xf({ conflicts: ["hello-world@*.service"] }),
    );
  });

  it("serializes canonically (go-systemd layout) and round-trips", () => {
    const out = serializeUnitFile(f);
    expect(out.startsWith("[Unit]\nDescription=My Service\nAfter=docker.service\n\n[Service]\n")).toBe(true);
    expect(out.endsWith("[X-Fleet]\nConflicts=hello-world@*.service\n")).toBe(true);
    expect(plain(parseUnitFile(out))).toEqual(plain(f));
  });
});

describe("parseUnitFile: syntax", () => {
  it.each([
    ["comments and blank lines", "# c\n; c\n\n[A]\n  # indented comment\nK=v\n", { A: { K: ["v"] } }],
    ["whitespace around key and value", "[A]\n  Key  =   some value  \t\n", { A: { Key: ["some value"] } }],
    ["= inside value", "[A]\nEnvironment=A=1 B=2\n", { A: { Environment: ["A=1 B=2"] } }],
    ["CRLF line ends", "[A]\r\nK=v\r\nL=w\r\n", { A: { K: ["v"], L: ["w"] } }],
    ["BOM", "\uFEFF[A]\nK=v\n", { A: { K: ["v"] } }],
    ["repeated keys accumulate", "[A]\nK=1\nK=2\nK=3\n", { A: { K: ["1", "2", "3"] } }],
    ["empty assignment resets", "[A]\nK=1\nK=2\nK=\nK=3\n", { A: { K: ["3"] } }],
    ["reset at end leaves empty list", "[A]\nK=1\nK=\n", { A: { K: [] } }],
    [
      "repeated sections merge",
      "[A]\nK=1\n[B]\nX=y\n[A]\nK=2\nL=3\n",
      { A: { K: ["1", "2"], L: ["3"] }, B: { X: ["y"] } },
    ],
    ["empty section", "[A]\n[B]\nK=v\n", { A: {}, B: { K: ["v"] } }],
    [
      "continuation",
      "[A]\nExecStart=/bin/echo \\\n  hello \\\n  world\n",
      { A: { ExecStart: ["/bin/echo    hello    world"] } },
    ],
    [
      "comments inside a continuation are skipped",
      "[A]\nK=a \\\n# comment\n; other\nb\n",
      { A: { K: ["a  b"] } },
    ],
    ["even backslashes do not continue", "[A]\nK=a\\\\\nL=b\n", { A: { K: ["a\\\\"], L: ["b"] } }],
    ["backslash then space does not continue", "[A]\nK=a\\ \nL=b\n", { A: { K: ["a\\"], L: ["b"] } }],
    ["a comment ending in backslash does not continue", "[A]\n# c \\\nK=v\n", { A: { K: ["v"] } }],
    ["continuation open at EOF is accepted", "[A]\nK=v\\", { A: { K: ["v"] } }],
    ["value may contain # and ;", "[A]\nK=a # not a comment ; x\n", { A: { K: ["a # not a comment ; x"] } }],
    ["empty file", "", {}],
  ])("%s", (_name, text, expected) => {
    expect(plain(parseUnitFile(text))).toEqual(expected);
  });

  it("reports an open continuation at EOF as a warning", () => {
    const { file, warnings } = parseUnitFileWithWarnings("[A]\nK=v \\\n# c\n");
    expect(get(file, "A", "K")).toBe("v");
    expect(warnings).toEqual([{ line: 2, message: expect.stringContaining("continuation") }]);
    expect(parseUnitFileWithWarnings("[A]\nK=v \\\n").warnings).toHaveLength(1);
    expect(parseUnitFileWithWarnings("[A]\nK=v \\\n\n").warnings).toEqual([]);
    expect(parseUnitFileWithWarnings("[A]\nK=v\n").warnings).toEqual([]);
  });
});

describe("parseUnitFile: errors carry line numbers", () => {
  it.each([
    ["Description=x\n", 1, 'key "Description" outside of any section'],
    ["# c\n\n[A\n", 3, "malformed section header"],
    ["[A]x\n", 1, "malformed section header"],
    ["[]\n", 1, "empty section name"],
    ["[A B]\n", 1, "invalid character in section name"],
    ["[A]\nK=v\njust words\n", 3, 'missing "="'],
    ["[A]\n=value\n", 2, "empty key"],
    ["[A]\n  = value\n", 2, "empty key"],
    ["[A]\nBad Key=v\n", 2, "invalid character in key"],
    ["[A]\nK[1]=v\n", 2, "invalid character in key"],
    // The error points at the first physical line of a continued line.
    ["[A]\nK=v\nno \\\nequals\n", 3, 'missing "="'],
  ])("%j → line %i", (text, line, reason) => {
    const e = parseError(text);
    expect(e.line).toBe(line);
    expect(e.reason).toContain(reason);
    expect(e.message).toBe(`${line}: ${e.reason}`);
  });

  it("prefixes the message with the unit name", () => {
    const text = "[Unit]\nDescription=x\n\n[Service]\n\n\n]\n";
    expect(parseError("\n\n\n\n\n\nExecStart=/bin/true\n", "web.service").message).toBe(
      'web.service:7: key "ExecStart" outside of any section',
    );
    expect(parseError(text, "web.service").message).toMatch(/^web\.service:7: /);
  });
});

describe("serializeUnitFile", () => {
  it("keeps a reset as Key=, with what came before it, as fleet's cat shows it", () => {
    const f = parseUnitFile("[A]\nK=1\nK=\nK=2\n");
    expect(serializeUnitFile(f)).toBe("[A]\nK=1\nK=\nK=2\n");
    expect(plain(parseUnitFile(serializeUnitFile(f)))).toEqual({ A: { K: ["2"] } });
  });

  it("keeps the file's option order, and a section met again gets its header again", () => {
    const f = parseUnitFile("[S]\nExecStartPre=a\nExecStart=b\nExecStartPre=c\n[U]\nX=1\n[S]\nY=2\n");
    expect(serializeUnitFile(f)).toBe(
      "[S]\nExecStartPre=a\nExecStart=b\nExecStartPre=c\n\n[U]\nX=1\n\n[S]\nY=2\n",
    );
    expect(getAll(f, "S", "ExecStartPre")).toEqual(["a", "c"]);
    expect(plain(f)).toEqual({
      S: { ExecStartPre: ["a", "c"], ExecStart: ["b"], Y: ["2"] },
      U: { X: ["1"] },
    });
  });

  it("drops comments, blank lines and sections without assignments, and joins continuations", () => {
    const f = parseUnitFile("# c\n[Empty]\n\n[A]\n; c\nK=one \\\n two\n");
    expect(serializeUnitFile(f)).toBe("[A]\nK=one   two\n");
    expect([...f.sections.keys()]).toEqual(["Empty", "A"]);
  });

  it.each([
    ["line break", "a\nb"],
    ["leading whitespace", " a"],
    ["trailing backslash", "a\\"],
  ])("refuses an unrepresentable value (%s)", (_why, v) => {
    const f = unitFile([
      { section: "A", key: "K", value: "x" },
      { section: "A", key: "K", value: v },
    ]);
    expect(() => serializeUnitFile(f)).toThrow(UnitFileError);
  });

  it("refuses invalid names", () => {
    expect(() => serializeUnitFile(unitFile([{ section: "A]", key: "K", value: "v" }]))).toThrow(
      UnitFileError,
    );
    expect(() => serializeUnitFile(unitFile([{ section: "A", key: "K=", value: "v" }]))).toThrow(
      UnitFileError,
    );
  });
});

describe("splitCommandLine", () => {
  it.each<[string, string[]]>([
    ["/bin/echo a b", ["/bin/echo", "a", "b"]],
    ["  /bin/echo \t a   b  ", ["/bin/echo", "a", "b"]],
    ['echo "a b" c', ["echo", "a b", "c"]],
    ["echo 'a b' c", ["echo", "a b", "c"]],
    ['echo "it\'s"', ["echo", "it's"]],
    ["echo 'say \"hi\"'", ["echo", 'say "hi"']],
    ['echo a"b c"d', ["echo", "ab cd"]],
    ['echo "" x', ["echo", "", "x"]],
    ["echo ''", ["echo", ""]],
    ['echo "a\\"b"', ["echo", 'a"b']],
    ["echo a\\\\b", ["echo", "a\\b"]],
    ['echo "x\\ny\\tz"', ["echo", "x\ny\tz"]],
    ["echo a\\sb", ["echo", "a b"]],
    ["echo \\x41\\102\\u00e9", ["echo", "ABé"]],
    ["echo $HOME $X", ["echo", "$HOME", "$X"]],
    ["", []],
    ["   ", []],
  ])("%j", (input, words) => {
    expect(splitCommandLine(input)).toEqual(words);
  });

  it.each([
    ['echo "abc', "unbalanced double quote"],
    ["echo 'abc", "unbalanced single quote"],
    ["echo abc\\", "trailing backslash"],
    ["echo \\q", "unknown escape"],
    ["echo \\xZZ", "invalid escape"],
    ["echo \\x00", "out of range"],
  ])("%j throws (%s)", (input, reason) => {
    expect(() => splitCommandLine(input)).toThrow(UnitFileError);
    expect(() => splitCommandLine(input)).toThrow(reason);
  });
});

describe("parsePrefixes", () => {
  const flags = (s: string) => {
    const { path: _p, argv: _a, ...rest } = parsePrefixes(s);
    return rest;
  };
  const none = {
    ignoreFailure: false,
    separateArgv0: false,
    fullPrivileges: false,
    noCredentialChange: false,
    ambientFallback: false,
    noEnvExpansion: false,
  };

  it.each([
    ["/bin/true", {}],
    ["-/bin/true", { ignoreFailure: true }],
    ["+/bin/true", { fullPrivileges: true }],
    ["!/bin/true", { noCredentialChange: true }],
    ["!!/bin/true", { ambientFallback: true }],
    [":/bin/true", { noEnvExpansion: true }],
    ["-:/bin/true", { ignoreFailure: true, noEnvExpansion: true }],
    ["-+/bin/true", { ignoreFailure: true, fullPrivileges: true }],
  ])("%s", (cmd, expected) => {
    expect(flags(cmd)).toEqual({ ...none, ...expected });
    expect(parsePrefixes(cmd).path).toBe("/bin/true");
  });

  it("@ passes the second word as argv[0]", () => {
    const c = parsePrefixes("-@/bin/busybox sh -c 'echo hi'");
    expect(c).toMatchObject({ ignoreFailure: true, separateArgv0: true, path: "/bin/busybox" });
    expect(c.argv).toEqual(["sh", "-c", "echo hi"]);
  });

  it("accepts pre-split words", () => {
    expect(parsePrefixes(["-/bin/x", "a b"]).argv).toEqual(["/bin/x", "a b"]);
  });

  it.each([
    ["", "empty command"],
    ["-", "missing executable"],
    ["--/bin/true", 'prefix "-" given twice'],
    ["+!/bin/true", "exclude each other"],
    ["!!!/bin/true", "exclude each other"],
    ["@/bin/true", "argv[0]"],
  ])("%j throws (%s)", (cmd, reason) => {
    expect(() => parsePrefixes(cmd)).toThrow(reason);
  });
});

describe("unit names", () => {
  it.each([
    ["web.service", { prefix: "web", instance: null, type: "service", isTemplate: false, isInstance: false }],
    ["web@.service", { prefix: "web", instance: "", type: "service", isTemplate: true, isInstance: false }],
    ["web@1.service", { prefix: "web", instance: "1", type: "service", isTemplate: false, isInstance: true }],
    ["a.b-c_d:e\\x2d.socket", { prefix: "a.b-c_d:e\\x2d", instance: null, type: "socket" }],
    ["getty@tty1.service", { prefix: "getty", instance: "tty1" }],
    ["x@a@b.timer", { prefix: "x", instance: "a@b", type: "timer", isInstance: true }],
    ["home.mount", { type: "mount" }],
    ["multi-user.target", { type: "target" }],
    ["watch.path", { type: "path" }],
  ])("%s", (name, expected) => {
    expect(parseUnitName(name)).toMatchObject(expected);
  });

  it.each([
    ["", "empty"],
    ["web", "missing type suffix"],
    [".service", "missing type suffix"],
    ["web.exe", 'unknown type suffix ".exe"'],
    ["web.Service", "unknown type suffix"],
    ["@1.service", "empty prefix"],
    ["we b.service", "invalid character"],
    ["web/1.service", "invalid character"],
    ["web@a b.service", "invalid character in instance"],
    ["home@x.mount", "cannot be templates"],
    [`${"a".repeat(248)}.service`, "longer than 255"],
  ])("rejects %j (%s)", (name, reason) => {
    expect(() => parseUnitName(name)).toThrow(UnitNameError);
    expect(() => parseUnitName(name)).toThrow(reason);
  });

  it("accepts exactly 255 characters", () => {
    expect(parseUnitName(`${"a".repeat(247)}.service`).prefix).toHaveLength(247);
  });

  it("templateOf / instanceName", () => {
    expect(templateOf("web@1.service")).toBe("web@.service");
    expect(templateOf("web@.service")).toBe("web@.service");
    expect(templateOf("db@a@b.socket")).toBe("db@.socket");
    expect(() => templateOf("web.service")).toThrow(UnitNameError);
    expect(instanceName("web@.service", "1")).toBe("web@1.service");
    expect(instanceName("hello-world@.timer", "x:y")).toBe("hello-world@x:y.timer");
    expect(() => instanceName("web@1.service", "2")).toThrow("not a template");
    expect(() => instanceName("web.service", "2")).toThrow("not a template");
    expect(() => instanceName("web@.service", "")).toThrow("empty instance");
    expect(() => instanceName("web@.service", "a b")).toThrow(UnitNameError);
  });
});

describe("specifiers", () => {
  const ctx = { unitName: "my\\x2dapp@var-lib-data.service", hostname: "node1", machineId: "abc123" };
  it.each([
    ["%n", "my\\x2dapp@var-lib-data.service"],
    ["%N", "my\\x2dapp@var-lib-data"],
    ["%p", "my\\x2dapp"],
    ["%P", "my-app"],
    ["%i", "var-lib-data"],
    ["%I", "var/lib/data"],
    ["%H", "node1"],
    ["%m", "abc123"],
    ["100%%", "100%"],
    ["%p-%i on %H", "my\\x2dapp-var-lib-data on node1"],
    ["no specifiers", "no specifiers"],
    ["trailing %", "trailing %"],
  ])("%s", (value, expected) => {
    expect(expandSpecifiers(value, ctx)).toBe(expected);
  });

  it("takes the machine's values from the context: %s %h %t ...", () => {
    const host = { s: "/bin/bash", h: "/root", t: "/run", u: "root" };
    expect(expandSpecifiers("%s -c true; %h %t %u", { unitName: "a.service", host })).toBe(
      "/bin/bash -c true; /root /run root",
    );
  });

  it("%j %J %f %d: last dash component, file name, credentials", () => {
    const ctx = { unitName: "web-front\\x2dend@var-log.service" };
    expect(expandSpecifiers("%j|%J|%f|%d", ctx)).toBe(
      "front\\x2dend|front-end|/var/log|/run/credentials/web-front\\x2dend@var-log.service",
    );
    expect(expandSpecifiers("%f", { unitName: "a-b.service" })).toBe("/a/b");
  });

  it("knows exactly systemd's specifiers (the table generated from systemd)", () => {
    expect([...KNOWN_SPECIFIERS].sort()).toEqual([...SYSTEMD_SPECIFIERS].sort());
  });

  it("gives an empty instance for plain units and templates", () => {
    expect(expandSpecifiers("[%i]", { unitName: "web.service" })).toBe("[]");
    expect(expandSpecifiers("[%i][%p]", { unitName: "web@.service" })).toBe("[][web]");
  });

  it.each([
    ["%x", 'unknown specifier "%x"'],
    ["%Z", 'unknown specifier "%Z"'],
    ["%5d", 'unknown specifier "%5"'],
    ["%t", 'specifier "%t" needs a value'],
    ["%s", 'specifier "%s" needs a value'],
    ["%H", 'specifier "%H" needs a value'],
    ["%m", 'specifier "%m" needs a value'],
    ["%y", 'specifier "%y" (the unit file\'s path) is not supported'],
  ])("%s throws (%s)", (value, reason) => {
    expect(() => expandSpecifiers(value, { unitName: "web.service" })).toThrow(UnitFileError);
    expect(() => expandSpecifiers(value, { unitName: "web.service" })).toThrow(reason);
  });

  it("unescapes systemd-escaped names", () => {
    expect(unescapeUnitNamePart("dev-disk-by\\x2dlabel-x")).toBe("dev/disk/by-label/x");
    expect(unescapeUnitNamePart("caf\\xc3\\xa9")).toBe("café");
    expect(() => unescapeUnitNamePart("a\\x4")).toThrow(UnitNameError);
    expect(() => expandSpecifiers("%I", { unitName: "a@b\\q.service" })).toThrow(UnitFileError);
  });

  it("expandUnitFile expands every value and leaves the original alone", () => {
    const tpl = parseUnitFile(
      "[Unit]\nDescription=Web %i on %H\n[Service]\nExecStart=/bin/web --id %i --pct 5%%\n[X-Fleet]\nMachineOf=db@%i.service\n",
    );
    const inst = expandUnitFile(tpl, { unitName: "web@2.service", hostname: "h" });
    expect(plain(inst)).toEqual({
      Unit: { Description: ["Web 2 on h"] },
      Service: { ExecStart: ["/bin/web --id 2 --pct 5%"] },
      "X-Fleet": { MachineOf: ["db@2.service"] },
    });
    expect(get(tpl, "Unit", "Description")).toBe("Web %i on %H");
  });
});

describe("xfleetOf", () => {
  const x = (body: string, unitName = "web@2.service", extra = {}) =>
    xfleetOf(parseUnitFile(`[X-Fleet]\n${body}\n`), { unitName, ...extra });

  it("no [X-Fleet] section → empty options", () => {
    expect(xfleetOf(parseUnitFile("[Unit]\nDescription=x\n"), { unitName: "a.service" })).toEqual(
      EMPTY_XFLEET,
    );
  });

  it.each<[string, Partial<XFleetOptions>]>([
    ["MachineID=abc123", { machineId: "abc123" }],
    ["MachineID=abc123\nMachineID=abc123", { machineId: "abc123" }],
    ["MachineOf=hello-world@%i.service", { machineOf: ["hello-world@2.service"] }],
    ["MachineOf=a.service\nMachineOf=b.service", { machineOf: ["a.service", "b.service"] }],
    ["MachineMetadata=region=us-east", { machineMetadata: { region: ["us-east"] } }],
    [
      'MachineMetadata="region=us-east" "disk=ssd"',
      { machineMetadata: { region: ["us-east"], disk: ["ssd"] } },
    ],
    [
      'MachineMetadata="region=us-east-1" "job=foo"\nMachineMetadata="region=us-west-1" "job=bar"',
      { machineMetadata: { region: ["us-east-1", "us-west-1"], job: ["foo", "bar"] } },
    ],
    ["MachineMetadata=path=a=b", { machineMetadata: { path: ["a=b"] } }],
    ["MachineMetadata=host=%H", { machineMetadata: { host: ["node9"] } }],
    [
      "Conflicts=web@*.service db.service\nConflicts=x*",
      { conflicts: ["web@*.service", "db.service", "x*"] },
    ],
    ['Conflicts="a*" "b*"', { conflicts: ["a*", "b*"] }],
    ["Conflicts=%p@*.service", { conflicts: ["web@*.service"] }],
    ["Conflicts=a*\nConflicts=\nConflicts=b*", { conflicts: ["b*"] }],
    ["Replaces=old@%i.service", { replaces: ["old@2.service"] }],
    ["X-Conflicts=a*\nX-ConditionMachineOf=b.service", { conflicts: ["a*"], machineOf: ["b.service"] }],
    ["X-ConditionMachineID=m1", { machineId: "m1" }],
    ["Global=true", { global: true }],
    ["Global=false", { global: false }],
    ["Global=true\nGlobal=no", { global: false }],
    ["Global=true\nGlobal=", { global: false }],
    [
      "Global=true\nMachineMetadata=role=edge\nConflicts=lb*",
      { global: true, machineMetadata: { role: ["edge"] }, conflicts: ["lb*"] },
    ],
  ])("%j", (body, expected) => {
    expect(x(body, "web@2.service", { hostname: "node9" })).toEqual(xf(expected));
  });

  it.each([
    ["yes", true],
    ["YES", true],
    ["y", true],
    ["1", true],
    ["on", true],
    ["t", true],
    ["True", true],
    ["no", false],
    ["0", false],
    ["off", false],
    ["false", false],
    ["n", false],
  ])("Global=%s → %s", (word, value) => {
    expect(x(`Global=${word}`).global).toBe(value);
    expect(parseBoolean(word)).toBe(value);
  });

  it.each([
    ["Global=maybe", "not a boolean"],
    [
      "Global=true\nMachineOf=a.service",
      "Global=true can only be combined with MachineMetadata and Conflicts",
    ],
    ["Global=true\nMachineID=m1", "Global=true can only be combined"],
    ["Global=yes\nReplaces=old.service", "Global=true can only be combined"],
    ["MachineID=m1\nMachineOf=a.service", "MachineID cannot be combined with MachineOf"],
    ["MachineID=m1\nMachineMetadata=a=b", "MachineID cannot be combined with MachineMetadata"],
    ["MachineID=m1\nConflicts=a*", "MachineID cannot be combined with Conflicts"],
    ["MachineID=m1\nReplaces=a*", "MachineID cannot be combined with Replaces"],
    ["MachineID=m1\nMachineID=m2", "several different values"],
    ["Conflicts=a*\nReplaces=b*", "Conflicts cannot be combined with Replaces"],
    ["MachineOf=db.service\nConflicts=db*", "unresolvable"],
    ["MachineMetadata=region", "not key=value"],
    ["MachineMetadata==x", "not key=value"],
    ["MachineMetadata=k=", "not key=value"],
    [
      "Bogus=1",
      '[X-Fleet] unknown key "Bogus" (known: MachineID, MachineOf, MachineMetadata, Conflicts, Global, Replaces)',
    ],
    ["MachineOf=db@%Z.service", "unknown specifier"],
  ])("%j is refused (%s)", (body, reason) => {
    expect(() => x(body)).toThrow(UnitFileError);
    expect(() => x(body)).toThrow(reason);
  });

  it("names the unit and the line in the error", () => {
    expect(() => x("Global=true\nMachineOf=a.service", "g.service")).toThrow(
      /^g\.service:3: \[X-Fleet\] Global/,
    );
    expect(() => x("X-ConditionMachineID=m1\nMachineMetadata=a=b", "g.service")).toThrow(
      /^g\.service:3: \[X-Fleet\] MachineID cannot be combined with MachineMetadata/,
    );
    expect(() => x("Global=1\nBogus=2", "g.service")).toThrow(
      /^g\.service:3: \[X-Fleet\] unknown key "Bogus"/,
    );
  });

  it("a global unit with MachineOf=%i: refused even from a template instance", () => {
    expect(() => x("Global=1\nMachineOf=hello-world@%i.service")).toThrow(UnitFileError);
  });

  it("splitFleetMultivalue follows fleet's parseMultivalueLine", () => {
    expect(splitFleetMultivalue('"a=1" "b=2"')).toEqual(["a=1", "b=2"]);
    expect(splitFleetMultivalue('"a=x y"')).toEqual(["a=x y"]);
    expect(splitFleetMultivalue("a=1 b=2")).toEqual(["a=1 b=2"]);
    expect(splitFleetMultivalue('"a=1" "b')).toEqual(['"a=1" "b']);
  });
});

describe("properties", () => {
  // Lines made of the characters that matter to the grammar, so random input hits every branch.
  const lineArb = fc.oneof(
    fc.string({
      unit: fc.constantFrom("[", "]", "=", "\\", "#", ";", " ", "\t", "a", "B", "-", "%", '"', "\r", "é"),
    }),
    fc.string(),
    fc.constantFrom("[Unit]", "[X-Fleet]", "K=v", "K=", "K=a \\", "# c \\", "", "  ", "\\\\", "K=a\\ "),
  );
  const textArb = fc.oneof(
    fc.string(),
    fc.array(lineArb, { maxLength: 12 }).map((ls) => ls.join("\n")),
  );

  it("parseUnitFile throws nothing but UnitFileError", () => {
    fc.assert(
      fc.property(textArb, (text) => {
        try {
          parseUnitFile(text);
        } catch (e) {
          if (!(e instanceof UnitFileError)) throw e;
          expect(e.line).toBeGreaterThan(0);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("parse → serialize → parse is the identity (when the file is serializable)", () => {
    fc.assert(
      fc.property(textArb, (text) => {
        let f: UnitFile;
        let out: string;
        try {
          f = parseUnitFile(text);
          out = serializeUnitFile(f);
        } catch (e) {
          if (!(e instanceof UnitFileError)) throw e;
          return;
        }
        const again = parseUnitFile(out);
        expect(again.options).toEqual(f.options);
        expect(serializeUnitFile(again)).toBe(out);
      }),
      { numRuns: 2000 },
    );
  });

  it("generated unit files serialize and parse back exactly", () => {
    const name = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,8}$/);
    const value = fc
      .string({ minLength: 1, maxLength: 20 })
      .filter((v) => !/[\r\n]/.test(v) && v.trim() === v && !/(^|[^\\])(\\\\)*\\$/.test(v));
    // Resets (empty values) included: they are assignments like any other.
    const fileArb = fc
      .array(fc.tuple(name, name, fc.oneof(value, fc.constant(""))), { maxLength: 16 })
      .map((opts): UnitFile => unitFile(opts.map(([section, key, v]) => ({ section, key, value: v }))));
    fc.assert(
      fc.property(fileArb, (f) => {
        const back = parseUnitFile(serializeUnitFile(f));
        expect(back.options).toEqual(f.options);
        expect(plain(back)).toEqual(plain(f));
      }),
      { numRuns: 1000 },
    );
  });

  it("splitCommandLine throws nothing but UnitFileError", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom("a", " ", '"', "'", "\\", "n", "x", "4", "0", "\t") }),
        (s) => {
          try {
            splitCommandLine(s);
          } catch (e) {
            if (!(e instanceof UnitFileError)) throw e;
          }
        },
      ),
    );
  });
});
