// Timestamps the relay stores are coarsened, so a seized database cannot line up events to the second.
// Granularity of every stored time (docs/operator-guide.md lists them):
//   receive times of envelopes and photos (and so Redis stream ids, SQLite row times): 1 minute
//   enrollment and campaign creation: 1 hour
//   challenge and mailbox expiries: rounded UP to 10 s and 1 minute
//   rate-limit levels: referred to the merge interval (10 s)
export const SECOND_MS = 1_000;
export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;

/** Rounds `ms` down to a multiple of `unitMs`. */
export function coarsen(ms: number, unitMs: number): number {
  return Math.floor(ms / unitMs) * unitMs;
}

/** Rounds `ms` up to a multiple of `unitMs` (for expiries: never earlier than asked). */
export function coarsenUp(ms: number, unitMs: number): number {
  return Math.ceil(ms / unitMs) * unitMs;
}
