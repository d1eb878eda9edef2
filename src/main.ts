// The single entry point of the `berth` binary: node mode, one-shot subcommands and the console.
import { COMMANDS } from "./cli/commands.ts";
import { dispatch } from "./cli/dispatch.ts";
import { reexecWithRuntimeOptions } from "./node/runtime-options.ts";

const args = process.argv.slice(2);
if (args[0] === "node") await reexecWithRuntimeOptions();
const code = await dispatch(args, COMMANDS);
// Node mode keeps running on its own servers; one-shot commands end here.
if (code !== -1) process.exitCode = code;
