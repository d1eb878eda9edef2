// The fleetctl-style unit commands (verify, submit, load, start, stop, unload, destroy, cat, list-unit-files,
// list-units, list-machines) run in-process against the real store, unit service and scheduling engine, served
// through the real client API (test/support/unit-cluster.ts, whose agents report units running a few polls after
// they were placed).
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { EXIT } from "../src/cli/exit-codes.ts";
import { WAIT_TIMING } from "../src/cli/units.ts";
import type { MachineInfo, UnitInfo, UnitSubmission } from "../src/client/protocol.ts";
import { parseUnitFile, serializeUnitFile } from "../src/unit/unit-file.ts";
import { berthInProcess } from "./support/cli-in-process.ts";
import { LAUNCH_AFTER, M1, M2, UnitCluster } from "./support/unit-cluster.ts";

// ---- harness -----------------------------------------------------------------------------------------------

let cluster: UnitCluster;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "berth-cli-units-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const saved = { ...WAIT_TIMING };
beforeEach(async () => {
  cluster = await UnitCluster.start();
  Object.assign(WAIT_TIMING, { pollMs: 10, attemptMs: 100, unplaceableGraceMs: 150 });
});
afterEach(async () => {
  Object.assign(WAIT_TIMING, saved);
  vi.restoreAllMocks();
  await cluster.close();
});

const berth = (...args: string[]) => berthInProcess([...args, "--endpoint", cluster.endpoint]);
/** Without --endpoint (commands that take no client flags). */
const berthLocal = (...args: string[]) => berthInProcess(args);

const HELLO = `[Unit]
Description=Hello World

[Service]
ExecStart=/bin/sh -c "while true; do echo Hello; sleep 1; done"
`;
const WEB_TEMPLATE = `[Unit]
Description=Web %i

[Service]
ExecStart=/usr/bin/web --port 80%i

[X-Fleet]
Conflicts=web@*.service
`;
const MARS = `[Service]
ExecStart=/bin/true

[X-Fleet]
MachineMetadata=region=mars
`;
/** Why the engine cannot place MARS (no machine has region=mars). */
const MARS_REASON = "no machine matches MachineMetadata region=mars";

async function file(name: string, text: string, sub = ""): Promise<string> {
  const path = join(dir, sub, name);
  if (sub) await mkdir(join(dir, sub), { recursive: true });
  await writeFile(path, text);
  return path;
}

function hashOf(text: string): string {
  return createHash("sha1")
    .update(serializeUnitFile(parseUnitFile(text)))
    .digest("hex");
}

function submitted(): UnitSubmission[] {
  return cluster.calls
    .filter((c) => c.method === "units.submit")
    .flatMap((c) => (c.params as { units: UnitSubmission[] }).units);
}

// ---- tests -------------------------------------------------------------------------------------------------

describe("verify", () => {
  it("prints FILE: ok for valid files and exits 0, without a cluster", async () => {
    const a = await file("hello.service", HELLO);
    const b = await file("web@.service", WEB_TEMPLATE);
    const r = await berthLocal("verify", a, b);
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toBe(`${a}: ok\n${b}: ok\n`);
  });

  it("reports errors with the line number on stderr and exits 2", async () => {
    const bad = await file("bad.service", "[Unit]\nDescription=x\n\n[Service]\nExecStart /bin/true\n");
    const good = await file("good.service", HELLO);
    const r = await berthLocal("verify", good, bad);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stdout).toBe(`${good}: ok\n`);
    expect(r.stderr).toBe(`${bad}:5: missing "=" in "ExecStart /bin/true"\n`);
  });

  it("checks [X-Fleet] options and the unit name; json documents per file", async () => {
    const xf = await file(
      "x.service",
      "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineID=abc\nGlobal=true\n",
    );
    const name = await file("notaunit.txt", HELLO);
    const r = await berthLocal("verify", xf, name);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toContain(`${xf}:4: [X-Fleet] Global=true can only be combined with MachineMetadata`);
    expect(r.stderr).toMatch(/notaunit\.txt: invalid unit name "notaunit\.txt": unknown type suffix/);
    const j = await berthLocal("verify", "--output", "json", xf);
    const doc = JSON.parse(j.stdout);
    expect(doc).toMatchObject({ file: xf, unit: "x.service", ok: false });
    expect(j.code).toBe(EXIT.usage);
  });

  it("missing files and no arguments are usage errors", async () => {
    expect((await berthLocal("verify", join(dir, "nope.service"))).code).toBe(EXIT.usage);
    expect((await berthLocal("verify")).code).toBe(EXIT.usage);
  });
});

