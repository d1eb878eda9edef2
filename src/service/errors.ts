// Errors a node answers clients with. The wire layer turns `code`, `message` and `data` into the error response.
import type { ErrorCode } from "../client/protocol.ts";
import { KvError } from "../kv/types.ts";

export class ServiceError extends Error {
  constructor(
    readonly code: ErrorCode | "not_leader",
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }
}

export function kvFailure(err: KvError): ServiceError {
  return new ServiceError("kv", err.message, err.toJSON());
}

export function unavailable(message: string): ServiceError {
  return new ServiceError("unavailable", message);
}

/** This member's disk is full: it refuses writes until space frees (etcd's NOSPACE alarm); reads go on. */
export function noSpace(why: string): ServiceError {
  return new ServiceError(
    "no_space",
    `no space left on this member's disk (${why}): writes are refused until space frees; reads go on`,
  );
}

export function badRequest(message: string): ServiceError {
  return new ServiceError("bad_request", message);
}

/** Rejects with a "timeout" ServiceError when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ServiceError("timeout", `${what} did not complete within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function isKvError(v: unknown): v is KvError {
  return v instanceof KvError;
}
