// Request authentication: a signed challenge that yields a short-lived session token.
//
// 1. The client asks the relay for a challenge (32 bytes, opaque to it, one-time, short-lived).
// 2. It signs `authMessage(...)` with its Ed25519 signing key under DOMAIN.authSignature:
//    a coordinator device with the key the campaign's roster lists for it, a volunteer with
//    the key it enrolled.
// 3. The relay consumes the challenge, checks the signature and answers a session token that
//    is self-contained: its claims (role, campaign, subject, expiry) sealed with
//    XChaCha20-Poly1305 under the relay's session key (`sealSessionToken`). The relay stores
//    NOTHING at this step, so its database and append-only logs hold no session record that
//    could link the next stored envelope to the pseudonym that just authenticated.
// Requests then carry `Authorization: Bearer <token>`; the relay opens the token (no store
// access, no signature check) and reads the volunteer's record to refuse revoked credentials.
// The token is opaque to clients: they must not parse it. What the relay learns: which principal
// (device id or pseudonym) of which campaign opened a session, and when (to its clock).
import { concatBytes, fromBase64url, fromUtf8, randomBytes, toBase64url, u32be, u64be, utf8 } from "./bytes.js";
import { DOMAIN } from "./domain.js";
import { Malformed } from "./errors.js";
import { signWithDomain, verifyWithDomain } from "./keys.js";
import { AEAD_KEY_BYTES, AEAD_TAG_BYTES, XCHACHA_NONCE_BYTES, xchachaDecrypt, xchachaEncrypt } from "./primitives.js";
import { sodium } from "./sodium.js";

export const CHALLENGE_BYTES = 32;
/** Claims are padded to this size, so every session token has the same length. */
export const SESSION_CLAIMS_BYTES = 112;
/** A session token: nonce (24) || XChaCha20-Poly1305(claims padded to 112) (128). */
export const SESSION_TOKEN_BYTES = XCHACHA_NONCE_BYTES + SESSION_CLAIMS_BYTES + AEAD_TAG_BYTES;
/** Its base64url text length (no padding): 203 characters. */
export const SESSION_TOKEN_LENGTH = Math.ceil((SESSION_TOKEN_BYTES * 4) / 3);
/** The relay's session key: 32 bytes only the relay (all its nodes) holds. */
export const SESSION_KEY_BYTES = AEAD_KEY_BYTES;
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

/** What a session token asserts; only the relay that sealed it can read or forge one. */
export interface SessionClaims {
  readonly role: AuthRole;
  readonly campaignId: string;
  /** Device id for a coordinator, pseudonym for a volunteer. */
  readonly principal: string;
  /** Milliseconds since the epoch (relay clock). */
  readonly expiresAt: number;
}

const CLAIMS_VERSION = 1;

/**
 * Claims encoding: version (1) || role (1: 0 coordinator, 1 volunteer) || expiresAt (u64 ms) ||
 * campaign id length (1) || campaign id (UTF-8) || principal length (1) || principal (UTF-8) ||
 * zero padding to SESSION_CLAIMS_BYTES.
 */
function encodeClaims(claims: SessionClaims): Uint8Array {
  const campaign = utf8(claims.campaignId);
  const principal = utf8(claims.principal);
  const used = 12 + campaign.length + principal.length;
  if (campaign.length > 255 || principal.length > 255 || used > SESSION_CLAIMS_BYTES) {
    throw new Malformed("session claims too long");
  }
  const out = new Uint8Array(SESSION_CLAIMS_BYTES);
  out.set(
    concatBytes(
      new Uint8Array([CLAIMS_VERSION, claims.role === "coordinator" ? 0 : 1]),
      u64be(claims.expiresAt),
      new Uint8Array([campaign.length]),
      campaign,
      new Uint8Array([principal.length]),
      principal,
    ),
  );
  return out;
}

