// `berth status UNIT...`: fleetctl's status, which ran `systemctl status` on the unit's machine; here the node asks
// the agent of that machine and the output is laid out as systemctl prints it, plus the machine it runs on.

import { exitStatusText, signalText } from "../agent/exec-line.ts";
import type { AgentUnitState, MachineInfo, UnitStatus, UnitStepRecord } from "../client/protocol.ts";
import { formatJournalLine } from "../format/journal.ts";
import { relativeTime, systemdTime } from "../format/time.ts";
import { CLIENT_FLAGS, withClient } from "./client-command.ts";
import type { Command } from "./command.ts";
import { EXIT, UsageError } from "./exit-codes.ts";
import { printJson } from "./output.ts";
import { IGNORED_SSH_PORT } from "./tunnel-flags.ts";
import { checkName, machineLegend, mangle } from "./unit-support.ts";

/** systemd's format_bytes: `512B`, `1.2M`. */
export function formatBytes(n: number): string {
  const units = ["E", "P", "T", "G", "M", "K"];
  for (let i = 0; i < units.length; i++) {
    const factor = 1024 ** (units.length - i);
    if (n >= factor) {
      const whole = Math.floor(n / factor);
      const tenth = Math.floor((n * 10) / factor) % 10;
      return `${whole}.${tenth}${units[i]}`;
    }
  }
  return `${n}B`;
}

function stepText(s: UnitStepRecord): string {
  const result =
    s.code === "exited"
      ? `code=exited, status=${exitStatusText(Number(s.status))}`
      : `code=killed, status=${signalText(String(s.status))}`;
  // systemctl shows the command without its prefixes ("-" ignore failure, "@", "+", "!", ":").
  return `${s.pid ?? "-"} ${s.step}=${s.command.replace(/^[-@+!:]+/, "")} (${result})`;
}

/** The `systemctl status` block for one unit on one machine (no trailing newline). */
export function renderStatus(u: UnitStatus, machines: Map<string, MachineInfo>, now = Date.now()): string {
  const s: AgentUnitState = u.state;
  const lines: string[] = [];
  lines.push(`● ${u.name}${u.description ? ` - ${u.description}` : ""}`);
  const where = u.path ? ` (${u.path})` : "";
  lines.push(
    `   Loaded: ${s.load === "error" ? `error (Reason: ${s.error ?? "unknown"})` : `${s.load}${where}`}`,
  );
  const since = s.since > 0 ? ` since ${systemdTime(s.since)}; ${relativeTime(s.since, now)}` : "";
  // systemctl: "failed (Result: exit-code)", the sub-state otherwise.
  const detail = s.active === "failed" && s.result ? `Result: ${s.result}` : s.sub;
  lines.push(`   Active: ${s.active} (${detail})${since}`);
  if (s.timer !== undefined) {
    // systemctl: "Trigger: Tue 2026-12-08 00:00:00 UTC; 22h left" (n/a when nothing is left to wait for).
    const next = s.timer.nextElapse;
    const left = next === null ? "" : relativeTime(2 * now - next, now).replace(/ ago$/, " left");
    lines.push(`  Trigger: ${next === null ? "n/a" : `${systemdTime(next)}; ${left}`}`);
    lines.push(` Triggers: ● ${s.timer.unit}`);
  }
  if (s.triggers !== undefined) {
    // systemctl: " Triggers: ● foo.service", then a socket's "   Listen: 127.0.0.1:8080 (Stream)" lines.
    lines.push(` Triggers: ● ${s.triggers.unit}`);
    for (const [i, l] of (s.triggers.listen ?? []).entries())
      lines.push(`${i === 0 ? "   Listen:" : "          "} ${l}`);
  }
  for (const step of s.steps) {
    // Exec lines that finished; the running main process is the "Main PID:" line.
    if (step.code === null) continue;
    lines.push(`  Process: ${stepText(step)}`);
  }
  if (s.mainPid !== null) lines.push(` Main PID: ${s.mainPid}${u.mainCommand ? ` (${u.mainCommand})` : ""}`);
  if (s.statusText) lines.push(`   Status: "${s.statusText}"`);
  if (s.memoryBytes !== null) lines.push(`   Memory: ${formatBytes(s.memoryBytes)}`);
  const procs = u.processes ?? [];
  if (s.cgroup || procs.length > 0) {
    lines.push(`   CGroup: ${s.cgroup ?? "-"}`);
    procs.forEach((p, i) => {
      lines.push(`           ${i === procs.length - 1 ? "└─" : "├─"}${p.pid} ${p.command}`);
    });
  }
  lines.push(`  Machine: ${machines.has(u.machine) ? machineLegend(u.machine, machines) : legendOf(u)}`);
  if (u.journal.length > 0) {
    lines.push("");
    for (const l of u.journal) lines.push(formatJournalLine(l, "short", u.hostname));
  }
  return lines.join("\n");
}

function legendOf(u: UnitStatus): string {
  return `${u.machine.slice(0, 8)}...${u.publicIp ? `/${u.publicIp}` : ""}`;
}

export const status: Command = {
  name: "status",
  summary: "show the state of units as `systemctl status` does, from the machines they run on",
  usage: "UNIT...",
  description: `For each unit, as systemctl status: the description (specifiers such as %i expanded), Loaded (with
the unit's key in the cluster's registry), Active (since when; "failed (Result: start-limit-hit)" and the like
when it failed), one "Process:" line per Exec line that ran (its last run, with code and status), Main PID,
Memory, CGroup (the unit's cgroup on its machine and its processes, by pid), the machine it runs on, and its
last 10 journal lines (journalctl's short form, with the machine's host name). Works through any node: the
request reaches the machine running the unit over the cluster's own connections. Units are separated by a blank
line. A unit the cluster does not know exits 4 ("Unit X does not exist."), one not loaded on any machine exits 1
("Unit X does not appear to be loaded.", and why when the cluster cannot place it); a machine that cannot be reached exits 3.`,
  flags: [...CLIENT_FLAGS, IGNORED_SSH_PORT],
  run: async (parsed) => {
    if (parsed.positionals.length === 0) throw new UsageError("One or more unit names must be provided");
    const names: string[] = [];
    for (const a of parsed.positionals) {
      const { name } = mangle(a);
      checkName(name);
      if (!names.includes(name)) names.push(name);
    }
    return withClient(parsed.flags, async (ctx) => {
      const result = await ctx.client.call("units.status", { names });
      if (ctx.output === "json") {
        for (const u of result) printJson(u);
        return EXIT.ok;
      }
      const machines = new Map<string, MachineInfo>(
        (await ctx.client.call("machines.list", {})).map((m) => [m.id, m]),
      );
      process.stdout.write(`${result.map((u) => renderStatus(u, machines)).join("\n\n")}\n`);
      return EXIT.ok;
    });
  },
};
