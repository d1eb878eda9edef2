// The raw HTTP server's request head reader (src/etcdv2/head.ts): heads in pieces of any size, the work it
// does per byte, and heads Go's server (and RFC 9112) refuse.
import { describe, expect, it } from "vitest";
import { HeadReader, type HeadResult } from "../src/etcdv2/head.ts";

const HEAD =
  "PUT /v2/keys/a?x=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\nX-Pad: " +
  "p".repeat(2000) +
  "\r\n\r\n";

function feed(reader: HeadReader, bytes: Buffer, size: number): HeadResult[] {
  const out: HeadResult[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(reader.push(bytes.subarray(at, at + size)));
  return out;
}

describe("HeadReader", () => {
  it("parses a head sent a byte at a time as it parses it in one piece, and hands back what follows", () => {
    const whole = new HeadReader(1 << 20).push(Buffer.from(`${HEAD}value=1`));
    const results = feed(new HeadReader(1 << 20), Buffer.from(HEAD), 1);
    expect(results.slice(0, -1).every((r) => r.kind === "more")).toBe(true);
    const last = results.at(-1)!;
    expect(last.kind).toBe("head");
    expect(whole.kind).toBe("head");
    if (last.kind !== "head" || whole.kind !== "head") return;
    expect(last.head).toEqual(whole.head);
    expect(last.head.method).toBe("PUT");
    expect(last.head.target).toBe("/v2/keys/a?x=1");
    expect(last.head.headers.get("content-length")).toBe("7");
    expect(last.rest).toBeNull();
    expect(whole.rest?.toString()).toBe("value=1");
  });

  it("looks at each byte once, however small the pieces (no re-scan of the buffer per piece)", () => {
    const bytes = Buffer.from(HEAD);
    for (const size of [1, 3, 64, bytes.length]) {
      const reader = new HeadReader(1 << 20);
      feed(reader, bytes, size);
      expect(reader.scanned).toBe(bytes.length);
    }
  });

  it("finds the end of a head split anywhere inside its blank line, and reads the next head after it", () => {
    const two = Buffer.from("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
    for (let cut = 1; cut < two.length; cut++) {
      const reader = new HeadReader(1 << 20);
      const heads: string[] = [];
      let input: Buffer | null = two.subarray(0, cut);
      const pieces = [two.subarray(cut)];
      while (input !== null) {
        const r = reader.push(input);
        input = null;
        if (r.kind === "head") {
          heads.push(r.head.target);
          input = r.rest;
        }
        if (input === null) input = pieces.shift() ?? null;
      }
      expect(heads).toEqual(["/a", "/b"]);
    }
  });

  it("refuses whitespace between a field name and its colon (RFC 9112 5.1), so it cannot hide a Transfer-Encoding", () => {
    for (const line of [
      "Transfer-Encoding : chunked",
      "Transfer-Encoding\t: chunked",
      "Content-Length : 5",
    ]) {
      const r = new HeadReader(1 << 20).push(
        Buffer.from(`POST /v2/keys/a HTTP/1.1\r\nHost: x\r\n${line}\r\n\r\n`),
      );
      expect(r).toEqual({ kind: "bad", status: 400 });
    }
    const folded = new HeadReader(1 << 20).push(Buffer.from("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"));
    expect(folded).toEqual({ kind: "bad", status: 400 });
    const nul = new HeadReader(1 << 20).push(Buffer.from("GET / HTTP/1.1\r\nA: b\u0000c\r\n\r\n"));
    expect(nul).toEqual({ kind: "bad", status: 400 });
  });

  it("answers 431 once a head passes the limit without its end, without waiting for more", () => {
    const reader = new HeadReader(100);
    const results = feed(reader, Buffer.from(`GET / HTTP/1.1\r\nX: ${"a".repeat(200)}`), 10);
    expect(results.find((r) => r.kind !== "more")).toEqual({ kind: "bad", status: 431 });
    expect(reader.bufferedBytes).toBe(0);
  });
});
