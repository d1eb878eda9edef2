import pkg from "../package.json" with { type: "json" };

/** The release of this binary. */
export const VERSION: string = pkg.version;

/**
 * The wire protocol generation. Binaries with different protocol versions refuse each other at the handshake;
 * bump it on any incompatible change to frames, envelopes or Raft messages.
 */
export const PROTOCOL_VERSION = 1;