describe("submit", () => {
  it("submits local files under their base name, prints nothing, is idempotent", async () => {
    const path = await file("hello.service", HELLO);
    const r = await berth("submit", path);
    expect(r).toEqual({ code: 0, stdout: "", stderr: "" });
    expect((await cluster.unit("hello.service"))?.hash).toBe(hashOf(HELLO));
    expect((await cluster.unit("hello.service"))?.desired).toBe("inactive");
    const again = await berth("submit", path);
    expect(again.code).toBe(0);
    expect(submitted()).toHaveLength(1); // the second submit sent nothing
  });

  it("No units given exits 0", async () => {
    const r = await berth("submit");
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("No units given\n");
  });

  it("instance with a local template sends the template's text under the instance name", async () => {
    await file("web@.service", WEB_TEMPLATE, "tpl");
    const r = await berth("submit", join(dir, "tpl", "web@1.service"));
    expect(r.code).toBe(0);
    expect(submitted()).toEqual([{ name: "web@1.service", text: WEB_TEMPLATE }]);
  });

  it("instance without local files uses the cluster's template (no text sent)", async () => {
    await cluster.put("web@.service", WEB_TEMPLATE, "inactive", null);
    cluster.calls = [];
    const r = await berth("submit", join(dir, "empty", "web@2"));
    expect(r.code).toBe(0);
    expect(submitted()).toEqual([{ name: "web@2.service" }]);
    expect((await cluster.unit("web@2.service"))?.hash).toBe(hashOf(WEB_TEMPLATE));
  });

  it("instance with no template anywhere is not found (exit 4), nothing sent", async () => {
    const r = await berth("submit", join(dir, "empty", "db@1.service"));
    expect(r.code).toBe(EXIT.notFound);
    expect(r.stderr).toMatch(/unable to find unit db@1\.service.*the cluster has no db@\.service/);
    expect(submitted()).toEqual([]);
  });

  it("plain unit with no file is not found (exit 4)", async () => {
    const r = await berth("submit", join(dir, "empty", "ghost.service"));
    expect(r.code).toBe(EXIT.notFound);
  });

  it("validates locally first: line number, exit 2, nothing sent for any unit", async () => {
    const good = await file("good.service", HELLO);
    const bad = await file("broken.service", "[Service]\nExecStart=/bin/true\n[Oops\n");
    const r = await berth("submit", good, bad);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toBe(`Error: ${bad}:3: malformed section header "[Oops"\n`);
    expect(submitted()).toEqual([]);
  });

  it("refuses what the agent would refuse (the same validator): file, line, exit 2, nothing sent", async () => {
    const good = await file("good.service", HELLO);
    const bad = await file("forking.service", "[Service]\nExecStart=/bin/true\nType=forking2\n");
    const r = await berth("submit", good, bad);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toBe(
      `Error: ${bad}:3: Type=forking2 is not supported (supported: simple, exec, oneshot, forking, notify)\n`,
    );
    expect(submitted()).toEqual([]);
  });

  it("invalid unit names are usage errors", async () => {
    const r = await berth("submit", "bad name!.service");
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toMatch(/invalid unit name/);
  });

  it("a differing local file warns without --replace and replaces with it", async () => {
    await cluster.put("hello.service", HELLO, "inactive", null);
    const path = await file("hello.service", HELLO.replace("Hello World", "Hello Moon"), "v2");
    const r = await berth("submit", path);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      `WARNING: Unit hello.service in registry differs from local unit file ${path}. Add --replace to override.\n`,
    );
    expect((await cluster.unit("hello.service"))?.description).toBe("Hello World");
    const j = await berth("submit", "--replace", path, "-o", "json");
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ name: "hello.service", description: "Hello Moon" });
  });

  it("--replace refuses units whose desired state the command may not replace", async () => {
    await cluster.put("hello.service", HELLO, "launched", M1);
    const path = await file("hello.service", HELLO.replace("Hello World", "Hello Sun"), "v3");
    const r = await berth("submit", "--replace", path);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      "Warning: can not replace Unit(hello.service) in state 'launched', use the appropriate command\n",
    );
    expect(submitted()).toEqual([]);
  });
});

