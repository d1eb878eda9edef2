// Berth's own check of #cloud-config user-data (the YAML subset it reads, every problem with its line) and the
// idempotent rules for its cluster units.
import { describe, expect, it } from "vitest";
import { NODE_FLAGS } from "../src/cli/node-config.ts";
import type { DesiredState, UnitInfo } from "../src/client/protocol.ts";
import { applyUnits } from "../src/cloud-config/apply.ts";
import { CloudConfigError, parseCloudConfig } from "../src/cloud-config/cloud-config.ts";
import { parseYaml } from "../src/cloud-config/yaml-lines.ts";

const KINDS = new Map(NODE_FLAGS.map((f) => [f.name, f.type]));
const parse = (text: string) => parseCloudConfig(text, "user-data", KINDS);
const problems = (text: string): string[] => {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof CloudConfigError) return err.problems;
    throw err;
  }
  throw new Error("accepted");
};

const SEED = `#cloud-config

hostname: core-01   # cloud-init's: Berth leaves it alone
coreos:
  units:
    - name: docker-tcp.socket
      command: start
berth:
  name: core-01
  discovery: "http://127.0.2.9:8087/6c007a14875d53d9bf0ef5a6fc0257c8"
  peer-addr: 127.0.2.1:7001
  insecure-listen: false
  snapshot-count: 5000
  agent-ttl: 10s
  metadata:
    role: web
    region: 'us-east'
  cluster-secret-file: /etc/berth/secret
  units:
    - name: hello.service
      command: start
      content: |
        [Unit]
        Description=Hello # not a YAML comment

        [Service]
        ExecStart=/bin/sh -c "while true; do echo hello; sleep 1; done"
    - name: web@.service
      command: submit
      content: |-
        [Service]
        ExecStart=/bin/sleep 100
    - name: web@1.service
`;

describe("the YAML subset", () => {
  it("reads mappings, sequences, quoted and block scalars, with their lines", () => {
    const doc = parseYaml(
      "a: 1\nb:\n- x\n- 'y'' z'\nc: |\n  one\n   two\n\n  three\nd: >\n  folded\n  text\ne: \"q\\n\"\n",
    );
    expect(doc).toMatchObject({
      kind: "map",
      entries: [
        { key: "a", line: 1, value: { kind: "scalar", value: "1" } },
        {
          key: "b",
          line: 2,
          value: {
            kind: "seq",
            items: [
              { value: "x", line: 3 },
              { value: "y' z", line: 4 },
            ],
          },
        },
        { key: "c", line: 5, value: { value: "one\n two\n\nthree\n", block: 6 } },
        { key: "d", line: 10, value: { value: "folded text\n" } },
        { key: "e", line: 13, value: { value: "q\n" } },
      ],
    });
  });

  it("reads flow style and folded plain values as YAML does", () => {
    expect(parseYaml("a: [x, 'y']\nb: {c: d}\ne: one\n  two\n")).toMatchObject({
      entries: [
        { key: "a", value: { kind: "seq", items: [{ value: "x" }, { value: "y", quoted: true }] } },
        { key: "b", value: { kind: "map", entries: [{ key: "c", line: 2, value: { value: "d" } }] } },
        { key: "e", line: 3, value: { value: "one two" } },
      ],
    });
  });

  it("keeps every scalar a string: the check decides what true or 3 means", () => {
    expect(parseYaml("a: true\nb: 3\nc: ~\n")).toMatchObject({
      entries: [{ value: { value: "true" } }, { value: { value: "3" } }, { value: { value: "~" } }],
    });
  });

  it("refuses a broken document with the line", () => {
    expect(() => parseYaml("a: &x 1\nb: *x\n")).toThrow("line 2: aliases");
    expect(() => parseYaml("a: 1\n\tb: 2\n")).toThrow("line 2: Tabs are not allowed");
    expect(() => parseYaml("a: 1\na: 2\n")).toThrow("line 2: Map keys must be unique");
    expect(() => parseYaml("a:\n  b:\n    c: 1\n   d: 2\n")).toThrow("line 4: All mapping items");
    expect(() => parseYaml("a: 1\n---\nb: 2\n")).toThrow("line 2: only one YAML document is read");
    expect(() => parseYaml("a: [1,\n")).toThrow("line 2: Flow sequence");
  });
});

