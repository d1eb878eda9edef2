// Debian's real etcdctl (v2 mode) against a 3-node Berth cluster over the HTTP API. The expected output and exit
// codes come from the same commands run against a real etcd 3.4 (test/fixtures/etcdctl-v2-samples.txt); only
// indexes, times and member ids are normalised. scripts/capture-etcd-fixtures.sh captures the fixtures.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestCluster, waitFor } from "./support/cluster.ts";

const SAMPLES = resolve(import.meta.dirname, "fixtures/etcdctl-v2-samples.txt");

interface Sample {
  args: string[];
  output: string;
  exit: number;
}

/** The sequential key/value commands of the sample file (membership and watch are checked separately). */
function loadSamples(): Sample[] {
  const text = readFileSync(SAMPLES, "utf8");
  const out: Sample[] = [];
  for (const block of text.split(/^### /m).slice(1)) {
    const [head, ...rest] = block.split("\n");
    const cmd = head!.trim();
    if (!cmd.startsWith("etcdctl ") || /member list|cluster-health|watch/.test(cmd)) continue;
    const body = rest.join("\n");
    const m = body.match(/\[exit (\d+)\]/);
    if (!m) continue;
    out.push({ args: cmd.split(/\s+/).slice(1), output: body.slice(0, m.index), exit: Number(m[1]) });
  }
  return out;
}

function normalise(s: string): string {
  return s
    .replace(/\[\d+\]/g, "[N]")
    .replace(/\[(\w+) != \d+\]/g, "[$1 != N]")
    .replace(/"(createdIndex|modifiedIndex)":\d+/g, '"$1":N')
    .replace(/"expiration":"[^"]+"/g, '"expiration":"T"')
    .replace(/"ttl":\d+/g, '"ttl":N')
    .replace(/^(Created-Index|Modified-Index|TTL|Index): \d+$/gm, "$1: N")
    .trimEnd();
}

/** `ls` without --sort lists a directory in etcd's Go map order (random run to run): compare its lines as a set. */
function normaliseFor(args: string[], out: string): string {
  const s = normalise(out);
  return args[0] === "ls" && !args.includes("--sort") ? s.split("\n").sort().join("\n") : s;
}

// scripts/setup.sh installs Debian's etcd-client; a missing etcdctl fails here rather than skipping.
describe("real etcdctl v2 against a Berth cluster", () => {
  let cluster: TestCluster;
  const etcdctl = (args: string[], node = "n2") =>
    spawnSync("etcdctl", ["--endpoints", cluster.httpUrl(node), ...args], {
      env: { ...process.env, ETCDCTL_API: "2" },
      encoding: "utf8",
      timeout: 20_000,
    });

  beforeAll(async () => {
    cluster = await TestCluster.start(3);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it("every sampled command prints what it prints against etcd, with the same exit code", () => {
    for (const s of loadSamples()) {
      const r = etcdctl(s.args);
      const label = `etcdctl ${s.args.join(" ")}`;
      expect({ label, out: normaliseFor(s.args, r.stdout + r.stderr), exit: r.status }).toEqual({
        label,
        out: normaliseFor(s.args, s.output),
        exit: s.exit,
      });
    }
  }, 60_000);

  it("mk --ttl: the key is gone after its TTL on every member", async () => {
    expect(etcdctl(["mk", "/short", "v", "--ttl", "1"]).status).toBe(0);
    await new Promise((r) => setTimeout(r, 2500));
    for (const n of ["n1", "n2", "n3"]) {
      const r = etcdctl(["get", "/short"], n);
      expect(r.status).toBe(4);
      expect(r.stderr).toContain("100: Key not found (/short)");
    }
  }, 20_000);

  it("watch returns the next change; watch --recursive --forever streams every change", async () => {
    const once = spawnAsync(["watch", "/w"], cluster.httpUrl("n1"));
    await new Promise((r) => setTimeout(r, 500));
    expect(etcdctl(["set", "/w", "hello"], "n3").status).toBe(0);
    expect(await once.done).toMatchObject({ code: 0, stdout: "hello\n" });

    const forever = spawnAsync(["watch", "--recursive", "--forever", "/dir"], cluster.httpUrl("n1"));
    await new Promise((r) => setTimeout(r, 500));
    for (const v of ["a", "b", "c"]) expect(etcdctl(["set", `/dir/${v}`, v], "n2").status).toBe(0);
    await waitFor("three events", () => forever.stdout().split("\n").filter(Boolean).length >= 6, 10_000, 50);
    forever.proc.kill("SIGINT");
    expect(forever.stdout()).toBe("[set] /dir/a\na\n[set] /dir/b\nb\n[set] /dir/c\nc\n");
  }, 30_000);

  it("exec-watch runs the command with ETCD_WATCH_* set", async () => {
    const w = spawnAsync(
      // etcdctl's own argument parsing: without flags, the key comes last (test/fixtures/etcdctl-v2-traces.txt).
      ["exec-watch", "sh", "-c", 'echo "$ETCD_WATCH_ACTION $ETCD_WATCH_KEY=$ETCD_WATCH_VALUE"', "--", "/x"],
      cluster.httpUrl("n1"),
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(etcdctl(["set", "/x", "42"], "n3").status).toBe(0);
    await waitFor("the event", () => w.stdout().includes("\n"), 10_000, 50);
    w.proc.kill("SIGINT");
    expect(w.stdout()).toBe("set /x=42\n");
  }, 20_000);

  it("member list and cluster-health see all three members", () => {
    const list = etcdctl(["member", "list"]);
    expect(list.status).toBe(0);
    const nameOf = (l: string) => l.split(" ")[1] ?? "";
    const lines = list.stdout
      .trim()
      .split("\n")
      .sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
    expect(lines).toHaveLength(3);
    for (const [i, line] of lines.entries()) {
      const n = cluster.nodes[i]!;
      expect(line).toMatch(
        new RegExp(
          `^[0-9a-f]{1,16}: name=${n.name} peerURLs=http://${n.host}:${n.peerPort} clientURLs=http://${n.host}:${n.httpPort} isLeader=(true|false)$`,
        ),
      );
    }
    expect(lines.filter((l) => l.endsWith("isLeader=true"))).toHaveLength(1);

    const health = etcdctl(["cluster-health"]);
    expect(health.status).toBe(0);
    expect(health.stdout).toMatch(
      /^(member [0-9a-f]{1,16} is healthy: got healthy result from http:\/\/\S+\n){3}cluster is healthy\n$/,
    );
  });
});

function spawnAsync(args: string[], endpoint: string) {
  let stdout = "";
  const proc: ChildProcess = spawn("etcdctl", ["--endpoints", endpoint, ...args], {
    env: { ...process.env, ETCDCTL_API: "2" },
  });
  proc.stdout!.on("data", (d) => (stdout += d));
  const done = new Promise<{ code: number | null; stdout: string }>((r) =>
    proc.on("close", (code) => r({ code, stdout })),
  );
  const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
  proc.on("close", () => clearTimeout(timer));
  return { proc, done, stdout: () => stdout };
}
