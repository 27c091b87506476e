// Relay requests made by `fetch`, retried as the relay asks: a 429 waits at least its
// Retry-After, a network failure or 5xx backs off exponentially with full jitter (the volunteer
// SDK's withRetry). A fetch gives up only when NO request has succeeded for `stallMs`: a long
// fetch that keeps making progress under a rate limit is never cut short, a dead relay is.
import { TransportError } from "../transport/errors.js";
import { DEFAULT_BASE_DELAY_MS, DEFAULT_MAX_DELAY_MS, type RetryPolicy, withRetry } from "../volunteer/retry.js";
import { CoordinatorError } from "./errors.js";

/** How long a fetch keeps retrying without any request succeeding (5 minutes). */
export const DEFAULT_STALL_MS = 300_000;

export interface RelayRetryOptions {
  /** Give up after this long without a successful request. */
  readonly stallMs?: number;
  readonly now?: () => number;
  readonly random?: () => number;
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
}

/** Thrown by a request cancelled through its AbortSignal (the fetch is stopping anyway). */
export class RequestCancelled extends Error {
  override readonly name = "RequestCancelled";
  constructor() {
    super("request cancelled: the fetch is stopping");
  }
}

export class RelayRetry {
  readonly stallMs: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private lastProgress: number;
  /** Operations under way: the stall clock starts afresh when one starts after an idle time. */
  private running = 0;

  constructor(options: RelayRetryOptions = {}) {
    this.stallMs = options.stallMs ?? DEFAULT_STALL_MS;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.baseDelayMs = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
    this.maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    this.lastProgress = this.now();
  }

  /** Runs `operation` until it succeeds, fails for good, is cancelled, or the fetch stalls. */
  async run<T>(operation: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const self = this;
    const policy: RetryPolicy = {
      // Read at every failure: a success of any concurrent request moves it on.
      get deadline() {
        return self.lastProgress + self.stallMs;
      },
      now: this.now,
      random: this.random,
      baseDelayMs: this.baseDelayMs,
      maxDelayMs: this.maxDelayMs,
      sleep: (ms) => abortableSleep(ms, signal),
    };
    if (this.running++ === 0) this.lastProgress = this.now();
    try {
      const result = await withRetry(() => {
        if (signal?.aborted === true) throw new RequestCancelled();
        return operation();
      }, policy);
      this.lastProgress = Math.max(this.lastProgress, this.now());
      return result;
    } catch (error) {
      if (error instanceof TransportError && error.shouldRetry()) {
        throw new CoordinatorError(
          "RELAY_RETRY_DEADLINE",
          `${error.message}; no request succeeded for ${Math.round(this.stallMs / 1000)} s. Nothing unwritten was acked and photo chunks already downloaded are kept: run fetch again later, it resumes where it stopped`,
        );
      }
      throw error;
    } finally {
      this.running--;
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (the next attempt then sees it). */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
