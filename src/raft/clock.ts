// The driver's only contact with time and the event loop, injected so a simulation can run it on virtual time and
// replay a run exactly from its seed.

export interface DriverClock {
  /** Calls `fn` every `ms` milliseconds until the returned function is called. */
  every(ms: number, fn: () => void): () => void;
  /** Calls `fn` on a later turn of the event loop, after the I/O callbacks already due. */
  defer(fn: () => void): void;
}

/** The real event loop. */
export const realClock: DriverClock = {
  every(ms, fn) {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
  defer(fn) {
    setImmediate(fn);
  },
};