function decodeClaims(bytes: Uint8Array): SessionClaims | undefined {
  if (bytes.length !== SESSION_CLAIMS_BYTES || bytes[0] !== CLAIMS_VERSION) return undefined;
  const roleByte = bytes[1];
  if (roleByte !== 0 && roleByte !== 1) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const expiresAt = Number(view.getBigUint64(2));
  let offset = 10;
  const campaignLength = bytes[offset] ?? 0;
  const campaign = bytes.subarray(offset + 1, offset + 1 + campaignLength);
  offset += 1 + campaignLength;
  const principalLength = bytes[offset] ?? 0;
  const principal = bytes.subarray(offset + 1, offset + 1 + principalLength);
  offset += 1 + principalLength;
  if (offset > SESSION_CLAIMS_BYTES || bytes.subarray(offset).some((b) => b !== 0)) return undefined;
  return {
    role: roleByte === 0 ? "coordinator" : "volunteer",
    campaignId: fromUtf8(campaign),
    principal: fromUtf8(principal),
    expiresAt,
  };
}

/** The relay seals a session's claims into a token (base64url, SESSION_TOKEN_LENGTH characters). */
export function sealSessionToken(claims: SessionClaims, sessionKey: Uint8Array): string {
  if (sessionKey.length !== SESSION_KEY_BYTES) throw new Malformed(`session key must be ${SESSION_KEY_BYTES} bytes`);
  const nonce = randomBytes(XCHACHA_NONCE_BYTES);
  const sealed = xchachaEncrypt(encodeClaims(claims), utf8(DOMAIN.sessionToken), nonce, sessionKey);
  return toBase64url(concatBytes(nonce, sealed));
}

/**
 * Opens a token sealed under `sessionKey`: its claims, or undefined for anything wrong (bad
 * text, wrong length, forged, another relay's key). It does not check expiry: the caller does,
 * against its own clock. Never throws.
 */
export function openSessionToken(token: string, sessionKey: Uint8Array): SessionClaims | undefined {
  if (token.length !== SESSION_TOKEN_LENGTH) return undefined;
  const bytes = fromBase64url(token);
  if (bytes?.length !== SESSION_TOKEN_BYTES) return undefined;
  const claims = xchachaDecrypt(
    bytes.subarray(XCHACHA_NONCE_BYTES),
    utf8(DOMAIN.sessionToken),
    bytes.subarray(0, XCHACHA_NONCE_BYTES),
    sessionKey,
  );
  return claims === undefined ? undefined : decodeClaims(claims);
}

/**
 * True if `publicKey` is a usable Ed25519 verification key: 32 bytes, a canonical encoding of a
 * point in the main subgroup, not of small order. The duress key is checked with it at enrollment
 * (a key no signature verifies under would make the duress path fail silently).
 */
export function isUsableEd25519PublicKey(publicKey: Uint8Array): boolean {
  if (publicKey.length !== 32) return false;
  try {
    return sodium().crypto_core_ed25519_is_valid_point(publicKey);
  } catch {
    return false;
  }
}

/**
 * The bytes a volunteer signs at enrollment, proving it holds the signing key it registers:
 * redeem token (32) || signing key (32) || encryption key (32) [|| duress key (32)], fixed
 * lengths, so unambiguous (a signature over the 128-byte form never verifies the 96-byte form,
 * so nobody can strip the duress key from a request). Binding the keys stops anyone who sees the
 * request from re-pairing the token with other keys.
 */
export function enrollMessage(
  redeemToken: Uint8Array,
  signingKey: Uint8Array,
  encryptionKey: Uint8Array,
  duressKey?: Uint8Array,
): Uint8Array {
  if (
    redeemToken.length !== 32 ||
    signingKey.length !== 32 ||
    encryptionKey.length !== 32 ||
    (duressKey !== undefined && duressKey.length !== 32)
  ) {
    throw new Malformed("redeem token and keys must be 32 bytes each");
  }
  return duressKey === undefined
    ? concatBytes(redeemToken, signingKey, encryptionKey)
    : concatBytes(redeemToken, signingKey, encryptionKey, duressKey);
}

/** Signs an enrollment with the volunteer's signing key; returns the base64url signature. */
export function signEnrollment(
  redeemToken: Uint8Array,
  signingKey: Uint8Array,
  encryptionKey: Uint8Array,
  signingPrivateKey: Uint8Array,
  duressKey?: Uint8Array,
): string {
  const message = enrollMessage(redeemToken, signingKey, encryptionKey, duressKey);
  return toBase64url(signWithDomain(DOMAIN.enrollSignature, message, signingPrivateKey));
}

