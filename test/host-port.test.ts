// The one HOST:PORT reading (src/host-port.ts): each edge case decided as Go's net.SplitHostPort (and its Dial and
// Listen for the port) decide it, and what the callers add on top. Before it, four parsers disagreed: the node's
// flags and the client endpoint refused "::1:4001" while the peer transport and the health probe read it as host
// "::1"; the flags refused port 0 while an endpoint took it and the transport made 0 of any bad port.
import { describe, expect, it } from "vitest";
import { UsageError } from "../src/cli/exit-codes.ts";
import { parseHostPort } from "../src/cli/node-config.ts";
import { EndpointError, parseEndpoint } from "../src/client/endpoint.ts";
import { HostPortError, joinHostPort, splitHostPort } from "../src/host-port.ts";

describe("splitHostPort decides as Go's net.SplitHostPort", () => {
  const accepted: [string, string, string, number][] = [
    ["a host name and a port", "node1.example:4001", "node1.example", 4001],
    ["an IPv4 address", "127.0.10.1:7001", "127.0.10.1", 7001],
    ["an IPv6 address in brackets (brackets removed)", "[::1]:4001", "::1", 4001],
    ["an IPv6 address with a zone", "[fe80::1%eth0]:80", "fe80::1%eth0", 80],
    ["an IPv4 address in brackets (Go allows it)", "[127.0.0.1]:80", "127.0.0.1", 80],
    ["an empty host (Go: the local system)", ":4001", "", 4001],
    ["empty brackets (an empty host)", "[]:4001", "", 4001],
    ["port 0 (Go: Listen picks a free port, Dial fails)", "127.0.0.1:0", "127.0.0.1", 0],
    ["an empty port: 0, as Go's Dial and Listen read it", "127.0.0.1:", "127.0.0.1", 0],
    ["leading zeros in the port", "h:0080", "h", 80],
    ["the highest port", "h:65535", "h", 65535],
  ];
  for (const [what, text, host, port] of accepted)
    it(`accepts ${what}: ${text}`, () => expect(splitHostPort(text)).toEqual({ host, port }));

  const refused: [string, string, string][] = [
    ["an unbracketed IPv6 address", "::1:4001", "too many colons"],
    ["an unbracketed IPv6 address without a port", "fe80::1", "too many colons"],
    ["no port", "localhost", "missing port"],
    ["brackets without a port", "[::1]", "missing port"],
    ["brackets not followed by a colon", "[::1]x:80", "missing port"],
    ["a colon inside and after brackets", "[::1]:80:90", "too many colons"],
    ["an unclosed bracket", "[::1:80", "missing ']'"],
    ["a stray '['", "a[b:80", "unexpected '['"],
    ["a stray ']'", "a]b:80", "unexpected ']'"],
    ["a port above 65535", "h:65536", 'invalid port "65536"'],
    ["a service name (not looked up)", "h:http", 'invalid port "http"'],
    ["a negative port", "h:-1", 'invalid port "-1"'],
    ["an empty text", "", "missing port"],
  ];
  for (const [what, text, reason] of refused)
    it(`refuses ${what}: ${JSON.stringify(text)}`, () => {
      const err = (() => {
        try {
          splitHostPort(text);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(HostPortError);
      expect((err as HostPortError).reason).toContain(reason);
    });

  it("joins as Go's net.JoinHostPort: an IPv6 host in brackets, and reads back what it wrote", () => {
    expect(joinHostPort("::1", 4001)).toBe("[::1]:4001");
    expect(joinHostPort("127.0.10.1", 7001)).toBe("127.0.10.1:7001");
    for (const host of ["::1", "fe80::1%eth0", "127.0.10.1", "node1"])
      expect(splitHostPort(joinHostPort(host, 7001))).toEqual({ host, port: 7001 });
  });
});

describe("what the callers add", () => {
  it("a node address flag needs a host and a port other than 0 (it is advertised: nobody can dial those)", () => {
    expect(parseHostPort(" [::1]:7001 ", "--peer-addr")).toEqual({ host: "::1", port: 7001 });
    for (const [raw, why] of [
      ["127.0.0.1:0", "port 0"],
      ["127.0.0.1:", "port 0"],
      [":7001", "no host"],
      ["::1:7001", "too many colons"],
    ] as const) {
      expect(() => parseHostPort(raw, "--peer-addr")).toThrow(UsageError);
      expect(() => parseHostPort(raw, "--peer-addr")).toThrow(
        `--peer-addr must be HOST:PORT, not "${raw}" (${why}`,
      );
    }
  });

  it("a client endpoint takes what Go would dial: an empty host is the local system", () => {
    expect(parseEndpoint("[::1]:4001")).toMatchObject({ kind: "tcp", host: "::1", port: 4001 });
    expect(parseEndpoint(":4001")).toMatchObject({ kind: "tcp", host: "", port: 4001 });
    expect(() => parseEndpoint("::1:4001")).toThrow(EndpointError);
    expect(() => parseEndpoint("::1:4001")).toThrow(/too many colons/);
  });
});
