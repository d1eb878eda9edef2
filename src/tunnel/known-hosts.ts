// OpenSSH known_hosts files: which key a host is known by. Pure functions on the file's text; reading and
// appending happen in ssh-tunnel.ts. Supports plain and hashed (`|1|salt|hmac`) host patterns, `[host]:port`
// for ports other than 22, comma-separated names, `*`/`?` wildcards and `!` negation, and the @revoked marker.
// @cert-authority lines are skipped (host certificates are not checked).
import { createHash, createHmac } from "node:crypto";

export interface KnownHostEntry {
  marker: "" | "@revoked" | "@cert-authority";
  patterns: string;
  keyType: string;
  /** The public key blob, base64 (the same bytes the server sends in its key exchange). */
  key: string;
}

export type HostKeyVerdict =
  | { kind: "match" }
  | { kind: "unknown" }
  | { kind: "mismatch"; knownTypes: string[] }
  | { kind: "revoked" };

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const f = line.split(/\s+/);
    const marker = f[0] === "@revoked" || f[0] === "@cert-authority" ? f.shift()! : "";
    if (f.length < 3) continue;
    out.push({ marker: marker as KnownHostEntry["marker"], patterns: f[0]!, keyType: f[1]!, key: f[2]! });
  }
  return out;
}

/** The name a host is recorded under: `host` for port 22, `[host]:port` otherwise (as OpenSSH writes it). */
export function hostToken(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Decides what the server's key means for `host:port`, as OpenSSH's StrictHostKeyChecking=yes does. */
export function checkHostKey(
  entries: KnownHostEntry[],
  host: string,
  port: number,
  serverKey: Buffer,
): HostKeyVerdict {
  const token = hostToken(host, port);
  const offered = serverKey.toString("base64");
  const knownTypes: string[] = [];
  let matched = false;
  for (const e of entries) {
    if (e.marker === "@cert-authority" || !patternsMatch(e.patterns, token)) continue;
    if (e.marker === "@revoked") {
      if (e.key === offered) return { kind: "revoked" };
      continue;
    }
    if (e.key === offered) matched = true;
    else knownTypes.push(e.keyType);
  }
  if (matched) return { kind: "match" };
  // A different key of another type is no evidence against this one (OpenSSH asks then too); of the same type it is.
  const offeredType = keyTypeOf(serverKey);
  if (knownTypes.includes(offeredType)) return { kind: "mismatch", knownTypes };
  return { kind: "unknown" };
}

/** The line to append for a newly trusted key (plain host name, as `ssh -o HashKnownHosts=no` writes). */
export function knownHostLine(host: string, port: number, serverKey: Buffer): string {
  return `${hostToken(host, port)} ${keyTypeOf(serverKey)} ${serverKey.toString("base64")}\n`;
}

/** OpenSSH's SHA256 fingerprint: `SHA256:` and the unpadded base64 of the key blob's digest. */
export function fingerprint(serverKey: Buffer): string {
  return `SHA256:${createHash("sha256").update(serverKey).digest("base64").replace(/=+$/, "")}`;
}

/** The key type named inside an SSH public key blob (a length-prefixed string first). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return "unknown";
  const len = blob.readUInt32BE(0);
  return len > 0 && len <= 64 && blob.length >= 4 + len
    ? blob.subarray(4, 4 + len).toString("latin1")
    : "unknown";
}

function patternsMatch(patterns: string, token: string): boolean {
  if (patterns.startsWith("|1|")) return hashedMatch(patterns, token);
  let positive = false;
  for (const p of patterns.split(",")) {
    if (p.startsWith("!")) {
      if (globMatch(p.slice(1), token)) return false;
    } else if (globMatch(p, token)) positive = true;
  }
  return positive;
}

function hashedMatch(pattern: string, token: string): boolean {
  const [, , salt, hash] = pattern.split("|");
  if (!salt || !hash) return false;
  const mac = createHmac("sha1", Buffer.from(salt, "base64")).update(token).digest("base64");
  return mac === hash;
}

function globMatch(pattern: string, text: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "i").test(text);
}
