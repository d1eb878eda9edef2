// `npm run chaos -- --time 30 [--seed N]`: one chaos run against a real 5-node cluster; exits 1 on a violation.
// `npm run chaos -- --units --time 300 [--seed N] [--faults kill,crash,...] [--no-docker]`: the units run instead
// (at-most-once probes under every fault kind of unit-faults.ts unless --faults names some).
import { runChaos } from "./harness.ts";
import { parseKinds } from "./unit-faults.ts";
import { runUnitsChaos } from "./units.ts";

function flag(name: string): string | undefined {
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === `--${name}`) return args[i + 1];
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}

const timeSec = Number(flag("time") ?? 20);
const seedRaw = flag("seed");
if (process.argv.includes("--units")) {
  const faults = flag("faults");
  const report = await runUnitsChaos({
    nemesisSec: timeSec,
    seed: seedRaw === undefined ? undefined : Number(seedRaw),
    faults: faults === undefined ? undefined : parseKinds(faults),
    docker: !process.argv.includes("--no-docker"),
  });
  console.log(report.summary);
  process.exit(report.ok ? 0 : 1);
}
const report = await runChaos({
  timeSec,
  seed: seedRaw === undefined ? undefined : Number(seedRaw),
  injectStaleRead: process.argv.includes("--inject-stale-read"),
  failureDir: process.argv.includes("--inject-stale-read") ? "/tmp/berth-chaos-selftest" : undefined,
});
console.log(report.summary);
process.exit(report.ok ? 0 : 1);
