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
import { PROGRESS_MIN, WAIT_TIMING, type WaitGoal, waitForUnits } from "./unit-wait.ts";

export { WAIT_TIMING };

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
  const submitted: UnitInfo[] = [];
  await inBatches(ctx, toSend, BATCH.submit, "Submitted", async (batch) => {
    submitted.push(...(await ctx.client.call("units.submit", { units: batch, replace }, ctx.timeoutMs)));
  });
  return { names, submitted };
}

/** Units per units.submit call and names per units.setDesired call: each stays well within --request-timeout. */
const BATCH = { submit: 100, names: 500 };

/**
 * Sends `items` in batches, saying how far it got when there is more than one. A batch whose answer timed out is
 * sent again (twice at most): it may have been done anyway, and both calls are idempotent, so work the cluster did
 * is never reported as a failure.
 */
async function inBatches<T>(
  ctx: ClientContext,
  items: T[],
  size: number,
  what: string,
  send: (batch: T[]) => Promise<void>,
): Promise<void> {
  let nextLine = Date.now() + 1000;
  for (let i = 0; i < items.length; i += size) {
    const batch = items.slice(i, i + size);
    for (let attempt = 1; ; attempt++) {
      try {
        await send(batch);
        break;
      } catch (e) {
        if ((e as { code?: string }).code !== "timeout" || attempt >= 3) throw e;
        err(`No answer within ${ctx.timeoutMs} ms for ${batch.length} units; sending them again`);
      }
    }
    const sent = Math.min(i + size, items.length);
    // About once a second, and when done.
    if (items.length > size && ctx.output === "table" && (Date.now() >= nextLine || sent === items.length)) {
      err(`${what} ${sent} of ${items.length} units`);
      nextLine = Date.now() + 1000;
    }
  }
}

/**
 * Sets the desired state of `names` (in batches) and returns the documents of every unit it changed: those named,
 * and the launched units a stop takes along (Requires=/BindsTo=/PartOf= on them), which are announced on stderr.
 */
async function setDesired(
  ctx: ClientContext,
  names: string[],
  desired: DesiredState,
): Promise<Map<string, UnitInfo>> {
  const byName = new Map<string, UnitInfo>();
  await inBatches(ctx, names, BATCH.names, "Accepted", async (batch) => {
    for (const u of await ctx.client.call("units.setDesired", { names: batch, desired }, ctx.timeoutMs))
      byName.set(u.name, u);
  });
  if (names.length > PROGRESS_MIN && ctx.output === "table")
    err(`All ${names.length} units accepted by the cluster (desired state ${desired})`);
  const named = new Set(names);
  announceStopped(
    ctx,
    [...byName.keys()].filter((n) => !named.has(n)),
  );
  return byName;
}

function announceStopped(ctx: ClientContext, dependents: string[]): void {
  if (ctx.output !== "table") return;
  for (const d of dependents)
    err(`Stopping ${d} too: it is bound to a unit being stopped (Requires=, BindsTo= or PartOf=)`);
}

/** Names the arguments that matched no unit (stderr); their exit code, 4, comes once the others are done. */
function reportMissing(missing: string[]): number {
  for (const m of missing) err(`Unit ${m} not found in the cluster`);
  return missing.length > 0 ? EXIT.notFound : EXIT.ok;
}

