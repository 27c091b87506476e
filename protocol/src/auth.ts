// Request authentication: a signed challenge that yields a short-lived session token.
//
// 1. The client asks the relay for a challenge (32 random bytes, one-time, short-lived).
// 2. It signs `authMessage(...)` with its Ed25519 signing key under DOMAIN.authSignature:
//    a coordinator device with the key the campaign's roster lists for it, a volunteer with
//    the key it enrolled.
// 3. The relay consumes the challenge, checks the signature and answers a random session token.
//    It stores only `sessionTokenHash(token)`, so a copy of its database cannot be replayed.
// Requests then carry `Authorization: Bearer <token>`; the relay verifies no signature per
// request. What the relay learns: which principal (device id or pseudonym) of which campaign
// opened a session, and when (to its clock), nothing else.
import { concatBytes, fromBase64url, randomBytes, toBase64url, u32be, utf8 } from "./bytes.js";
import { DOMAIN } from "./domain.js";
import { Malformed } from "./errors.js";
import { hashWithDomain, signWithDomain, verifyWithDomain } from "./keys.js";

export const CHALLENGE_BYTES = 32;
export const SESSION_TOKEN_BYTES = 32;
export const SESSION_TOKEN_HASH_BYTES = 32;
/** A challenge must be answered within this time. */
export const CHALLENGE_TTL_MS = 2 * 60 * 1000;
/** A session lasts this long; then the client signs a new challenge. */
export const SESSION_TTL_MS = 60 * 60 * 1000;

export const AUTH_ROLES = ["coordinator", "volunteer"] as const;
export type AuthRole = (typeof AUTH_ROLES)[number];

/** What a session request asserts, and what its signature covers. */
export interface AuthStatement {
  readonly campaignId: string; // base64url, 16 bytes
  readonly role: AuthRole;
  /** Device id for a coordinator, pseudonym for a volunteer. */
  readonly principal: string;
  readonly challenge: string; // base64url, CHALLENGE_BYTES
}

function field(bytes: Uint8Array): Uint8Array {
  return concatBytes(u32be(bytes.length), bytes);
}

/**
 * The bytes a client signs to open a session: every field length-prefixed (u32 big-endian), in
 * a fixed order, so no two different statements share an encoding. The challenge is included as
 * its raw bytes; the other fields as their UTF-8 wire text.
 */
export function authMessage(statement: AuthStatement): Uint8Array {
  const challenge = fromBase64url(statement.challenge);
  if (challenge?.length !== CHALLENGE_BYTES) throw new Malformed(`challenge must be ${CHALLENGE_BYTES} bytes`);
  return concatBytes(
    field(utf8(statement.campaignId)),
    field(utf8(statement.role)),
    field(utf8(statement.principal)),
    field(challenge),
  );
}

/** Signs a session request; returns the base64url signature. */
export function signAuthStatement(statement: AuthStatement, signingPrivateKey: Uint8Array): string {
  return toBase64url(signWithDomain(DOMAIN.authSignature, authMessage(statement), signingPrivateKey));
}

/** Checks a session request's signature; false for any malformed input, never throws. */
export function verifyAuthStatement(
  statement: AuthStatement,
  signature: string,
  signingPublicKey: Uint8Array,
): boolean {
  const sig = fromBase64url(signature);
  if (sig === undefined) return false;
  let message: Uint8Array;
  try {
    message = authMessage(statement);
  } catch {
    return false;
  }
  return verifyWithDomain(DOMAIN.authSignature, message, sig, signingPublicKey);
}

export function newChallenge(): string {
  return toBase64url(randomBytes(CHALLENGE_BYTES));
}

export function newSessionToken(): string {
  return toBase64url(randomBytes(SESSION_TOKEN_BYTES));
}

/** The only form in which the relay keeps a session token. Throws Malformed for a bad token. */
export function sessionTokenHash(token: string): string {
  const bytes = fromBase64url(token);
  if (bytes?.length !== SESSION_TOKEN_BYTES) throw new Malformed("session token must be 32 bytes of base64url");
  return toBase64url(hashWithDomain(DOMAIN.sessionToken, SESSION_TOKEN_HASH_BYTES, bytes));
}

/**
 * The bytes a volunteer signs at enrollment, proving it holds the signing key it registers:
 * redeem token (32) || signing key (32) || encryption key (32), fixed lengths, so unambiguous.
 * Binding both keys stops anyone who sees the request from re-pairing the token with other keys.
 */
export function enrollMessage(redeemToken: Uint8Array, signingKey: Uint8Array, encryptionKey: Uint8Array): Uint8Array {
  if (redeemToken.length !== 32 || signingKey.length !== 32 || encryptionKey.length !== 32) {
    throw new Malformed("redeem token and keys must be 32 bytes each");
  }
  return concatBytes(redeemToken, signingKey, encryptionKey);
}

/** Signs an enrollment with the volunteer's signing key; returns the base64url signature. */
export function signEnrollment(
  redeemToken: Uint8Array,
  signingKey: Uint8Array,
  encryptionKey: Uint8Array,
  signingPrivateKey: Uint8Array,
): string {
  const message = enrollMessage(redeemToken, signingKey, encryptionKey);
  return toBase64url(signWithDomain(DOMAIN.enrollSignature, message, signingPrivateKey));
}

/** Checks an enrollment signature; false for any malformed input, never throws. */
export function verifyEnrollment(
  redeemToken: Uint8Array,
  signingKey: Uint8Array,
  encryptionKey: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (redeemToken.length !== 32 || signingKey.length !== 32 || encryptionKey.length !== 32) return false;
  return verifyWithDomain(
    DOMAIN.enrollSignature,
    enrollMessage(redeemToken, signingKey, encryptionKey),
    signature,
    signingKey,
  );
}
