// `npm start`: a local 3-node Berth cluster on 127.0.0.1, 127.0.0.2 and 127.0.0.3, then the console.
// Builds dist/berth when it is missing or older than the sources, keeps data and logs under .local-cluster/,
// and stops every node it started on Ctrl-C (or when the console quits: it asks first). A node that fails to start
// or exits is written to .local-cluster/node-problems, which the console shows (--local-cluster).
// BERTH_LOCAL_NET (default 127.0.0) and BERTH_LOCAL_DIR (default .local-cluster) move it (tests use both).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { supervisorPid } from "../src/agent/supervisor.ts";
import { reportNodeProblem } from "../src/tui/local-cluster.ts";

const root = resolve(import.meta.dir, "..");
const binary = join(root, "dist", "berth");
const work = resolve(root, process.env.BERTH_LOCAL_DIR || ".local-cluster");
const net = process.env.BERTH_LOCAL_NET || "127.0.0";
const fresh = process.argv.includes("--fresh");
const noConsole = process.argv.includes("--no-console") || !process.stdin.isTTY;
const NODES = ["n1", "n2", "n3"].map((name, i) => ({
  name,
  host: `${net}.${i + 1}`,
  peer: `${net}.${i + 1}:7001`,
  client: `${net}.${i + 1}:4001`,
  http: `${net}.${i + 1}:2379`,
  // Each node's unix socket (its default, DATA_DIR/berth.sock): the CLI is admin there, as root on a member.
  socket: `unix://${join(work, name, "berth.sock")}`,
}));
const endpoints = NODES.map((n) => n.socket).join(",");

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

if (!existsSync(binary) || statSync(binary).mtimeMs < newestSource(join(root, "src"))) {
  console.log("building dist/berth ...");
  const built = spawnSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" });
  if (built.status !== 0) process.exit(built.status ?? 1);
}

if (fresh) spawnSync("rm", ["-rf", work]);
mkdirSync(join(work, "logs"), { recursive: true });
const secretFile = join(work, "cluster-secret");
if (!existsSync(secretFile))
  writeFileSync(secretFile, randomBytes(32).toString("base64url"), { mode: 0o600 });

// What went wrong with the nodes this time (not last time's): shown by the console over it.
const problems = join(work, "node-problems");
writeFileSync(problems, "");

let consoleRunning = false;

const initialCluster = NODES.map((n) => `${n.name}=${n.peer}`).join(",");
const children: ChildProcess[] = [];
for (const n of NODES) {
  const log = openSync(join(work, "logs", `${n.name}.log`), "a");
  const child = spawn(
    binary,
    [
      "node",
      `--name=${n.name}`,
      `--data-dir=${join(work, n.name)}`,
      `--peer-addr=${n.peer}`,
      `--client-addr=${n.client}`,
      `--http-addr=${n.http}`,
      `--initial-cluster=${initialCluster}`,
      `--cluster-secret-file=${secretFile}`,
      `--public-ip=${n.host}`,
    ],
    { stdio: ["ignore", log, log] },
  );
  const logName = join(work, "logs", `${n.name}.log`);
  const report = (line: string) => {
    // Under the console's full screen a printed line would garble it: the console shows the file instead.
    if (!consoleRunning) console.log(line);
    reportNodeProblem(problems, line);
  };
  child.on("error", (err) => report(`${n.name} failed to start: ${err.message}`));
  child.on("exit", (code, signal) => {
    if (!stopping)
      report(`${n.name} exited (${signal ?? `code ${code}`}): see ${logName}${lastLine(logName)}`);
  });
  children.push(child);
}

/** Why the node stopped, as its log says (its last line naming a problem, else its last line), after ": ". */
function lastLine(file: string): string {
  try {
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    const why = lines.findLast((l) => /cannot|error|fatal|failed/i.test(l)) ?? lines.at(-1) ?? "";
    // Without its timestamp: the line shows on one line of the console.
    const text = why.replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z /, "").slice(0, 200);
    return text ? `: ${text}` : "";
  } catch {
    return "";
  }
}

let stopping = false;
function stopAll(): void {
  if (stopping) return;
  stopping = true;
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  const deadline = Date.now() + 5000;
  const wait = setInterval(() => {
    const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
    if (running.length === 0 || Date.now() > deadline) {
      for (const c of running) c.kill("SIGKILL");
      clearInterval(wait);
      // The units outlive their nodes in each node's supervisor: the whole local data center stops with them.
      for (const n of NODES) {
        const pid = supervisorPid(join(work, n.name, "agent"));
        if (pid !== null) process.kill(pid, "SIGTERM");
      }
      console.log("cluster stopped");
      process.exit(0);
    }
  }, 50);
}
process.on("SIGINT", stopAll);
process.on("SIGTERM", stopAll);
process.on("SIGHUP", stopAll);

console.log(`Berth: 3 nodes started (data and logs in ${work})`);
for (const n of NODES)
  console.log(`  ${n.name}  peers ${n.peer}  clients ${n.client}  http ${n.http}  log logs/${n.name}.log`);
console.log(`
Try, from another terminal (the nodes' unix sockets make the CLI admin: units need it):
  export BERTH_ENDPOINT=${endpoints}
  dist/berth kv set /key1 value1
  dist/berth kv get /key1 --endpoint 127.0.0.2:4001     # the TCP port: anonymous, keys only
  dist/berth kv set /key3 value3 --ttl 15
  dist/berth kv ls --recursive
  dist/berth cluster members
  curl -L -X PUT http://127.0.0.1:2379/v2/keys/message -d value="value2"
  ETCDCTL_API=2 etcdctl --endpoints http://127.0.0.2:2379 get /message
  dist/berth list-machines
  printf '[Service]\\nExecStart=/bin/sh -c "while true; do echo Hello World; sleep 1; done"\\n[X-Fleet]\\nConflicts=hello@*\\n' > hello@.service
  dist/berth start hello@1 hello@2 hello@3
  dist/berth list-units
`);

if (noConsole) {
  console.log("Ctrl-C stops the cluster.");
} else {
  // The console takes over the terminal; when it exits, the cluster stops.
  const consoleProc = spawn(binary, ["console", "--endpoint", endpoints, `--local-cluster=${problems}`], {
    stdio: "inherit",
  });
  consoleRunning = true;
  consoleProc.on("exit", (code) => {
    consoleRunning = false;
    if (code === 0 || stopping) stopAll();
    else console.log(`(the console exited with ${code}; the cluster keeps running, Ctrl-C stops it)`);
  });
}