describe("load and start", () => {
  it("start submits, sets launched, blocks until the agent reports it active", async () => {
    const path = await file("hello.service", HELLO, "start");
    const r = await berth("start", path);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("Unit hello.service launched on 113f16a7.../172.17.8.103\n");
    expect(r.code).toBe(0);
    const polls = cluster.calls.filter((c) => c.method === "units.states").length;
    expect(polls).toBeGreaterThanOrEqual(LAUNCH_AFTER);
    expect((await cluster.unit("hello.service"))?.desired).toBe("launched");
  });

  it("appends .service, and omits the ip when the machine has none", async () => {
    // The engine places a unit on the least loaded machine: n1 (M1) holds one already.
    await cluster.put("hello.service", HELLO, "launched", M1);
    await cluster.put("two.service", HELLO, "inactive", null);
    const r = await berth("start", "two");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("Unit two.service launched on 2addf739...\n");
  });

  it("load waits for loaded and prints the machine", async () => {
    await cluster.put("hello.service", HELLO, "inactive", null);
    const r = await berth("load", "hello.service");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("Unit hello.service loaded on 113f16a7.../172.17.8.103\n");
    expect((await cluster.unit("hello.service"))?.desired).toBe("loaded");
  });

  it("--no-block triggers and returns; json prints one document per unit", async () => {
    // Not WEB_TEMPLATE: its Conflicts= leaves a third instance no machine among two.
    await cluster.put("web@.service", HELLO, "inactive", null);
    const r = await berth("start", "--no-block", "web@1", "web@2");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("Triggered unit web@1.service start\nTriggered unit web@2.service start\n");
    expect(cluster.calls.filter((c) => c.method === "units.states")).toHaveLength(0);
    const j = await berth("start", "web@3", "-o", "json");
    expect(j.code).toBe(0);
    const docs = j.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(docs).toEqual([expect.objectContaining({ name: "web@3.service", current: "launched" })]);
  });

  it("starts instances from a local template next to the argument", async () => {
    await file("app@.service", WEB_TEMPLATE, "apps");
    const r = await berth("start", join(dir, "apps", "app@7"));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("Unit app@7.service launched on 113f16a7.../172.17.8.103\n");
    expect(submitted()).toEqual([{ name: "app@7.service", text: WEB_TEMPLATE }]);
  });

  it("templates cannot be started or loaded (exit 2, nothing sent)", async () => {
    const path = await file("web@.service", WEB_TEMPLATE, "t2");
    for (const cmd of ["start", "load"]) {
      const r = await berth(cmd, path);
      expect(r.code).toBe(EXIT.usage);
      expect(r.stderr).toMatch(/web@\.service is a template and cannot be (started|loaded)/);
    }
    expect(cluster.calls.filter((c) => c.method !== "units.list")).toEqual([]);
  });

  it("an unplaceable unit is reported instead of blocking forever (exit 1)", async () => {
    const path = await file("mars.service", MARS);
    const r = await berth("start", path);
    expect(r.code).toBe(EXIT.error);
    expect(r.stderr).toBe(`Unit mars.service cannot be placed: ${MARS_REASON}\n`);
    expect(r.stdout).toBe("");
  });

  it("with --block-attempts, unplaceable units are reported when the attempts run out", async () => {
    Object.assign(WAIT_TIMING, { unplaceableGraceMs: 60_000 });
    await cluster.put("mars.service", MARS, "inactive", null);
    const r = await berth("start", "--block-attempts", "1", "mars.service", "hello2.service");
    expect(r.stderr).toMatch(/unable to find unit hello2\.service/);
    expect(r.code).toBe(EXIT.notFound);
    const r2 = await berth("load", "--block-attempts", "1", "mars");
    expect(r2.code).toBe(EXIT.error);
    expect(r2.stderr).toBe(`Unit mars.service cannot be placed: ${MARS_REASON}\n`);
  });

  it("a unit still not there after the attempts exits 3", async () => {
    Object.assign(WAIT_TIMING, { attemptMs: 15, pollMs: 5 });
    await cluster.put("slow.service", HELLO, "inactive", null);
    const r = await berth("start", "--block-attempts=1", "slow.service");
    expect(r.code).toBe(EXIT.unavailable);
    expect(r.stderr).toMatch(
      /Unit slow\.service did not become launched after 1 attempt \(current state loaded\)/,
    );
  });

  it("a request that timed out is sent again, not reported as a failure: the cluster did the work", async () => {
    await cluster.put("hello.service", HELLO, "inactive", null);
    cluster.slowAnswers = [500];
    const r = await berth("load", "--request-timeout=200ms", "hello.service");
    expect(r.stderr).toBe("No answer within 200 ms for 1 units; sending them again\n");
    expect(r.stdout).toBe("Unit hello.service loaded on 113f16a7.../172.17.8.103\n");
    expect(r.code).toBe(0);
  });

  it("a failed unit ends the wait with its reason once two polls agree", async () => {
    await cluster.put("hello.service", HELLO, "loaded", M1);
    cluster.agents.failing.add("hello.service");
    const r = await berth("start", "--block-attempts=5", "hello.service");
    expect(r.stdout).toBe("Unit hello.service launched on 113f16a7.../172.17.8.103\n");
    expect(r.stderr).toBe(
      "Unit hello.service failed on 113f16a7.../172.17.8.103: failed (Result: exit-code)\n",
    );
    expect(r.code).toBe(EXIT.error);
  });

  it("conflicting and bad blocking flags are usage errors", async () => {
    expect((await berth("start", "--no-block", "--block-attempts", "2", "x")).code).toBe(EXIT.usage);
    expect((await berth("start", "--block-attempts", "-1", "x")).code).toBe(EXIT.usage);
    expect((await berth("start", "--block-attempts", "1.5", "x")).code).toBe(EXIT.usage);
  });

  it("global units are triggered, not waited for", async () => {
    await cluster.put("g.service", `${HELLO}\n[X-Fleet]\nGlobal=true\n`, "inactive", null);
    const r = await berth("start", "g.service");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("Triggered global unit g.service start\n");
  });
});

