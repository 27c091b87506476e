// Thin, typed wrappers over the libsodium primitives the protocol composes. Nothing here is
// home-made cryptography: each function is one libsodium call plus input checks. Every
// construction in this package goes through these, and the Wycheproof tests exercise them.
import { Malformed } from "./errors.js";
import { sodium } from "./sodium.js";

export const X25519_KEY_BYTES = 32;
export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
export const AEAD_KEY_BYTES = 32;
export const XCHACHA_NONCE_BYTES = 24;
export const CHACHA_IETF_NONCE_BYTES = 12;
export const AEAD_TAG_BYTES = 16;

/**
 * X25519 scalar multiplication. Returns undefined when the result is the all-zero point
 * (a low-order public key): a shared secret from such a key is not secret.
 */
export function x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | undefined {
  if (privateKey.length !== X25519_KEY_BYTES || publicKey.length !== X25519_KEY_BYTES) return undefined;
  try {
    const shared = sodium().crypto_scalarmult(privateKey, publicKey);
    return sodium().is_zero(shared) ? undefined : shared;
  } catch {
    return undefined;
  }
}

// Any scalar serves: X25519 clamps it to 8·k with 0 < k < ℓ, so [8k]P is the identity (all-zero
// output, which x25519() reports as undefined) exactly when P has low order, whatever the scalar.
const LOW_ORDER_PROBE = new Uint8Array(X25519_KEY_BYTES).fill(0x5a);

/**
 * True if `publicKey` is 32 bytes and usable as an X25519 recipient: not one of the low-order
 * points (nor a non-canonical encoding of one), with which every shared secret is all zeros.
 * Epoch keys and roster encryption keys must pass this before anyone seals to them.
 */
export function isUsableX25519PublicKey(publicKey: Uint8Array): boolean {
  if (publicKey.length !== X25519_KEY_BYTES) return false;
  // The same few epoch and roster keys are checked at every sync and request: a scalar
  // multiplication each time was a tenth of a device's CPU. Only usable keys are remembered.
  const hex = sodium().to_hex(publicKey);
  if (usableX25519Keys.has(hex)) return true;
  if (x25519(LOW_ORDER_PROBE, publicKey) === undefined) return false;
  if (usableX25519Keys.size >= MAX_USABLE_X25519_KEYS) usableX25519Keys.clear();
  usableX25519Keys.add(hex);
  return true;
}

const usableX25519Keys = new Set<string>();
const MAX_USABLE_X25519_KEYS = 1024;

/** Ed25519 signature (libsodium's strict verification rules apply on the other side). */
export function ed25519Sign(message: Uint8Array, privateKey: Uint8Array): Uint8Array {
  if (privateKey.length !== 64) throw new Malformed("an Ed25519 private key is 64 bytes (seed || public key)");
  return sodium().crypto_sign_detached(message, privateKey);
}

/** Ed25519 verification; false for any malformed input, never throws. */
export function ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_BYTES || publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return false;
  try {
    return sodium().crypto_sign_verify_detached(signature, message, publicKey);
  } catch {
    return false;
  }
}

function checkAeadInputs(nonce: Uint8Array, nonceBytes: number, key: Uint8Array): void {
  if (nonce.length !== nonceBytes || key.length !== AEAD_KEY_BYTES) {
    throw new Malformed(`AEAD needs a ${AEAD_KEY_BYTES}-byte key and a ${nonceBytes}-byte nonce`);
  }
}

/** XChaCha20-Poly1305 (IETF) encryption: returns ciphertext || 16-byte tag. */
export function xchachaEncrypt(
  plaintext: Uint8Array,
  associatedData: Uint8Array,
  nonce: Uint8Array,
  key: Uint8Array,
): Uint8Array {
  checkAeadInputs(nonce, XCHACHA_NONCE_BYTES, key);
  return sodium().crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, associatedData, null, nonce, key);
}

/** XChaCha20-Poly1305 (IETF) decryption; undefined if anything is wrong. */
export function xchachaDecrypt(
  ciphertext: Uint8Array,
  associatedData: Uint8Array,
  nonce: Uint8Array,
  key: Uint8Array,
): Uint8Array | undefined {
  if (nonce.length !== XCHACHA_NONCE_BYTES || key.length !== AEAD_KEY_BYTES) return undefined;
  if (ciphertext.length < AEAD_TAG_BYTES) return undefined;
  try {
    return sodium().crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, associatedData, nonce, key);
  } catch {
    return undefined;
  }
}

/** ChaCha20-Poly1305 (IETF, 96-bit nonce) encryption, for test vectors and interoperability. */
export function chachaIetfEncrypt(
  plaintext: Uint8Array,
  associatedData: Uint8Array,
  nonce: Uint8Array,
  key: Uint8Array,
): Uint8Array {
  checkAeadInputs(nonce, CHACHA_IETF_NONCE_BYTES, key);
  return sodium().crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, associatedData, null, nonce, key);
}

/** ChaCha20-Poly1305 (IETF) decryption; undefined if anything is wrong. */
export function chachaIetfDecrypt(
  ciphertext: Uint8Array,
  associatedData: Uint8Array,
  nonce: Uint8Array,
  key: Uint8Array,
): Uint8Array | undefined {
  if (nonce.length !== CHACHA_IETF_NONCE_BYTES || key.length !== AEAD_KEY_BYTES) return undefined;
  if (ciphertext.length < AEAD_TAG_BYTES) return undefined;
  try {
    return sodium().crypto_aead_chacha20poly1305_ietf_decrypt(null, ciphertext, associatedData, nonce, key);
  } catch {
    return undefined;
  }
}

/** SHA-256 (for photo digests that coordinators publish and compare). */
export function sha256(bytes: Uint8Array): Uint8Array {
  return sodium().crypto_hash_sha256(bytes);
}
