// Control messages from a coordinator device to one volunteer (wipe, notice, receipt).
//
// The payload is JSON, signed by a roster device's Ed25519 key, padded to a fixed size and
// encrypted to the volunteer's X25519 key, so every control message on the wire is exactly
// CONTROL_MESSAGE_BYTES: a wipe looks like a notice. Layout (spec/photos-control.md):
//
//   offset  size  field
//   0       1     version (0x01)
//   1       16    message id (random)
//   17      88    key-wrap entry of the content key (key-wrap.ts) for the volunteer's X25519 key
//   105     24    XChaCha20-Poly1305 nonce
//   129     895   ciphertext of: signature(64) || u16be(len) || json(len) || zeros, and its 16-byte tag
//
//   ad        = "testigo/v1/control-wrap" || 0x00 || version || messageId || campaignId(16) || pseudonym (ASCII)
//   signature = Ed25519(coordinator, "testigo/v1/control" || 0x00 || version || messageId || json)
//
// Both the key wrap and the AEAD take `ad`, so a message opens only for the campaign and the
// pseudonym it was made for. The opener verifies the signature against every roster device key
// BEFORE parsing the JSON, then checks campaign, target, signer id, counter and expiry. Every
// failure is the one DecryptionFailed.
//
// Replay protection: the volunteer keeps the last accepted counter per roster device id, and a
// counter (a millisecond time on the coordinator device) may not be more than
// MAX_CONTROL_CLOCK_SKEW_MS ahead of the volunteer's clock, nor may issuedAt.
import { z } from "zod";
import { concatBytes, fromBase64url, fromUtf8, randomBytes, utf8, wipe } from "./bytes.js";
import { DOMAIN, separated } from "./domain.js";
import { DecryptionFailed, Malformed, TooLarge } from "./errors.js";
import { decodeWrappedKey, encodeWrappedKey, unwrapKey, WRAP_ENTRY_BYTES, wrapKey } from "./key-wrap.js";
import { type EncryptionKeyPair, type SigningKeyPair, signWithDomain, verifyWithDomain } from "./keys.js";
import { CONTROL_MESSAGE_BYTES } from "./limits.js";
import { AEAD_KEY_BYTES, AEAD_TAG_BYTES, XCHACHA_NONCE_BYTES, xchachaDecrypt, xchachaEncrypt } from "./primitives.js";
import { type Roster, rosterDeviceKeys } from "./roster.js";
import { campaignId, messageId, pseudonym, shortId, timestamp } from "./schemas/common.js";

export const CONTROL_VERSION = 1;
export const CONTROL_MESSAGE_ID_BYTES = 16;
const HEADER_BYTES = 1 + CONTROL_MESSAGE_ID_BYTES;
const NONCE_OFFSET = HEADER_BYTES + WRAP_ENTRY_BYTES;
const CIPHERTEXT_OFFSET = NONCE_OFFSET + XCHACHA_NONCE_BYTES;
const SIGNATURE_BYTES = 64;
const LENGTH_BYTES = 2;
/** Plaintext inside the AEAD: signature, length, JSON and zero padding. */
export const CONTROL_PLAINTEXT_BYTES = CONTROL_MESSAGE_BYTES - CIPHERTEXT_OFFSET - AEAD_TAG_BYTES;
/** Largest signed JSON payload a control message carries. */
export const MAX_CONTROL_JSON_BYTES = CONTROL_PLAINTEXT_BYTES - SIGNATURE_BYTES - LENGTH_BYTES;

export const MAX_NOTICE_CHARS = 300;
/** UTF-8 bytes of a notice's text as a JSON string (escapes and quotes included), so any valid notice fits. */
export const MAX_NOTICE_JSON_BYTES = 520;
export const MAX_RECEIPT_IDS = 16;
/** A control message may not live longer than this (an old signed wipe must not stay usable). */
export const MAX_CONTROL_LIFETIME_MS = 30 * 24 * 60 * 60 * 1000;
/**
 * How far a control message's `issuedAt` and `counter` may be ahead of the volunteer's clock.
 * Counters are milliseconds (max(last sent + 1, now) on the coordinator device), so this bound
 * stops one signed message from pushing a device's counter far into the future and blocking every
 * later message of that device (a counter of 2^53 − 1 would block it forever).
 */
export const MAX_CONTROL_CLOCK_SKEW_MS = 60 * 60 * 1000;

export const CONTROL_KIND = { wipe: "wipe", notice: "notice", receipt: "receipt" } as const;
export type ControlKind = (typeof CONTROL_KIND)[keyof typeof CONTROL_KIND];

const common = {
  v: z.literal(CONTROL_VERSION),
  campaignId,
  to: pseudonym,
  from: shortId, // the coordinator device id in the roster
  counter: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER), // per (signing device, volunteer), strictly increasing
  issuedAt: timestamp,
  expiresAt: timestamp,
};

