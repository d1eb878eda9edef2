// `berth kv ...`: etcdctl v2's commands, flags and output, over Berth's client protocol.
import { spawn } from "node:child_process";
import type { BerthClient } from "../client/client.ts";
import type { KvResult, KvWriteRequest } from "../client/protocol.ts";
import type { KvNode } from "../kv/types.ts";
import { CLIENT_FLAGS, type ClientContext, withClient } from "./client-command.ts";
import type { Command, CommandGroup } from "./command.ts";
import { CliError, EXIT, UsageError } from "./exit-codes.ts";
import type { FlagSpec, Parsed } from "./flags.ts";
import { printJson } from "./output.ts";

const TTL: FlagSpec = {
  name: "ttl",
  type: "number",
  description: "time to live in seconds",
  value: "SECONDS",
};

function args(parsed: Parsed, names: string[], optional = 0): string[] {
  const p = parsed.positionals;
  if (p.length > names.length || p.length < names.length - optional)
    throw new UsageError(`expected ${names.join(" ")}, got ${p.length} argument${p.length === 1 ? "" : "s"}`);
  return p;
}

function ttlOf(parsed: Parsed): number | undefined {
  const ttl = parsed.flags.ttl as number | undefined;
  if (ttl === undefined) return undefined;
  if (!Number.isInteger(ttl) || ttl < 0) throw new UsageError("--ttl must be a whole number of seconds");
  return ttl;
}

/** etcd's response body: what `--output json` prints, one document per result. */
function body(r: KvResult) {
  const { action, node, prevNode } = r.event;
  return prevNode ? { action, node, prevNode } : { action, node };
}

/** Prints a result the way etcdctl does for each output format. */
function print(r: KvResult, ctx: ClientContext): void {
  if (ctx.output === "json") {
    printJson(body(r));
    return;
  }
  const { node, prevNode, action } = r.event;
  if (ctx.output === "extended") {
    process.stdout.write(
      `Key: ${node.key}\nCreated-Index: ${node.createdIndex}\nModified-Index: ${node.modifiedIndex}\n` +
        `TTL: ${node.ttl ?? 0}\nIndex: ${r.etcdIndex}\n\n${node.value ?? ""}\n`,
    );
    return;
  }
  if (action === "delete" || action === "compareAndDelete" || action === "expire") {
    if (prevNode?.value !== undefined) process.stdout.write(`PrevNode.Value: ${prevNode.value}\n`);
    return;
  }
  process.stdout.write(`${node.value ?? ""}\n`);
}

function writeCommand(
  name: string,
  summary: string,
  usage: string[],
  flags: FlagSpec[],
  build: (p: string[], parsed: Parsed) => KvWriteRequest,
  quiet = false,
): Command {
  return {
    name,
    summary,
    usage: usage.join(" "),
    flags: [...flags, ...CLIENT_FLAGS],
    run: (parsed) =>
      withClient(parsed.flags, async (ctx) => {
        const req = build(args(parsed, usage), parsed);
        const r = await ctx.client.call("kv.write", req);
        if (!quiet || ctx.output !== "table") print(r, ctx);
        return EXIT.ok;
      }),
  };
}

const set = writeCommand(
  "set",
  "set the value of a key (compare-and-swap with --swap-with-value/--swap-with-index)",
  ["KEY", "VALUE"],
  [
    TTL,
    {
      name: "swap-with-value",
      type: "string",
      description: "only if the current value is this",
      value: "VALUE",
    },
    {
      name: "swap-with-index",
      type: "number",
      description: "only if the modified index is this",
      value: "INDEX",
    },
  ],
  ([key, value], parsed) => ({
    method: "PUT",
    key: key!,
    value: value!,
    ttl: ttlOf(parsed),
    prevValue: parsed.flags["swap-with-value"] as string | undefined,
    prevIndex: parsed.flags["swap-with-index"] as number | undefined,
  }),
);

