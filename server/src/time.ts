// Timestamps the relay stores are coarsened, so a seized database cannot line up events to the second.
export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;

/** Rounds `ms` down to a multiple of `unitMs`. */
export function coarsen(ms: number, unitMs: number): number {
  return Math.floor(ms / unitMs) * unitMs;
}
