/** Exit codes shared by every subcommand, so scripts can tell failures apart. */
export const EXIT = {
  ok: 0,
  /** The request reached the cluster and failed for another reason. */
  error: 1,
  /** Bad flags, arguments or input files: nothing was sent. */
  usage: 2,
  /** No node could be reached, none answered in time, or the cluster has no quorum. */
  unavailable: 3,
  /** The key, unit or machine does not exist. */
  notFound: 4,
  /** A precondition failed: compare-and-swap mismatch, key already exists, unit content differs. */
  conflict: 5,
  /** A member's disk is full: the cluster refuses writes until space frees (reads go on). */
  noSpace: 6,
  /** The caller may not do this (Berth's own operations need admin or etcd's root), or --username was refused. */
  denied: 7,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error that carries its exit code and a one-line message for stderr. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.error,
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
  }
}
