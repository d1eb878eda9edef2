// /v2/keys: etcd's keysHandler. Reads (local, or linearizable with quorum=true), writes, and watches
// (wait=true long polls answered with the first event; stream=true keeps sending one JSON document per line).
import type { KvResult } from "../client/protocol.ts";
import { MAX_VALUE_BYTES } from "../kv/types.ts";
import { authorize } from "./access.ts";
import { hasKeyAccess, sendKeyNoAuth } from "./auth/http.ts";
import { type KeyRequest, parseForm, parseKeyRequest, RequestError, toWriteRequest } from "./params.ts";
import {
  allowMethod,
  clusterIdHeader,
  corsHeaders,
  type Headers,
  send,
  sendKeyFailure,
  sendKvError,
  startStream,
} from "./respond.ts";
import type { HttpContext, HttpRequest, HttpResponse, HttpWatch } from "./types.ts";

const KEY_METHODS = ["HEAD", "GET", "PUT", "POST", "DELETE"];

/**
 * A stream=true watcher whose client reads slower than events come is cut off once this much waits for its socket
 * (as etcd v2 drops a watcher whose event buffer is full): a client that never reads held 275 MB of a node.
 */
export const WATCH_BUFFER_BYTES = 4 << 20;

/** What etcd answers when a proposal exceeds its request size limit. */
const TOO_LARGE_CAUSE = "etcdserver: request is too large";

export async function handleKeys(
  ctx: HttpContext,
  req: HttpRequest,
  res: HttpResponse,
  keyPath: string,
  rawQuery: string,
): Promise<void> {
  const method = req.method;
  if (!allowMethod(res, method, KEY_METHODS)) {
    req.discard();
    return;
  }
  const { form, error } = await parseForm(req, rawQuery);
  if (error !== null) return sendKvError(ctx, res, 210, error, 0);
  let r: KeyRequest;
  try {
    r = parseKeyRequest(method, keyPath, form);
  } catch (e) {
    if (e instanceof RequestError) return sendKvError(ctx, res, e.code, e.cause, 0);
    throw e;
  }

  // etcd checks credentials once the request parsed, against the key as the URL gives it.
  const auth = ctx.deps.auth;
  if (auth && !(await hasKeyAccess(auth, req, keyPath, r.recursive))) return sendKeyNoAuth(ctx, res);

  // Berth's own rules on top (writes under /_berth need admin or root), with the key as etcd checks it.
  try {
    authorize(
      await ctx.callerOf(req),
      {
        kind: method === "GET" || method === "HEAD" ? "read" : "write",
        key: keyPath,
        recursive: r.recursive,
      },
      ctx.keys,
    );
  } catch (e) {
    return sendKeyFailure(ctx, res, e);
  }
  if (method === "GET" && r.wait) return watch(ctx, res, r);
  if (method === "GET" || method === "HEAD") {
    let result: KvResult;
    try {
      result = await ctx.deps.kv.get({
        key: r.key,
        recursive: r.recursive,
        sorted: r.sorted,
        // etcd serves plain GETs from the local replica; quorum=true goes through consensus.
        consistency: r.quorum ? "linearizable" : "local",
      });
    } catch (e) {
      return sendKeyFailure(ctx, res, e);
    }
    return sendEvent(ctx, res, result, false);
  }

  if (Buffer.byteLength(r.value) > MAX_VALUE_BYTES) return sendKvError(ctx, res, 300, TOO_LARGE_CAUSE, 0);
  let result: KvResult;
  try {
    result = await ctx.deps.kv.write(toWriteRequest(r));
  } catch (e) {
    return sendKeyFailure(ctx, res, e);
  }
  sendEvent(ctx, res, result, r.noValueOnSuccess);
}

function eventHeaders(ctx: HttpContext, etcdIndex: number, raftIndex: number, raftTerm: number): Headers {
  return [
    ...corsHeaders(),
    ...clusterIdHeader(ctx),
    ["Content-Type", "application/json"],
    ["X-Etcd-Index", String(etcdIndex)],
    ["X-Raft-Index", String(raftIndex)],
    ["X-Raft-Term", String(raftTerm)],
  ];
}

/** etcd's writeKeyEvent: 201 for a create (or a set with no previous node), the event JSON plus a newline. */
function sendEvent(ctx: HttpContext, res: HttpResponse, r: KvResult, noValueOnSuccess: boolean): void {
  const ev = r.event;
  const created = ev.action === "create" || (ev.action === "set" && ev.prevNode === undefined);
  const trimmed = noValueOnSuccess && ["set", "compareAndSwap", "create", "update"].includes(ev.action);
  const body = trimmed ? { action: ev.action } : ev;
  send(
    res,
    created ? 201 : 200,
    eventHeaders(ctx, r.etcdIndex, r.raftIndex, r.raftTerm),
    `${JSON.stringify(body)}\n`,
  );
}

/** etcd's handleKeyWatch: headers flushed at once, then the first event (or every event when streaming). */
function watch(ctx: HttpContext, res: HttpResponse, r: KeyRequest) {
  const pending: KvResult[] = [];
  let ready = false;
  let finished = false;
  let w: HttpWatch | undefined;

  const finish = () => {
    if (finished) return;
    finished = true;
    try {
      w?.cancel();
    } catch (e) {
      ctx.log(`http: cancelling a watch failed: ${(e as Error).message}`);
    }
    if (!res.finished) res.end();
  };
  const write = (ev: KvResult) => {
    if (finished) return;
    res.write(`${JSON.stringify(ev.event)}\n`);
    if (!r.stream) finish();
    else if (res.bufferedBytes > WATCH_BUFFER_BYTES) {
      ctx.log(
        `http: cut off a stream watcher of ${r.key}: its client left more than ${WATCH_BUFFER_BYTES} bytes unread`,
      );
      res.destroy(); // no clean end: the client would have to read everything before it
      finish();
    }
  };
  const onEvent = (ev: KvResult) => {
    if (ready) write(ev);
    else pending.push(ev);
  };

  try {
    w = ctx.deps.kv.watch(
      {
        key: r.key,
        recursive: r.recursive,
        sinceIndex: r.waitIndex > 0 ? r.waitIndex : undefined,
        forever: r.stream,
      },
      onEvent,
    );
  } catch (e) {
    return sendKeyFailure(ctx, res, e);
  }
  // The client going away frees the watcher (etcd's CloseNotify).
  res.onClose(finish);
  const idx = ctx.deps.indexes();
  startStream(res, 200, eventHeaders(ctx, idx.etcdIndex, idx.raftIndex, idx.raftTerm));
  ready = true;
  for (const ev of pending.splice(0)) write(ev);
}