const noticeText = z
  .string()
  .min(1)
  .max(MAX_NOTICE_CHARS)
  .regex(/^[^\p{Cc}\p{Cf}]+$/u, "must not contain control or format characters")
  .refine((text) => utf8(JSON.stringify(text)).length <= MAX_NOTICE_JSON_BYTES, {
    message: `must encode to at most ${MAX_NOTICE_JSON_BYTES} bytes of JSON`,
  });

export const controlPayload = z
  .discriminatedUnion("kind", [
    z.strictObject({ kind: z.literal(CONTROL_KIND.wipe), ...common, ackBy: timestamp }),
    z.strictObject({ kind: z.literal(CONTROL_KIND.notice), ...common, text: noticeText }),
    z.strictObject({
      kind: z.literal(CONTROL_KIND.receipt),
      ...common,
      messageIds: z.array(messageId).min(1).max(MAX_RECEIPT_IDS),
    }),
  ])
  .refine((p) => p.expiresAt > p.issuedAt && p.expiresAt - p.issuedAt <= MAX_CONTROL_LIFETIME_MS, {
    message: `expiresAt must be after issuedAt, by at most ${MAX_CONTROL_LIFETIME_MS} ms`,
  });

export type ControlPayload = z.infer<typeof controlPayload>;

export interface SealControlInput {
  readonly campaignId: string;
  readonly to: { readonly pseudonym: string; readonly encryptionKey: Uint8Array };
  readonly signer: { readonly deviceId: string; readonly signing: SigningKeyPair };
  readonly payload: ControlPayload;
  /** Test vectors only: every random input fixed. */
  readonly fixed?: {
    readonly messageId: Uint8Array;
    readonly contentKey: Uint8Array;
    readonly ephemeralSeed: Uint8Array;
    readonly nonce: Uint8Array;
  };
}

export interface SealedControl {
  readonly message: Uint8Array; // exactly CONTROL_MESSAGE_BYTES
  readonly messageId: Uint8Array; // 16 bytes
}

export interface OpenControlInput {
  readonly campaignId: string;
  readonly me: { readonly pseudonym: string; readonly encryption: EncryptionKeyPair };
  /** Roster device id → Ed25519 signing key (see controlSignersOf). */
  readonly signers: ReadonlyMap<string, Uint8Array>;
  /**
   * Highest counter accepted so far from roster device `deviceId` (0 if none). Counters are kept
   * PER SIGNING DEVICE: one device's counters (or its clock) never block another's messages. The
   * caller stores the opened message's counter under the returned `signerId`.
   */
  readonly lastCounterOf: (deviceId: string) => number;
  /** Milliseconds since the Unix epoch. */
  readonly now: number;
}

export interface OpenedControl {
  readonly payload: ControlPayload;
  readonly messageId: Uint8Array;
  /** The roster device whose key verified the signature (always equal to `payload.from`). */
  readonly signerId: string;
}

/** The signing keys of a verified roster's devices, by device id. */
export function controlSignersOf(roster: Roster): Map<string, Uint8Array> {
  return new Map(roster.devices.map((device) => [device.id, rosterDeviceKeys(device).signingKey]));
}

function controlAd(header: Uint8Array, campaign: string, target: string): Uint8Array | undefined {
  const campaignBytes = fromBase64url(campaign);
  if (campaignBytes?.length !== 16) return undefined;
  return separated(DOMAIN.controlWrap, header, campaignBytes, utf8(target));
}

/** Signs, pads and encrypts a control message to one volunteer. Throws Malformed / TooLarge on bad input. */
export function sealControl(input: SealControlInput): SealedControl {
  const parsed = controlPayload.safeParse(input.payload);
  if (!parsed.success) throw new Malformed(`invalid control payload: ${parsed.error.issues[0]?.message ?? ""}`);
  const payload = parsed.data;
  if (
    payload.campaignId !== input.campaignId ||
    payload.to !== input.to.pseudonym ||
    payload.from !== input.signer.deviceId
  ) {
    throw new Malformed("control payload campaignId, to and from must match the campaign, recipient and signer");
  }
  const fixed = input.fixed;
  const id = fixed?.messageId ?? randomBytes(CONTROL_MESSAGE_ID_BYTES);
  const nonce = fixed?.nonce ?? randomBytes(XCHACHA_NONCE_BYTES);
  if (id.length !== CONTROL_MESSAGE_ID_BYTES || nonce.length !== XCHACHA_NONCE_BYTES) {
    throw new Malformed("fixed message id must be 16 bytes and nonce 24 bytes");
  }
  const header = new Uint8Array(HEADER_BYTES);
  header[0] = CONTROL_VERSION;
  header.set(id, 1);
  const ad = controlAd(header, input.campaignId, input.to.pseudonym);
  if (ad === undefined) throw new Malformed("campaign id must be base64url of 16 bytes");

  const json = utf8(JSON.stringify(payload));
  if (json.length > MAX_CONTROL_JSON_BYTES) {
    throw new TooLarge(`control payload of ${json.length} bytes exceeds ${MAX_CONTROL_JSON_BYTES} bytes`);
  }
  const signature = signWithDomain(DOMAIN.controlSignature, concatBytes(header, json), input.signer.signing.privateKey);
  const plaintext = new Uint8Array(CONTROL_PLAINTEXT_BYTES); // zeros: the padding
  plaintext.set(signature, 0);
  new DataView(plaintext.buffer).setUint16(SIGNATURE_BYTES, json.length, false);
  plaintext.set(json, SIGNATURE_BYTES + LENGTH_BYTES);

  const contentKey = fixed?.contentKey ?? randomBytes(AEAD_KEY_BYTES);
  const entry = wrapKey(contentKey, input.to.encryptionKey, ad, fixed?.ephemeralSeed);
  const ciphertext = xchachaEncrypt(plaintext, ad, nonce, contentKey);
  wipe(plaintext);
  if (fixed === undefined) wipe(contentKey);
  const message = concatBytes(header, encodeWrappedKey(entry), nonce, ciphertext);
  if (message.length !== CONTROL_MESSAGE_BYTES)
    throw new Malformed(
      `sealControl built ${message.length} bytes instead of ${CONTROL_MESSAGE_BYTES}: a bug in @testigo/protocol, report it`,
    );
  return { message, messageId: id };
}

function isZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (const byte of bytes) acc |= byte;
  return acc === 0;
}

/**
 * Opens a control message meant for `me`: decrypts it, checks the padding, verifies the
 * signature against the roster, then the campaign, target, signer id, counter (above that
 * device's last one, at most now + MAX_CONTROL_CLOCK_SKEW_MS), issuedAt (same bound) and expiry.
 * Anything wrong (including a replayed counter or an expired message) throws DecryptionFailed.
 * A refused message that did decrypt should be reported (security-notice, spec §2.3).
 */
export function openControl(message: Uint8Array, input: OpenControlInput): OpenedControl {
  if (message.length !== CONTROL_MESSAGE_BYTES || message[0] !== CONTROL_VERSION) throw new DecryptionFailed();
  const header = message.subarray(0, HEADER_BYTES);
  const ad = controlAd(header, input.campaignId, input.me.pseudonym);
  const entry = decodeWrappedKey(message.subarray(HEADER_BYTES, NONCE_OFFSET));
  if (ad === undefined || entry === undefined) throw new DecryptionFailed();
  const contentKey = unwrapKey(entry, input.me.encryption, ad);
  if (contentKey === undefined) throw new DecryptionFailed();
  const plaintext = xchachaDecrypt(
    message.subarray(CIPHERTEXT_OFFSET),
    ad,
    message.subarray(NONCE_OFFSET, CIPHERTEXT_OFFSET),
    contentKey,
  );
  wipe(contentKey);
  if (plaintext?.length !== CONTROL_PLAINTEXT_BYTES) throw new DecryptionFailed();
  try {
    return checkPlaintext(plaintext, header, input);
  } finally {
    wipe(plaintext);
  }
}

function checkPlaintext(plaintext: Uint8Array, header: Uint8Array, input: OpenControlInput): OpenedControl {
  const length = new DataView(plaintext.buffer, plaintext.byteOffset).getUint16(SIGNATURE_BYTES, false);
  const start = SIGNATURE_BYTES + LENGTH_BYTES;
  if (length < 2 || length > MAX_CONTROL_JSON_BYTES || !isZero(plaintext.subarray(start + length))) {
    throw new DecryptionFailed();
  }
  const signature = plaintext.slice(0, SIGNATURE_BYTES);
  const json = plaintext.slice(start, start + length);
  const signed = concatBytes(header, json);
  // Verify before parsing: try every roster device (at most MAX_RECIPIENTS), remember which one.
  let signerId: string | undefined;
  for (const [id, key] of input.signers) {
    if (verifyWithDomain(DOMAIN.controlSignature, signed, signature, key)) {
      signerId = id;
      break;
    }
  }
  if (signerId === undefined) throw new DecryptionFailed();
  let value: unknown;
  try {
    value = JSON.parse(fromUtf8(json));
  } catch {
    throw new DecryptionFailed();
  }
  const parsed = controlPayload.safeParse(value);
  if (!parsed.success) throw new DecryptionFailed();
  const payload = parsed.data;
  const last = input.lastCounterOf(signerId);
  const horizon = input.now + MAX_CONTROL_CLOCK_SKEW_MS;
  if (
    payload.campaignId !== input.campaignId ||
    payload.to !== input.me.pseudonym ||
    payload.from !== signerId ||
    !(payload.counter > last) ||
    !(payload.counter <= horizon) ||
    !(payload.issuedAt <= horizon) ||
    !(input.now <= payload.expiresAt)
  ) {
    throw new DecryptionFailed();
  }
  return { payload, messageId: header.slice(1, HEADER_BYTES), signerId };
}