describe("stop, unload, destroy", () => {
  it("stop sets loaded and waits; unknown names are reported, the others stopped, exit 4", async () => {
    await cluster.put("hello.service", HELLO, "launched", M1);
    const missing = await berth("stop", "hello.service", "nope.service");
    expect(missing.code).toBe(EXIT.notFound);
    expect(missing.stderr).toBe(
      "Unit nope.service not found in the cluster\nSuccessfully stopped units [hello.service].\n",
    );
    expect((await cluster.unit("hello.service"))?.desired).toBe("loaded");
    await cluster.put("hello.service", HELLO, "launched", M1);
    const r = await berth("stop", "hello");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("Unit hello.service loaded on 113f16a7.../172.17.8.103\n");
    expect(r.stderr).toBe("Successfully stopped units [hello.service].\n");
    expect((await cluster.unit("hello.service"))?.desired).toBe("loaded");
  });

  it("stop refuses a unit that is not loaded anywhere (exit 1)", async () => {
    await cluster.put("idle.service", HELLO, "inactive", null);
    const r = await berth("stop", "idle.service");
    expect(r.code).toBe(EXIT.error);
    expect(r.stderr).toBe("Unable to stop unit idle.service in state inactive\n");
  });

  it("unload accepts globs and waits for inactive; bad globs are usage errors", async () => {
    await cluster.put("web@1.service", WEB_TEMPLATE, "launched", M1);
    await cluster.put("web@2.service", WEB_TEMPLATE, "loaded", M2);
    await cluster.put("db.service", HELLO, "launched", M1);
    const r = await berth("unload", "web@*");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("Unit web@1.service inactive\nUnit web@2.service inactive\n");
    expect(r.stderr).toBe("Successfully unloaded units [web@1.service web@2.service].\n");
    expect((await cluster.unit("db.service"))?.desired).toBe("launched");
    expect((await berth("unload", "web@[1")).code).toBe(EXIT.usage);
    expect((await berth("unload", "nothing*")).code).toBe(EXIT.notFound);
  });

  it("unload --no-block triggers; json prints the unit documents", async () => {
    await cluster.put("db.service", HELLO, "launched", M1);
    const r = await berth("unload", "--no-block", "db.service");
    expect(r.stdout).toBe("Triggered unit db.service unload\n");
    await cluster.put("db.service", HELLO, "launched", M1);
    const j = await berth("unload", "db.service", "--output=json");
    expect(JSON.parse(j.stdout)).toMatchObject({
      name: "db.service",
      desired: "inactive",
      current: "inactive",
    });
  });

  it("destroy prints Destroyed X; unknown names exit 4", async () => {
    await cluster.put("a.service", HELLO, "launched", M1);
    await cluster.put("b.service", HELLO, "inactive", null);
    const r = await berth("destroy", "a", "b.service");
    expect(r).toEqual({ code: 0, stdout: "Destroyed a.service\nDestroyed b.service\n", stderr: "" });
    expect(await cluster.units.list()).toEqual([]);
    const missing = await berth("destroy", "a.service");
    expect(missing.code).toBe(EXIT.notFound);
    await cluster.put("c.service", HELLO, "inactive", null);
    const j = await berth("destroy", "c.service", "-o", "json");
    expect(JSON.parse(j.stdout)).toEqual({ destroyed: ["c.service"] });
  });

  it("no arguments: No units given, exit 0", async () => {
    for (const cmd of ["stop", "unload", "destroy", "start", "load"]) {
      const r = await berth(cmd);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("No units given\n");
    }
  });
});

