// `berth cluster ...`: membership and health, like `etcdctl member` and `etcdctl cluster-health`.
import { describeSkew, reportedSkew, SKEW_BOUND_MS } from "../client/clock-skew.ts";
import type { MemberInfo } from "../client/protocol.ts";
import { CLIENT_FLAGS, type ClientContext, withClient } from "./client-command.ts";
import type { Command, CommandGroup } from "./command.ts";
import { EXIT, UsageError } from "./exit-codes.ts";
import type { Parsed } from "./flags.ts";
import { printJson, renderTable } from "./output.ts";

function printMembers(members: MemberInfo[], ctx: ClientContext): void {
  if (ctx.output === "json") {
    printJson(members);
    return;
  }
  process.stdout.write(
    `${renderTable(members, [
      { header: "ID", value: (m) => m.id },
      { header: "NAME", value: (m) => m.name },
      { header: "PEER", value: (m) => m.peerAddr },
      { header: "CLIENT", value: (m) => m.clientAddr ?? "-" },
      { header: "HTTP", value: (m) => m.httpAddr ?? "-" },
      { header: "ROLE", value: (m) => m.role },
      { header: "LEADER", value: (m) => (m.isLeader ? "true" : "false") },
    ])}\n`,
  );
}

function positional(parsed: Parsed, names: string[]): string[] {
  if (parsed.positionals.length !== names.length) throw new UsageError(`expected ${names.join(" ")}`);
  return parsed.positionals;
}

const members: Command = {
  name: "members",
  summary: "list the members, their addresses and the leader",
  usage: "",
  flags: CLIENT_FLAGS,
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      positional(parsed, []);
      printMembers(await ctx.client.call("cluster.members", {}), ctx);
      return EXIT.ok;
    }),
};

const health: Command = {
  name: "health",
  summary: "ask every member whether it is healthy (exit 3 when any is not, 1 when clocks disagree)",
  usage: "",
  description: `
Asks every member for its status. Exit status: 0 every member healthy; 3 a member unhealthy or unreachable; 1
every member healthy, but a member's clock is more than ${SKEW_BOUND_MS / 1000} s off the cluster's time (the median
of the members' clocks, which TTLs follow: fix that member's time synchronisation).`,
  flags: CLIENT_FLAGS,
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      positional(parsed, []);
      const report = await ctx.client.call("cluster.health", {});
      const healthy = report.length > 0 && report.every((m) => m.healthy);
      const skewed = report.filter((m) => reportedSkew(m.clockSkewMs) !== null);
      if (ctx.output === "json") printJson({ healthy, clocksAgree: skewed.length === 0, members: report });
      else {
        for (const m of report) {
          const skew = reportedSkew(m.clockSkewMs);
          const clock = skew === null ? "" : `; its clock is ${describeSkew(skew)} the cluster's`;
          process.stdout.write(
            `member ${m.name} is ${m.healthy ? "healthy" : "unhealthy"}: ${m.detail}${clock}${m.clientAddr ? ` (${m.clientAddr})` : ""}\n`,
          );
        }
        process.stdout.write(
          `cluster is ${healthy ? "healthy" : "unhealthy"}${skewed.length > 0 ? `, but the clock of ${skewed.map((m) => m.name).join(", ")} is off` : ""}\n`,
        );
      }
      return !healthy ? EXIT.unavailable : skewed.length > 0 ? EXIT.error : EXIT.ok;
    }),
};

const add: Command = {
  name: "add",
  summary: "add a member: it joins as a learner and is promoted to voter once it has caught up",
  usage: "NAME PEER_ADDR",
  description: `Start the new node with --join (and the cluster's --cluster-secret-file) before or right after this.
With --learner it stays a non-voting member (it follows the log and runs units).`,
  flags: [{ name: "learner", type: "boolean", description: "keep it a non-voting learner" }, ...CLIENT_FLAGS],
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      const [name, peerAddr] = positional(parsed, ["NAME", "PEER_ADDR"]);
      const timeout = Math.max(ctx.timeoutMs, 35_000);
      printMembers(
        await ctx.client.call(
          "cluster.add",
          { name: name!, peerAddr: peerAddr!, learner: Boolean(parsed.flags.learner) },
          timeout,
        ),
        ctx,
      );
      return EXIT.ok;
    }),
};

/** A membership change by member name: the answer is the new member list. */
function memberChange(
  name: string,
  summary: string,
  method: "cluster.promote" | "cluster.remove" | "cluster.move-leader",
): Command {
  return {
    name,
    summary,
    usage: "NAME",
    flags: CLIENT_FLAGS,
    run: (parsed) =>
      withClient(parsed.flags, async (ctx) => {
        const [member] = positional(parsed, ["NAME"]);
        printMembers(await ctx.client.call(method, { name: member! }), ctx);
        return EXIT.ok;
      }),
  };
}

const promote = memberChange("promote", "make a learner a voting member", "cluster.promote");
const moveLeader = memberChange(
  "move-leader",
  "hand the leadership to another voter (etcdctl move-leader)",
  "cluster.move-leader",
);
const remove = memberChange(
  "remove",
  "remove a member (a leader that removes itself steps down first)",
  "cluster.remove",
);

const status: Command = {
  name: "status",
  summary: "show the Raft status of the node you are connected to",
  usage: "",
  flags: CLIENT_FLAGS,
  run: (parsed) =>
    withClient(parsed.flags, async (ctx) => {
      positional(parsed, []);
      const s = await ctx.client.call("node.status", {});
      if (ctx.output === "json") printJson(s);
      else
        process.stdout.write(
          `${renderTable(
            Object.entries(s).map(([k, v]) => ({ k, v: String(v ?? "-") })),
            [
              { header: "FIELD", value: (r) => r.k },
              { header: "VALUE", value: (r) => r.v },
            ],
            { legend: false },
          )}\n`,
        );
      return EXIT.ok;
    }),
};

export const clusterCommands: CommandGroup = {
  name: "cluster",
  summary: "members, health and membership changes",
  subcommands: [members, health, add, promote, remove, moveLeader, status],
};
