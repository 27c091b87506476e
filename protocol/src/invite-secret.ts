// Self-authenticating invite secrets, so that EVERY coordinator device of a campaign can check
// an enrollment, not only the device that minted the invite.
//
// The campaign's coordinator devices share a 32-byte invite key. An invite secret (16 bytes) is
// `nonce(8) || BLAKE2b-128(key = inviteKey, "testigo/v1/invite-secret" || 0x00 || nonce)[0..8]`.
// A volunteer's `enrolled` report carries the nonce (the secret's first half) and the invite
// proof; a coordinator device recomputes the whole secret from the nonce, then checks the stored
// hash and the proof. Without the invite key nobody can mint an invite that coordinators accept
// (a forgery must guess 64 bits), and the relay, which never sees the secret, learns nothing.
import { bytesEqual, concatBytes, randomBytes } from "./bytes.js";
import { DOMAIN, separated } from "./domain.js";
import { Malformed } from "./errors.js";
import { sodium } from "./sodium.js";

/** Bytes of an invite secret: nonce(8) || tag(8). (Here, not in invite.ts, so invite.ts can import this module.) */
export const INVITE_SECRET_BYTES = 16;
export const INVITE_KEY_BYTES = 32;
export const INVITE_NONCE_BYTES = 8;

function inviteTag(inviteKey: Uint8Array, nonce: Uint8Array): Uint8Array {
  if (inviteKey.length !== INVITE_KEY_BYTES) throw new Malformed(`invite key must be ${INVITE_KEY_BYTES} bytes`);
  if (nonce.length !== INVITE_NONCE_BYTES) throw new Malformed(`invite nonce must be ${INVITE_NONCE_BYTES} bytes`);
  const mac = sodium().crypto_generichash(16, separated(DOMAIN.inviteSecret, nonce), inviteKey);
  return mac.subarray(0, INVITE_SECRET_BYTES - INVITE_NONCE_BYTES);
}

/** The invite secret for `nonce` under the campaign's invite key. */
export function deriveInviteSecret(inviteKey: Uint8Array, nonce: Uint8Array): Uint8Array {
  return concatBytes(nonce, inviteTag(inviteKey, nonce));
}

/** A fresh invite secret (random nonce) under the campaign's invite key. */
export function newInviteSecret(inviteKey: Uint8Array): Uint8Array {
  return deriveInviteSecret(inviteKey, randomBytes(INVITE_NONCE_BYTES));
}

/** The public half of an invite secret, which the volunteer's `enrolled` report carries. */
export function inviteNonceOf(secret: Uint8Array): Uint8Array {
  if (secret.length !== INVITE_SECRET_BYTES) throw new Malformed(`invite secret must be ${INVITE_SECRET_BYTES} bytes`);
  return secret.slice(0, INVITE_NONCE_BYTES);
}

/** True if `secret` was minted under `inviteKey` (constant time). */
export function isCampaignInviteSecret(inviteKey: Uint8Array, secret: Uint8Array): boolean {
  if (secret.length !== INVITE_SECRET_BYTES) return false;
  return bytesEqual(secret.subarray(INVITE_NONCE_BYTES), inviteTag(inviteKey, secret.subarray(0, INVITE_NONCE_BYTES)));
}
