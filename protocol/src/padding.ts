// Size buckets for envelopes. An inner message is padded up to the smallest bucket that holds
// it, so the relay and the network learn only the bucket, and every short report kind
// (status, duress, check-in, ...) lands in the same first bucket.
//
// The table: bucket 0 is 1024 bytes; bucket i+1 = ceil(size(i) × 11 / 160) × 16 — the previous
// size times 1.1, rounded up to a multiple of 16 bytes — computed in exact integer arithmetic
// (no floating point, so every implementation builds the same table); the last bucket is the
// first one of at least 256 KiB. The table is normative (SPEC.md §8 lists it). Hence the padding
// overhead above 1 KiB is under 12% (checked by a test).
import { Malformed, TooLarge } from "./errors.js";

export const MIN_BUCKET_BYTES = 1024;
export const MAX_INNER_BYTES = 256 * 1024;
// size × 1.1 / 16 = size × 11 / 160; then × 16 again.
const GROWTH_NUMERATOR = 11;
const GROWTH_DENOMINATOR = 160;
const ALIGN = 16;

/** ceil(a / b) for non-negative safe integers, without floating-point division. */
function ceilDiv(a: number, b: number): number {
  const remainder = a % b;
  return (a - remainder) / b + (remainder === 0 ? 0 : 1);
}

function buildBuckets(): readonly number[] {
  const sizes = [MIN_BUCKET_BYTES];
  let last = MIN_BUCKET_BYTES;
  while (last < MAX_INNER_BYTES) {
    last = ceilDiv(last * GROWTH_NUMERATOR, GROWTH_DENOMINATOR) * ALIGN;
    sizes.push(last);
  }
  return Object.freeze(sizes);
}

/** Bucket sizes in bytes, indexed by the bucket number carried in the envelope header. */
export const BUCKET_SIZES: readonly number[] = buildBuckets();

/** The largest inner message that can be sealed: the size of the last bucket (277,088 bytes). */
export const LARGEST_BUCKET_BYTES = BUCKET_SIZES[BUCKET_SIZES.length - 1] as number;

/** The smallest bucket index whose size is at least `length`. */
export function bucketFor(length: number): number {
  if (!Number.isSafeInteger(length) || length < 0) throw new Malformed(`${length} is not a message length in bytes`);
  const index = BUCKET_SIZES.findIndex((size) => size >= length);
  if (index < 0) {
    throw new TooLarge(
      `message of ${length} bytes exceeds the largest bucket (${LARGEST_BUCKET_BYTES} bytes): send less (fewer photos or tallies per acta, shorter text)`,
    );
  }
  return index;
}

export function bucketSize(index: number): number | undefined {
  return Number.isInteger(index) ? BUCKET_SIZES[index] : undefined;
}
