// Errors raised by the wire layer. Each carries a string `code` that callers switch on (the CLI maps "unavailable",
// "timeout" and "version_mismatch" to its "cluster unavailable" exit code).

export class WireError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The other side answered a request (or ended a stream) with an error. */
export class RemoteError extends WireError {
  constructor(
    code: string,
    message: string,
    readonly data?: unknown,
  ) {
    super(code, message);
  }
}

/** A request got no answer in time, or a connection attempt / handshake took too long. */
export class WireTimeoutError extends WireError {
  constructor(message: string) {
    super("timeout", message);
  }
}

/** The connection is gone; every request and stream still pending on it fails with this. */
export class ConnectionClosedError extends WireError {
  constructor(
    message: string,
    /** The code of the error the other side sent before closing (e.g. "frame_too_large"), if any. */
    readonly reasonCode?: string,
  ) {
    super("unavailable", message);
  }
}

/** Nothing answered at host:port (connection refused, host unreachable, DNS failure...). */
export class UnavailableError extends WireError {
  constructor(message: string) {
    super("unavailable", message);
  }
}

/** The cluster secret was missing or did not match. */
export class AuthError extends WireError {
  constructor(message: string) {
    super("auth_failed", message);
  }
}

/** The two ends speak different protocol generations. */
export class VersionMismatchError extends WireError {
  constructor(message: string) {
    super("version_mismatch", message);
  }
}

/** The other end is not a Berth endpoint of the expected kind, or broke the handshake. */
export class HandshakeError extends WireError {
  constructor(message: string, code = "handshake_failed") {
    super(code, message);
  }
}

/** The wire form of an error: what error responses, stream ends and error frames carry. */
export interface WireErrorBody {
  code: string;
  message: string;
  data?: unknown;
}
