// The baselines: the bare libsodium calls each protocol construction needs, written inline with
// no checks, no encoding and no wiping. The protocol's own functions are measured against these,
// so the ratio is the cost of everything the protocol adds around the cryptography.
// Random bytes come from WebCrypto, as in the protocol: libsodium.js's own randombytes_buf fetches
// one JavaScript value per byte, so a baseline using it would measure that, not the cryptography.
import type { Sodium } from "@testigo/protocol";

function random(length: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(length));
}

/** A fresh X25519 pair from 32 random bytes, as the protocol makes one. */
function freshBoxKeyPair(s: Sodium) {
  return s.crypto_box_seed_keypair(random(32));
}

const CONTENT_KEY_BYTES = 32;
const NONCE_BYTES = 24;
/** Bytes of BLAKE2b output split into a key-encryption key (32) and a nonce (24). */
const KEK_AND_NONCE_BYTES = CONTENT_KEY_BYTES + NONCE_BYTES;

export interface RawReportKeys {
  readonly signingPrivateKey: Uint8Array;
  readonly signingPublicKey: Uint8Array;
  readonly recipients: readonly { readonly publicKey: Uint8Array; readonly privateKey: Uint8Array }[];
}

export interface RawSealedReport {
  readonly header: Uint8Array;
  readonly nonce: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly entries: readonly { readonly ephemeralPublicKey: Uint8Array; readonly wrapped: Uint8Array }[];
}

/**
 * One report, sealed with the minimum of calls: an Ed25519 signature over the message, one
 * XChaCha20-Poly1305 encryption of the padded message (message || signature || zeros) under a
 * fresh content key, and per recipient a fresh X25519 key pair, one X25519, one BLAKE2b and one
 * XChaCha20-Poly1305 wrap of the content key.
 */
export function rawSealReport(
  s: Sodium,
  message: Uint8Array,
  paddedBytes: number,
  header: Uint8Array,
  keys: RawReportKeys,
): RawSealedReport {
  const signature = s.crypto_sign_detached(message, keys.signingPrivateKey);
  const padded = new Uint8Array(paddedBytes);
  padded.set(message, 0);
  padded.set(signature, message.length);
  const contentKey = random(CONTENT_KEY_BYTES);
  const nonce = random(NONCE_BYTES);
  const ciphertext = s.crypto_aead_xchacha20poly1305_ietf_encrypt(padded, header, null, nonce, contentKey);
  const entries = keys.recipients.map((recipient) => {
    const ephemeral = freshBoxKeyPair(s);
    const shared = s.crypto_scalarmult(ephemeral.privateKey, recipient.publicKey);
    const okm = s.crypto_generichash(KEK_AND_NONCE_BYTES, ephemeral.publicKey, shared);
    const wrapped = s.crypto_aead_xchacha20poly1305_ietf_encrypt(
      contentKey,
      header,
      null,
      okm.subarray(CONTENT_KEY_BYTES),
      okm.subarray(0, CONTENT_KEY_BYTES),
    );
    return { ephemeralPublicKey: ephemeral.publicKey, wrapped };
  });
  return { header, nonce, ciphertext, entries };
}

/** Opens a raw sealed report as recipient `index`: unwrap, decrypt, verify. Throws on failure. */
export function rawOpenReport(
  s: Sodium,
  sealed: RawSealedReport,
  messageBytes: number,
  index: number,
  keys: RawReportKeys,
): Uint8Array {
  const entry = sealed.entries[index];
  const recipient = keys.recipients[index];
  if (entry === undefined || recipient === undefined) throw new RangeError("no such recipient");
  const shared = s.crypto_scalarmult(recipient.privateKey, entry.ephemeralPublicKey);
  const okm = s.crypto_generichash(KEK_AND_NONCE_BYTES, entry.ephemeralPublicKey, shared);
  const contentKey = s.crypto_aead_xchacha20poly1305_ietf_decrypt(
    null,
    entry.wrapped,
    sealed.header,
    okm.subarray(CONTENT_KEY_BYTES),
    okm.subarray(0, CONTENT_KEY_BYTES),
  );
  const padded = s.crypto_aead_xchacha20poly1305_ietf_decrypt(
    null,
    sealed.ciphertext,
    sealed.header,
    sealed.nonce,
    contentKey,
  );
  const message = padded.subarray(0, messageBytes);
  const signature = padded.subarray(messageBytes, messageBytes + 64);
  if (!s.crypto_sign_verify_detached(signature, message, keys.signingPublicKey)) throw new Error("bad signature");
  return message;
}

