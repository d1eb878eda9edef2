// Parsed unit files by content hash, and the [X-Fleet] options of each unit name: parsing happens once per
// content (or per name, since specifiers depend on it), not on every reconcile.
import { createHash } from "node:crypto";
import { get, parseUnitFile, serializeUnitFile, type UnitFile, xfleetOf } from "../unit/unit-file.ts";
import type { XFleetOptions } from "../unit/xfleet.ts";
import { triggeredUnitOf } from "./triggers.ts";

export interface CanonicalUnit {
  /** fleet's hash: SHA-1 of the canonical serialisation, 40 hex. */
  hash: string;
  text: string;
  file: UnitFile;
}

/** Parses and canonicalises a unit file; throws UnitFileError with the line and reason. */
export function canonicalUnit(name: string, text: string): CanonicalUnit {
  const file = parseUnitFile(text, name);
  const canonical = serializeUnitFile(file);
  return { hash: createHash("sha1").update(canonical).digest("hex"), text: canonical, file };
}

export class UnitCatalog {
  private readonly files = new Map<string, UnitFile | Error>();
  private readonly xfleet = new Map<string, XFleetOptions | Error>();

  constructor(private readonly readText: (hash: string) => string | null) {}

  file(hash: string): UnitFile | Error {
    let f = this.files.get(hash);
    if (!f) {
      const text = this.readText(hash);
      // Not cached: the file may simply not have been applied on this replica yet.
      if (text === null) return new Error(`unit file ${hash.slice(0, 7)} is missing from the store`);
      try {
        f = parseUnitFile(text);
      } catch (err) {
        f = err as Error;
      }
      this.files.set(hash, f);
    }
    return f;
  }

  /** [X-Fleet] options with specifiers expanded for this unit name, or why they cannot be used. */
  options(name: string, hash: string): XFleetOptions | Error {
    const key = `${name}\u0000${hash}`;
    let x = this.xfleet.get(key);
    if (!x) {
      const f = this.file(hash);
      if (f instanceof Error) return f;
      try {
        x = xfleetOf(f, { unitName: name });
      } catch (err) {
        x = err as Error;
      }
      this.xfleet.set(key, x);
    }
    return x;
  }

  /** The unit a trigger unit (.timer) starts on its machine (triggers.ts), or undefined. */
  triggered(name: string, hash: string): string | undefined {
    const f = this.file(hash);
    return f instanceof Error ? undefined : triggeredUnitOf(name, f);
  }

  description(hash: string): string | null {
    const f = this.file(hash);
    return f instanceof Error ? null : (get(f, "Unit", "Description") ?? null);
  }
}
