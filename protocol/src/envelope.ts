// Sealing and opening report envelopes (layout in envelope-header.ts; spec/envelopes.md).
//
// Inner plaintext, padded with zeros to the bucket size:
//   signingPublicKey(32) || signature(64) || u32be(jsonLength) || json || 0x00...
// signature = Ed25519(volunteer, "testigo/v1/report" || 0x00 || header(35) || json), so a signed
// message cannot be moved to another envelope, campaign or message id.
// The padded plaintext is encrypted once with XChaCha20-Poly1305 under a fresh content key, with
// header(35) || every recipient entry as associated data; the content key is wrapped (key-wrap.ts)
// to each coordinator device with header(35) as associated data.
//
// Opening fails with the one DecryptionFailed whatever went wrong, header included.
import { concatBytes, fromUtf8, randomBytes, readU32be, u32be, utf8, wipe } from "./bytes.js";
import { DOMAIN } from "./domain.js";
import {
  ENVELOPE_HEADER_BYTES,
  ENVELOPE_NONCE_BYTES,
  ENVELOPE_VERSION,
  type EnvelopeHeader,
  encodeEnvelopeHeader,
  RECIPIENT_ENTRY_BYTES,
  readEnvelopeHeader,
} from "./envelope-header.js";
import { DecryptionFailed, Malformed } from "./errors.js";
import { decodeWrappedKey, encodeWrappedKey, keyIdOf, unwrapKey, wrapKey } from "./key-wrap.js";
import {
  type EncryptionKeyPair,
  PUBLIC_KEY_BYTES,
  SIGNATURE_BYTES,
  type SigningKeyPair,
  signWithDomain,
  verifyWithDomain,
} from "./keys.js";
import { MAX_RECIPIENTS } from "./limits.js";
import { bucketFor, bucketSize } from "./padding.js";
import { AEAD_KEY_BYTES, xchachaDecrypt, xchachaEncrypt } from "./primitives.js";
import { checkInnerMessage, type InnerMessage, innerMessage } from "./report.js";
import { sodium } from "./sodium.js";

/** signing key(32) + signature(64) + length(4) in front of the JSON. */
export const INNER_FRAMING_BYTES = PUBLIC_KEY_BYTES + SIGNATURE_BYTES + 4;

export interface SealOptions {
  readonly campaignId: string;
  /** Must equal message.messageId when given; the message's own id is used otherwise. */
  readonly messageId?: string;
  readonly sender: SigningKeyPair;
  /** The coordinator devices' current epoch encryption keys. */
  readonly recipients: readonly { readonly publicKey: Uint8Array }[];
  readonly message: InnerMessage;
  /** Test vectors only: never pass this in use; every envelope needs fresh randomness. */
  readonly fixed?: {
    readonly contentKey: Uint8Array;
    readonly nonce: Uint8Array;
    readonly ephemeralSeeds: readonly Uint8Array[];
  };
}

export interface SealedEnvelope {
  readonly envelope: Uint8Array;
  readonly messageId: string;
}

/**
 * The size bucket an envelope carrying `message` falls in (what the relay and the network see of
 * it): a decoy's cover acta is built to land in the bucket of the acta it stands for.
 */
export function envelopeBucketOf(message: InnerMessage): number {
  return bucketForJson(utf8(JSON.stringify(message)).length);
}

/** The bucket of an inner message whose JSON takes `jsonBytes` bytes (framing added). */
function bucketForJson(jsonBytes: number): number {
  return bucketFor(INNER_FRAMING_BYTES + jsonBytes);
}

/** The inner signed bytes: header(35) || json. */
function signedBytes(header: Uint8Array, json: Uint8Array): Uint8Array {
  return concatBytes(header, json);
}

/**
 * Signs, pads, encrypts and wraps a report for every recipient. Throws TextRejected for a text or
 * table code a person must change, Malformed for a message that fails its schema or does not
 * match the campaign / message id, TooLarge if it exceeds the largest bucket.
 */
