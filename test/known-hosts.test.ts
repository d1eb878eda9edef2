// known_hosts matching, pure: the cases OpenSSH's own files contain (checked against ssh-keygen in tunnel.test.ts).
import { createHmac, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  checkHostKey,
  fingerprint,
  hostToken,
  keyTypeOf,
  knownHostLine,
  parseKnownHosts,
} from "../src/tunnel/known-hosts.ts";

/** An SSH public key blob: string type, then some bytes (what a server sends and known_hosts stores). */
function blob(type: string, body = randomBytes(32)): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, body]);
}
const ed = blob("ssh-ed25519");
const edOther = blob("ssh-ed25519");
const rsa = blob("ssh-rsa");
const line = (hosts: string, key: Buffer, marker = "") =>
  `${marker ? `${marker} ` : ""}${hosts} ${keyTypeOf(key)} ${key.toString("base64")}`;
const check = (text: string, host: string, port: number, key: Buffer) =>
  checkHostKey(parseKnownHosts(text), host, port, key).kind;

describe("known_hosts", () => {
  it("matches plain names, lists, [host]:port for other ports, case-insensitively", () => {
    expect(check(line("web1,10.0.0.5", ed), "10.0.0.5", 22, ed)).toBe("match");
    expect(check(line("WEB1", ed), "web1", 22, ed)).toBe("match");
    expect(check(line("web1", ed), "web1", 2222, ed)).toBe("unknown");
    expect(check(line("[web1]:2222", ed), "web1", 2222, ed)).toBe("match");
    expect(check(line("[web1]:2222", ed), "web1", 22, ed)).toBe("unknown");
    expect(hostToken("web1", 22)).toBe("web1");
    expect(hostToken("web1", 2200)).toBe("[web1]:2200");
  });

  it("matches hashed names (|1|salt|HMAC-SHA1), wildcards and negations", () => {
    const salt = randomBytes(20);
    const hash = createHmac("sha1", salt).update("[db]:2022").digest("base64");
    expect(check(line(`|1|${salt.toString("base64")}|${hash}`, ed), "db", 2022, ed)).toBe("match");
    expect(check(line(`|1|${salt.toString("base64")}|${hash}`, ed), "db", 22, ed)).toBe("unknown");
    expect(check(line("*.example.com", ed), "a.example.com", 22, ed)).toBe("match");
    expect(check(line("node?", ed), "node7", 22, ed)).toBe("match");
    expect(check(line("*.example.com,!evil.example.com", ed), "evil.example.com", 22, ed)).toBe("unknown");
  });

  it("tells a changed key (same type on record) from an unknown one (only other types on record)", () => {
    expect(check(line("web1", edOther), "web1", 22, ed)).toBe("mismatch");
    expect(check(line("web1", rsa), "web1", 22, ed)).toBe("unknown");
    // Any matching line is enough, as with OpenSSH (several keys may be on record for one host).
    expect(check(`${line("web1", edOther)}\n${line("web1", ed)}`, "web1", 22, ed)).toBe("match");
  });

  it("honours @revoked, skips @cert-authority, comments, blank and short lines", () => {
    expect(check(`${line("web1", ed)}\n${line("*", ed, "@revoked")}`, "web1", 22, ed)).toBe("revoked");
    expect(check(line("web1", ed, "@cert-authority"), "web1", 22, ed)).toBe("unknown");
    expect(parseKnownHosts("# comment\n\n   \nweb1 ssh-ed25519\n")).toEqual([]);
  });

  it("writes what it reads back, and fingerprints as OpenSSH does (SHA256, unpadded base64)", () => {
    expect(check(knownHostLine("10.1.2.3", 2222, ed), "10.1.2.3", 2222, ed)).toBe("match");
    expect(knownHostLine("h", 22, ed)).toMatch(/^h ssh-ed25519 [A-Za-z0-9+/=]+\n$/);
    expect(fingerprint(ed)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(keyTypeOf(Buffer.from([0, 0]))).toBe("unknown");
  });
});
