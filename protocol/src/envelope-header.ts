// The outer layout of a sealed envelope: the only part the relay reads. Everything after the
// header is opaque to the relay; envelope.ts builds and opens the rest.
//
//   offset  size         field
//   0       1            version (0x01)
//   1       16           campaign id (raw bytes of the base64url campaign id)
//   17      16           message id (random; the relay's idempotency key)
//   33      1            bucket index (padding.ts)
//   34      1            recipient count R (1..MAX_RECIPIENTS)
//   35      R * 88       recipients: key id (8) || ephemeral X25519 public key (32) || wrapped content key (32 + 16)
//   35+88R  24           XChaCha20-Poly1305 nonce
//   59+88R  size(b) + 16 ciphertext of the padded inner message, with its tag
//
// The header (bytes 0..34, 35 bytes with the recipient count) is the associated data of every
// AEAD in the envelope, so none of it can be changed without the coordinator noticing.
import { fromBase64url, toBase64url } from "./bytes.js";
import { Malformed, UnsupportedVersion } from "./errors.js";
import { MAX_RECIPIENTS } from "./limits.js";
import { bucketSize } from "./padding.js";

export const ENVELOPE_VERSION = 1;
export const ENVELOPE_HEADER_BYTES = 35;
export const RECIPIENT_ENTRY_BYTES = 8 + 32 + 32 + 16;
export const ENVELOPE_NONCE_BYTES = 24;
export const ENVELOPE_TAG_BYTES = 16;

export interface EnvelopeHeader {
  readonly version: number;
  readonly campaignId: string; // base64url, 16 bytes
  readonly messageId: string; // base64url, 16 bytes
  readonly bucket: number;
  readonly recipientCount: number;
}

/** Total envelope length for a bucket and a recipient count, or undefined if either is invalid. */
export function envelopeLength(bucket: number, recipientCount: number): number | undefined {
  const size = bucketSize(bucket);
  if (size === undefined || !Number.isInteger(recipientCount)) return undefined;
  if (recipientCount < 1 || recipientCount > MAX_RECIPIENTS) return undefined;
  return (
    ENVELOPE_HEADER_BYTES + recipientCount * RECIPIENT_ENTRY_BYTES + ENVELOPE_NONCE_BYTES + size + ENVELOPE_TAG_BYTES
  );
}

export function encodeEnvelopeHeader(header: EnvelopeHeader): Uint8Array {
  const campaign = fromBase64url(header.campaignId);
  const message = fromBase64url(header.messageId);
  if (campaign?.length !== 16 || message?.length !== 16)
    throw new Malformed("campaign and message ids must be 16 bytes");
  if (envelopeLength(header.bucket, header.recipientCount) === undefined) {
    throw new Malformed("invalid bucket or recipient count");
  }
  const out = new Uint8Array(ENVELOPE_HEADER_BYTES);
  out[0] = header.version;
  out.set(campaign, 1);
  out.set(message, 17);
  out[33] = header.bucket;
  out[34] = header.recipientCount;
  return out;
}

/**
 * Parses and checks the header of an envelope, including that the total length matches the
 * bucket and recipient count. This is all the relay verifies: it cannot open the rest.
 */
export function readEnvelopeHeader(envelope: Uint8Array): EnvelopeHeader {
  if (envelope.length < ENVELOPE_HEADER_BYTES) throw new Malformed("envelope shorter than its header");
  const version = envelope[0] as number;
  if (version !== ENVELOPE_VERSION) throw new UnsupportedVersion(`envelope version ${version} is not supported`);
  const bucket = envelope[33] as number;
  const recipientCount = envelope[34] as number;
  const expected = envelopeLength(bucket, recipientCount);
  if (expected === undefined) throw new Malformed("envelope has an invalid bucket or recipient count");
  if (envelope.length !== expected) {
    throw new Malformed(`envelope is ${envelope.length} bytes; its bucket and recipients require ${expected}`);
  }
  return {
    version,
    campaignId: toBase64url(envelope.subarray(1, 17)),
    messageId: toBase64url(envelope.subarray(17, 33)),
    bucket,
    recipientCount,
  };
}
