// Why a control message that openControl refused was refused, for the security notice that
// protocol/spec/photos-control.md §2.3 requires ("a message that decrypted for this device but is
// refused in steps 3–5 MUST be reported"). openControl answers one DecryptionFailed whatever went
// wrong (as it must towards a sender); the device itself needs to know:
//
//   not for me     steps 1–2 fail (filler slots, another pseudonym's messages): never reported
//   replayed       opens when every signer's last counter is taken as 0
//   expired        opens when `now` is its own (claimed) expiresAt: the signature verified
//   forged         anything else that decrypted: signature, schema, campaign, target or signer
//
// Steps 1–2 (layout, unwrap, decrypt) are the spec's, done with the protocol package's own
// primitives and constants; this module adds no cryptography. (It belongs in @testigo/protocol
// next to openControl; it lives here until that package offers it.)
import {
  CONTROL_MESSAGE_BYTES,
  CONTROL_MESSAGE_ID_BYTES,
  CONTROL_VERSION,
  DOMAIN,
  decodeWrappedKey,
  type EncryptionKeyPair,
  fromBase64url,
  fromUtf8,
  type OpenControlInput,
  openControl,
  type SECURITY_NOTICE_REASONS,
  separated,
  unwrapKey,
  utf8,
  WRAP_ENTRY_BYTES,
  XCHACHA_NONCE_BYTES,
  xchachaDecrypt,
} from "@testigo/protocol";

export type RefusalReason = (typeof SECURITY_NOTICE_REASONS)[number];

const HEADER_BYTES = 1 + CONTROL_MESSAGE_ID_BYTES;
const NONCE_OFFSET = HEADER_BYTES + WRAP_ENTRY_BYTES;
const CIPHERTEXT_OFFSET = NONCE_OFFSET + XCHACHA_NONCE_BYTES;
const SIGNATURE_BYTES = 64;

/** Steps 1–2 of spec §2.3: the padded plaintext if the message was encrypted to `me`, else undefined. */
function decryptForMe(
  message: Uint8Array,
  campaignId: string,
  me: { readonly pseudonym: string; readonly encryption: EncryptionKeyPair },
): Uint8Array | undefined {
  if (message.length !== CONTROL_MESSAGE_BYTES || message[0] !== CONTROL_VERSION) return undefined;
  const campaign = fromBase64url(campaignId);
  if (campaign?.length !== 16) return undefined;
  const header = message.subarray(0, HEADER_BYTES);
  const ad = separated(DOMAIN.controlWrap, header, campaign, utf8(me.pseudonym));
  const entry = decodeWrappedKey(message.subarray(HEADER_BYTES, NONCE_OFFSET));
  if (entry === undefined) return undefined;
  const contentKey = unwrapKey(entry, me.encryption, ad);
  if (contentKey === undefined) return undefined;
  const plaintext = xchachaDecrypt(
    message.subarray(CIPHERTEXT_OFFSET),
    ad,
    message.subarray(NONCE_OFFSET, CIPHERTEXT_OFFSET),
    contentKey,
  );
  contentKey.fill(0);
  return plaintext;
}

/** The claimed (unverified) expiresAt of a decrypted control plaintext, if it has one. */
function claimedExpiry(plaintext: Uint8Array): number | undefined {
  const length = ((plaintext[SIGNATURE_BYTES] ?? 0) << 8) | (plaintext[SIGNATURE_BYTES + 1] ?? 0);
  const start = SIGNATURE_BYTES + 2;
  if (length < 2 || start + length > plaintext.length) return undefined;
  try {
    const value: unknown = JSON.parse(fromUtf8(plaintext.subarray(start, start + length)));
    const expiresAt = (value as { expiresAt?: unknown } | null)?.expiresAt;
    return typeof expiresAt === "number" && Number.isSafeInteger(expiresAt) ? expiresAt : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Classifies a message that openControl(message, input) refused: undefined if it was not for this
 * device at all (not to be reported), else the security-notice reason.
 */
export function refusalReason(message: Uint8Array, input: OpenControlInput): RefusalReason | undefined {
  const plaintext = decryptForMe(message, input.campaignId, input.me);
  if (plaintext === undefined) return undefined;
  const expiresAt = claimedExpiry(plaintext);
  plaintext.fill(0);
  const opens = (relaxed: Partial<OpenControlInput>): boolean => {
    try {
      openControl(message, { ...input, ...relaxed });
      return true;
    } catch {
      return false;
    }
  };
  if (opens({ lastCounterOf: () => 0 })) return "replayed-control";
  if (expiresAt !== undefined && expiresAt < input.now && opens({ now: expiresAt, lastCounterOf: () => 0 })) {
    return "expired-control";
  }
  return "forged-control";
}
