// Key pairs, fingerprints, campaign ids and pseudonyms.
//
// Every device (coordinator or volunteer) has two key pairs: X25519 for encryption and
// Ed25519 for signing. A campaign has one Ed25519 root key that signs its roster.
import { concatBytes, randomBytes, toBase64url } from "./bytes.js";
import { DOMAIN, type Domain, separated } from "./domain.js";
import { Malformed } from "./errors.js";
import { sodium } from "./sodium.js";

export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const SEED_BYTES = 32;
/** libsodium's Ed25519 private key: seed (32) || public key (32). */
export const PRIVATE_SIGNING_KEY_BYTES = 64;

export interface SigningKeyPair {
  readonly publicKey: Uint8Array; // 32 bytes, Ed25519
  readonly privateKey: Uint8Array; // 64 bytes, libsodium's seed || public key form
}

export interface EncryptionKeyPair {
  readonly publicKey: Uint8Array; // 32 bytes, X25519
  readonly privateKey: Uint8Array; // 32 bytes
}

export interface DeviceKeys {
  readonly encryption: EncryptionKeyPair;
  readonly signing: SigningKeyPair;
}

export interface DevicePublicKeys {
  readonly encryptionKey: Uint8Array;
  readonly signingKey: Uint8Array;
}

function checkSeed(seed: Uint8Array | undefined): void {
  if (seed !== undefined && seed.length !== SEED_BYTES) throw new Malformed(`a key seed must be ${SEED_BYTES} bytes`);
}

// Fresh pairs come from a random seed (randomBytes: WebCrypto) through libsodium's seed_keypair
// functions, which is what crypto_sign_keypair does inside libsodium; crypto_box_keypair draws its
// secret key directly, the seeded form hashes the seed first (SHA-512). Both are libsodium's own
// constructions; only the source of the 32 random bytes differs, because libsodium.js fetches one
// JavaScript random value per byte (about 1 ms per key pair, against 0.07 ms seeded).

/** A fresh Ed25519 key pair; with `seed` (32 bytes) it is deterministic (test vectors). */
export function generateSigningKeyPair(seed?: Uint8Array): SigningKeyPair {
  checkSeed(seed);
  const random = seed === undefined ? randomBytes(SEED_BYTES) : undefined;
  const pair = sodium().crypto_sign_seed_keypair(seed ?? (random as Uint8Array));
  random?.fill(0);
  return { publicKey: pair.publicKey, privateKey: pair.privateKey };
}

/** A fresh X25519 key pair; with `seed` (32 bytes) it is deterministic (test vectors). */
export function generateEncryptionKeyPair(seed?: Uint8Array): EncryptionKeyPair {
  checkSeed(seed);
  const random = seed === undefined ? randomBytes(SEED_BYTES) : undefined;
  const pair = sodium().crypto_box_seed_keypair(seed ?? (random as Uint8Array));
  random?.fill(0);
  return { publicKey: pair.publicKey, privateKey: pair.privateKey };
}

export function generateDeviceKeys(seeds?: { encryption: Uint8Array; signing: Uint8Array }): DeviceKeys {
  return {
    encryption: generateEncryptionKeyPair(seeds?.encryption),
    signing: generateSigningKeyPair(seeds?.signing),
  };
}

export function publicKeysOf(keys: DeviceKeys): DevicePublicKeys {
  return { encryptionKey: keys.encryption.publicKey, signingKey: keys.signing.publicKey };
}

/** BLAKE2b over `label || 0x00 || parts...`, `length` bytes (16..64). */
export function hashWithDomain(label: Domain, length: number, ...parts: readonly Uint8Array[]): Uint8Array {
  if (!Number.isInteger(length) || length < 16 || length > 64) {
    throw new Malformed(`a BLAKE2b output is 16 to 64 bytes, not ${length}`);
  }
  return sodium().crypto_generichash(length, separated(label, ...parts), null);
}

/** Ed25519 signature over `label || 0x00 || message`. */
export function signWithDomain(label: Domain, message: Uint8Array, privateKey: Uint8Array): Uint8Array {
  if (privateKey.length !== PRIVATE_SIGNING_KEY_BYTES) {
    throw new Malformed(`an Ed25519 private key is ${PRIVATE_SIGNING_KEY_BYTES} bytes (seed || public key)`);
  }
  return sodium().crypto_sign_detached(separated(label, message), privateKey);
}

/** Verifies an Ed25519 signature made by `signWithDomain`; never throws on bad input. */
export function verifyWithDomain(
  label: Domain,
  message: Uint8Array,
  signature: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== PUBLIC_KEY_BYTES) return false;
  try {
    return sodium().crypto_sign_verify_detached(signature, separated(label, message), publicKey);
  } catch {
    return false;
  }
}

/** 32-byte fingerprint of a public key (or of any public byte string). */
export function fingerprint(publicBytes: Uint8Array): Uint8Array {
  return hashWithDomain(DOMAIN.fingerprint, 32, publicBytes);
}

export const CAMPAIGN_ID_BYTES = 16;

/** A campaign is named by a hash of its root public key, so the id itself commits to the root. */
export function campaignIdFromRootKey(rootPublicKey: Uint8Array): string {
  return toBase64url(hashWithDomain(DOMAIN.campaignId, CAMPAIGN_ID_BYTES, rootPublicKey));
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** Crockford base32 (no padding) of bytes: the alphabet without I, L, O and U. */
export function toCrockfordBase32(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += CROCKFORD[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += CROCKFORD[(buffer << (5 - bits)) & 31];
  return out;
}

export const PSEUDONYM_BYTES = 10;

/**
 * A volunteer's pseudonym: "v-" and 16 Crockford base32 characters of a hash of both its public
 * keys (80 bits). Anyone holding the keys can recompute it; it reveals nothing else.
 */
export function pseudonymFromKeys(keys: DevicePublicKeys): string {
  // BLAKE2b's shortest output is 16 bytes; the pseudonym keeps the first 10.
  const digest = hashWithDomain(DOMAIN.pseudonym, 16, concatBytes(keys.signingKey, keys.encryptionKey));
  return `v-${toCrockfordBase32(digest.subarray(0, PSEUDONYM_BYTES))}`;
}

export const PSEUDONYM_PATTERN = /^v-[0-9A-HJKMNP-TV-Z]{16}$/;