describe("cat", () => {
  it("prints the stored unit file; unknown exits 4; one argument only", async () => {
    await cluster.put("hello.service", HELLO, "inactive", null);
    const r = await berth("cat", "hello");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(serializeUnitFile(parseUnitFile(HELLO)));
    const j = await berth("cat", "hello.service", "-o", "json");
    expect(JSON.parse(j.stdout)).toEqual({
      name: "hello.service",
      text: serializeUnitFile(parseUnitFile(HELLO)),
    });
    expect((await berth("cat", "nope.service")).code).toBe(EXIT.notFound);
    const two = await berth("cat", "a", "b");
    expect(two.code).toBe(EXIT.usage);
    expect(two.stderr).toBe("Error: One unit file must be provided\n");
  });
});

describe("list-unit-files", () => {
  beforeEach(async () => {
    await cluster.put("hello.service", HELLO, "launched", M1);
    await cluster.put("web@.service", WEB_TEMPLATE, "inactive", null);
    await cluster.put("g.service", `${HELLO}\n[X-Fleet]\nGlobal=true\n`, "launched", null);
    await cluster.put("two.service", HELLO, "loaded", M2);
    await cluster.put("mars.service", MARS, "launched", null);
  });

  it("prints fleet's columns, sorted by name", async () => {
    const r = await berth("list-unit-files");
    expect(r.code).toBe(0);
    const h = hashOf(HELLO).slice(0, 7);
    const w = hashOf(WEB_TEMPLATE).slice(0, 7);
    const g = hashOf(`${HELLO}\n[X-Fleet]\nGlobal=true\n`).slice(0, 7);
    const m = hashOf(MARS).slice(0, 7);
    expect(r.stdout).toBe(
      // fleetctl's tabwriter (minwidth 0, tabwidth 8, padding 1, '\t'): a column is its widest cell plus one,
      // rounded up to a multiple of 8, and filled with tabs.
      [
        "UNIT\t\tHASH\tDSTATE\t\tSTATE\t\tTARGET",
        `g.service\t${g}\tlaunched\t-\t\tglobal`,
        `hello.service\t${h}\tlaunched\tlaunched\t113f16a7.../172.17.8.103`,
        `mars.service\t${m}\tlaunched\tinactive\t-`,
        `two.service\t${h}\tloaded\t\tloaded\t\t2addf739...`,
        `web@.service\t${w}\tinactive\tinactive\t-`,
        "",
      ].join("\n"),
    );
    // `cut -f1` takes the first column.
    expect(r.stdout.split("\n").map((l) => l.split("\t")[0])).toEqual([
      "UNIT",
      "g.service",
      "hello.service",
      "mars.service",
      "two.service",
      "web@.service",
      "",
    ]);
  });

  it("--fields, --full, --no-legend, filters, reason, tmachine warning", async () => {
    const r = await berth(
      "list-unit-files",
      "--fields",
      "unit,hash,global,desc,target,reason",
      "--full",
      "--no-legend",
      "hello*",
      "mars",
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        `hello.service\t${hashOf(HELLO)}\tfalse\tHello World\t${M1}/172.17.8.103\t-`,
        `mars.service\t${hashOf(MARS)}\tfalse\t-\t\t-\t\t\t\t\t\t${MARS_REASON}`,
        "",
      ].join("\n"),
    );
    const t = await berth("list-unit-files", "--fields", "unit,tmachine", "two.service");
    expect(t.stderr).toBe('WARNING: The "tmachine" field is deprecated. Use "target" instead\n');
    expect(t.stdout).toBe("UNIT\t\tTMACHINE\ntwo.service\t2addf739...\n");
  });

  it("bad --fields are usage errors; json prints the documents", async () => {
    const empty = await berth("list-unit-files", "--fields", "");
    expect(empty.code).toBe(EXIT.usage);
    expect(empty.stderr).toBe("Error: Must define output format\n");
    const bad = await berth("list-unit-files", "--fields", "unit,nope");
    expect(bad.code).toBe(EXIT.usage);
    expect(bad.stderr).toMatch(/Invalid key in output format: "nope"/);
    const j = await berth("list-unit-files", "-o", "json");
    const docs = JSON.parse(j.stdout) as UnitInfo[];
    expect(docs.map((d) => d.name)).toEqual([
      "g.service",
      "hello.service",
      "mars.service",
      "two.service",
      "web@.service",
    ]);
  });
});

