// fleetctl's unit commands as `berth <cmd>`: verify, submit, load, start, stop, unload, destroy, cat,
// list-unit-files, list-units. Same names, flags, messages and table columns as fleetctl v1.0, with the fixes fleet
// users asked for: an unplaceable unit is reported (and start/load give up on it) instead of blocking forever.
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import type { BerthClient } from "../client/client.ts";
import type {
  DesiredState,
  MachineInfo,
  UnitInfo,
  UnitStateRow,
  UnitSubmission,
} from "../client/protocol.ts";
import { CLIENT_FLAGS, type ClientContext, outputFormat, withClient } from "./client-command.ts";
import type { Command } from "./command.ts";
import { CliError, EXIT, UsageError } from "./exit-codes.ts";
import type { FlagSpec, Parsed } from "./flags.ts";
import { type Column, printJson, renderTable } from "./output.ts";
import {
  checkName,
  filterByArgs,
  findLocal,
  machineLegend,
  mangle,
  pickColumns,
  resolveKnown,
  verifyLocal,
  verifyText,
} from "./unit-support.ts";

/**
 * How start/load/stop/unload wait (fleetctl: poll every 250 ms, one "attempt" = 2 s). An unplaceable unit is given
 * up on once the engine has reported it unplaceable continuously for unplaceableGraceMs. Tests shorten these.
 */
export const WAIT_TIMING = { pollMs: 250, attemptMs: 2000, unplaceableGraceMs: 4000 };

const out = (s: string) => process.stdout.write(`${s}\n`);
const err = (s: string) => process.stderr.write(`${s}\n`);

// ---- flags -------------------------------------------------------------------------------------------------

const NO_BLOCK: FlagSpec = {
  name: "no-block",
  type: "boolean",
  description: "do not wait for the units to reach the state; print `Triggered unit X <op>`",
};
const BLOCK_ATTEMPTS: FlagSpec = {
  name: "block-attempts",
  type: "number",
  value: "N",
  description: "wait at most N attempts of ~2s each (0: until done; unplaceable units are given up on)",
  default: 0,
};
const REPLACE: FlagSpec = {
  name: "replace",
  type: "boolean",
  description: "replace units in the cluster whose content differs from the local file",
};
const FULL: FlagSpec = { name: "full", type: "boolean", description: "do not ellipsize ids and hashes" };
const FULL_L: FlagSpec = { ...FULL, short: "l" };
const NO_LEGEND: FlagSpec = { name: "no-legend", type: "boolean", description: "omit the header line" };
function fieldsFlag(defaults: string, valid: string): FlagSpec {
  return {
    name: "fields",
    type: "string",
    value: "KEY,...",
    description: `columns to print (default ${defaults}; valid: ${valid})`,
  };
}

/** -1 = do not block; 0 = block until done; N = N attempts. --no-block with --block-attempts N>0 is refused. */
function blockAttempts(parsed: Parsed): number {
  const n = Number(parsed.flags["block-attempts"] ?? 0);
  if (!Number.isInteger(n) || n < 0) throw new UsageError("--block-attempts must be a whole number ≥ 0");
  if (parsed.flags["no-block"] === true) {
    if (n > 0) throw new UsageError("--no-block and --block-attempts exclude each other");
    return -1;
  }
  return n;
}

// ---- shared steps ------------------------------------------------------------------------------------------

async function listUnits(client: BerthClient): Promise<Map<string, UnitInfo>> {
  return new Map((await client.call("units.list", {})).map((u) => [u.name, u]));
}

async function machineMap(client: BerthClient): Promise<Map<string, MachineInfo>> {
  return new Map((await client.call("machines.list", {})).map((m) => [m.id, m]));
}

/** fleetctl's checkReplaceUnitState: which desired states each command may replace a unit in. */
const REPLACE_ALLOWED: Record<string, DesiredState[]> = {
  submit: ["inactive"],
  load: ["inactive", "loaded"],
  start: ["inactive", "loaded", "launched"],
};

