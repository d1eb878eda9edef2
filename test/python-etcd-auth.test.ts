// python-etcd's own auth tests against a real etcd 3.4 and against Berth, side by side. The client and the tests are
// upstream's at commit 7f3dd65 (the first to speak etcd >= 2.3's auth JSON), vendored unmodified in
// test/fixtures/python-etcd; test/support/python-etcd-auth.py stands in for upstream's test base, which would spawn
// etcd itself, and runs each test class against a fresh single-member cluster started here. etcd 3.4 is the
// criterion: every upstream test passes there and must pass on Berth, and every HTTP exchange the client makes on
// the way (request, status, answer byte for byte) must be the same on Berth as on etcd.
import { spawn, spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { TestCluster } from "./support/cluster.ts";
import { EtcdMember } from "./support/etcd.ts";

// Debian's interpreter, with Debian's python3-urllib3 and python3-dnspython (scripts/setup.sh), not one on PATH.
const PYTHON = "/usr/bin/python3";
const ADAPTER = resolve(import.meta.dirname, "support/python-etcd-auth.py");

interface Outcome {
  test: string;
  outcome: "ok" | "fail" | "error";
  detail: string;
}

interface Run {
  outcomes: Outcome[];
  /** The HTTP exchanges and test outcomes in the order they happened, one line each. */
  trace: string[];
  /** unittest's report (stderr). */
  report: string;
}

/** Runs one upstream test class against the cluster whose HTTP API is on 127.0.0.1:port. */
function runClass(port: number, testClass: string): Promise<Run> {
  return new Promise((done, reject) => {
    const child = spawn(PYTHON, [ADAPTER, String(port), testClass], {
      stdio: ["ignore", "pipe", "pipe"],
      // The client lists a role's paths in a Python set's order: the same order on both clusters.
      env: { ...process.env, PYTHONHASHSEED: "0" },
    });
    let stdout = "";
    let report = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (report += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 45_000);
    child.on("error", reject);
    child.on("close", () => {
      clearTimeout(timer);
      const lines = stdout.split("\n").filter((l) => l.startsWith("{"));
      const outcomes = lines.map((l) => JSON.parse(l)).filter((o): o is Outcome => "outcome" in o);
      // Outcomes without their tracebacks, whose file paths and line numbers are not the point.
      const trace = lines.map((l) => (l.startsWith('{"test"') ? l.replace(/, "detail": .*/, "}") : l));
      done({ outcomes, trace, report });
    });
  });
}

/** The class's outcomes against a fresh cluster that `start` returns and `stop` removes. */
async function onFresh<C>(
  start: () => Promise<C>,
  port: (c: C) => number,
  stop: (c: C) => Promise<void>,
  testClass: string,
) {
  const cluster = await start();
  try {
    return await runClass(port(cluster), testClass);
  } finally {
    await stop(cluster);
  }
}

const listed = spawnSync(PYTHON, [ADAPTER, "--list"], { encoding: "utf8" });
const testClasses = listed.stdout.split("\n").filter(Boolean);

describe("python-etcd 7f3dd65's auth tests on etcd 3.4 and on Berth", () => {
  it("finds upstream's test classes", () => {
    expect(listed.stderr).toBe("");
    expect(testClasses).toEqual(["EtcdRoleTest", "EtcdUserTest"]);
  });

  for (const testClass of testClasses)
    it(`${testClass}: every test passes on etcd 3.4 and on Berth, with the same exchanges`, async () => {
      const [etcd, berth] = await Promise.all([
        onFresh(
          () => EtcdMember.start(),
          (m) => m.port,
          (m) => m.stop(),
          testClass,
        ),
        onFresh(
          () => TestCluster.start(1),
          (c) => c.node("n1").httpPort,
          (c) => c.stop(),
          testClass,
        ),
      ]);
      expect(etcd.outcomes.length, `etcd 3.4 ran no tests:\n${etcd.report}`).toBeGreaterThan(0);
      for (const o of etcd.outcomes) expect(o.outcome, `${o.test} on etcd 3.4:\n${o.detail}`).toBe("ok");
      const seen = (r: Run) => r.outcomes.map((o) => `${o.test}: ${o.outcome}`);
      expect(seen(berth), `on Berth:\n${berth.report}`).toEqual(seen(etcd));
      expect(berth.trace, "Berth's exchanges against etcd 3.4's").toEqual(etcd.trace);
    }, 60_000);
});
