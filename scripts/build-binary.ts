// Compiles Berth into one executable, dist/berth (run with `npm run build`, i.e. under bun).
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";

/** `bun build` flags of the binary (bench/memory.ts compiles its empty program with the same ones). */
export const COMPILE_FLAGS = [
  "--compile",
  "--production",
  // A daemon must not pick up .env or bunfig.toml from whatever directory it is started in.
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
];
export const COMPILE_ENV = { MSGPACKR_NATIVE_ACCELERATION_DISABLED: "true" };

if (import.meta.main) {
  mkdirSync("dist", { recursive: true });
  const started = performance.now();
  const result = spawnSync(
    process.execPath,
    ["build", ...COMPILE_FLAGS, "src/main.ts", "--outfile", "dist/berth"],
    { stdio: "inherit", env: { ...process.env, ...COMPILE_ENV } },
  );
  if (result.status !== 0) process.exit(result.status ?? 1);
  console.log(`built dist/berth in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
