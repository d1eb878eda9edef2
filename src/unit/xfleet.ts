// The [X-Fleet] placement options of a unit, after parsing and specifier expansion.
export interface XFleetOptions {
  /** MachineID=: the unit may only run on this machine (full or unique-prefix id). */
  machineId?: string;
  /** MachineOf=: unit names this unit must share a machine with. */
  machineOf: string[];
  /** MachineMetadata=: key -> accepted values (values of one key are alternatives; all keys must match). */
  machineMetadata: Record<string, string[]>;
  /** Conflicts=: glob patterns of unit names this unit must never share a machine with. */
  conflicts: string[];
  /** Global=true: one instance on every machine that matches machineMetadata (and Conflicts). */
  global: boolean;
  /** Replaces=: unit names this unit displaces from the machine it is placed on. */
  replaces: string[];
}

export const EMPTY_XFLEET: XFleetOptions = Object.freeze({
  machineOf: [],
  machineMetadata: {},
  conflicts: [],
  global: false,
  replaces: [],
}) as XFleetOptions;
