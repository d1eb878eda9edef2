// Compiles Berth into one executable, dist/berth (run with `npm run build`, i.e. under bun).
// `--outfile FILE` writes it elsewhere; BERTH_BUILD_VERSION=X names another release than package.json's (what
// the rolling-upgrade test builds as "version N+1").
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

/** `bun build` flags of the binary (bench/memory.ts compiles its empty program with the same ones). */
export const COMPILE_FLAGS = [
  "--compile",
  "--production",
  // Compiled to bytecode ahead of time: a one-shot command (or the console) starts in ~15 ms instead of ~80 ms
  // spent parsing the bundle.
  "--bytecode",
  "--format=esm",
  // A daemon must not pick up .env or bunfig.toml from whatever directory it is started in.
  "--no-compile-autoload-dotenv",
  "--no-compile-autoload-bunfig",
];
export const COMPILE_ENV = { MSGPACKR_NATIVE_ACCELERATION_DISABLED: "true" };

if (import.meta.main) {
  const at = process.argv.indexOf("--outfile");
  const outfile = at > 0 ? process.argv[at + 1]! : "dist/berth";
  const version = process.env.BERTH_BUILD_VERSION;
  mkdirSync(dirname(outfile), { recursive: true });
  const started = performance.now();
  const result = spawnSync(
    process.execPath,
    [
      "build",
      ...COMPILE_FLAGS,
      "src/main.ts",
      "--outfile",
      outfile,
      ...(version ? ["--define", `BERTH_BUILD_VERSION=${JSON.stringify(version)}`] : []),
    ],
    { stdio: "inherit", env: { ...process.env, ...COMPILE_ENV } },
  );
  if (result.status !== 0) process.exit(result.status ?? 1);
  console.log(
    `built ${outfile}${version ? ` (version ${version})` : ""} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
}
