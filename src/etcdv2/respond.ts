// Writing responses the way etcd's Go server does: handler headers in sorted order, then Date and
// Content-Length (or chunked above Go's 2048-byte buffer), error documents with etcd's exact shapes.
import { httpStatusOf, KvError, type KvErrorCode } from "../kv/types.ts";
import type { HttpContext, HttpResponse } from "./types.ts";

export type Headers = [string, string][];

/** Go's net/http buffers 2048 bytes before it switches a response to chunked encoding. */
const GO_CHUNKING_THRESHOLD = 2048;

/** etcd wraps every handler in its CORS handler, allowing "*" by default. */
export function corsHeaders(): Headers {
  return [
    ["Access-Control-Allow-Headers", "accept, content-type, authorization"],
    ["Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE"],
    ["Access-Control-Allow-Origin", "*"],
  ];
}

let dateSecond = -1;
let dateText = "";

/** Go's Date header (second resolution), formatted once per second. */
export function httpDate(): string {
  const now = Date.now();
  const sec = Math.floor(now / 1000);
  if (sec !== dateSecond) {
    dateSecond = sec;
    dateText = new Date(sec * 1000).toUTCString();
  }
  return dateText;
}

export function clusterIdHeader(ctx: HttpContext): Headers {
  const id = ctx.deps.clusterId();
  return id === null ? [] : [["X-Etcd-Cluster-Id", formatId(id)]];
}

/** etcd prints ids (types.ID) as hex without leading zeros. */
export function formatId(hex: string): string {
  try {
    return BigInt(`0x${hex}`).toString(16);
  } catch {
    return hex;
  }
}

/** Go writes handler headers sorted by name. */
function ordered(headers: Headers): string[] {
  let sorted = true;
  for (let i = 1; i < headers.length; i++) {
    if ((headers[i - 1] as [string, string])[0] > (headers[i] as [string, string])[0]) {
      sorted = false;
      break;
    }
  }
  const list = sorted ? headers : [...headers].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const raw: string[] = [];
  for (const [k, v] of list) raw.push(k, v);
  return raw;
}

/**
 * Sends a complete response. `sniffed` is a Content-Type Go adds after the fact (the handler did not set one),
 * which is why it appears after Content-Length in etcd's answers.
 */
export function send(
  res: HttpResponse,
  status: number,
  headers: Headers,
  body: string,
  opts: { sniffed?: string } = {},
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const buf = Buffer.from(body, "utf8");
  const raw = ordered(headers);
  raw.push("Date", httpDate());
  if (buf.length <= GO_CHUNKING_THRESHOLD) raw.push("Content-Length", String(buf.length));
  if (opts.sniffed) raw.push("Content-Type", opts.sniffed);
  res.writeHead(status, raw);
  res.end(buf);
}

/** Starts a response whose body follows later (long polls): headers go out at once, as etcd flushes them. */
export function startStream(res: HttpResponse, status: number, headers: Headers): void {
  const raw = ordered(headers);
  raw.push("Date", httpDate());
  res.writeHead(status, raw);
  res.flushHeaders();
}

/** etcd's v2 error document: {errorCode, message, cause (omitted when empty), index} plus a newline. */
export function errorBody(code: number, cause: string, index: number): string {
  const doc: Record<string, unknown> = {
    errorCode: code,
    message: new KvError(code as KvErrorCode, "", 0).message,
  };
  if (cause !== "") doc.cause = cause;
  doc.index = index;
  return `${JSON.stringify(doc)}\n`;
}

export function sendKvError(
  ctx: HttpContext,
  res: HttpResponse,
  code: number,
  cause: string,
  index: number,
): void {
  send(
    res,
    httpStatusOf(code),
    [
      ...corsHeaders(),
      ...clusterIdHeader(ctx),
      ["Content-Type", "application/json"],
      ["X-Etcd-Index", String(index)],
    ],
    errorBody(code, cause, index),
  );
}

/** What etcd 3.4's server.Do fails with when there is no leader or the proposal does not commit in time. */
export const RAFT_TIMEOUT_CAUSE = "etcdserver: request timed out";

/** etcd's ErrNoSpace (its NOSPACE alarm): a write refused because a member's disk is full. */
export const NO_SPACE_CAUSE = "etcdserver: mvcc: database space exceeded";

/** Maps anything a KV call throws to etcd's key error answer (writeKeyError). */
export function sendKeyFailure(ctx: HttpContext, res: HttpResponse, err: unknown) {
  const kv = asKvError(err);
  if (kv) return sendKvError(ctx, res, kv.errorCode, kv.cause, kv.index);
  if (codeOf(err) === "no_space") {
    ctx.log(`http: v2 response error: ${(err as Error).message}`);
    return sendKvError(ctx, res, 300, NO_SPACE_CAUSE, 0);
  }
  if (["unavailable", "timeout", "not_leader"].includes(codeOf(err))) {
    ctx.log(`http: v2 response error: ${(err as Error).message}`);
    return sendKvError(ctx, res, 300, RAFT_TIMEOUT_CAUSE, 0);
  }
  const message = err instanceof Error ? err.message : String(err);
  ctx.log(`http: unexpected v2 response error: ${message}`);
  sendKvError(ctx, res, 300, message, 0);
}

export function asKvError(err: unknown): KvError | null {
  if (err instanceof KvError) return err;
  // A ServiceError thrown here, or the same error forwarded from the leader (a wire RemoteError): both carry
  // `code` and `data`, so match on the shape rather than the class.
  const data = (err as { data?: unknown } | null)?.data;
  if (codeOf(err) === "kv" && data && typeof data === "object") {
    const d = data as { errorCode?: unknown; cause?: unknown; index?: unknown };
    if (typeof d.errorCode === "number") {
      return KvError.from({
        errorCode: d.errorCode,
        cause: typeof d.cause === "string" ? d.cause : "",
        index: typeof d.index === "number" ? d.index : 0,
      });
    }
  }
  return null;
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "";
}

/** etcd's httptypes.HTTPError: {"message": ...} without a trailing newline. */
export function sendHttpError(res: HttpResponse, status: number, message: string, extra: Headers = []): void {
  send(
    res,
    status,
    [...corsHeaders(), ...extra, ["Content-Type", "application/json"]],
    JSON.stringify({ message }),
  );
}

/** Go's http.Error: plain text plus a newline, with nosniff. */
export function sendPlainError(res: HttpResponse, status: number, text: string, extra: Headers = []): void {
  send(
    res,
    status,
    [
      ...corsHeaders(),
      ...extra,
      ["Content-Type", "text/plain; charset=utf-8"],
      ["X-Content-Type-Options", "nosniff"],
    ],
    `${text}\n`,
  );
}

export function methodNotAllowed(res: HttpResponse, allowed: string[]): void {
  sendPlainError(res, 405, "Method Not Allowed", [["Allow", allowed.join(",")]]);
}

export function notFound(res: HttpResponse): void {
  sendPlainError(res, 404, "404 page not found");
}

/** etcd's allowMethod: false (and a 405 already sent) when the method is not in the list. */
export function allowMethod(res: HttpResponse, method: string, allowed: string[]): boolean {
  if (allowed.includes(method)) return true;
  methodNotAllowed(res, allowed);
  return false;
}