export function sealEnvelope(options: SealOptions): SealedEnvelope {
  const message = checkInnerMessage(options.message);
  const messageId = options.messageId ?? message.messageId;
  if (message.messageId !== messageId) throw new Malformed("message.messageId must equal the envelope's message id");
  if (message.campaignId !== options.campaignId) throw new Malformed("message.campaignId must equal the campaign id");
  const recipients = options.recipients;
  if (recipients.length < 1 || recipients.length > MAX_RECIPIENTS) {
    throw new Malformed(`an envelope needs 1 to ${MAX_RECIPIENTS} recipients`);
  }
  const keyIds = new Set(recipients.map((r) => keyIdOf(r.publicKey).join(",")));
  if (keyIds.size !== recipients.length) throw new Malformed("duplicate recipient keys");
  const fixed = options.fixed;
  if (fixed !== undefined && fixed.ephemeralSeeds.length !== recipients.length) {
    throw new Malformed("fixed.ephemeralSeeds needs one seed per recipient");
  }

  const json = utf8(JSON.stringify(message));
  const bucket = bucketForJson(json.length);
  const size = bucketSize(bucket) as number;
  const header = encodeEnvelopeHeader({
    version: ENVELOPE_VERSION,
    campaignId: options.campaignId,
    messageId,
    bucket,
    recipientCount: recipients.length,
  });
  const signature = signWithDomain(DOMAIN.reportSignature, signedBytes(header, json), options.sender.privateKey);

  const padded = new Uint8Array(size);
  padded.set(options.sender.publicKey, 0);
  padded.set(signature, PUBLIC_KEY_BYTES);
  padded.set(u32be(json.length), PUBLIC_KEY_BYTES + SIGNATURE_BYTES);
  padded.set(json, INNER_FRAMING_BYTES);

  const contentKey = fixed === undefined ? randomBytes(AEAD_KEY_BYTES) : fixed.contentKey.slice();
  const nonce = fixed === undefined ? randomBytes(ENVELOPE_NONCE_BYTES) : fixed.nonce;
  if (contentKey.length !== AEAD_KEY_BYTES || nonce.length !== ENVELOPE_NONCE_BYTES) {
    throw new Malformed("fixed content key must be 32 bytes and nonce 24 bytes");
  }
  try {
    const entries = recipients.map((recipient, i) =>
      encodeWrappedKey(wrapKey(contentKey, recipient.publicKey, header, fixed?.ephemeralSeeds[i])),
    );
    const ciphertext = xchachaEncrypt(padded, concatBytes(header, ...entries), nonce, contentKey);
    return { envelope: concatBytes(header, ...entries, nonce, ciphertext), messageId };
  } finally {
    wipe(contentKey);
    wipe(padded);
  }
}

/**
 * Decides whether the (signature-verified) sender may speak in this campaign: return a truthy
 * value (true, or the volunteer's record) to accept, or false / undefined / null to reject.
 * An `enrolled` message comes from a key not yet known: check its invite proof here.
 */
export type SenderCheck<T> = (signingKey: Uint8Array, message: InnerMessage) => T | false | null | undefined;

export interface OpenOptions<T> {
  readonly campaignId: string;
  /** This device's epoch key(s); the entry is picked by key id. */
  readonly recipient: EncryptionKeyPair | readonly EncryptionKeyPair[];
  readonly senderKnown: SenderCheck<T>;
}

export interface OpenedEnvelope<T> {
  readonly header: EnvelopeHeader;
  readonly message: InnerMessage;
  readonly senderSigningKey: Uint8Array;
  /** What `senderKnown` returned. */
  readonly sender: T;
}

function findContentKey(
  envelope: Uint8Array,
  header: EnvelopeHeader,
  keys: readonly EncryptionKeyPair[],
): Uint8Array | undefined {
  const headerBytes = envelope.subarray(0, ENVELOPE_HEADER_BYTES);
  for (const key of keys) {
    const keyId = keyIdOf(key.publicKey);
    for (let i = 0; i < header.recipientCount; i++) {
      const start = ENVELOPE_HEADER_BYTES + i * RECIPIENT_ENTRY_BYTES;
      const entry = decodeWrappedKey(envelope.subarray(start, start + RECIPIENT_ENTRY_BYTES));
      if (entry === undefined || !sodium().memcmp(entry.keyId, keyId)) continue;
      const contentKey = unwrapKey(entry, key, headerBytes);
      if (contentKey !== undefined) return contentKey;
    }
  }
  return undefined;
}

