// Revocation check of volunteer sessions, remembered per relay node for at most one second.
//
// Every volunteer request must be refused once the volunteer is revoked. Reading the volunteer's
// record on every request costs a store round trip each time (on Redis, as much as the write that
// follows); a volunteer's burst of requests instead reads it once per VOLUNTEER_STATUS_TTL_MS.
// What this keeps:
//   - Only "enrolled and not revoked" is remembered; unknown or revoked volunteers are read every time.
//   - A revocation made through this node (forget) takes effect at once, including for reads
//     already in flight: their answer is not remembered.
//   - A revocation made through ANOTHER node of a shared Redis takes effect here within the TTL:
//     an entry is kept from the START of the read that produced it, so no entry outlives a
//     revocation by more than the TTL (docs/operator-guide.md, "Revocation").
// The time is monotonic (performance.now), not the relay's wall clock.
import { performance } from "node:perf_hooks";

export const VOLUNTEER_STATUS_TTL_MS = 1_000;
/** Bound on remembered volunteers; the oldest entry goes first. */
const MAX_ENTRIES = 50_000;

export type VolunteerStatusLoader = (campaignId: string, pseudonym: string) => Promise<boolean>;

export class VolunteerStatusCache {
  readonly #load: VolunteerStatusLoader;
  readonly #now: () => number;
  readonly #ttlMs: number;
  /** key → monotonic time until which the volunteer counts as active. */
  readonly #activeUntil = new Map<string, number>();
  readonly #inFlight = new Map<string, Promise<boolean>>();
  /** Bumped by every forget(): a read that started before it is not remembered. */
  #generation = 0;

  constructor(load: VolunteerStatusLoader, options: { now?: () => number; ttlMs?: number } = {}) {
    this.#load = load;
    this.#now = options.now ?? (() => performance.now());
    this.#ttlMs = Math.min(options.ttlMs ?? VOLUNTEER_STATUS_TTL_MS, VOLUNTEER_STATUS_TTL_MS);
  }

  /** True if the volunteer is enrolled and not revoked (read from the store, or remembered ≤ TTL). */
  isActive(campaignId: string, pseudonym: string): Promise<boolean> {
    const key = `${campaignId}/${pseudonym}`;
    const started = this.#now();
    this.#sweep(started);
    const until = this.#activeUntil.get(key);
    if (until !== undefined) {
      if (started < until) return Promise.resolve(true);
      this.#activeUntil.delete(key);
    }
    const pending = this.#inFlight.get(key);
    if (pending !== undefined) return pending;
    const generation = this.#generation;
    const read = this.#load(campaignId, pseudonym)
      .then((active) => {
        if (active && generation === this.#generation) this.#remember(key, started + this.#ttlMs);
        return active;
      })
      .finally(() => {
        if (this.#inFlight.get(key) === read) this.#inFlight.delete(key);
      });
    this.#inFlight.set(key, read);
    return read;
  }

  /** isActive() without waiting: true if remembered as active, undefined if the store must be read. */
  activeNow(campaignId: string, pseudonym: string): true | undefined {
    const key = `${campaignId}/${pseudonym}`;
    const now = this.#now();
    this.#sweep(now);
    const until = this.#activeUntil.get(key);
    return until !== undefined && now < until ? true : undefined;
  }

  /** Called once a revocation is written: later requests read the store again. */
  forget(campaignId: string, pseudonym: string): void {
    const key = `${campaignId}/${pseudonym}`;
    this.#generation++;
    this.#activeUntil.delete(key);
    this.#inFlight.delete(key);
  }

  /**
   * Drops expired entries from the oldest end, so a pseudonym seen once does not stay in memory
   * until 50,000 others push it out. Entries are inserted in nearly increasing expiry order (reads
   * can finish out of order), so an expired one may outlive the sweep by at most one more TTL.
   */
  #sweep(now: number): void {
    for (const [key, until] of this.#activeUntil) {
      if (until > now) return;
      this.#activeUntil.delete(key);
    }
  }

  /** How many volunteers are remembered (tests). */
  get size(): number {
    return this.#activeUntil.size;
  }

  #remember(key: string, until: number): void {
    this.#activeUntil.delete(key);
    if (this.#activeUntil.size >= MAX_ENTRIES) {
      const oldest = this.#activeUntil.keys().next();
      if (oldest.done !== true) this.#activeUntil.delete(oldest.value);
    }
    this.#activeUntil.set(key, until);
  }
}
