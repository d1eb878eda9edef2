// Small builders for protocol records in pure tests.
import type { UnitInfo } from "../../src/client/protocol.ts";

/** A launched, non-global unit placed nowhere; `over` sets the rest. */
export function unitInfo(name: string, over: Partial<UnitInfo> = {}): UnitInfo {
  return {
    name,
    hash: "0".repeat(40),
    desired: "launched",
    current: "launched",
    global: false,
    machines: [],
    description: null,
    unplaceable: null,
    ...over,
  };
}
