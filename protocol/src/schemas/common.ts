// Building blocks for the wire schemas: byte strings as base64url, ids, times.
import { z } from "zod";
import { fromBase64url } from "../bytes.js";
import { PSEUDONYM_PATTERN } from "../keys.js";
import { isUsableX25519PublicKey } from "../primitives.js";

/** base64url (no padding) text that decodes to exactly `length` bytes. */
export function base64urlBytes(length: number) {
  return z
    .string()
    .length(Math.ceil((length * 4) / 3))
    .refine((text) => fromBase64url(text)?.length === length, {
      message: `must be base64url (no padding) of exactly ${length} bytes`,
    });
}

/** base64url (no padding) text of between `min` and `max` bytes. */
export function base64urlBytesBetween(min: number, max: number) {
  return z
    .string()
    .max(Math.ceil((max * 4) / 3))
    .refine(
      (text) => {
        const bytes = fromBase64url(text);
        return bytes !== undefined && bytes.length >= min && bytes.length <= max;
      },
      { message: `must be base64url (no padding) of ${min} to ${max} bytes` },
    );
}

export const publicKey = base64urlBytes(32);
/** An X25519 public key that something will be sealed to: 32 bytes and not of low order. */
export const x25519PublicKey = publicKey.refine(
  (text) => {
    const bytes = fromBase64url(text);
    return bytes !== undefined && isUsableX25519PublicKey(bytes);
  },
  { message: "must be an X25519 public key of full order (not a low-order point)" },
);
export const signature = base64urlBytes(64);
export const campaignId = base64urlBytes(16);
export const messageId = base64urlBytes(16);
export const pseudonym = z.string().regex(PSEUDONYM_PATTERN, "must be a pseudonym like v-0123456789ABCDEF");

/** Milliseconds since the Unix epoch, as an integer. */
export const timestamp = z.number().int().nonnegative().max(8.64e15);

/** Short identifier for coordinator devices and epoch keys: letters, digits, '-' and '_'. */
export const shortId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 of A-Z a-z 0-9 _ -");
