// Compiles Berth into one executable, dist/berth (run with `npm run build`, i.e. under bun).
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";

mkdirSync("dist", { recursive: true });
const args = [
  "build",
  "--compile",
  "--production",
  // A daemon must not pick up .env or bunfig.toml from whatever directory it is started in.
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
  "src/main.ts",
  "--outfile",
  "dist/berth",
];
const started = performance.now();
const result = spawnSync(process.execPath, args, {
  stdio: "inherit",
  env: { ...process.env, MSGPACKR_NATIVE_ACCELERATION_DISABLED: "true" },
});
if (result.status !== 0) process.exit(result.status ?? 1);
console.log(`built dist/berth in ${((performance.now() - started) / 1000).toFixed(1)} s`);
