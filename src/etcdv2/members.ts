// /v2/members and /v2/machines: etcd's membersHandler on top of Berth's membership (member names and
// host:port addresses become etcd members with URLs; ids print as etcd prints them).
import type { MemberInfo } from "../client/protocol.ts";
import { refusal } from "./access.ts";
import { hasWriteRootAccess, sendNoAuth } from "./auth/http.ts";
import { mediaType } from "./params.ts";
import {
  allowMethod,
  clusterIdHeader,
  corsHeaders,
  formatId,
  send,
  sendHttpError,
  sendPlainError,
} from "./respond.ts";
import type { HttpContext, HttpRequest, HttpResponse } from "./types.ts";

/** Bodies of member requests are tiny; anything this large is not one. */
const MAX_MEMBER_BODY = 64 * 1024;

export interface EtcdMember {
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
}

export function toEtcdMember(m: MemberInfo, schemes: HttpContext["schemes"]): EtcdMember {
  return {
    id: formatId(m.id),
    name: m.name,
    peerURLs: m.peerAddr ? [`${schemes.peer}://${m.peerAddr}`] : [],
    clientURLs: m.httpAddr ? [`${schemes.client}://${m.httpAddr}`] : [],
  };
}

function idValue(id: string): bigint {
  try {
    return BigInt(`0x${id}`);
  } catch {
    return -1n;
  }
}

/** etcd lists members ordered by id. */
export function etcdMembers(members: MemberInfo[], schemes: HttpContext["schemes"]): EtcdMember[] {
  return members
    .map((m) => toEtcdMember(m, schemes))
    .sort((a, b) => (idValue(a.id) < idValue(b.id) ? -1 : idValue(a.id) > idValue(b.id) ? 1 : 0));
}

/** /v2/machines: every member's client URL, sorted, joined by ", " (plain text, no newline). */
export function handleMachines(ctx: HttpContext, req: HttpRequest, res: HttpResponse): void {
  req.discard();
  if (!allowMethod(res, req.method, ["GET", "HEAD"])) return;
  const urls = etcdMembers(ctx.deps.members(), ctx.schemes)
    .flatMap((m) => m.clientURLs)
    .sort();
  const body = urls.join(", ");
  send(res, 200, corsHeaders(), body, body === "" ? {} : { sniffed: "text/plain; charset=utf-8" });
}

/** types.NewURLs' checks, returning etcd's error text or the host:port of the first URL. */
export function checkPeerURLs(urls: unknown): { error: string } | { hostPort: string } {
  if (urls !== undefined && urls !== null && !Array.isArray(urls))
    return { error: "json: cannot unmarshal peerURLs into Go value of type []string" };
  const list = (urls ?? []) as unknown[];
  if (list.length === 0) return { error: "no valid URLs given" };
  let first: string | null = null;
  for (const raw of list) {
    if (typeof raw !== "string")
      return { error: "json: cannot unmarshal peerURLs into Go value of type []string" };
    const s = raw.trim();
    const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)/.exec(s);
    const scheme = m?.[1]?.toLowerCase();
    if (!m || (scheme !== "http" && scheme !== "https"))
      return { error: `URL scheme must be http, https, unix, or unixs: ${s}` };
    const host = m[2] ?? "";
    if (!/^(\[[^\]]+\]|[^:[\]]*):\d*$/.test(host) || !/:\d+$/.test(host))
      return { error: `URL address does not have the form "host:port": ${s}` };
    if ((m[3] ?? "") !== "") return { error: `URL must not contain a path: ${s}` };
    first ??= host;
  }
  return { hostPort: first ?? "" };
}

/** A name for a member added by peer URL alone (etcd leaves it empty until the member starts). */
export function nameForPeer(hostPort: string): string {
  const name = hostPort.replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "");
  return name.slice(0, 63) || "member";
}

