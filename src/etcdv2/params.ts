// Request parsing as Go's net/http and etcd's parseKeyRequest do it: form values from the body first, then the
// query string; Go's bool and uint64 syntax; the same error codes and cause texts.
import type { KvWriteRequest } from "../client/protocol.ts";
import type { HttpRequest } from "./types.ts";

export type { BodyResult } from "./types.ts";

export type Form = Map<string, string[]>;

/** Go's http.maxFormSize: a larger urlencoded body fails ParseForm with "http: POST too large". */
export const MAX_FORM_BYTES = 10 << 20;

export class EscapeError extends Error {}

const ASCII = /^[\x00-\x7f]*$/;

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/** Go's url goUnescape: "%" must start two hex digits; in query mode "+" is a space. Returns UTF-8 text. */
export function goUnescape(s: string, query: boolean): string {
  // Most paths and values have nothing to decode.
  if (s.indexOf("%") < 0 && (!query || s.indexOf("+") < 0) && ASCII.test(s)) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; ) {
    const c = s.charCodeAt(i);
    if (c === 37) {
      if (i + 2 >= s.length || !isHex(s.charCodeAt(i + 1)) || !isHex(s.charCodeAt(i + 2))) {
        // Go quotes at most three bytes of the bad sequence.
        throw new EscapeError(`invalid URL escape ${JSON.stringify(s.slice(i, i + 3))}`);
      }
      bytes.push(Number.parseInt(s.slice(i + 1, i + 3), 16));
      i += 3;
    } else if (c === 43 && query) {
      bytes.push(32);
      i++;
    } else {
      if (c < 0x80) bytes.push(c);
      else bytes.push(...Buffer.from(s[i] ?? "", "utf8"));
      i++;
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** Go's url.ParseQuery: keeps what parses, remembers the first error. */
export function parseQuery(query: string, into: Form): string | null {
  let err: string | null = null;
  for (const part of query.split("&")) {
    if (part.includes(";")) {
      err ??= "invalid semicolon separator in query";
      continue;
    }
    if (part === "") continue;
    const eq = part.indexOf("=");
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? "" : part.slice(eq + 1);
    try {
      const key = goUnescape(rawKey, true);
      const value = goUnescape(rawValue, true);
      const list = into.get(key);
      if (list) list.push(value);
      else into.set(key, [value]);
    } catch (e) {
      err ??= (e as Error).message;
    }
  }
  return err;
}

/** The media type of a Content-Type header, as mime.ParseMediaType sees it (null when malformed). */
export function mediaType(header: string | undefined, fallback: string): string | null {
  const ct = header === undefined || header === "" ? fallback : header;
  const base = (ct.split(";")[0] ?? "").trim().toLowerCase();
  return base === "" ? null : base;
}

/** Go's Request.ParseForm for a keys request; returns the form or the error text etcd puts in cause. */
export async function parseForm(
  req: HttpRequest,
  rawQuery: string,
): Promise<{ form: Form; error: string | null }> {
  const form: Form = new Map();
  let error: string | null = null;
  const method = req.method;
  if (method === "POST" || method === "PUT" || method === "PATCH") {
    const type = mediaType(req.header("content-type"), "application/octet-stream");
    if (type === null) {
      error = "mime: no media type";
      req.discard();
    } else if (type === "application/x-www-form-urlencoded") {
      const body = await req.readBody(MAX_FORM_BYTES);
      if (!body.ok) error = "http: POST too large";
      else error = parseQuery(body.body.toString("latin1"), form);
    } else {
      req.discard();
    }
  } else {
    req.discard();
  }
  // Query values come after body values, so FormValue prefers the body (Go's copyValues order).
  const queryError = parseQuery(rawQuery, form);
  error ??= queryError;
  return { form, error };
}

/** A keys request after validation (etcd's etcdserverpb.Request plus noValueOnSuccess). */
export interface KeyRequest {
  method: string;
  key: string;
  value: string;
  hasValue: boolean;
  dir: boolean;
  prevValue: string;
  prevIndex: number;
  prevExist: boolean | undefined;
  wait: boolean;
  waitIndex: number;
  recursive: boolean;
  sorted: boolean;
  quorum: boolean;
  stream: boolean;
  noValueOnSuccess: boolean;
  /** undefined: absent; null: present but empty (no TTL); else seconds. */
  ttl: number | null | undefined;
  refresh: boolean | undefined;
}

export class RequestError {
  constructor(
    readonly code: number,
    readonly cause: string,
  ) {}
}

const TRUE = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const FALSE = new Set(["0", "f", "F", "FALSE", "false", "False"]);

/** strconv.ParseBool on the first value; undefined when absent, null when malformed. */
function getBool(form: Form, key: string): boolean | undefined | null {
  const v = form.get(key)?.[0];
  if (v === undefined) return undefined;
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  return null;
}

const MAX_UINT64 = (1n << 64n) - 1n;

/** strconv.ParseUint(v, 10, 64) on the first value; 0 when absent, null when malformed. */
function getUint64(form: Form, key: string): number | null {
  const v = form.get(key)?.[0];
  if (v === undefined) return 0;
  if (!/^[0-9]+$/.test(v) || BigInt(v) > MAX_UINT64) return null;
  return Number(v);
}

function bool(form: Form, key: string, cause = `invalid value for "${key}"`): boolean {
  const b = getBool(form, key);
  if (b === null) throw new RequestError(209, cause);
  return b ?? false;
}

/** Go's path.Clean for a rooted path. */
export function cleanPath(p: string): string {
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") out.pop();
    else out.push(seg);
  }
  return `/${out.join("/")}`;
}

/** etcd's parseKeyRequest: the checks run in etcd's order so the first failure is the one etcd reports. */
export function parseKeyRequest(method: string, keyPath: string, form: Form): KeyRequest {
  const prevIndex = getUint64(form, "prevIndex");
  if (prevIndex === null) throw new RequestError(203, `invalid value for "prevIndex"`);
  const waitIndex = getUint64(form, "waitIndex");
  if (waitIndex === null) throw new RequestError(203, `invalid value for "waitIndex"`);
  const recursive = bool(form, "recursive");
  const sorted = bool(form, "sorted");
  const wait = bool(form, "wait");
  const dir = bool(form, "dir");
  const quorum = bool(form, "quorum");
  const stream = bool(form, "stream");
  if (wait && method !== "GET") throw new RequestError(209, `"wait" can only be used with GET requests`);
  const prevValues = form.get("prevValue");
  const prevValue = prevValues?.[0] ?? "";
  if (prevValues && prevValue === "") throw new RequestError(201, `"prevValue" cannot be empty`);
  const noValueOnSuccess = bool(form, "noValueOnSuccess");

  let ttl: number | null | undefined;
  const ttlRaw = form.get("ttl")?.[0];
  if (ttlRaw !== undefined && ttlRaw.length > 0) {
    const n = getUint64(form, "ttl");
    if (n === null) throw new RequestError(202, `invalid value for "ttl"`);
    ttl = n;
  } else if (ttlRaw !== undefined) {
    ttl = null;
  }

  let prevExist: boolean | undefined;
  if (form.has("prevExist")) prevExist = bool(form, "prevExist", "invalid value for prevExist");

  let refresh: boolean | undefined;
  if (form.has("refresh")) {
    refresh = bool(form, "refresh", "invalid value for refresh");
    if (refresh) {
      if ((form.get("value")?.[0] ?? "") !== "")
        throw new RequestError(211, "A value was provided on a refresh");
      if (ttl === undefined || ttl === null) throw new RequestError(212, "No TTL value set");
    }
  }

  const values = form.get("value");
  return {
    method,
    key: cleanPath(keyPath),
    value: values?.[0] ?? "",
    hasValue: values !== undefined,
    dir,
    prevValue,
    prevIndex,
    prevExist,
    wait,
    waitIndex,
    recursive,
    sorted,
    quorum,
    stream,
    noValueOnSuccess,
    ttl,
    refresh,
  };
}

/** The store write a PUT/POST/DELETE means; commandFor (src/kv/requests.ts) picks the operation. */
export function toWriteRequest(r: KeyRequest): KvWriteRequest {
  const w: KvWriteRequest = { method: r.method as KvWriteRequest["method"], key: r.key };
  if (r.method !== "DELETE") w.value = r.value;
  if (r.dir) w.dir = true;
  // etcd treats an empty and an absent ttl alike (no expiration); an empty one is passed on as null.
  if (r.ttl !== undefined) w.ttl = r.ttl;
  if (r.refresh !== undefined) w.refresh = r.refresh;
  if (r.prevExist !== undefined) w.prevExist = r.prevExist;
  if (r.prevValue !== "") w.prevValue = r.prevValue;
  if (r.prevIndex > 0) w.prevIndex = r.prevIndex;
  if (r.recursive) w.recursive = true;
  return w;
}
