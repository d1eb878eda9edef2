// `berth cloud-config validate|apply FILE`: the seed's user-data, checked by Berth itself (every problem with its
// line), and its cluster units applied through any member (idempotent: N machines may apply the same file).
// `berth node --cloud-config FILE` does both for its own machine at start.
import { readFileSync } from "node:fs";
import { applyUnits } from "../cloud-config/apply.ts";
import { type CloudConfig, CloudConfigError, parseCloudConfig } from "../cloud-config/cloud-config.ts";
import { CLIENT_FLAGS, withClient } from "./client-command.ts";
import type { Command, CommandGroup } from "./command.ts";
import { EXIT, UsageError } from "./exit-codes.ts";
import type { Parsed } from "./flags.ts";
import { NODE_FLAGS } from "./node-config.ts";

const FLAG_KINDS = new Map(NODE_FLAGS.map((f) => [f.name, f.type]));

/** Reads and checks a cloud-config; its problems are one usage error (exit 2), a line each. */
export function readCloudConfig(file: string): CloudConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return parseCloudConfig(text, file, FLAG_KINDS);
  } catch (err) {
    if (err instanceof CloudConfigError) throw new UsageError(err.message);
    throw err;
  }
}

function oneFile(parsed: Parsed): string {
  if (parsed.positionals.length !== 1) throw new UsageError("expected FILE");
  return parsed.positionals[0]!;
}

const validate: Command = {
  name: "validate",
  summary: "check a #cloud-config file's berth: section (exit 2 with every problem and its line)",
  usage: "FILE",
  flags: [],
  async run(parsed) {
    const file = oneFile(parsed);
    const cc = readCloudConfig(file);
    for (const w of cc.warnings) process.stderr.write(`${w}\n`);
    process.stdout.write(
      `${file}: valid; sets ${Object.keys(cc.node).join(", ") || "no flags"}; ${cc.units.length} cluster unit(s)\n`,
    );
    return EXIT.ok;
  },
};

const apply: Command = {
  name: "apply",
  summary:
    "submit and start the file's cluster units (each once, whoever applies it; exit 5 when one differs)",
  usage: "FILE",
  description: `
A unit the cluster does not have is submitted and brought to its command's state (start: launched, load: loaded,
submit: inactive). One it has with the same content is left alone (if still inactive it is brought to the state).
One it has with other content is not touched and reported: the exit status is then 5 (the registry's copy wins;
change it with \`berth submit --replace\`, or destroy it first).`,
  flags: CLIENT_FLAGS,
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      const cc = readCloudConfig(oneFile(parsed));
      const r = await applyUnits(
        {
          list: () => ctx.client.call("units.list", {}, ctx.timeoutMs),
          submit: (units) => ctx.client.call("units.submit", { units }, ctx.timeoutMs),
          setDesired: (names, desired) =>
            ctx.client.call("units.setDesired", { names, desired }, ctx.timeoutMs),
        },
        cc.units,
      );
      for (const name of r.submitted) process.stdout.write(`submitted ${name}\n`);
      for (const name of r.unchanged) process.stdout.write(`unchanged ${name}\n`);
      for (const name of r.conflicts)
        process.stderr.write(`unit ${name} is in the cluster with other content: left as it is\n`);
      return r.conflicts.length > 0 ? EXIT.conflict : EXIT.ok;
    }),
};

export const cloudConfigCommands: CommandGroup = {
  name: "cloud-config",
  summary: "check a #cloud-config user-data file and apply its cluster units",
  subcommands: [validate, apply],
};