/**
 * fleetctl's lazyCreateUnits: submits what the cluster does not have yet (and, with --replace, what differs).
 * Every local file is read and validated before anything is sent; an instance with neither a local file nor a
 * local template is sent without text when the cluster has its template, else it is an error (exit 4).
 */
async function lazySubmit(
  ctx: ClientContext,
  args: string[],
  command: "submit" | "load" | "start",
  replace: boolean,
): Promise<{ names: string[]; submitted: UnitInfo[] }> {
  const names: string[] = [];
  for (const a of args) {
    const { name } = mangle(a);
    const u = checkName(name);
    if (u.isTemplate && command !== "submit")
      throw new UsageError(
        `${name} is a template and cannot be ${command === "start" ? "started" : "loaded"}; ${command} an instance such as ${u.prefix}@1.${u.type}`,
      );
    if (!names.includes(name)) names.push(name);
  }
  const existing = await listUnits(ctx.client);
  const toSend: UnitSubmission[] = [];
  const warnings: string[] = [];
  const seen = new Set<string>();
  for (const arg of args) {
    const { name } = mangle(arg);
    if (seen.has(name)) continue;
    seen.add(name);
    const current = existing.get(name);
    const local = await findLocal(arg);
    if (current) {
      if (!local) continue;
      let checked: { hash: string; warnings: string[] };
      try {
        checked = verifyLocal(local);
      } catch (e) {
        // Without --replace the cluster's copy is used, so a broken local file only matters with --replace.
        if (replace) throw e;
        continue;
      }
      const { hash, warnings: w } = checked;
      if (hash === current.hash) continue; // "Found same Unit in Registry, nothing to do"
      if (!replace) {
        warnings.push(
          `WARNING: Unit ${name} in registry differs from local unit file ${local.path}. Add --replace to override.`,
        );
        continue;
      }
      if (!REPLACE_ALLOWED[command]!.includes(current.desired)) {
        warnings.push(
          `Warning: can not replace Unit(${name}) in state '${current.desired}', use the appropriate command`,
        );
        continue;
      }
      warnings.push(...w);
      toSend.push({ name, text: local.text });
      continue;
    }
    if (local) {
      warnings.push(...verifyLocal(local).warnings);
      toSend.push({ name, text: local.text });
      continue;
    }
    const parsed = checkName(name);
    const { path } = mangle(arg);
    if (parsed.isInstance) {
      const tpl = `${parsed.prefix}@.${parsed.type}`;
      if (existing.has(tpl)) {
        toSend.push({ name });
        continue;
      }
      throw new CliError(
        `unable to find unit ${name}: no file ${path} or template ${tpl} next to it, and the cluster has no ${tpl}`,
        EXIT.notFound,
      );
    }
    throw new CliError(
      `unable to find unit ${name} in the cluster or on the filesystem (${path})`,
      EXIT.notFound,
    );
  }
  for (const w of warnings) err(w);
  const submitted =
    toSend.length > 0 ? await ctx.client.call("units.submit", { units: toSend, replace }, ctx.timeoutMs) : [];
  return { names, submitted };
}

type WaitOutcome = { code: number; final: Map<string, UnitInfo> };

/**
 * Waits until every unit's current state is `target` (for launched: and its agent reports it active), printing
 * `Unit X <target> [on <machine>]` as each gets there. attempts: 0 = until done, N = N attempts of attemptMs. A
 * unit the engine cannot place is given up on (`Unit X cannot be placed: <reason>`, exit 1) instead of waiting
 * forever; units still pending after the attempts end the wait with exit 3.
 */
