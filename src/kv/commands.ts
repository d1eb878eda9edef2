// The store commands the Raft log carries. Each one holds the leader's clock (`now`, ms since the epoch) so that
// every replica computes the same expirations: no replica ever reads its own clock while applying.
import { Packr } from "msgpackr";

/** ttl: seconds; null = no TTL (a set without ttl makes the node permanent, as in etcd). */
export type KvCommand =
  | { op: "set"; key: string; value: string; dir: boolean; ttl: number | null; refresh: boolean; now: number }
  | {
      op: "create";
      key: string;
      value: string;
      dir: boolean;
      ttl: number | null;
      unique: boolean;
      now: number;
    }
  | { op: "update"; key: string; value: string; ttl: number | null; refresh: boolean; now: number }
  | {
      op: "cas";
      key: string;
      value: string;
      prevValue?: string;
      prevIndex?: number;
      ttl: number | null;
      refresh: boolean;
      now: number;
    }
  | { op: "delete"; key: string; dir: boolean; recursive: boolean; now: number }
  | { op: "cad"; key: string; prevValue?: string; prevIndex?: number; now: number }
  /** Issued by the leader alone: removes every node whose expiration is at or before `now`. */
  | { op: "expire"; now: number };

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function encodeCommand(cmd: KvCommand): Uint8Array {
  return packr.pack(cmd);
}

/** Throws on bytes that are not a command: a log entry that cannot be decoded is a bug, never a client's input. */
export function decodeCommand(data: Uint8Array): KvCommand {
  const cmd = packr.unpack(data) as KvCommand;
  if (!cmd || typeof cmd !== "object" || typeof (cmd as { op?: unknown }).op !== "string")
    throw new Error("log entry is not a key/value command");
  return cmd;
}
