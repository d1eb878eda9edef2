// `berth machine set-metadata MACHINE KEY=VALUE... [--unset KEY,...] [--reset]`: a machine's metadata changed while
// its node runs. The change is a record of its own, /_berth/machines/<id>/metadata (registry.ts MetadataOverride),
// applied over the metadata the node publishes from --metadata/BERTH_METADATA; the leader's engine sees the
// machine's new metadata at once and re-places units against it (moves off a live machine go through the
// handoff, src/sched/handoff.ts). The record outlives restarts of the node, so a run-time change wins over the
// flag until it is changed again or removed with --reset.
import type { MachineInfo } from "../client/protocol.ts";
import type { KvStore } from "../kv/store.ts";
import { badRequest, ServiceError } from "../service/errors.ts";
import type { KvWriter } from "../service/kv-writer.ts";
import { asObject, str } from "../service/params.ts";
import { resolveMachine } from "./machine.ts";
import { type MetadataOverride, machineMetadataKey, readRegistry } from "./registry.ts";
import { checkMetadataOverride } from "./registry-records.ts";

export interface MetadataChange {
  machine: string;
  set: Record<string, string>;
  unset: string[];
  /** Drop every run-time change first: the node's own metadata again. */
  reset: boolean;
}

/** A key or value as --metadata and list-machines can carry it (k=v pairs joined by commas). */
const KEY_RE = /^[^\s=,]+$/;

export function metadataChange(params: unknown): MetadataChange {
  const p = asObject(params);
  const set = p.set ?? {};
  const unset = p.unset ?? [];
  if (typeof set !== "object" || set === null || Array.isArray(set)) throw badRequest(`"set" must be a map`);
  if (!Array.isArray(unset)) throw badRequest(`"unset" must be a list of keys`);
  for (const [k, v] of Object.entries(set)) {
    if (!KEY_RE.test(k)) throw badRequest(`metadata key ${JSON.stringify(k)}: no spaces, "=" or ","`);
    if (typeof v !== "string" || v.includes(",") || v !== v.trim())
      throw badRequest(`metadata value of ${k}: a string without "," or surrounding spaces`);
  }
  for (const k of unset)
    if (typeof k !== "string" || !KEY_RE.test(k))
      throw badRequest(`metadata key ${JSON.stringify(k)}: no spaces, "=" or ","`);
  if (p.reset !== undefined && typeof p.reset !== "boolean")
    throw badRequest(`"reset" must be true or false`);
  return {
    machine: str(p, "machine"),
    set: set as Record<string, string>,
    unset: unset as string[],
    reset: p.reset === true,
  };
}

/** The override after a change: set keys leave `unset`, unset keys leave `set`. */
export function applyChange(old: MetadataOverride | null, c: MetadataChange): MetadataOverride {
  const base = c.reset || old === null ? { set: {}, unset: [] } : old;
  const set: Record<string, string> = { ...base.set };
  const unset = new Set(base.unset);
  for (const k of c.unset) {
    delete set[k];
    unset.add(k);
  }
  for (const [k, v] of Object.entries(c.set)) {
    set[k] = v;
    unset.delete(k);
  }
  return { set, unset: [...unset].sort() };
}

/** Writes the change (compare-and-swap on the record read, retried when another change won) and returns the
 * machine as list-machines shows it. */
export async function setMachineMetadata(
  store: KvStore,
  kv: KvWriter,
  params: unknown,
): Promise<MachineInfo> {
  const change = metadataChange(params);
  for (let attempt = 0; ; attempt++) {
    await kv.sync();
    const m = resolveMachine(readRegistry(store).machines.values(), change.machine);
    const key = machineMetadataKey(m.id);
    const n = store.peek(key);
    const raw = n && n.children === null ? n.value : null;
    const checked = raw === null ? null : checkMetadataOverride(raw);
    const old = checked !== null && "record" in checked ? checked.record : null;
    const next = applyChange(old, change);
    const empty = Object.keys(next.set).length === 0 && next.unset.length === 0;
    try {
      if (empty) {
        if (n) await kv.write({ method: "DELETE", key, recursive: true });
      } else
        await kv.write({
          method: "PUT",
          key,
          value: JSON.stringify(next),
          ...(raw === null ? (n ? {} : { prevExist: false }) : { prevValue: raw }),
        });
    } catch (err) {
      if (attempt < 5 && isCasFailure(err)) continue;
      throw err;
    }
    await kv.sync();
    const after = readRegistry(store).machines.get(m.id);
    if (!after) throw new ServiceError("not_found", `Machine ${m.id} does not exist.`);
    return after;
  }
}

function isCasFailure(err: unknown): boolean {
  // 101 compare failed, 105 exists (a first record raced), 100 gone (a reset raced).
  const code = (err as { data?: { errorCode?: number } }).data?.errorCode;
  return code === 101 || code === 105 || code === 100;
}
