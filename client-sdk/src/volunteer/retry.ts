// Retries for relay requests within one sync run: exponential backoff with full jitter (a random
// delay between 0 and min(cap, base·2^attempt)), so thousands of phones coming back online at
// once do not hammer the relay in step. Only errors that say so (`shouldRetry()`) are retried,
// never past the run's deadline; a relay's Retry-After is honoured as a minimum.
import { RelayRefused, TransportError } from "../transport/errors.js";

export interface RetryPolicy {
  /** Give up (rethrow) rather than wait past this time (ms since the epoch, on `now`'s clock). */
  readonly deadline: number;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** Uniform in [0, 1). */
  readonly random: () => number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_BASE_DELAY_MS = 250;
export const DEFAULT_MAX_DELAY_MS = 30_000;

export function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The delay before retry number `attempt` (0-based): full jitter. */
export function backoffDelay(attempt: number, policy: Pick<RetryPolicy, "random" | "baseDelayMs" | "maxDelayMs">) {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(policy.random() * ceiling);
}

export async function withRetry<T>(operation: () => Promise<T>, policy: RetryPolicy): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (!(error instanceof TransportError) || !error.shouldRetry()) throw error;
      let delay = backoffDelay(attempt, policy);
      if (error instanceof RelayRefused && error.retryAfterMs !== undefined)
        delay = Math.max(delay, error.retryAfterMs);
      if (policy.now() + delay >= policy.deadline) throw error;
      await policy.sleep(delay);
    }
  }
}
