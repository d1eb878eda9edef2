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
  // Code loaded with import() goes in chunks of its own, read only when imported: `berth node` does not load the
  // console (Ink, React), ssh2 or dockerode, and `berth supervise` not the node (bench/memory.ts: 2 and 4-5 MiB
  // less resident memory per node and per supervisor, idle).
  "--splitting",
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
