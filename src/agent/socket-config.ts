// A .socket unit's [Socket] section turned into what the socket runner needs (systemd.socket(5)). Pure: throws
// UnitFileError (with the line) for what systemd would refuse to load, and for Accept=yes, which Berth refuses.

import { isIP } from "node:net";
import { isAbsolute } from "node:path";
import { expandDescription } from "../unit/deps.ts";
import { getAll, type SpecifierContext, UNIT_TYPES, type UnitFile } from "../unit/unit-file.ts";
import { sectionReader, type TriggerLimit, triggeredUnit, triggerLimitOf } from "./trigger-config.ts";

/** One ListenStream= / ListenDatagram= address, as systemd's socket_address_parse reads it. */
export interface ListenAddress {
  kind: "stream" | "datagram";
  family: "inet" | "inet6" | "unix";
  /** inet/inet6: the address ("::" for a bare port, dual-stack as in systemd); unix: the path ("@name": abstract). */
  host: string;
  port: number;
  /** As systemctl shows it: "127.0.0.1:8080", "[::1]:53", "/run/foo.sock". */
  text: string;
}

export interface SocketConfig {
  name: string;
  description: string;
  /** The service it activates: Service=, else the socket's own name with .service. */
  service: string;
  listen: ListenAddress[];
  backlog: number;
  /** Unix sockets: the socket file's mode (SocketMode=, 0666) and that of directories made for it (0755). */
  socketMode: number;
  directoryMode: number;
  removeOnStop: boolean;
  /** FileDescriptorName= (LISTEN_FDNAMES), default the socket unit's name. */
  fdName: string;
  triggerLimit: TriggerLimit;
}

/** systemd's default Backlog= (SOMAXCONN). */
const DEFAULT_BACKLOG = 4096;

/** Parses one address; a string saying why it is not one. */
export function parseListenAddress(value: string, kind: ListenAddress["kind"]): ListenAddress | string {
  if (value.startsWith("/") || value.startsWith("@")) {
    if (value.startsWith("/") && !isAbsolute(value)) return "not an absolute path";
    if (value.length > 107) return "a unix socket path is at most 107 bytes";
    return { kind, family: "unix", host: value, port: 0, text: value };
  }
  const port = (p: string): number | string => {
    if (!/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) return "the port must be 1 to 65535";
    return Number(p);
  };
  if (/^\d+$/.test(value)) {
    const p = port(value);
    return typeof p === "string" ? p : { kind, family: "inet6", host: "::", port: p, text: `[::]:${p}` };
  }
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(value);
  if (v6 !== null) {
    if (isIP(v6[1]!) !== 6) return `${v6[1]} is not an IPv6 address`;
    const p = port(v6[2]!);
    return typeof p === "string" ? p : { kind, family: "inet6", host: v6[1]!, port: p, text: value };
  }
  const colon = value.lastIndexOf(":");
  if (colon > 0 && isIP(value.slice(0, colon)) === 4) {
    const p = port(value.slice(colon + 1));
    return typeof p === "string"
      ? p
      : { kind, family: "inet", host: value.slice(0, colon), port: p, text: value };
  }
  return "not an address: a port, IPv4:port, [IPv6]:port or an absolute unix socket path (host names are not resolved)";
}

export function socketConfigOf(name: string, file: UnitFile, ctx: SpecifierContext): SocketConfig {
  const r = sectionReader(file, "Socket", name);
  if (r.bool("Accept", false))
    r.fail(
      "Accept=yes (a service instance per connection) is not supported: use Accept=no, and let the service accept the connections on the socket it is given",
      "Accept",
    );
  const listen: ListenAddress[] = [];
  for (const [key, kind] of [
    ["ListenStream", "stream"],
    ["ListenDatagram", "datagram"],
  ] as const) {
    for (const v of getAll(file, "Socket", key)) {
      const a = parseListenAddress(v, kind);
      if (typeof a === "string") r.fail(`${key}=${v}: ${a}`, key);
      listen.push(a as ListenAddress);
    }
  }
  // systemd: "Unit has no Listen setting (ListenStream=, ListenDatagram=, ListenFIFO=, ...). Refusing."
  if (listen.length === 0) r.fail("a socket needs at least one ListenStream= or ListenDatagram=");
  const service = triggeredUnit(file, "Socket", "Service", ctx, r, {
    types: UNIT_TYPES.filter((t) => t !== "service"),
    why: "a socket activates a .service unit",
  });
  return {
    name,
    description: expandDescription(file, ctx) ?? name,
    service,
    listen,
    backlog: r.uint("Backlog", DEFAULT_BACKLOG),
    socketMode: r.mode("SocketMode", 0o666),
    directoryMode: r.mode("DirectoryMode", 0o755),
    removeOnStop: r.bool("RemoveOnStop", false),
    fdName: getAll(file, "Socket", "FileDescriptorName").at(-1) ?? name,
    triggerLimit: triggerLimitOf(r),
  };
}