async function waitForState(
  ctx: ClientContext,
  units: UnitInfo[],
  target: DesiredState,
  attempts: number,
  verb: string,
): Promise<WaitOutcome> {
  const final = new Map(units.map((u) => [u.name, u]));
  const pending = new Set<string>();
  for (const u of units) {
    if (u.global) {
      if (ctx.output === "table") out(`Triggered global unit ${u.name} ${verb}`);
    } else if (attempts < 0) {
      if (ctx.output === "table") out(`Triggered unit ${u.name} ${verb}`);
    } else pending.add(u.name);
  }
  let code: number = EXIT.ok;
  if (pending.size === 0) return { code, final };
  let machines: Map<string, MachineInfo> | null = null;
  const unplaceableSince = new Map<string, number>();
  const started = Date.now();
  const deadline = attempts === 0 ? Number.POSITIVE_INFINITY : started + attempts * WAIT_TIMING.attemptMs;
  let lastReason = new Map<string, string>();
  for (;;) {
    const list = await listUnits(ctx.client);
    const states = target === "launched" ? await ctx.client.call("units.states", {}) : [];
    const now = Date.now();
    lastReason = new Map();
    for (const name of [...pending]) {
      const u = list.get(name);
      if (!u) {
        err(`Unit ${name} disappeared from the cluster while waiting for it to be ${target}`);
        pending.delete(name);
        code = Math.max(code, EXIT.notFound);
        continue;
      }
      final.set(name, u);
      const machine = u.machines[0];
      const reached =
        u.current === target &&
        (target !== "launched" ||
          states.some((s) => s.name === name && s.machine === machine && s.active === "active"));
      if (reached) {
        pending.delete(name);
        if (ctx.output === "table") {
          let line = `Unit ${name} ${target}`;
          if (machine !== undefined && target !== "inactive") {
            if (!machines?.has(machine)) machines = await machineMap(ctx.client);
            line += ` on ${machineLegend(machine, machines)}`;
          }
          out(line);
        }
        continue;
      }
      if (u.unplaceable && target !== "inactive" && u.machines.length === 0) {
        lastReason.set(name, u.unplaceable);
        const since = unplaceableSince.get(name) ?? now;
        unplaceableSince.set(name, since);
        if (now - since >= WAIT_TIMING.unplaceableGraceMs) {
          err(`Unit ${name} cannot be placed: ${u.unplaceable}`);
          pending.delete(name);
          code = Math.max(code, EXIT.error);
        }
      } else unplaceableSince.delete(name);
    }
    if (pending.size === 0) break;
    if (Date.now() + WAIT_TIMING.pollMs > deadline) {
      for (const name of pending) {
        const reason = lastReason.get(name);
        if (reason !== undefined) {
          err(`Unit ${name} cannot be placed: ${reason}`);
          code = Math.max(code, EXIT.error);
        } else {
          const u = final.get(name);
          err(
            `Unit ${name} did not become ${target} after ${attempts} attempt${attempts === 1 ? "" : "s"} (current state ${u?.current ?? "-"})`,
          );
          code = code === EXIT.ok ? EXIT.unavailable : code;
        }
      }
      break;
    }
    await new Promise((r) => setTimeout(r, WAIT_TIMING.pollMs));
  }
  return { code, final };
}

function printInfos(infos: Iterable<UnitInfo>): void {
  for (const u of infos) printJson(u);
}

// ---- verify ------------------------------------------------------------------------------------------------

