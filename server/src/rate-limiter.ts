// Per-credential rate limits, counted in this relay node's memory and merged into the store in
// ONE batched write per interval (and once at start, to restore, and at shutdown). Nothing is
// written on a request's path, so the store's append-only log never holds a rate-limit write
// next to the envelope it let through.
//
// Exactness: within one node the token bucket is exact (a flood from one credential gets
// exactly its capacity, then its refill rate). Across restarts, the store keeps the level of
// every bucket that was below capacity at the last merge, so at most one interval's draws are
// forgotten. Across nodes, each node learns the others' levels at every merge: a credential
// spreading requests over N nodes gets at most its quota on each node within one interval, and
// its stored level then takes everything merged into account.
//
// What reaches the store: buckets whose level is below capacity at the merge, each under a
// keyed hash of its name (never a pseudonym or a token), with its level referred to a coarse
// time (the merge time rounded down to the interval). A credential that used little has
// refilled to capacity by the merge (at the default 10 tokens/s, a few requests refill in well
// under a second) and is not written at all.
import type { RelayLogger } from "./logger.js";
import { bucketName, type RelayKeyring } from "./relay-keys.js";
import type { BucketDraw, Store, StoredBucket } from "./store/store.js";

export interface RateLimitResult {
  readonly allowed: boolean;
  /** When not allowed: milliseconds until one token is available. */
  readonly retryAfterMs: number;
}

interface LocalBucket {
  tokens: number;
  updatedAt: number;
  capacity: number;
  refillPerSecond: number;
  /** Tokens taken since the previous merge. */
  taken: number;
}

export const DEFAULT_MERGE_INTERVAL_MS = 10_000;
/** Bound on the bucket names whose keyed hash is remembered. */
const MAX_REMEMBERED_NAMES = 20_000;

export interface RateLimiterOptions {
  readonly store: Store;
  readonly keys: RelayKeyring;
  readonly clock: () => number;
  readonly logger: RelayLogger;
  /** Merge interval, and the granularity of the times stored with bucket levels. */
  readonly intervalMs?: number;
}

function refill(bucket: LocalBucket, now: number): void {
  const elapsed = Math.max(0, now - bucket.updatedAt);
  bucket.tokens = Math.min(bucket.capacity, bucket.tokens + (elapsed * bucket.refillPerSecond) / 1000);
  bucket.updatedAt = Math.max(bucket.updatedAt, now);
}

function storedLevel(bucket: StoredBucket, now: number): number {
  const elapsed = Math.max(0, now - bucket.at);
  return Math.min(bucket.capacity, bucket.tokens + (elapsed * bucket.refillPerSecond) / 1000);
}