/** The exit code of a command that did several things: the gravest (4, then 1, then 3). */
function worst(...codes: number[]): number {
  const rank = (c: number): number => [EXIT.ok, EXIT.unavailable, EXIT.error, EXIT.notFound].indexOf(c as 0);
  return codes.reduce((a, b) => (rank(b) > rank(a) ? b : a), EXIT.ok as number);
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
  const goal: WaitGoal = target === "launched" ? "launched" : "loaded";
  return {
    name,
    summary,
    usage: "[--no-block|--block-attempts N] [--replace] UNIT...",
    description: `Submits units the cluster does not have (as \`berth submit\`), sets their desired state to ${target} and
waits until they are ${target === "launched" ? 'running where they were placed: "Unit X launched on <machine>.../<ip>" once its agent issued the start, then until it is active' : 'loaded where they were placed, printing "Unit X loaded on <machine>.../<ip>"'}.
Instead of blocking forever, a unit that cannot be placed ("Unit X cannot be placed: <reason>")${
      target === "launched"
        ? `, fails, exits right after
its start, is refused by its agent or hits its start limit ("Unit X failed on <machine>: failed (Result: exit-code)")`
        : ""
    } ends the
wait with exit 1. Many units: progress on stderr, and when --block-attempts runs out first, why the first ten are
not there yet and "N of M ${goal}" (exit 3); what the cluster accepted stays accepted. Templates (web@.service)
cannot be ${name === "start" ? "started" : "loaded"}.`,
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
        for (const u of (await setDesired(ctx, change, target)).values()) units.set(u.name, u);
        const missing = names.filter((n) => !units.has(n));
        if (missing.length > 0) {
          units = await listUnits(ctx.client);
          const still = names.filter((n) => !units.has(n));
          if (still.length > 0) throw new CliError(`units not found: ${still.join(", ")}`, EXIT.notFound);
        }
        const { code, final } = await waitForUnits(
          ctx,
          names.map((n) => units.get(n)!),
          goal,
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

// ---- stop / unload / destroy / restart ---------------------------------------------------------------------

const PARTIAL = `Arguments that name no unit (or globs matching nothing) are reported ("Unit X not found in the cluster")
and the others are still done; the exit code is then 4.`;

/** Which of `units` a stop changes; reports (and counts) those it cannot stop, as fleetctl's stop. */
function stoppable(units: UnitInfo[]): { stopping: UnitInfo[]; code: number } {
  const stopping: UnitInfo[] = [];
  let code: number = EXIT.ok;
  for (const u of units) {
    if (!u.global) {
      if (u.current === "inactive" || u.current === null) {
        err(`Unable to stop unit ${u.name} in state inactive`);
        code = EXIT.error;
        continue;
      }
      if (u.current === "loaded" && u.desired === "loaded") continue;
    }
    stopping.push(u);
  }
  return { stopping, code };
}

const stop: Command = {
  name: "stop",
  summary: "stop units (desired state loaded): they stay loaded where they were placed",
  usage: "[--no-block|--block-attempts N] UNIT|GLOB...",
  description: `Waits until each unit no longer runs on its machine ("Unit X loaded on <machine>"). As systemd, a stop
takes along the launched units of the same machine with Requires=, BindsTo= or PartOf= on a stopped unit (stderr
names them); their desired state becomes loaded too. A unit that is not loaded anywhere cannot be stopped (exit 1,
fleetctl's "Unable to stop unit X in state inactive"); the others still are. ${PARTIAL}`,
  flags: [NO_BLOCK, BLOCK_ATTEMPTS, ...CLIENT_FLAGS],
  run: async (parsed) => {
    const attempts = blockAttempts(parsed);
    if (parsed.positionals.length === 0) {
      err("No units given");
      return EXIT.ok;
    }
    return withClient(parsed.flags, async (ctx) => {
      const { units, missing } = resolveKnown(parsed.positionals, [
        ...(await listUnits(ctx.client)).values(),
      ]);
      const notFound = reportMissing(missing);
      const { stopping, code } = stoppable(units);
      const done = await finishTransition(ctx, stopping, "loaded", attempts, "stop", "stopped");
      return worst(done, code, notFound);
    });
  },
};

const unload: Command = {
  name: "unload",
  summary: "stop and unload units (desired state inactive): they are placed nowhere",
  usage: "[--no-block|--block-attempts N] UNIT|GLOB...",
  description: `Waits until each unit runs nowhere ("Unit X inactive"). Units bound to an unloaded one are stopped as
by \`berth stop\`. Unlike fleetctl, a unit waiting to be placed (current state inactive, desired loaded/launched) is
unloaded too. ${PARTIAL}`,
  flags: [NO_BLOCK, BLOCK_ATTEMPTS, ...CLIENT_FLAGS],
  run: async (parsed) => {
    const attempts = blockAttempts(parsed);
    if (parsed.positionals.length === 0) {
      err("No units given");
      return EXIT.ok;
    }
    return withClient(parsed.flags, async (ctx) => {
      const { units, missing } = resolveKnown(parsed.positionals, [
        ...(await listUnits(ctx.client)).values(),
      ]);
      const notFound = reportMissing(missing);
      const unloading = units.filter(
        (u) => !(u.desired === "inactive" && u.current !== "loaded" && u.current !== "launched"),
      );
      const done = await finishTransition(ctx, unloading, "inactive", attempts, "unload", "unloaded");
      return worst(done, notFound);
    });
  },
};

/** Sets `target` on the units and waits for them (and for the units a stop took along, which end up stopped). */
async function finishTransition(
  ctx: ClientContext,
  units: UnitInfo[],
  target: "loaded" | "inactive",
  attempts: number,
  verb: string,
  done: string,
): Promise<number> {
  const byName = new Map(units.map((u) => [u.name, u]));
  const changed = await setDesired(
    ctx,
    units.map((u) => u.name),
    target,
  );
  const along = [...changed.values()].filter((u) => !byName.has(u.name));
  for (const u of units) byName.set(u.name, changed.get(u.name) ?? u);
  const goal: WaitGoal = target === "loaded" ? "stopped" : "inactive";
  const main = await waitForUnits(ctx, [...byName.values()], goal, attempts, verb);
  const dep = await waitForUnits(ctx, along, "stopped", attempts, verb);
  const code = worst(main.code, dep.code);
  if (ctx.output === "json") printInfos([...main.final.values(), ...dep.final.values()]);
  else if (units.length > 0 && code === EXIT.ok && attempts >= 0)
    err(`Successfully ${done} units [${units.map((u) => u.name).join(" ")}].`);
  return code;
}

const destroy: Command = {
  name: "destroy",
  summary: "remove units from the cluster (stopped and unloaded wherever they run)",
  usage: "[--no-block|--block-attempts N] UNIT|GLOB...",
  description: `Prints "Destroyed X" per unit once it is gone from the cluster, then waits until no machine runs it any
more (a destroyed unit stays in \`list-units\`, SUB "... (destroyed)", until its agent has stopped it); units bound to
it (Requires=, BindsTo=, PartOf=) are stopped as by \`berth stop\`. --no-block returns at once; when
--block-attempts runs out first: "Unit X is still stopping on <machine>", exit 3. ${PARTIAL}`,
  flags: [NO_BLOCK, BLOCK_ATTEMPTS, ...CLIENT_FLAGS],
  run: async (parsed) => {
    const attempts = blockAttempts(parsed);
    if (parsed.positionals.length === 0) {
      err("No units given");
      return EXIT.ok;
    }
    return withClient(parsed.flags, async (ctx) => {
      const { units, missing } = resolveKnown(parsed.positionals, [
        ...(await listUnits(ctx.client)).values(),
      ]);
      let code = reportMissing(missing);
      const destroyed: string[] = [];
      const stopped: string[] = [];
      await inBatches(ctx, units, BATCH.names, "Destroyed", async (batch) => {
        const r = await ctx.client.call("units.destroy", { names: batch.map((u) => u.name) }, ctx.timeoutMs);
        destroyed.push(...r.destroyed);
        stopped.push(...(r.stopped ?? []));
      });
      if (ctx.output === "json") printJson(stopped.length > 0 ? { destroyed, stopped } : { destroyed });
      else for (const n of destroyed) out(`Destroyed ${n}`);
      announceStopped(ctx, stopped);
      if (attempts >= 0) {
        code = worst(code, await waitGone(ctx, destroyed, attempts));
        if (stopped.length > 0) {
          const along = await listUnits(ctx.client);
          const infos = stopped.map((n) => along.get(n)).filter((u) => u !== undefined);
          code = worst(code, (await waitForUnits(ctx, infos, "stopped", attempts, "stop")).code);
        }
      }
      return code;
    });
  },
};

/** Waits until no agent reports any of the destroyed units (each has stopped and been forgotten); exit 3 if not. */
async function waitGone(ctx: ClientContext, names: string[], attempts: number): Promise<number> {
  if (names.length === 0) return EXIT.ok;
  const wanted = new Set(names);
  const deadline = attempts === 0 ? Number.POSITIVE_INFINITY : Date.now() + attempts * WAIT_TIMING.attemptMs;
  let nextProgress = Date.now() + WAIT_TIMING.progressMs;
  const stillStopping = async (left: UnitStateRow[]): Promise<void> => {
    const machines = new Map((await ctx.client.call("machines.list", {})).map((m) => [m.id, m]));
    for (const r of left.slice(0, 10))
      err(
        `Unit ${r.name} is still stopping on ${machineLegend(r.machine, machines)}: ${r.active} (${r.sub})`,
      );
    if (left.length > 10) err(`... and ${left.length - 10} more`);
  };
  for (;;) {
    const left = (await ctx.client.call("units.states", {})).filter((r) => wanted.has(r.name));
    if (left.length === 0) return EXIT.ok;
    if (Date.now() + WAIT_TIMING.pollMs > deadline) {
      await stillStopping(left);
      return EXIT.unavailable;
    }
    // A machine whose node is away stops nothing until it is back (or lost): say what the wait is for.
    if (Date.now() >= nextProgress) {
      nextProgress = Date.now() + WAIT_TIMING.progressMs;
      await stillStopping(left);
    }
    await new Promise((r) => setTimeout(r, WAIT_TIMING.pollMs));
  }
}

const restart: Command = {
  name: "restart",
  summary: "stop, then start units, one at a time (a stopped unit is started)",
  usage: "[--block-attempts N] UNIT|GLOB...",
  description: `As fleetctl restart: for each unit in turn, stops it and waits until it no longer runs ("Unit X loaded
on <machine>"), then starts it and waits as \`berth start\` does ("Unit X launched on <machine>"). A unit that is
loaded but not running is just started; one not loaded anywhere cannot be (exit 1, "Unable to restart unit X in
state inactive"). Units the stop took along (Requires=, BindsTo=, PartOf=) are started again with it, as systemd's
restart does. The first unit that fails to stop or start ends the command (exit 1). Global units are stopped and
started without waiting. ${PARTIAL}`,
  flags: [BLOCK_ATTEMPTS, ...CLIENT_FLAGS],
  run: async (parsed) => {
    const attempts = blockAttempts(parsed);
    if (parsed.positionals.length === 0) {
      err("No units given");
      return EXIT.ok;
    }
    return withClient(parsed.flags, async (ctx) => {
      const { units, missing } = resolveKnown(parsed.positionals, [
        ...(await listUnits(ctx.client)).values(),
      ]);
      let code = reportMissing(missing);
      for (const unit of units) {
        const u = (await listUnits(ctx.client)).get(unit.name) ?? unit;
        if (!u.global && (u.current === "inactive" || u.current === null)) {
          err(`Unable to restart unit ${u.name} in state inactive`);
          code = worst(code, EXIT.error);
          continue;
        }
        const wait = u.global ? -1 : attempts;
        let along: UnitInfo[] = [];
        if (u.global || u.current === "launched" || u.desired === "launched") {
          const changed = await setDesired(ctx, [u.name], "loaded");
          along = [...changed.values()].filter((x) => x.name !== u.name);
          const stopped = await waitForUnits(ctx, [...changed.values()], "stopped", wait, "stop");
          if (stopped.code !== EXIT.ok) return worst(code, stopped.code);
        }
        const names = [u.name, ...along.map((x) => x.name)];
        const started = await setDesired(ctx, names, "launched");
        const r = await waitForUnits(
          ctx,
          names.map((n) => started.get(n)!),
          "launched",
          wait,
          "restart",
        );
        if (r.code !== EXIT.ok) return worst(code, r.code);
      }
      return code;
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

const UNPLACED = "cannot be placed: ";

/**
 * The rows of `list-units`: the agents' reports, sorted by unit then machine, as fleet listed them (units on
 * machines: scripts that count rows keep working). With `all`, also one row per unit the engine cannot place:
 * MACHINE "-", ACTIVE "inactive", SUB "dead (cannot be placed: <reason>)" (in JSON: machine "-" and the note).
 * A unit moving between machines ("waiting for core-02 to stop it") is listed either way.
 */
export function unitRows(states: UnitStateRow[], units: UnitInfo[], all = false): UnitStateRow[] {
  const rows = states.filter((r) => all || !isUnplaced(r));
  const withRow = new Set(states.map((s) => s.name));
  for (const u of all ? units : []) {
    if (u.unplaceable !== null && !withRow.has(u.name))
      rows.push({
        name: u.name,
        machine: "-",
        hash: u.hash,
        load: "-",
        active: "inactive",
        sub: "dead",
        mainPid: null,
        since: 0,
        note: `${UNPLACED}${u.unplaceable}`,
      });
  }
  return rows.sort((a, b) => cmp(a.name, b.name) || cmp(a.machine, b.machine));
}

/** A row for a unit on no machine because the engine cannot place it (not one that is moving). */
function isUnplaced(r: UnitStateRow): boolean {
  return !onMachine(r.machine) && (r.note === undefined || r.note.startsWith(UNPLACED));
}

const onMachine = (machine: string): boolean => machine !== "" && machine !== "-";

const listUnits_: Command = {
  name: "list-units",
  summary: "list the state of units on the machines they are loaded on (one row per unit and machine)",
  usage: "[--all] [--fields KEY,...] [--no-legend] [-l|--full] [UNIT|GLOB...]",
  description: `One row per unit and machine it is on, as fleetctl lists them; columns (fleetctl's, tab-separated
as fleetctl's: cut -f1 takes UNIT): UNIT MACHINE ACTIVE SUB; more with --fields: load, hash. MACHINE is
<machine>.../<ip> (full id with --full). SUB is the agent's (running, exited, dead, failed, auto-restart...) and,
in parentheses, what the cluster adds: "machine lost", "destroyed" (until its machine has stopped it), "waiting
for core-02 to stop it" (a unit moving between machines, MACHINE "-"). A unit the cluster cannot place is on no
machine and not listed (as in fleet, e.g. a MachineOf= follower whose unit was destroyed); --all lists it with
MACHINE "-", ACTIVE "inactive", SUB "dead (cannot be placed: <reason>)"; list-unit-files --fields unit,reason and
status say why too. Why a unit failed is in status ("failed (Result: start-limit-hit)"). Arguments filter by name
or glob.`,
  flags: [
    { name: "all", type: "boolean", description: "list units that cannot be placed too (MACHINE -)" },
    fieldsFlag(UNITS_FIELDS, "active,hash,load,machine,sub,unit"),
    NO_LEGEND,
    FULL_L,
    ...CLIENT_FLAGS,
  ],
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      const full = parsed.flags.full === true;
      let machines = new Map<string, MachineInfo>();
      const all: Record<string, Column<UnitStateRow>> = {
        unit: { header: "UNIT", value: (r) => r.name },
        machine: {
          header: "MACHINE",
          value: (r) => (onMachine(r.machine) ? machineLegend(r.machine, machines, full) : "-"),
        },
        active: { header: "ACTIVE", value: (r) => r.active || "-" },
        sub: {
          header: "SUB",
          value: (r) => (r.note ? `${r.sub || "-"} (${r.note})` : r.sub || "-"),
        },
        load: { header: "LOAD", value: (r) => r.load || "-" },
        hash: { header: "HASH", value: (r) => hashText(r.hash, full) },
      };
      const { columns } = pickColumns(parsed.flags.fields as string | undefined, UNITS_FIELDS, all);
      const [states, units] = await Promise.all([
        ctx.client.call("units.states", {}),
        ctx.client.call("units.list", {}),
      ]);
      const rows = filterByArgs(
        unitRows(states, units, parsed.flags.all === true),
        parsed.positionals,
        (r) => r.name,
      );
      if (ctx.output === "json") {
        printJson(rows);
        return EXIT.ok;
      }
      if (rows.some((r) => onMachine(r.machine))) machines = await machineMap(ctx.client);
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
  restart,
  cat,
  listUnitFiles,
  listUnits_,
];