const verify: Command = {
  name: "verify",
  summary: "check unit files locally, with the agent's own checks, without a cluster",
  usage: "FILE...",
  description: `Checks what the agent on the unit's machine would refuse (the same code): syntax, the unit name,
sections, keys and specifiers systemd does not know, the settings Berth runs (Type=, Restart=, ExecStart=, ...)
and the [X-Fleet] options. Prints "FILE: ok" per valid file, or the first error as FILE:LINE: reason on stderr;
keys systemd knows but Berth ignores are warnings (FILE:LINE: warning: ...). Exit 0 when every file is valid, 2
otherwise.`,
  flags: [CLIENT_FLAGS.find((f) => f.name === "output")!],
  run: async (parsed) => {
    const output = outputFormat(parsed.flags);
    if (parsed.positionals.length === 0) throw new UsageError("expected FILE...");
    let code: number = EXIT.ok;
    for (const file of parsed.positionals) {
      const unit = basename(file);
      const doc: { file: string; unit: string; ok: boolean; error?: string; warnings: string[] } = {
        file,
        unit,
        ok: false,
        warnings: [],
      };
      try {
        checkName(unit);
        let text: string;
        try {
          text = await readFile(file, "utf8");
        } catch (e) {
          throw new UsageError(`${file}: cannot read: ${(e as Error).message}`);
        }
        const v = verifyText(text, unit, file);
        doc.ok = true;
        doc.warnings = v.warnings;
      } catch (e) {
        if (!(e instanceof CliError)) throw e;
        const msg = e.message.startsWith(`${file}:`) ? e.message : `${file}: ${e.message}`;
        doc.error = msg;
        code = EXIT.usage;
      }
      if (output === "json") printJson(doc);
      else {
        for (const w of doc.warnings) err(w);
        if (doc.ok) out(`${file}: ok`);
        else err(doc.error!);
      }
    }
    return code;
  },
};

// ---- submit / load / start ---------------------------------------------------------------------------------

const submit: Command = {
  name: "submit",
  summary: "upload unit files into the cluster (desired state inactive); idempotent",
  usage: "[--replace] UNIT...",
  description: `UNIT is a file path or a unit name (the unit is named after the file's base name; ".service" is
appended to names without a type). For an instance web@1.service without a local file, web@.service next to it
is sent under the instance's name; without that either, the cluster's template is used. Files are validated
locally first: an invalid file prints its line number and nothing is sent (exit 2). Prints nothing on success.`,
  flags: [REPLACE, ...CLIENT_FLAGS],
  run: async (parsed) => {
    if (parsed.positionals.length === 0) {
      err("No units given");
      return EXIT.ok;
    }
    return withClient(parsed.flags, async (ctx) => {
      const { submitted } = await lazySubmit(
        ctx,
        parsed.positionals,
        "submit",
        parsed.flags.replace === true,
      );
      if (ctx.output === "json") printInfos(submitted);
      return EXIT.ok;
    });
  },
};

function activateCommand(name: "load" | "start", target: DesiredState, summary: string): Command {
  return {
    name,
    summary,
    usage: "[--no-block|--block-attempts N] [--replace] UNIT...",
    description: `Submits units the cluster does not have (as \`berth submit\`), sets their desired state to ${target} and
waits until they are ${target === "launched" ? "running where they were placed (agent state active)" : "loaded where they were placed"}, printing
"Unit X ${target} on <machine>.../<ip>". A unit that cannot be placed is reported ("Unit X cannot be placed:
<reason>", exit 1) instead of blocking forever. Templates (web@.service) cannot be ${name === "start" ? "started" : "loaded"}.
Exit 3 when --block-attempts ran out first.`,
    flags: [NO_BLOCK, BLOCK_ATTEMPTS, REPLACE, ...CLIENT_FLAGS],
    run: async (parsed) => {
      const attempts = blockAttempts(parsed);
      if (parsed.positionals.length === 0) {
        err("No units given");
        return EXIT.ok;
      }
      return withClient(parsed.flags, async (ctx) => {
        const { names } = await lazySubmit(ctx, parsed.positionals, name, parsed.flags.replace === true);
        let units = await listUnits(ctx.client);
        const change = names.filter((n) => units.get(n)?.desired !== target);
        if (change.length > 0) {
          for (const u of await ctx.client.call("units.setDesired", { names: change, desired: target }))
            units.set(u.name, u);
        }
        const missing = names.filter((n) => !units.has(n));
        if (missing.length > 0) {
          units = await listUnits(ctx.client);
          const still = names.filter((n) => !units.has(n));
          if (still.length > 0) throw new CliError(`units not found: ${still.join(", ")}`, EXIT.notFound);
        }
        const { code, final } = await waitForState(
          ctx,
          names.map((n) => units.get(n)!),
          target,
          attempts,
          name,
        );
        if (ctx.output === "json") printInfos(names.map((n) => final.get(n)!));
        return code;
      });
    },
  };
}