describe("list-units", () => {
  it("one row per unit per machine, sorted; --all adds a row for unplaceable units", async () => {
    await cluster.put("hello.service", HELLO, "launched", M1);
    await cluster.put("two.service", HELLO, "loaded", M2);
    await cluster.put("g.service", `${HELLO}\n[X-Fleet]\nGlobal=true\n`, "launched", null);
    await cluster.put("mars.service", MARS, "launched", null);
    await cluster.put("idle.service", HELLO, "inactive", null);
    const r = await berth("list-units");
    expect(r.code).toBe(0);
    // As fleet: units on machines only (scripts counting rows count units that are somewhere).
    expect(r.stdout).toBe(
      [
        "UNIT\t\tMACHINE\t\t\t\tACTIVE\t\tSUB",
        "g.service\t113f16a7.../172.17.8.103\tactive\t\trunning",
        "g.service\t2addf739...\t\t\tactive\t\trunning",
        "hello.service\t113f16a7.../172.17.8.103\tactive\t\trunning",
        "two.service\t2addf739...\t\t\tinactive\tdead",
        "",
      ].join("\n"),
    );
    const all = await berth("list-units", "--all", "--no-legend", "mars");
    expect(all.stdout).toBe(`mars.service\t-\tinactive\tdead (cannot be placed: ${MARS_REASON})\n`);
    const f = await berth("list-units", "--fields", "unit,load,hash,machine", "-l", "--no-legend", "hello");
    expect(f.stdout).toBe(`hello.service\tloaded\t${hashOf(HELLO)}\t${M1}/172.17.8.103\n`);
    expect(JSON.parse((await berth("list-units", "-o", "json", "mars.service")).stdout)).toEqual([]);
    const j = await berth("list-units", "--all", "-o", "json", "mars.service");
    expect(JSON.parse(j.stdout)).toEqual([
      expect.objectContaining({
        name: "mars.service",
        machine: "-",
        note: `cannot be placed: ${MARS_REASON}`,
      }),
    ]);
    expect((await berth("list-units", "--fields", "unit,tmachine")).code).toBe(EXIT.usage);
  });

  it("an empty cluster prints only the header", async () => {
    const r = await berth("list-units");
    expect(r.stdout).toBe("UNIT\tMACHINE\tACTIVE\tSUB\n");
    expect((await berth("list-units", "--no-legend")).stdout).toBe("");
  });
});

describe("list-machines", () => {
  it("MACHINE IP METADATA sorted by id, short ids, sorted metadata", async () => {
    const r = await berth("list-machines");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        "MACHINE\t\tIP\t\tMETADATA",
        "113f16a7...\t172.17.8.103\taz=b,region=us",
        "2addf739...\t-\t\t-",
        "",
      ].join("\n"),
    );
  });

  it("-l / --full, --no-legend, --fields, json", async () => {
    const r = await berth("list-machines", "-l", "--no-legend", "--fields", "machine,name,state");
    expect(r.stdout).toBe(`${M1}\tn1\tup\n${M2}\tn2\tup\n`);
    expect((await berth("list-machines", "--full", "--no-legend", "--fields", "machine")).stdout).toBe(
      `${M1}\n${M2}\n`,
    );
    const j = await berth("list-machines", "-o", "json");
    expect((JSON.parse(j.stdout) as MachineInfo[]).map((m) => m.id)).toEqual([M1, M2]);
    expect((await berth("list-machines", "--fields", "machine,bogus")).code).toBe(EXIT.usage);
    expect((await berth("list-machines", "extra")).code).toBe(EXIT.usage);
  });
});

describe("cluster errors", () => {
  it("an unreachable endpoint exits 3", async () => {
    const r = await berthLocal("list-units", "--endpoint", "127.0.0.1:1", "--request-timeout", "1s");
    expect(r.code).toBe(EXIT.unavailable);
  });
});
