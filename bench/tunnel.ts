// What --tunnel costs: the same requests to one node directly and through an SSH tunnel (a private OpenSSH server
// on loopback, ssh2 in the client), and the wall time of a whole `berth kv get` run both ways (the SSH handshake
// is paid on every CLI run; the console pays it once).
import { spawnSync } from "node:child_process";
import { BerthClient } from "../src/client/client.ts";
import { SshTunnel } from "../src/tunnel/ssh-tunnel.ts";
import { BINARY, TestCluster } from "../test/support/cluster.ts";
import { TestSshd } from "../test/support/sshd.ts";

export interface TunnelRow {
  what: string;
  direct: { opsPerSec: number; p50Ms: number; p99Ms: number };
  tunnel: { opsPerSec: number; p50Ms: number; p99Ms: number };
}

async function load(client: BerthClient, inFlight: number, seconds: number) {
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await client.call("kv.get", { key: "/bench/tunnel", consistency: "local" });
        lat.push(performance.now() - t);
      }
    }),
  );
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
  return { opsPerSec: lat.length / ((performance.now() - t0) / 1000), p50Ms: q(0.5), p99Ms: q(0.99) };
}

function cliRuns(args: string[], env: Record<string, string>, runs: number) {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    const r = spawnSync(BINARY, args, { env: { ...process.env, ...env }, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`berth ${args.join(" ")}: ${r.stderr}`);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

export async function benchTunnel(opts: {
  seconds: number;
}): Promise<{ rows: TunnelRow[]; cli: [number, number] }> {
  const cluster = await TestCluster.start(1);
  const endpoint = cluster.tcpEndpoint("n1");
  const sshd = await TestSshd.start([endpoint]);
  try {
    await cluster.cli(["kv", "set", "/bench/tunnel", "x".repeat(256)]);
    const direct = await BerthClient.connect({ endpoints: [endpoint], timeoutMs: 5000, name: "bench" });
    const tunnel = await SshTunnel.open({
      target: sshd.target,
      timeoutMs: 10_000,
      strictHostKeyChecking: true,
      knownHostsFile: sshd.knownHostsFile,
      identityFiles: [sshd.clientKeyFile],
    });
    const viaTunnel = await BerthClient.connect({
      endpoints: [endpoint],
      timeoutMs: 5000,
      name: "bench",
      dial: tunnel.dial.bind(tunnel),
    });
    const rows: TunnelRow[] = [];
    for (const inFlight of [1, 64]) {
      await load(direct, inFlight, 1); // warm-up
      await load(viaTunnel, inFlight, 1);
      rows.push({
        what: `GET (local) x${inFlight}`,
        direct: await load(direct, inFlight, opts.seconds),
        tunnel: await load(viaTunnel, inFlight, opts.seconds),
      });
    }
    direct.close();
    viaTunnel.close();
    tunnel.close();
    const get = ["kv", "get", "/bench/tunnel", `--endpoint=${endpoint}`];
    const cli: [number, number] = [
      cliRuns(get, {}, 15),
      cliRuns([...get, ...sshd.tunnelFlags()], sshd.clientEnv(), 15),
    ];
    return { rows, cli };
  } finally {
    await sshd.stop();
    await cluster.stop();
  }
}

export function formatTunnel(r: {
  rows: TunnelRow[];
  cli: [number, number];
}): [string[], (string | number)[][]] {
  const f = (n: number) => n.toFixed(2);
  return [
    ["row", "direct ops/s", "direct p50/p99 ms", "tunnel ops/s", "tunnel p50/p99 ms", "tunnel/direct ops"],
    [
      ...r.rows.map((row) => [
        row.what,
        Math.round(row.direct.opsPerSec),
        `${f(row.direct.p50Ms)}/${f(row.direct.p99Ms)}`,
        Math.round(row.tunnel.opsPerSec),
        `${f(row.tunnel.p50Ms)}/${f(row.tunnel.p99Ms)}`,
        f(row.tunnel.opsPerSec / row.direct.opsPerSec),
      ]),
      ["berth kv get (whole run, median of 15)", "", `${f(r.cli[0])}`, "", `${f(r.cli[1])}`, ""],
    ],
  ];
}