const load = activateCommand(
  "load",
  "loaded",
  "submit if needed, then schedule units onto machines (not started)",
);
const start = activateCommand("start", "launched", "submit and load if needed, then start units");

// ---- stop / unload / destroy -------------------------------------------------------------------------------

const stop: Command = {
  name: "stop",
  summary: "stop units (desired state loaded): they stay loaded where they were placed",
  usage: "[--no-block|--block-attempts N] UNIT|GLOB...",
  description: `Unknown names (or globs matching nothing) are an error (exit 4) and nothing is changed. A unit that
is not loaded anywhere cannot be stopped (exit 1, fleetctl's "Unable to stop unit X in state inactive").`,
  flags: [NO_BLOCK, BLOCK_ATTEMPTS, ...CLIENT_FLAGS],
  run: async (parsed) => {
    const attempts = blockAttempts(parsed);
    if (parsed.positionals.length === 0) {
      err("No units given");
      return EXIT.ok;
    }
    return withClient(parsed.flags, async (ctx) => {
      const units = resolveKnown(parsed.positionals, [...(await listUnits(ctx.client)).values()]);
      const stopping: UnitInfo[] = [];
      for (const u of units) {
        if (!u.global) {
          if (u.current === "inactive" || u.current === null) {
            err(`Unable to stop unit ${u.name} in state inactive`);
            return EXIT.error;
          } else if (u.current === "loaded" && u.desired === "loaded") continue;
        }
        stopping.push(u);
      }
      return finishTransition(ctx, stopping, "loaded", attempts, "stop", "stopped");
    });
  },
};

const unload: Command = {
  name: "unload",
  summary: "stop and unload units (desired state inactive): they are placed nowhere",
  usage: "[--no-block|--block-attempts N] UNIT|GLOB...",
  description: `Unknown names (or globs matching nothing) are an error (exit 4) and nothing is changed. Unlike
fleetctl, a unit waiting to be placed (current state inactive, desired loaded/launched) is unloaded too.`,
  flags: [NO_BLOCK, BLOCK_ATTEMPTS, ...CLIENT_FLAGS],
  run: async (parsed) => {
    const attempts = blockAttempts(parsed);
    if (parsed.positionals.length === 0) {
      err("No units given");
      return EXIT.ok;
    }
    return withClient(parsed.flags, async (ctx) => {
      const units = resolveKnown(parsed.positionals, [...(await listUnits(ctx.client)).values()]);
      const unloading = units.filter(
        (u) => !(u.desired === "inactive" && u.current !== "loaded" && u.current !== "launched"),
      );
      return finishTransition(ctx, unloading, "inactive", attempts, "unload", "unloaded");
    });
  },
};

async function finishTransition(
  ctx: ClientContext,
  units: UnitInfo[],
  target: DesiredState,
  attempts: number,
  verb: string,
  done: string,
): Promise<number> {
  const byName = new Map(units.map((u) => [u.name, u]));
  if (units.length > 0) {
    for (const u of await ctx.client.call("units.setDesired", {
      names: units.map((u) => u.name),
      desired: target,
    }))
      byName.set(u.name, u);
  }
  const { code, final } = await waitForState(ctx, [...byName.values()], target, attempts, verb);
  if (ctx.output === "json") printInfos(final.values());
  else if (units.length > 0 && code === EXIT.ok && attempts >= 0)
    err(`Successfully ${done} units [${units.map((u) => u.name).join(" ")}].`);
  return code;
}