export class RateLimiter {
  readonly #options: RateLimiterOptions;
  readonly #intervalMs: number;
  /** By stored bucket name (keyed hash). */
  readonly #buckets = new Map<string, LocalBucket>();
  /** Bucket name -> its keyed hash (a pure function of the name under fixed keys), bounded. */
  readonly #names = new Map<string, string>();
  #restored: Promise<void> | undefined;
  /** The stored levels are loaded (restore() resolved). */
  #isRestored = false;
  #merging: Promise<void> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: RateLimiterOptions) {
    this.#options = options;
    this.#intervalMs = Math.max(1, Math.trunc(options.intervalMs ?? DEFAULT_MERGE_INTERVAL_MS));
  }

  /** Loads the stored levels (once; retried on the next call after a failure). */
  restore(): Promise<void> {
    this.#restored ??= this.merge().then(
      () => {
        this.#isRestored = true;
      },
      (err: unknown) => {
        this.#restored = undefined;
        throw err;
      },
    );
    return this.#restored;
  }

  /** Takes one token from the bucket `name` (created full). */
  async take(name: string, capacity: number, refillPerSecond: number): Promise<RateLimitResult> {
    await this.restore();
    const key = this.#names.get(name) ?? this.#hashName(name, await this.#options.keys.get());
    return this.#take(key, capacity, refillPerSecond);
  }

  /**
   * take(), without waiting: undefined unless it can answer at once (the stored levels are
   * loaded and the relay's keys too), which is every request but the first ones after a start.
   */
  takeNow(name: string, capacity: number, refillPerSecond: number): RateLimitResult | undefined {
    if (!this.#isRestored) return undefined;
    let key = this.#names.get(name);
    if (key === undefined) {
      const keys = this.#options.keys.current();
      if (keys === undefined) return undefined;
      key = this.#hashName(name, keys);
    }
    return this.#take(key, capacity, refillPerSecond);
  }

  #take(key: string, capacity: number, refillPerSecond: number): RateLimitResult {
    const now = this.#options.clock();
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: capacity, updatedAt: now, capacity, refillPerSecond, taken: 0 };
      this.#buckets.set(key, bucket);
    }
    bucket.capacity = capacity;
    bucket.refillPerSecond = refillPerSecond;
    refill(bucket, now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      bucket.taken += 1;
      return { allowed: true, retryAfterMs: 0 };
    }
    const retryAfterMs =
      refillPerSecond > 0 ? Math.ceil(((1 - bucket.tokens) * 1000) / refillPerSecond) : Number.MAX_SAFE_INTEGER;
    return { allowed: false, retryAfterMs };
  }

  #hashName(name: string, keys: Awaited<ReturnType<RelayKeyring["get"]>>): string {
    const key = bucketName(keys, name);
    if (this.#names.size >= MAX_REMEMBERED_NAMES) {
      const oldest = this.#names.keys().next();
      if (oldest.done !== true) this.#names.delete(oldest.value);
    }
    this.#names.set(name, key);
    return key;
  }

  /** The one batched write: this node's draws in, every node's stored levels out. */
  merge(): Promise<void> {
    // Merges never overlap: a slow store must not pile them up.
    this.#merging ??= this.#merge().finally(() => {
      this.#merging = undefined;
    });
    return this.#merging;
  }

  async #merge(): Promise<void> {
    const now = this.#options.clock();
    // Stored times are whole intervals; the level stored is the one that, refilled from `at`,
    // gives exactly this node's level from now on (so it may be below zero).
    const at = Math.floor(now / this.#intervalMs) * this.#intervalMs;
    const draws: BucketDraw[] = [];
    for (const [key, bucket] of this.#buckets) {
      refill(bucket, now);
      if (bucket.tokens < bucket.capacity) {
        draws.push({
          bucket: key,
          taken: bucket.taken,
          level: bucket.tokens - ((now - at) * bucket.refillPerSecond) / 1000,
          capacity: bucket.capacity,
          refillPerSecond: bucket.refillPerSecond,
        });
      } else {
        // Full: as good as absent, never written (memory stays bounded by the active credentials).
        this.#buckets.delete(key);
      }
      bucket.taken = 0;
    }
    let stored: readonly StoredBucket[];
    try {
      stored = await this.#options.store.mergeRateBuckets(draws, at);
    } catch (err) {
      // Not merged: keep the draws for the next attempt.
      for (const draw of draws) {
        const bucket = this.#buckets.get(draw.bucket);
        if (bucket !== undefined) bucket.taken += draw.taken;
      }
      throw err;
    }
    const after = this.#options.clock();
    for (const entry of stored) {
      const level = storedLevel(entry, after);
      const bucket = this.#buckets.get(entry.bucket);
      if (bucket === undefined) {
        this.#buckets.set(entry.bucket, {
          tokens: level,
          updatedAt: after,
          capacity: entry.capacity,
          refillPerSecond: entry.refillPerSecond,
          taken: 0,
        });
      } else {
        refill(bucket, after);
        // Only ever lower: what this node counted itself stays exact.
        bucket.tokens = Math.min(bucket.tokens, level);
      }
    }
  }

  /** Merges every interval until `stop()`. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      this.merge().catch((err: unknown) => {
        this.#options.logger.warn({ err }, "rate-limit merge failed; retrying at the next interval");
      });
    }, this.#intervalMs);
    this.#timer.unref();
  }

  /** Stops merging, after a last merge (its failure is logged, not thrown: shutdown goes on). */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#restored === undefined) return;
    await this.merge().catch((err: unknown) => {
      this.#options.logger.warn({ err }, "final rate-limit merge failed");
    });
  }
}