describe("a cloud-config's berth: section", () => {
  it("gives node flags and cluster units; other keys are cloud-init's", () => {
    const cc = parse(SEED);
    expect(cc.node).toEqual({
      name: "core-01",
      discovery: "http://127.0.2.9:8087/6c007a14875d53d9bf0ef5a6fc0257c8",
      "peer-addr": "127.0.2.1:7001",
      "insecure-listen": false,
      "snapshot-count": 5000,
      "agent-ttl": "10s",
      metadata: "role=web,region=us-east",
      "cluster-secret-file": "/etc/berth/secret",
    });
    expect(cc.units.map((u) => [u.name, u.command, u.line])).toEqual([
      ["hello.service", "start", 20],
      ["web@.service", "submit", 28],
      ["web@1.service", "start", 33],
    ]);
    expect(cc.units[0]!.text).toContain("Description=Hello # not a YAML comment\n\n[Service]");
    expect(cc.units[0]!.hash).toMatch(/^[0-9a-f]{40}$/);
  });

  it("lists every problem with its line, unit file lines mapped into the YAML file", () => {
    expect(
      problems(`#cloud-config
berth:
  name: n1
  peer-adr: 127.0.2.1:7001
  join: yes
  config: /etc/berth/x.json
  metadata:
    role: a,b
`),
    ).toEqual([
      'user-data:4: unknown key "peer-adr" in berth: (keys are `berth node` flag names, e.g. peer-addr, or units)',
      'user-data:5: join: must be true or false, not "yes"',
      'user-data:6: unknown key "config" in berth: (keys are `berth node` flag names, e.g. peer-addr, or units)',
      'user-data:8: metadata role: must be one value without "," or "="',
    ]);
    // The units' problems, all of them (a YAML error would stop at the first: see above).
    const p = problems(`#cloud-config
berth:
  units:
    - name: bad.service
      command: run
    - name: broken.service
      runtime: true
      content: |
        [Service]
        ExecStart=/bin/true
        this line has no equals sign
    - name: bad.service
      content: "[Service]\\nExecStart=/bin/true\\n"
    - name: tpl@.service
      content: "[Service]\\nExecStart=/bin/true\\n"
    - name: nocontent.service
`);
    expect(p).toEqual([
      "user-data:5: command: must be one of submit, load, start",
      expect.stringMatching(/^user-data:7: unknown unit key "runtime"/),
      expect.stringMatching(/^user-data:11: broken\.service: /),
      "user-data:14: tpl@.service is a template: its command can only be submit (start an instance)",
      "user-data:16: unit nocontent.service needs content: (only a template's instance may omit it)",
    ]);
  });

  it("must start with #cloud-config, as cloud-init requires", () => {
    expect(problems("berth:\n  name: x\n")).toEqual([
      'user-data:1: a cloud-config starts with the line "#cloud-config" (cloud-init ignores the file otherwise)',
    ]);
  });
});

describe("applying the units", () => {
  /** An in-memory registry with the calls counted. */
  function registry(initial: UnitInfo[] = []) {
    const units = new Map(initial.map((u) => [u.name, { ...u }]));
    const calls: string[] = [];
    return {
      units,
      calls,
      api: {
        list: async () => [...units.values()],
        submit: async (list: { name: string; text?: string }[]) => {
          calls.push(`submit ${list.map((u) => u.name)}`);
          for (const u of list) units.set(u.name, info(u.name, hashes.get(u.name)!, "inactive"));
        },
        setDesired: async (names: string[], desired: DesiredState) => {
          calls.push(`${desired} ${names}`);
          for (const n of names) units.get(n)!.desired = desired;
        },
      },
    };
  }
  const cc = parse(SEED);
  const hashes = new Map(cc.units.map((u) => [u.name, u.hash ?? "tpl"]));
  const info = (name: string, hash: string, desired: DesiredState): UnitInfo => ({
    name,
    hash,
    desired,
    current: null,
    global: false,
    machines: [],
    description: null,
    unplaceable: null,
  });

  it("submits what is missing, leaves identical units alone, reports different ones; a second apply does nothing", async () => {
    const r = registry([info("web@.service", "0".repeat(40), "inactive")]);
    expect(await applyUnits(r.api, cc.units)).toEqual({
      submitted: ["hello.service", "web@1.service"],
      unchanged: [],
      conflicts: ["web@.service"],
    });
    expect(r.calls).toEqual([
      "submit hello.service",
      "submit web@1.service",
      "launched hello.service,web@1.service",
    ]);
    r.calls.length = 0;
    r.units.get("hello.service")!.desired = "loaded"; // an operator stopped it: the file does not start it again
    expect(await applyUnits(r.api, cc.units)).toEqual({
      submitted: [],
      unchanged: ["hello.service", "web@1.service"],
      conflicts: ["web@.service"],
    });
    expect(r.calls).toEqual([]);
  });
});
