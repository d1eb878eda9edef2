// This node as a machine of the data center: a stable machine id kept in the data directory (like
// /etc/machine-id), and the record other nodes see (name, public IP, metadata).
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MachineInfo } from "../client/protocol.ts";
import { badRequest, ServiceError } from "../service/errors.ts";
import type { MachineRecord } from "./registry.ts";

const ID_RE = /^[0-9a-f]{32}$/;

/** Reads the machine id from DATA_DIR/machine-id, creating it on first start. */
export function loadMachineId(dataDir: string): string {
  const file = join(dataDir, "machine-id");
  if (existsSync(file)) {
    const id = readFileSync(file, "utf8").trim();
    if (!ID_RE.test(id)) throw new Error(`${file} does not hold a machine id (32 hex digits)`);
    return id;
  }
  const id = randomBytes(16).toString("hex");
  writeFileSync(file, `${id}\n`, { mode: 0o644 });
  return id;
}

export function machineRecord(
  id: string,
  name: string,
  publicIp: string,
  metadata: Record<string, string>,
  agentTtlMs: number,
): MachineRecord {
  return { id, name, publicIp: publicIp || null, metadata, agentTtlMs };
}

/** The machine a user named: its full id, its member name, an id prefix, or one of those ending in "..." (as
 * list-machines prints it). not_found when none matches, bad_request when a prefix matches several. */
export function resolveMachine<M extends MachineInfo>(machines: Iterable<M>, arg: string): M {
  const all = [...machines];
  const want = arg.replace(/\.\.\.$/, "");
  const exact = all.filter((m) => m.id === want || m.name === want);
  const picked = exact.length > 0 ? exact : want === "" ? [] : all.filter((m) => m.id.startsWith(want));
  if (picked.length === 0) throw new ServiceError("not_found", `Machine ${arg} does not exist.`);
  if (picked.length > 1)
    throw badRequest(`Machine ${arg} is ambiguous: ${picked.map((m) => m.id).join(", ")}`);
  return picked[0]!;
}
