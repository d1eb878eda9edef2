// "host:port", read and written one way for every address Berth takes or hands on: the node's flags, client
// endpoints, member addresses, the addresses the supervisor and a joining learner dial, and remote addresses in
// logs. The reading is Go's net.SplitHostPort (etcd reads its URLs' hosts with it), the port read as Go's Dial and
// Listen read it; test/host-port.test.ts lists each case. What an address is used for decides the rest: the
// node's flags refuse port 0 and an empty host (they are advertised, and nobody can dial those). Imports nothing,
// so every layer may use it.

export interface HostPort {
  host: string;
  port: number;
}

export class HostPortError extends Error {
  constructor(
    readonly text: string,
    /** What is wrong, without the address ("missing port"). */
    readonly reason: string,
  ) {
    super(`address "${text}": ${reason}`);
  }
}

/**
 * Splits "host:port" or "[ipv6]:port" (brackets removed; an IPv6 address needs them: "::1:80" has too many
 * colons). The host may be empty (Go: the local system); an empty port is 0, a port is decimal digits up to
 * 65535 (service names such as "http" are not looked up).
 */
export function splitHostPort(text: string): HostPort {
  const fail = (why: string): never => {
    throw new HostPortError(text, why);
  };
  const last = text.lastIndexOf(":");
  if (last < 0) fail("missing port");
  let host: string;
  let from = 0; // no '[' from here on, no ']' from `to` on
  let to = 0;
  if (text.startsWith("[")) {
    const end = text.indexOf("]");
    if (end < 0) fail("missing ']'");
    if (end + 1 === text.length) fail("missing port");
    if (end + 1 !== last) fail(text[end + 1] === ":" ? "too many colons" : "missing port");
    host = text.slice(1, end);
    from = 1;
    to = end + 1;
  } else {
    host = text.slice(0, last);
    if (host.includes(":")) fail("too many colons (an IPv6 address goes in brackets: [::1]:4001)");
  }
  if (text.indexOf("[", from) >= 0) fail("unexpected '['");
  if (text.indexOf("]", to) >= 0) fail("unexpected ']'");
  const digits = text.slice(last + 1);
  if (!/^\d*$/.test(digits)) fail(`invalid port "${digits}"`);
  const port = digits === "" ? 0 : Number(digits);
  if (port > 65535) fail(`invalid port "${digits}"`);
  return { host, port };
}

/** Go's net.JoinHostPort: "host:port", an IPv6 host in brackets. */
export function joinHostPort(host: string, port: number | string): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