const mk: Command = {
  name: "mk",
  summary: "make a new key (fails when it exists); --in-order creates a unique key inside KEY",
  usage: "KEY VALUE",
  flags: [
    TTL,
    {
      name: "in-order",
      type: "boolean",
      description: "create an increasing, unique key under the directory",
    },
    ...CLIENT_FLAGS,
  ],
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      const [key, value] = args(parsed, ["KEY", "VALUE"]);
      const ttl = ttlOf(parsed);
      const req: KvWriteRequest = parsed.flags["in-order"]
        ? { method: "POST", key: key!, value: value!, ttl }
        : { method: "PUT", key: key!, value: value!, ttl, prevExist: false };
      const r = await ctx.client.call("kv.write", req);
      print(r, ctx);
      return EXIT.ok;
    }),
};

const mkdir = writeCommand(
  "mkdir",
  "make a new directory (fails when it exists)",
  ["KEY"],
  [TTL],
  ([key], parsed) => ({ method: "PUT", key: key!, dir: true, ttl: ttlOf(parsed), prevExist: false }),
  true,
);

const setdir = writeCommand(
  "setdir",
  "create a directory, or update an existing one's TTL",
  ["KEY"],
  [TTL],
  ([key], parsed) => ({ method: "PUT", key: key!, dir: true, ttl: ttlOf(parsed) }),
  true,
);

const update = writeCommand(
  "update",
  "update an existing key (fails when it does not exist)",
  ["KEY", "VALUE"],
  [TTL],
  ([key, value], parsed) => ({
    method: "PUT",
    key: key!,
    value: value!,
    ttl: ttlOf(parsed),
    prevExist: true,
  }),
);

const updatedir = writeCommand(
  "updatedir",
  "update an existing directory's TTL",
  ["KEY"],
  [TTL],
  ([key], parsed) => ({ method: "PUT", key: key!, dir: true, ttl: ttlOf(parsed), prevExist: true }),
  true,
);

const rm = writeCommand(
  "rm",
  "remove a key or, with --dir/--recursive, a directory",
  ["KEY"],
  [
    { name: "dir", type: "boolean", description: "remove the key if it is an empty directory or a key" },
    { name: "recursive", type: "boolean", description: "remove the key and everything below it" },
    { name: "with-value", type: "string", description: "only if the current value is this", value: "VALUE" },
    { name: "with-index", type: "number", description: "only if the modified index is this", value: "INDEX" },
  ],
  ([key], parsed) => ({
    method: "DELETE",
    key: key!,
    dir: Boolean(parsed.flags.dir),
    recursive: Boolean(parsed.flags.recursive),
    prevValue: parsed.flags["with-value"] as string | undefined,
    prevIndex: parsed.flags["with-index"] as number | undefined,
  }),
);

const rmdir = writeCommand(
  "rmdir",
  "remove an empty directory",
  ["KEY"],
  [],
  ([key]) => ({ method: "DELETE", key: key!, dir: true }),
  true,
);

const CONSISTENCY: FlagSpec = {
  name: "consistency",
  type: "string",
  description: "linearizable (confirmed with the leader) or local (this node's replica, fastest)",
  value: "MODE",
  default: "linearizable",
  env: "BERTH_CONSISTENCY",
};

function consistencyOf(parsed: Parsed): "linearizable" | "local" {
  const c = parsed.flags.consistency;
  if (c !== "linearizable" && c !== "local")
    throw new UsageError(`--consistency must be linearizable or local`);
  return c;
}

const get: Command = {
  name: "get",
  summary: "print the value of a key",
  usage: "KEY",
  flags: [CONSISTENCY, ...CLIENT_FLAGS],
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      const [key] = args(parsed, ["KEY"]);
      const r = await ctx.client.call("kv.get", { key: key!, consistency: consistencyOf(parsed) });
      if (r.event.node.dir && ctx.output === "table")
        throw new CliError(`${r.event.node.key}: is a directory`);
      print(r, ctx);
      return EXIT.ok;
    }),
};

