// Turns an etcd-v2 write request into the store command the log carries, with etcd's rules for which store
// operation a PUT/POST/DELETE means (etcd's applierV2store): prevExist picks create/update, prevValue or
// prevIndex make a compare-and-swap, POST creates an in-order key.

import type { KvCommand } from "./commands.ts";
import type { KvWriteRequest } from "./types.ts";

/** Every store command except the expiry the leader issues by itself. */
export type KvClientCommand = Exclude<KvCommand, { op: "expire" }>;

export function commandFor(req: KvWriteRequest, now: number): KvClientCommand {
  const key = req.key;
  const value = req.value ?? "";
  const dir = req.dir ?? false;
  const ttl = req.ttl ?? null;
  const refresh = req.refresh ?? false;
  const hasPrev = (req.prevIndex ?? 0) > 0 || (req.prevValue ?? "") !== "";
  switch (req.method) {
    case "POST":
      return { op: "create", key, value, dir, ttl, unique: true, now };
    case "DELETE":
      if (hasPrev) return { op: "cad", key, prevValue: req.prevValue, prevIndex: req.prevIndex, now };
      return { op: "delete", key, dir, recursive: req.recursive ?? false, now };
    case "PUT":
      if (req.prevExist === true) {
        if (!hasPrev) return { op: "update", key, value, ttl, refresh, now };
        return cas(req, value, ttl, refresh, now);
      }
      if (req.prevExist === false) return { op: "create", key, value, dir, ttl, unique: false, now };
      if (hasPrev) return cas(req, value, ttl, refresh, now);
      return { op: "set", key, value, dir, ttl, refresh, now };
  }
}

function cas(req: KvWriteRequest, value: string, ttl: number | null, refresh: boolean, now: number) {
  return {
    op: "cas" as const,
    key: req.key,
    value,
    prevValue: req.prevValue,
    prevIndex: req.prevIndex,
    ttl,
    refresh,
    now,
  };
}