export async function handleMembers(
  ctx: HttpContext,
  req: HttpRequest,
  res: HttpResponse,
  path: string,
): Promise<void> {
  const method = req.method;
  if (!allowMethod(res, method, ["GET", "POST", "DELETE", "PUT"])) {
    req.discard();
    return;
  }
  // etcd's hasWriteRootAccess: anybody may read the members, changes need the root role when auth is on.
  if (ctx.deps.auth && !(await hasWriteRootAccess(ctx.deps.auth, req))) {
    req.discard();
    return sendNoAuth(res);
  }
  const cid = clusterIdHeader(ctx);
  const sub = path.slice("/v2/members".length).replace(/^\//, "");
  const json = (status: number, doc: unknown) =>
    send(
      res,
      status,
      [...corsHeaders(), ...cid, ["Content-Type", "application/json"]],
      `${JSON.stringify(doc)}\n`,
    );

  if (method === "GET") {
    req.discard();
    const members = ctx.deps.members();
    if (sub === "") return json(200, { members: etcdMembers(members, ctx.schemes) });
    if (sub === "leader") {
      const leader = members.find((m) => m.isLeader);
      if (!leader) return sendHttpError(res, 503, "During election", cid);
      return json(200, toEtcdMember(leader, ctx.schemes));
    }
    return sendHttpError(res, 404, "Not found", cid);
  }

  // Membership is Berth's own: etcd's root user only (etcd's writeNoAuth answer), never a guest.
  const denied = refusal(
    await ctx.callerOf(req),
    { kind: "membership", what: "changing the membership" },
    ctx.keys,
  );
  if (denied !== null) {
    req.discard();
    ctx.log(`http: refused a member ${method === "POST" ? "add" : "change"}: ${denied}`);
    return sendHttpError(res, 401, "Insufficient credentials", cid);
  }

  if (method === "POST") {
    const parsed = await readJson(req, res, cid);
    if (parsed === undefined) return;
    const doc = (parsed ?? {}) as { peerURLs?: unknown; name?: unknown };
    const check = checkPeerURLs(doc.peerURLs);
    if ("error" in check) return sendHttpError(res, 400, check.error, cid);
    // Berth needs a member name; accept one as an extension, else derive it from the peer address.
    const name = typeof doc.name === "string" && doc.name !== "" ? doc.name : nameForPeer(check.hostPort);
    try {
      const after = await ctx.deps.addMember(name, check.hostPort);
      const added = after.find((m) => m.name === name);
      const member: EtcdMember = added
        ? { ...toEtcdMember(added, ctx.schemes), clientURLs: [] }
        : { id: "0", name, peerURLs: [`${ctx.schemes.peer}://${check.hostPort}`], clientURLs: [] };
      return json(201, member);
    } catch (e) {
      return memberFailure(ctx, res, cid, e, "");
    }
  }

  // DELETE and PUT address one member by id.
  if (sub === "") {
    req.discard();
    return sendPlainError(res, 405, "Method Not Allowed", cid);
  }
  const member = /^[0-9a-fA-F]{1,16}$/.test(sub)
    ? ctx.deps.members().find((m) => idValue(m.id) === idValue(sub))
    : undefined;
  if (method === "PUT") {
    const parsed = await readJson(req, res, cid);
    if (parsed === undefined) return;
    const check = checkPeerURLs((parsed as { peerURLs?: unknown } | null)?.peerURLs);
    if ("error" in check) return sendHttpError(res, 400, check.error, cid);
    if (!member) return sendHttpError(res, 404, `No such member: ${sub}`, cid);
    // Berth has no peer-address update; a member is removed and added again instead.
    ctx.log(`http: member update for ${member.name} is not supported`);
    return sendHttpError(res, 500, "Internal Server Error", cid);
  }
  req.discard();
  if (!member) return sendHttpError(res, 404, `No such member: ${sub}`, cid);
  try {
    await ctx.deps.removeMember(member.name);
  } catch (e) {
    return memberFailure(ctx, res, cid, e, sub);
  }
  send(res, 204, [...corsHeaders(), ...cid], "");
}

/** Reads a JSON body the way etcd's unmarshalRequest does; undefined when an error was already sent. */
async function readJson(
  req: HttpRequest,
  res: HttpResponse,
  cid: [string, string][],
): Promise<unknown | undefined> {
  const type = mediaType(req.header("content-type"), "") ?? "";
  if (type !== "application/json") {
    req.discard();
    sendHttpError(res, 415, `Bad Content-Type ${type}, accept application/json`, cid);
    return undefined;
  }
  const body = await req.readBody(MAX_MEMBER_BODY);
  if (!body.ok) {
    sendHttpError(res, 400, "http: request body too large", cid);
    return undefined;
  }
  try {
    return JSON.parse(body.body.toString("utf8")) as unknown;
  } catch (e) {
    sendHttpError(res, 400, (e as Error).message, cid);
    return undefined;
  }
}

function memberFailure(
  ctx: HttpContext,
  res: HttpResponse,
  cid: [string, string][],
  err: unknown,
  id: string,
) {
  // Matched by shape: the error may come from this node or, forwarded, from the leader.
  const { code, message } = err as { code?: unknown; message: string };
  if (code === "conflict") {
    const text = /peer address/.test(message) ? "membership: peerURL exists" : "membership: ID exists";
    return sendHttpError(res, 409, text, cid);
  }
  if (code === "not_found") return sendHttpError(res, 404, `No such member: ${id}`, cid);
  if (code === "bad_request") return sendHttpError(res, 400, message, cid);
  ctx.log(`http: member change failed: ${err instanceof Error ? err.message : String(err)}`);
  sendHttpError(res, 500, "Internal Server Error", cid);
}
