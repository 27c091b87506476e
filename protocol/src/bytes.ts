// Byte helpers shared by every construction. Uint8Array only: this package runs in browsers.
// Every failure here is Malformed (errors.ts): callers switch over ProtocolError codes.
import { Malformed } from "./errors.js";
import { sodium } from "./sodium.js";

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/** Strict UTF-8 decoding: invalid sequences throw Malformed instead of becoming U+FFFD. */
export function fromUtf8(bytes: Uint8Array): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw new Malformed("the bytes are not valid UTF-8");
  }
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Big-endian unsigned 32-bit integer. */
export function u32be(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new Malformed(`u32be: ${value} is not an unsigned 32-bit integer`);
  }
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, false);
  return out;
}

export function readU32be(bytes: Uint8Array, offset: number): number {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + 4 > bytes.length) {
    throw new Malformed(`readU32be: no 4 bytes at offset ${offset} of ${bytes.length}`);
  }
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset, false);
}

/** Big-endian unsigned 64-bit integer from a safe JavaScript integer. */
export function u64be(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Malformed(`u64be: ${value} is not a non-negative safe integer`);
  }
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value), false);
  return out;
}

/** base64url without padding (RFC 4648 §5), the only base64 used on the wire. */
export function toBase64url(bytes: Uint8Array): string {
  const s = sodium();
  return s.to_base64(bytes, s.base64_variants.URLSAFE_NO_PADDING);
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Strict base64url decoding; returns undefined for anything that is not canonical base64url. */
export function fromBase64url(text: string): Uint8Array | undefined {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return undefined;
  const s = sodium();
  try {
    const bytes = s.from_base64(text, s.base64_variants.URLSAFE_NO_PADDING);
    // Reject non-canonical encodings (stray bits in the last character).
    return toBase64url(bytes) === text ? bytes : undefined;
  } catch {
    return undefined;
  }
}

export function toHex(bytes: Uint8Array): string {
  return sodium().to_hex(bytes);
}

export function fromHex(text: string): Uint8Array {
  if (!/^(?:[0-9a-f]{2})*$/.test(text)) throw new Malformed("fromHex: not lowercase hex of whole bytes");
  return sodium().from_hex(text);
}

/** Constant-time equality for secrets and MACs. Different lengths are simply unequal. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && sodium().memcmp(a, b);
}

/** WebCrypto's getRandomValues fills at most this many bytes per call. */
const MAX_RANDOM_FILL = 65_536;

/**
 * `length` bytes from the platform's CSPRNG (WebCrypto `getRandomValues`, in Node and browsers:
 * the source libsodium.js itself draws from). Not libsodium's `randombytes_buf`: libsodium.js
 * fetches ONE 32-bit value per output byte from JavaScript (see the photo test vectors), about
 * 13 µs per byte here, so a 1 KiB mailbox filler cost the relay 13 ms of CPU.
 */
export function randomBytes(length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0) throw new Malformed(`randomBytes: ${length} is not a byte count`);
  const bytes = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += MAX_RANDOM_FILL) {
    globalThis.crypto.getRandomValues(bytes.subarray(offset, offset + MAX_RANDOM_FILL));
  }
  return bytes;
}

/** Overwrite a secret in memory. Best effort in JavaScript, but it shortens a secret's life. */
export function wipe(bytes: Uint8Array): void {
  sodium().memzero(bytes);
}