/** Checks an enrollment signature; false for any malformed input, never throws. */
export function verifyEnrollment(
  redeemToken: Uint8Array,
  signingKey: Uint8Array,
  encryptionKey: Uint8Array,
  signature: Uint8Array,
  duressKey?: Uint8Array,
): boolean {
  if (redeemToken.length !== 32 || signingKey.length !== 32 || encryptionKey.length !== 32) return false;
  if (duressKey !== undefined && duressKey.length !== 32) return false;
  return verifyWithDomain(
    DOMAIN.enrollSignature,
    enrollMessage(redeemToken, signingKey, encryptionKey, duressKey),
    signature,
    signingKey,
  );
}

/**
 * The duress key's own signature at enrollment, for the relay: Ed25519 by D over the same
 * `enrollMessage(...)` (its 128-byte form, D included) under DOMAIN.enrollDuressSignature. It
 * proves the enrolling device holds D's private key, so nobody can enroll another's public key
 * (a victim's signing key, say) as its duress key. Returns the base64url signature.
 */
export function signEnrollmentDuress(
  redeemToken: Uint8Array,
  signingKey: Uint8Array,
  encryptionKey: Uint8Array,
  duressKey: Uint8Array,
  duressPrivateKey: Uint8Array,
): string {
  const message = enrollMessage(redeemToken, signingKey, encryptionKey, duressKey);
  return toBase64url(signWithDomain(DOMAIN.enrollDuressSignature, message, duressPrivateKey));
}

/** Checks the duress key's enrollment signature (under D itself); false for any malformed input, never throws. */
export function verifyEnrollmentDuress(
  redeemToken: Uint8Array,
  signingKey: Uint8Array,
  encryptionKey: Uint8Array,
  duressKey: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (redeemToken.length !== 32 || signingKey.length !== 32 || encryptionKey.length !== 32) return false;
  if (duressKey.length !== 32) return false;
  return verifyWithDomain(
    DOMAIN.enrollDuressSignature,
    enrollMessage(redeemToken, signingKey, encryptionKey, duressKey),
    signature,
    duressKey,
  );
}

/**
 * What the duress key D signs for the coordinators (the `enrolled` report's `duressProof`): the
 * campaign id (its UTF-8 wire text), the signing key S and the encryption key E, each field
 * length-prefixed (u32 big-endian) like authMessage. Signed under DOMAIN.duressProof by D, it
 * says "the holder of D enrolls it for THIS S and E in THIS campaign": a relay that saw a
 * victim's keys cannot announce them as its own device's duress key.
 */
export function duressProofMessage(campaignId: string, signingKey: Uint8Array, encryptionKey: Uint8Array): Uint8Array {
  if (signingKey.length !== 32 || encryptionKey.length !== 32) throw new Malformed("keys must be 32 bytes each");
  return concatBytes(field(utf8(campaignId)), field(signingKey), field(encryptionKey));
}

/** The `enrolled` report's `duressProof`: D's signature over duressProofMessage, base64url. */
export function signDuressProof(
  campaignId: string,
  signingKey: Uint8Array,
  encryptionKey: Uint8Array,
  duressPrivateKey: Uint8Array,
): string {
  const message = duressProofMessage(campaignId, signingKey, encryptionKey);
  return toBase64url(signWithDomain(DOMAIN.duressProof, message, duressPrivateKey));
}

/** Checks a duress proof under the announced duress key; false for any malformed input, never throws. */
export function verifyDuressProof(
  campaignId: string,
  signingKey: Uint8Array,
  encryptionKey: Uint8Array,
  duressKey: Uint8Array,
  proof: Uint8Array,
): boolean {
  if (signingKey.length !== 32 || encryptionKey.length !== 32 || duressKey.length !== 32) return false;
  return verifyWithDomain(
    DOMAIN.duressProof,
    duressProofMessage(campaignId, signingKey, encryptionKey),
    proof,
    duressKey,
  );
}
