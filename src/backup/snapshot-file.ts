// The file `berth snapshot save` writes and `snapshot status` / `snapshot restore` read:
//
//   ["BERTHSNP"][u32 format][u32 header length][header JSON][payload][sha256 of everything before it, 32 bytes]
//
// (integers little-endian). The payload is the key/value store's own snapshot (KvStore.snapshot(), src/kv/store.ts),
// every key of the cluster including /_berth and the v2 auth records; the header says where it was taken.

import { createHash } from "node:crypto";
import type { SavedSnapshot } from "../client/protocol.ts";

const MAGIC = Buffer.from("BERTHSNP", "latin1");
export const SNAPSHOT_FILE_FORMAT = 1;
const SUM_BYTES = 32;

/** What a snapshot file says about the state it holds: everything `snapshot.save` answers but the bytes. */
export type SnapshotHeader = Omit<SavedSnapshot, "data">;

/** A snapshot file that cannot be used: not one, a newer format, or damaged (the checksum). */
export class SnapshotFileError extends Error {}

export function encodeSnapshotFile(header: SnapshotHeader, payload: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const head = Buffer.alloc(MAGIC.length + 8);
  MAGIC.copy(head, 0);
  head.writeUInt32LE(SNAPSHOT_FILE_FORMAT, MAGIC.length);
  head.writeUInt32LE(json.length, MAGIC.length + 4);
  const body = Buffer.concat([head, json, payload]);
  return Buffer.concat([body, createHash("sha256").update(body).digest()]);
}

/** The header, the payload and its checksum (hex), or SnapshotFileError saying what is wrong with the file. */
export function decodeSnapshotFile(
  buf: Buffer,
  what = "the file",
): { header: SnapshotHeader; payload: Buffer; hash: string } {
  const fixed = MAGIC.length + 8;
  if (buf.length < fixed + SUM_BYTES || !buf.subarray(0, MAGIC.length).equals(MAGIC))
    throw new SnapshotFileError(`${what} is not a berth snapshot (no BERTHSNP header)`);
  const format = buf.readUInt32LE(MAGIC.length);
  if (format !== SNAPSHOT_FILE_FORMAT)
    throw new SnapshotFileError(
      `${what} has snapshot format ${format}; this berth reads format ${SNAPSHOT_FILE_FORMAT} (use a newer berth)`,
    );
  const body = buf.subarray(0, buf.length - SUM_BYTES);
  const sum = createHash("sha256").update(body).digest();
  if (!sum.equals(buf.subarray(buf.length - SUM_BYTES)))
    throw new SnapshotFileError(
      `${what} is corrupt: its sha256 checksum does not match its contents (a damaged or truncated copy)`,
    );
  const len = buf.readUInt32LE(MAGIC.length + 4);
  if (fixed + len > body.length)
    throw new SnapshotFileError(`${what} is corrupt: its header runs past its end`);
  const header = JSON.parse(buf.toString("utf8", fixed, fixed + len)) as SnapshotHeader;
  return { header, payload: body.subarray(fixed + len), hash: sum.toString("hex") };
}
