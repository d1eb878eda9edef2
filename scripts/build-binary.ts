// Compiles Berth into one executable, dist/berth (run with `npm run build`, i.e. under bun).
// `--outfile FILE` writes it elsewhere; BERTH_BUILD_VERSION=X names another release than package.json's (what
// the rolling-upgrade test builds as "version N+1").
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

const at = process.argv.indexOf("--outfile");
const outfile = at > 0 ? process.argv[at + 1]! : "dist/berth";
const version = process.env.BERTH_BUILD_VERSION;
mkdirSync(dirname(outfile), { recursive: true });
const args = [
  "build",
  "--compile",
  "--production",
  // A daemon must not pick up .env or bunfig.toml from whatever directory it is started in.
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
  "src/main.ts",
  "--outfile",
  outfile,
  ...(version ? ["--define", `BERTH_BUILD_VERSION=${JSON.stringify(version)}`] : []),
];
const started = performance.now();
const result = spawnSync(process.execPath, args, {
  stdio: "inherit",
  env: { ...process.env, MSGPACKR_NATIVE_ACCELERATION_DISABLED: "true" },
});
if (result.status !== 0) process.exit(result.status ?? 1);
console.log(
  `built ${outfile}${version ? ` (version ${version})` : ""} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
);
