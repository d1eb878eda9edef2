// Retrying an operation that fails for a while (no leader yet, a service or a socket not up): the waits grow
// exponentially with full jitter (each a random time between 0 and a ceiling that doubles per failure, so the
// nodes of a cluster retrying the same thing spread out instead of arriving together), for the errors the caller
// says are worth another attempt, until a deadline or until the caller stops. The error that ends it is thrown as
// it is, so callers keep their own messages. A module of its own (no imports): every layer may use it.

export interface RetryClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const REAL_CLOCK: RetryClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface RetryPolicy {
  /** The ceiling of the first wait, in ms; it doubles after each failure, up to `maxMs`. */
  firstMs: number;
  maxMs: number;
  /** A time on the clock after which the last error is thrown instead of waiting again (the last wait is cut to it). */
  deadline?: number;
  /** Whether an error is worth another attempt; any other is thrown at once. Default: every error. */
  retriable?(err: unknown): boolean;
  /** True once the result is no longer wanted (a node stopping): asked after each failure and each wait. */
  stopped?(): boolean;
  /** Called before each wait, e.g. to log the failure. */
  onRetry?(err: unknown, waitMs: number, attempt: number): void;
  /** Tests pass their own; default Date.now() and setTimeout. */
  clock?: RetryClock;
  /** In [0, 1): the share of the ceiling to wait. Default Math.random. */
  random?: () => number;
}

/** Runs `attempt` (given its number, from 1) until it resolves; throws the error that ends the retrying. */
export async function retry<T>(attempt: (n: number) => Promise<T>, policy: RetryPolicy): Promise<T> {
  const clock = policy.clock ?? REAL_CLOCK;
  const random = policy.random ?? Math.random;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (policy.retriable && !policy.retriable(err)) throw err;
      if (policy.stopped?.()) throw err;
      const left = policy.deadline === undefined ? Number.POSITIVE_INFINITY : policy.deadline - clock.now();
      if (left <= 0) throw err;
      const wait = Math.min(left, random() * backoffCeiling(policy, n));
      policy.onRetry?.(err, wait, n);
      await clock.sleep(wait);
      if (policy.stopped?.()) throw err;
    }
  }
}

/** The longest wait after failed attempt n: firstMs, doubled n - 1 times, capped at maxMs. */
export function backoffCeiling(policy: Pick<RetryPolicy, "firstMs" | "maxMs">, n: number): number {
  return Math.min(policy.maxMs, policy.firstMs * 2 ** Math.min(n - 1, 52));
}

/**
 * A node's own background write that waits for a leader (publishing its attributes, its machine record, the
 * cloud-config units): the first retries come soon, as an election takes about a second, then about one a
 * second on average, as the fixed 1 s loops it replaces did.
 */
export const UNTIL_A_LEADER_ANSWERS = { firstMs: 250, maxMs: 2000 } as const;
