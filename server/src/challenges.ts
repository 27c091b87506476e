// Stateless auth challenges. A challenge is 32 bytes the relay can check without having stored
// anything when it issued it:
//
//   expiry (u32be, whole seconds, rounded up to 10 s) ‖ random (12) ‖ BLAKE2b-128(challengeKey, first 16 bytes)
//
// so `POST /v1/auth/challenge` writes nothing and needs no relay-wide rate-limit bucket, which a
// single anonymous client could otherwise drain to lock every volunteer out (review finding M2).
// Clients treat the 32 bytes as opaque, as before. One use per challenge is still enforced: the
// session route burns a challenge (a set-if-absent write that lives until its expiry) before it
// checks the signature — but only for a principal that exists, within that principal's quota,
// so a flood of made-up session requests writes nothing at all.
import { CHALLENGE_BYTES, CHALLENGE_TTL_MS, fromBase64url, randomBytes, sodium, toBase64url } from "@testigo/protocol";
import { coarsenUp, SECOND_MS } from "./time.js";

const EXPIRY_BYTES = 4;
const RANDOM_BYTES = 12;
const BODY_BYTES = EXPIRY_BYTES + RANDOM_BYTES;
const MAC_BYTES = CHALLENGE_BYTES - BODY_BYTES;
/** Expiries are stored and sent rounded up to 10 s (coarse times everywhere the relay writes). */
const EXPIRY_GRAIN_MS = 10 * SECOND_MS;

export interface IssuedChallenge {
  readonly challenge: string;
  readonly expiresAt: number;
}

export function issueChallenge(challengeKey: Uint8Array, now: number): IssuedChallenge {
  const expiresAt = coarsenUp(now + CHALLENGE_TTL_MS, EXPIRY_GRAIN_MS);
  const bytes = new Uint8Array(CHALLENGE_BYTES);
  new DataView(bytes.buffer).setUint32(0, expiresAt / SECOND_MS);
  bytes.set(randomBytes(RANDOM_BYTES), EXPIRY_BYTES);
  bytes.set(mac(challengeKey, bytes.subarray(0, BODY_BYTES)), BODY_BYTES);
  return { challenge: toBase64url(bytes), expiresAt };
}

/** The challenge's expiry if this relay issued it and it has not expired at `now`; else undefined. */
export function checkChallenge(challengeKey: Uint8Array, challenge: string, now: number): number | undefined {
  const bytes = fromBase64url(challenge);
  if (bytes?.length !== CHALLENGE_BYTES) return undefined;
  const expected = mac(challengeKey, bytes.subarray(0, BODY_BYTES));
  if (!sodium().memcmp(expected, bytes.subarray(BODY_BYTES))) return undefined;
  const expiresAt = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0) * SECOND_MS;
  return expiresAt > now ? expiresAt : undefined;
}

function mac(key: Uint8Array, body: Uint8Array): Uint8Array {
  return sodium().crypto_generichash(MAC_BYTES, body, key);
}
