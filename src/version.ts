import pkg from "../package.json" with { type: "json" };

/** Set by `BERTH_BUILD_VERSION=X scripts/build-binary.ts` (a bun --define): a build that names another release. */
declare const BERTH_BUILD_VERSION: string | undefined;

/** The release of this binary: package.json's, unless the build named another. */
export const VERSION: string = typeof BERTH_BUILD_VERSION === "string" ? BERTH_BUILD_VERSION : pkg.version;

/**
 * The wire protocol generation. Binaries with different protocol versions refuse each other at the handshake;
 * bump it on any incompatible change to frames, envelopes or Raft messages.
 */
export const PROTOCOL_VERSION = 1;
