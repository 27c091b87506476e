// What every route module receives: the (guarded) store, the clock, the configuration, metrics.
import type { AppConfig } from "./config/config.js";
import type { RelayLogger } from "./logger.js";
import type { Metrics } from "./metrics.js";
import type { RateLimiter } from "./rate-limiter.js";
import type { RelayKeyring } from "./relay-keys.js";
import type { Store } from "./store/store.js";
import type { VolunteerStatusCache } from "./volunteer-status.js";

/** Milliseconds since the epoch; injected so tests control time. */
export type Clock = () => number;

export interface RelayContext {
  readonly config: AppConfig;
  readonly store: Store;
  /** The relay's session and bucket keys, from the secret shared through the store. */
  readonly keys: RelayKeyring;
  /** Per-credential token buckets in memory, merged into the store once per interval. */
  readonly limiter: RateLimiter;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly logger: RelayLogger;
  /** Remembers active volunteers for ≤ 1 s (volunteer-status.ts); without it every request reads the store. */
  readonly volunteerStatus?: VolunteerStatusCache;
}
