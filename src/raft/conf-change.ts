import { Packr } from "msgpackr";
import type { ConfChange, ConfChangeType } from "./types.ts";

const packr = new Packr({ useRecords: false });
const TYPES = new Set<ConfChangeType>(["addVoter", "addLearner", "promote", "remove"]);

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return packr.pack(
    cc.context === undefined
      ? { type: cc.type, id: cc.id }
      : { type: cc.type, id: cc.id, context: cc.context },
  );
}

/** Decodes a conf entry's data; null for anything malformed (which then changes nothing, on every replica alike). */
export function decodeConfChange(data: Uint8Array): ConfChange | null {
  try {
    const v = packr.unpack(data) as Partial<ConfChange> | null;
    if (!v || typeof v.id !== "string" || !TYPES.has(v.type as ConfChangeType)) return null;
    return typeof v.context === "string"
      ? { type: v.type!, id: v.id, context: v.context }
      : { type: v.type!, id: v.id };
  } catch {
    return null;
  }
}
