// Sealing a 32-byte content key to one X25519 public key (ECIES, close to HPKE base mode, built
// only from libsodium primitives):
//
//   (epk, esk) = crypto_box_seed_keypair(seed)         seed: 32 fresh random bytes (fixed for vectors)
//   ss         = X25519(esk, recipientPk)              refused if the result is all zero (low-order key)
//   okm        = BLAKE2b-448(key = ss, "testigo/v1/key-wrap" || 0x00 || epk || recipientPk)
//   kek, nonce = okm[0..32], okm[32..56]
//   wrapped    = XChaCha20-Poly1305(kek, nonce, ad = associatedData, contentKey)   (32 + 16 bytes)
//
// Hashing both public keys into the KDF binds the wrap to this recipient and this ephemeral key
// (no key-compromise or re-targeting games with the shared secret alone). The nonce is derived
// rather than random because each (epk, recipient) pair is used exactly once; that also makes the
// output a pure function of the seed, so golden vectors can be checked in both directions.
import { bytesEqual, concatBytes, randomBytes, wipe } from "./bytes.js";
import { DOMAIN, separated } from "./domain.js";
import { Malformed } from "./errors.js";
import { type EncryptionKeyPair, generateEncryptionKeyPair, hashWithDomain, SEED_BYTES } from "./keys.js";
import {
  AEAD_KEY_BYTES,
  AEAD_TAG_BYTES,
  X25519_KEY_BYTES,
  x25519,
  xchachaDecrypt,
  xchachaEncrypt,
} from "./primitives.js";
import { sodium } from "./sodium.js";

export const KEY_ID_BYTES = 8;
export const WRAPPED_KEY_BYTES = AEAD_KEY_BYTES + AEAD_TAG_BYTES;
/** keyId(8) || ephemeral public key(32) || wrapped key(48): one recipient entry on the wire. */
export const WRAP_ENTRY_BYTES = KEY_ID_BYTES + X25519_KEY_BYTES + WRAPPED_KEY_BYTES;
const OKM_BYTES = AEAD_KEY_BYTES + 24;

export interface WrappedKey {
  readonly keyId: Uint8Array; // 8 bytes: which recipient key this entry is for
  readonly ephemeralPublicKey: Uint8Array; // 32 bytes
  readonly wrapped: Uint8Array; // 48 bytes: the sealed content key and its tag
}

/**
 * Short public identifier of an X25519 public key, so a device finds its entry without trying
 * them all. It is derived from a public key only and reveals nothing the roster does not.
 */
export function keyIdOf(publicKey: Uint8Array): Uint8Array {
  return hashWithDomain(DOMAIN.keyId, 16, publicKey).slice(0, KEY_ID_BYTES);
}

function deriveKek(sharedSecret: Uint8Array, ephemeralPublicKey: Uint8Array, recipientPublicKey: Uint8Array) {
  const okm = sodium().crypto_generichash(
    OKM_BYTES,
    separated(DOMAIN.keyWrap, ephemeralPublicKey, recipientPublicKey),
    sharedSecret,
  );
  const kek = okm.slice(0, AEAD_KEY_BYTES);
  const nonce = okm.slice(AEAD_KEY_BYTES, OKM_BYTES);
  wipe(okm);
  return { kek, nonce };
}

/**
 * Seals `contentKey` to `recipientPublicKey`, binding `associatedData` (the envelope header).
 * `ephemeralSeed` is for test vectors only; in use every call must get a fresh random one.
 * Throws Malformed for a key of the wrong size or a low-order recipient key.
 */
export function wrapKey(
  contentKey: Uint8Array,
  recipientPublicKey: Uint8Array,
  associatedData: Uint8Array,
  ephemeralSeed?: Uint8Array,
): WrappedKey {
  if (contentKey.length !== AEAD_KEY_BYTES) throw new Malformed("content key must be 32 bytes");
  if (recipientPublicKey.length !== X25519_KEY_BYTES) throw new Malformed("recipient public key must be 32 bytes");
  if (ephemeralSeed !== undefined && ephemeralSeed.length !== SEED_BYTES) {
    throw new Malformed("ephemeral seed must be 32 bytes");
  }
  const seed = ephemeralSeed ?? randomBytes(SEED_BYTES);
  const ephemeral = generateEncryptionKeyPair(seed);
  if (ephemeralSeed === undefined) wipe(seed);
  const shared = x25519(ephemeral.privateKey, recipientPublicKey);
  wipe(ephemeral.privateKey);
  if (shared === undefined) throw new Malformed("recipient public key is a low-order point; refusing to wrap");
  const { kek, nonce } = deriveKek(shared, ephemeral.publicKey, recipientPublicKey);
  wipe(shared);
  const wrapped = xchachaEncrypt(contentKey, associatedData, nonce, kek);
  wipe(kek);
  return { keyId: keyIdOf(recipientPublicKey), ephemeralPublicKey: ephemeral.publicKey, wrapped };
}

/**
 * Recovers the content key from an entry made for `recipient`, or undefined if the entry is for
 * another key, was altered, or was made with other associated data. Never throws on bad input.
 */
export function unwrapKey(
  entry: WrappedKey,
  recipient: EncryptionKeyPair,
  associatedData: Uint8Array,
): Uint8Array | undefined {
  if (
    entry.keyId.length !== KEY_ID_BYTES ||
    entry.ephemeralPublicKey.length !== X25519_KEY_BYTES ||
    entry.wrapped.length !== WRAPPED_KEY_BYTES
  ) {
    return undefined;
  }
  if (!bytesEqual(entry.keyId, keyIdOf(recipient.publicKey))) return undefined;
  const shared = x25519(recipient.privateKey, entry.ephemeralPublicKey);
  if (shared === undefined) return undefined;
  const { kek, nonce } = deriveKek(shared, entry.ephemeralPublicKey, recipient.publicKey);
  wipe(shared);
  const contentKey = xchachaDecrypt(entry.wrapped, associatedData, nonce, kek);
  wipe(kek);
  return contentKey;
}

/** The 88-byte wire form of an entry: keyId || ephemeral public key || wrapped key. */
export function encodeWrappedKey(entry: WrappedKey): Uint8Array {
  const out = concatBytes(entry.keyId, entry.ephemeralPublicKey, entry.wrapped);
  if (out.length !== WRAP_ENTRY_BYTES) throw new Malformed("wrapped key entry has the wrong field sizes");
  return out;
}

/** Reads an 88-byte entry (copies, so the result does not alias the input); undefined if the size is wrong. */
export function decodeWrappedKey(bytes: Uint8Array): WrappedKey | undefined {
  if (bytes.length !== WRAP_ENTRY_BYTES) return undefined;
  return {
    keyId: bytes.slice(0, KEY_ID_BYTES),
    ephemeralPublicKey: bytes.slice(KEY_ID_BYTES, KEY_ID_BYTES + X25519_KEY_BYTES),
    wrapped: bytes.slice(KEY_ID_BYTES + X25519_KEY_BYTES),
  };
}