const destroy: Command = {
  name: "destroy",
  summary: "remove units from the cluster (stopped and unloaded wherever they run)",
  usage: "UNIT|GLOB...",
  description: `Prints "Destroyed X" per unit. Unknown names (or globs matching nothing) are an error (exit 4) and
nothing is destroyed. --no-block and --block-attempts are accepted for fleetctl compatibility; the units are gone
from the cluster when the command returns.`,
  flags: [NO_BLOCK, BLOCK_ATTEMPTS, ...CLIENT_FLAGS],
  run: async (parsed) => {
    blockAttempts(parsed);
    if (parsed.positionals.length === 0) {
      err("No units given");
      return EXIT.ok;
    }
    return withClient(parsed.flags, async (ctx) => {
      const units = resolveKnown(parsed.positionals, [...(await listUnits(ctx.client)).values()]);
      const r = await ctx.client.call("units.destroy", { names: units.map((u) => u.name) });
      if (ctx.output === "json") printJson(r);
      else for (const n of r.destroyed) out(`Destroyed ${n}`);
      return EXIT.ok;
    });
  },
};

// ---- cat ---------------------------------------------------------------------------------------------------

const cat: Command = {
  name: "cat",
  summary: "print a unit file as the cluster stores it (canonical form)",
  usage: "UNIT",
  flags: CLIENT_FLAGS,
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      if (parsed.positionals.length !== 1) throw new UsageError("One unit file must be provided");
      const { name } = mangle(parsed.positionals[0]!);
      checkName(name);
      const r = await ctx.client.call("units.cat", { name });
      if (ctx.output === "json") printJson(r);
      else process.stdout.write(r.text.endsWith("\n") ? r.text : `${r.text}\n`);
      return EXIT.ok;
    }),
};

// ---- list-unit-files ---------------------------------------------------------------------------------------

function hashText(hash: string, full: boolean): string {
  return hash === "" ? "-" : full ? hash : hash.slice(0, 7);
}

const UNIT_FILE_FIELDS = "unit,hash,dstate,state,target";

const listUnitFiles: Command = {
  name: "list-unit-files",
  summary: "list the units in the cluster with desired and current state and where they are placed",
  usage: "[--fields KEY,...] [--no-legend] [--full] [UNIT|GLOB...]",
  description: `Columns (fleetctl's): UNIT HASH DSTATE STATE TARGET; more with --fields: desc, global, tmachine
(deprecated alias of target) and reason (why the unit cannot be placed, "-" when it can). TARGET is
<machine>.../<ip>, "global" for global units, "-" when not placed. Arguments filter by name or glob.`,
  flags: [
    fieldsFlag(UNIT_FILE_FIELDS, "desc,dstate,global,hash,reason,state,target,tmachine,unit"),
    NO_LEGEND,
    FULL,
    ...CLIENT_FLAGS,
  ],
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      const full = parsed.flags.full === true;
      let machines = new Map<string, MachineInfo>();
      const target = (u: UnitInfo) =>
        u.global ? "global" : u.machines[0] ? machineLegend(u.machines[0], machines, full) : "-";
      const all: Record<string, Column<UnitInfo>> = {
        unit: { header: "UNIT", value: (u) => u.name },
        hash: { header: "HASH", value: (u) => hashText(u.hash, full) },
        dstate: { header: "DSTATE", value: (u) => u.desired || "-" },
        state: { header: "STATE", value: (u) => (u.global ? "-" : (u.current ?? "-")) },
        target: { header: "TARGET", value: target },
        tmachine: { header: "TMACHINE", value: target },
        global: { header: "GLOBAL", value: (u) => String(u.global) },
        desc: { header: "DESC", value: (u) => u.description || "-" },
        reason: { header: "REASON", value: (u) => u.unplaceable ?? "-" },
      };
      const { keys, columns } = pickColumns(parsed.flags.fields as string | undefined, UNIT_FILE_FIELDS, all);
      if (keys.includes("tmachine")) err('WARNING: The "tmachine" field is deprecated. Use "target" instead');
      const units = filterByArgs(
        await ctx.client.call("units.list", {}),
        parsed.positionals,
        (u) => u.name,
      ).sort((a, b) => cmp(a.name, b.name));
      if (ctx.output === "json") {
        printJson(units);
        return EXIT.ok;
      }
      if (units.some((u) => u.machines.length > 0)) machines = await machineMap(ctx.client);
      const table = renderTable(units, columns, { legend: parsed.flags["no-legend"] !== true, full: true });
      if (table !== "") out(table);
      return EXIT.ok;
    }),
};

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---- list-units --------------------------------------------------------------------------------------------