/** One secret key wrapped to one recipient: key pair, X25519, BLAKE2b, XChaCha20-Poly1305. */
export function rawWrapKey(s: Sodium, contentKey: Uint8Array, recipientPublicKey: Uint8Array, ad: Uint8Array) {
  const ephemeral = freshBoxKeyPair(s);
  const shared = s.crypto_scalarmult(ephemeral.privateKey, recipientPublicKey);
  const okm = s.crypto_generichash(KEK_AND_NONCE_BYTES, ephemeral.publicKey, shared);
  return s.crypto_aead_xchacha20poly1305_ietf_encrypt(
    contentKey,
    ad,
    null,
    okm.subarray(CONTENT_KEY_BYTES),
    okm.subarray(0, CONTENT_KEY_BYTES),
  );
}

export interface RawSealedPhoto {
  readonly key: Uint8Array;
  readonly header: Uint8Array;
  readonly chunks: readonly Uint8Array[];
}

/** crypto_secretstream_xchacha20poly1305 push over `photo` in `chunkBytes` chunks; the last is FINAL. */
export function rawSealPhoto(s: Sodium, photo: Uint8Array, chunkBytes: number): RawSealedPhoto {
  const key = random(s.crypto_secretstream_xchacha20poly1305_KEYBYTES);
  const { state, header } = s.crypto_secretstream_xchacha20poly1305_init_push(key);
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < photo.length; offset += chunkBytes) {
    const end = Math.min(offset + chunkBytes, photo.length);
    const tag =
      end === photo.length
        ? s.crypto_secretstream_xchacha20poly1305_TAG_FINAL
        : s.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
    chunks.push(s.crypto_secretstream_xchacha20poly1305_push(state, photo.subarray(offset, end), null, tag));
  }
  return { key, header, chunks };
}

/** crypto_secretstream_xchacha20poly1305 pull of every chunk; throws on any failure or a missing FINAL. */
export function rawOpenPhoto(s: Sodium, sealed: RawSealedPhoto): Uint8Array[] {
  const state = s.crypto_secretstream_xchacha20poly1305_init_pull(sealed.header, sealed.key);
  const out: Uint8Array[] = [];
  let final = false;
  for (const chunk of sealed.chunks) {
    const pulled = s.crypto_secretstream_xchacha20poly1305_pull(state, chunk, null);
    if (!pulled) throw new Error("chunk failed to open");
    out.push(pulled.message);
    final = pulled.tag === s.crypto_secretstream_xchacha20poly1305_TAG_FINAL;
  }
  if (!final) throw new Error("stream truncated");
  return out;
}

/** SHA-256 of the photo (which the construction must publish), then the secretstream push. */
export function rawHashAndSealPhoto(s: Sodium, photo: Uint8Array, chunkBytes: number) {
  const digest = s.crypto_hash_sha256(photo);
  return { digest, sealed: rawSealPhoto(s, photo, chunkBytes) };
}

/** Secretstream pull of every chunk with an incremental SHA-256 of the plaintext, as a verifier needs. */
export function rawOpenAndHashPhoto(s: Sodium, sealed: RawSealedPhoto): Uint8Array {
  const state = s.crypto_secretstream_xchacha20poly1305_init_pull(sealed.header, sealed.key);
  const hash = s.crypto_hash_sha256_init();
  let final = false;
  for (const chunk of sealed.chunks) {
    const pulled = s.crypto_secretstream_xchacha20poly1305_pull(state, chunk, null);
    if (!pulled) throw new Error("chunk failed to open");
    s.crypto_hash_sha256_update(hash, pulled.message);
    final = pulled.tag === s.crypto_secretstream_xchacha20poly1305_TAG_FINAL;
  }
  if (!final) throw new Error("stream truncated");
  return s.crypto_hash_sha256_final(hash);
}