/** Parses zero-padded framing and verifies the signature; undefined on any mismatch. */
function readSignedInner(padded: Uint8Array, headerBytes: Uint8Array) {
  if (padded.length < INNER_FRAMING_BYTES) return undefined;
  const jsonLength = readU32be(padded, PUBLIC_KEY_BYTES + SIGNATURE_BYTES);
  if (jsonLength > padded.length - INNER_FRAMING_BYTES) return undefined;
  const end = INNER_FRAMING_BYTES + jsonLength;
  if (!sodium().is_zero(padded.subarray(end))) return undefined;
  const signingKey = padded.slice(0, PUBLIC_KEY_BYTES);
  const signature = padded.subarray(PUBLIC_KEY_BYTES, PUBLIC_KEY_BYTES + SIGNATURE_BYTES);
  const json = padded.subarray(INNER_FRAMING_BYTES, end);
  if (!verifyWithDomain(DOMAIN.reportSignature, signedBytes(headerBytes, json), signature, signingKey)) {
    return undefined;
  }
  return { signingKey, json };
}

type Verified = Omit<OpenedEnvelope<unknown>, "sender">;

function open(envelope: Uint8Array, options: OpenOptions<unknown>): Verified | undefined {
  const header = readEnvelopeHeader(envelope);
  if (header.campaignId !== options.campaignId) return undefined;
  const keys: readonly EncryptionKeyPair[] = Array.isArray(options.recipient)
    ? options.recipient
    : [options.recipient as EncryptionKeyPair];
  const contentKey = findContentKey(envelope, header, keys);
  if (contentKey === undefined) return undefined;
  const entriesEnd = ENVELOPE_HEADER_BYTES + header.recipientCount * RECIPIENT_ENTRY_BYTES;
  const nonce = envelope.subarray(entriesEnd, entriesEnd + ENVELOPE_NONCE_BYTES);
  const ciphertext = envelope.subarray(entriesEnd + ENVELOPE_NONCE_BYTES);
  const padded = xchachaDecrypt(ciphertext, envelope.subarray(0, entriesEnd), nonce, contentKey);
  wipe(contentKey);
  if (padded === undefined) return undefined;
  try {
    const inner = readSignedInner(padded, envelope.subarray(0, ENVELOPE_HEADER_BYTES));
    if (inner === undefined) return undefined;
    const parsed = innerMessage.safeParse(JSON.parse(fromUtf8(inner.json)));
    if (!parsed.success) return undefined;
    const message = parsed.data;
    if (message.messageId !== header.messageId || message.campaignId !== header.campaignId) return undefined;
    return { header, message, senderSigningKey: inner.signingKey };
  } finally {
    wipe(padded);
  }
}

/**
 * Opens an envelope addressed to one of `recipient`'s keys, checks the volunteer's signature,
 * the schema, the ids and that the sender is known. Any failure — including a bad header or an
 * unsupported version — throws DecryptionFailed, with no detail. (The relay reads headers with
 * readEnvelopeHeader, which does give precise errors.) An exception thrown by `senderKnown`
 * itself (e.g. a storage error) propagates unchanged, so a caller never mistakes its own
 * failure for a forged report and drops a genuine one.
 */
export function openEnvelope<T>(envelope: Uint8Array, options: OpenOptions<T>): OpenedEnvelope<T> {
  let verified: Verified | undefined;
  try {
    verified = open(envelope, options);
  } catch {
    verified = undefined;
  }
  if (verified === undefined) throw new DecryptionFailed();
  const sender = options.senderKnown(verified.senderSigningKey, verified.message);
  if (sender === undefined || sender === null || sender === false) throw new DecryptionFailed();
  return { ...verified, sender };
}