const UNITS_FIELDS = "unit,machine,active,sub";

/**
 * The rows of `list-units`: the agents' reports, sorted by unit then machine, plus — where fleet was silent — one
 * row per unit the engine cannot place: MACHINE "-", LOAD "-", ACTIVE "inactive", SUB "unplaceable: <reason>"
 * (in JSON: machine "" and note "unplaceable: <reason>"). A row with a note from the node (e.g. machine lost)
 * shows it after SUB in parentheses.
 */
export function unitRows(states: UnitStateRow[], units: UnitInfo[]): UnitStateRow[] {
  const rows = [...states];
  const withRow = new Set(states.map((s) => s.name));
  for (const u of units) {
    if (u.unplaceable !== null && !withRow.has(u.name))
      rows.push({
        name: u.name,
        machine: "",
        hash: u.hash,
        load: "-",
        active: "inactive",
        sub: `unplaceable: ${u.unplaceable}`,
        mainPid: null,
        since: 0,
        note: `unplaceable: ${u.unplaceable}`,
      });
  }
  return rows.sort((a, b) => cmp(a.name, b.name) || cmp(a.machine, b.machine));
}

const listUnits_: Command = {
  name: "list-units",
  summary: "list the state of units on the machines they are loaded on (one row per unit and machine)",
  usage: "[--fields KEY,...] [--no-legend] [-l|--full] [UNIT|GLOB...]",
  description: `Columns (fleetctl's): UNIT MACHINE ACTIVE SUB; more with --fields: load, hash. MACHINE is
<machine>.../<ip> (full id with --full). Unlike fleetctl, a unit the cluster cannot place gets a row with MACHINE
"-", ACTIVE "inactive" and SUB "unplaceable: <reason>". Arguments filter by name or glob.`,
  flags: [fieldsFlag(UNITS_FIELDS, "active,hash,load,machine,sub,unit"), NO_LEGEND, FULL_L, ...CLIENT_FLAGS],
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      const full = parsed.flags.full === true;
      let machines = new Map<string, MachineInfo>();
      const all: Record<string, Column<UnitStateRow>> = {
        unit: { header: "UNIT", value: (r) => r.name },
        machine: {
          header: "MACHINE",
          value: (r) => (r.machine ? machineLegend(r.machine, machines, full) : "-"),
        },
        active: { header: "ACTIVE", value: (r) => r.active || "-" },
        sub: {
          header: "SUB",
          value: (r) => (r.machine === "" || !r.note ? r.sub || "-" : `${r.sub || "-"} (${r.note})`),
        },
        load: { header: "LOAD", value: (r) => r.load || "-" },
        hash: { header: "HASH", value: (r) => hashText(r.hash, full) },
      };
      const { columns } = pickColumns(parsed.flags.fields as string | undefined, UNITS_FIELDS, all);
      const [states, units] = await Promise.all([
        ctx.client.call("units.states", {}),
        ctx.client.call("units.list", {}),
      ]);
      const rows = filterByArgs(unitRows(states, units), parsed.positionals, (r) => r.name);
      if (ctx.output === "json") {
        printJson(rows);
        return EXIT.ok;
      }
      if (rows.some((r) => r.machine !== "")) machines = await machineMap(ctx.client);
      const table = renderTable(rows, columns, { legend: parsed.flags["no-legend"] !== true, full: true });
      if (table !== "") out(table);
      return EXIT.ok;
    }),
};

export const unitCommands: Command[] = [
  verify,
  submit,
  load,
  start,
  stop,
  unload,
  destroy,
  cat,
  listUnitFiles,
  listUnits_,
];