const ls: Command = {
  name: "ls",
  summary: "list a directory",
  usage: "[KEY]",
  flags: [
    { name: "sort", type: "boolean", description: "sort the keys" },
    { name: "recursive", type: "boolean", description: "list everything below the directory" },
    { name: "p", type: "boolean", description: "append a slash to directories" },
    CONSISTENCY,
    ...CLIENT_FLAGS,
  ],
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      const [key = "/"] = args(parsed, ["KEY"], 1);
      const r = await ctx.client.call("kv.get", {
        key,
        recursive: Boolean(parsed.flags.recursive),
        sorted: Boolean(parsed.flags.sort),
        consistency: consistencyOf(parsed),
      });
      if (ctx.output === "json") {
        printJson(body(r));
        return EXIT.ok;
      }
      const lines: string[] = [];
      const walk = (nodes: KvNode[] | undefined) => {
        for (const n of nodes ?? []) {
          lines.push(n.dir && parsed.flags.p ? `${n.key}/` : n.key);
          if (parsed.flags.recursive) walk(n.nodes);
        }
      };
      if (r.event.node.dir) walk(r.event.node.nodes);
      else lines.push(r.event.node.key);
      if (lines.length > 0) process.stdout.write(`${lines.join("\n")}\n`);
      return EXIT.ok;
    }),
};

const WATCH_FLAGS: FlagSpec[] = [
  { name: "after-index", type: "number", description: "watch for changes after this index", value: "INDEX" },
  { name: "recursive", type: "boolean", description: "watch everything below the key" },
];

/** Yields each change of the key (one, or every change with `forever`), in commit order. */
async function* changes(client: BerthClient, parsed: Parsed, key: string, forever: boolean) {
  const after = parsed.flags["after-index"] as number | undefined;
  if (after !== undefined && (!Number.isInteger(after) || after < 0))
    throw new UsageError("--after-index must be a non-negative integer");
  const sub = client.subscribe("kv.watch", {
    key,
    recursive: Boolean(parsed.flags.recursive),
    sinceIndex: after ? after + 1 : undefined,
    forever,
  });
  try {
    for await (const r of sub) yield r;
  } finally {
    sub.close();
  }
}

const watch: Command = {
  name: "watch",
  summary: "wait for a change of a key (or, with --forever, print every change)",
  usage: "KEY",
  flags: [
    { name: "forever", type: "boolean", description: "keep watching until interrupted" },
    ...WATCH_FLAGS,
    ...CLIENT_FLAGS,
  ],
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      const [key] = args(parsed, ["KEY"]);
      for await (const r of changes(ctx.client, parsed, key!, Boolean(parsed.flags.forever))) {
        if (parsed.flags.recursive && ctx.output === "table")
          process.stdout.write(`[${r.event.action}] ${r.event.node.key}\n`);
        print(r, ctx);
      }
      return EXIT.ok;
    }),
};

const execWatch: Command = {
  name: "exec-watch",
  summary: "run a command for every change of a key",
  usage: "KEY -- COMMAND [ARGS...]",
  description: `The command gets ETCD_WATCH_ACTION, ETCD_WATCH_KEY, ETCD_WATCH_VALUE and ETCD_WATCH_MODIFIED_INDEX
in its environment, as with etcdctl. Runs until interrupted.`,
  flags: [...WATCH_FLAGS, ...CLIENT_FLAGS],
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      const [key, ...command] = parsed.positionals;
      if (!key || command.length === 0) throw new UsageError("expected KEY -- COMMAND [ARGS...]");
      for await (const r of changes(ctx.client, parsed, key, true)) {
        const env = {
          ...process.env,
          ETCD_WATCH_ACTION: r.event.action,
          ETCD_WATCH_KEY: r.event.node.key,
          ETCD_WATCH_VALUE: r.event.node.value ?? "",
          ETCD_WATCH_MODIFIED_INDEX: String(r.event.node.modifiedIndex),
        };
        await new Promise<void>((resolve) => {
          const child = spawn(command[0]!, command.slice(1), { stdio: "inherit", env });
          child.on("error", (err) => {
            process.stderr.write(`exec-watch: ${command[0]}: ${err.message}\n`);
            resolve();
          });
          child.on("exit", () => resolve());
        });
      }
      return EXIT.ok;
    }),
};

export const kvCommands: CommandGroup = {
  name: "kv",
  summary: "read and write the replicated key/value store (etcdctl v2 style)",
  subcommands: [set, get, mk, mkdir, setdir, update, updatedir, rm, rmdir, ls, watch, execWatch],
};
