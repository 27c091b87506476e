// One-time invites: how a volunteer learns, from a coordinator and never from the relay, where
// the relay is and which root key signs the campaign's roster.
//
// Binary payload:  0x01 || root fingerprint (16) || secret (16) || relay URL (UTF-8, <= 200 bytes)
// Text form:       "T1-" then Crockford base32 of the payload in groups of 4 data characters,
//                  each followed by 1 check character, groups joined by "-".
//
// The check character is a Damm check over GF(32) (see groupCheck): it catches every single
// mistyped character and every swap of two adjacent characters in a group, including the check
// character itself, so decodeInvite can tell a person which group to retype.
//
// The secret is self-authenticating (invite-secret.ts): it is minted under the campaign's invite
// key, which every coordinator device holds, so any of them can check an enrollment.
//
// The relay never sees the secret: a volunteer redeems with inviteRedeemToken(secret), and the
// relay stores only inviteStoredHash(token), so a copy of the relay's database cannot redeem an
// unused invite.
import { bytesEqual, concatBytes, fromUtf8, toBase64url, utf8 } from "./bytes.js";
import { DOMAIN, separated } from "./domain.js";
import { InviteCodeInvalid, Malformed } from "./errors.js";
import { INVITE_SECRET_BYTES, newInviteSecret } from "./invite-secret.js";
import { hashWithDomain, PUBLIC_KEY_BYTES, toCrockfordBase32 } from "./keys.js";
import { ROSTER_FINGERPRINT_BYTES } from "./roster.js";
import { sodium } from "./sodium.js";

export const INVITE_VERSION = 1;
export const INVITE_PREFIX = "T1-";
export const INVITE_TOKEN_BYTES = 32;
export const MAX_RELAY_URL_BYTES = 200;
/** Data characters per group; each group is followed by one check character. */
export const INVITE_GROUP_DATA_CHARS = 4;
const HEADER_BYTES = 1 + ROSTER_FINGERPRINT_BYTES + INVITE_SECRET_BYTES;
/** Longer input is refused before any work (the longest valid code is 563 characters). */
const MAX_INPUT_CHARS = 1024;

export interface Invite {
  /** https://…, or http:// only for loopback addresses and .onion services. */
  readonly relayUrl: string;
  /** First 16 bytes of the campaign root key's fingerprint (roster.ts, rosterFingerprint). */
  readonly rootFingerprint: Uint8Array;
  /**
   * 16 bytes minted under the campaign's invite key (invite-secret.ts: random nonce(8) || tag(8)),
   * so every coordinator device can recompute and check it; the relay never sees it.
   */
  readonly secret: Uint8Array;
}

/**
 * A fresh invite whose secret is minted under the campaign's 32-byte invite key. (A random secret
 * would be refused by every coordinator device: it does not carry the invite key's tag.)
 */
export function createInvite(relayUrl: string, rootFingerprint: Uint8Array, inviteKey: Uint8Array): Invite {
  return { relayUrl, rootFingerprint, secret: newInviteSecret(inviteKey) };
}

const HOST_LOOPBACK = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])$/;

/**
 * Why `url` cannot be an invite's relay address, or undefined if it can. Printable ASCII only
 * (international host names in punycode), no credentials, query or fragment; plain http only to
 * loopback (tests, a local relay) or to a Tor onion service, which authenticates itself.
 */
export function relayUrlProblem(url: string): string | undefined {
  if (utf8(url).length > MAX_RELAY_URL_BYTES) return `the relay address is longer than ${MAX_RELAY_URL_BYTES} bytes`;
  // No spaces, no backslash (URL parsers disagree on it), nothing outside printable ASCII.
  if (!/^[\x21-\x5b\x5d-\x7e]+$/.test(url)) return "the relay address must be printable ASCII without spaces";
  const https = url.startsWith("https://");
  if (!https && !url.startsWith("http://")) return "the relay address must start with https://";
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "the relay address is not a valid URL";
  }
  if (parsed.hostname === "") return "the relay address has no host";
  if (parsed.username !== "" || parsed.password !== "") return "the relay address must not contain credentials";
  if (parsed.search !== "" || parsed.hash !== "" || url.includes("?") || url.includes("#")) {
    return "the relay address must not have a query or fragment";
  }
  if (!https && !HOST_LOOPBACK.test(parsed.hostname) && !parsed.hostname.endsWith(".onion")) {
    return "plain http:// is allowed only for loopback and .onion relays";
  }
  return undefined;
}

// ---- check characters: Damm's algorithm over GF(32) ----
//
// Digits are the 5-bit values of Crockford characters, seen as elements of GF(2^5) modulo
// x^5 + x^2 + 1. The quasigroup is  s ∘ d = 2·s ⊕ d  (2 is the element x). Because 2 ∉ {0, 1},
// it is totally anti-symmetric: (s∘a)∘b = (s∘b)∘a implies a = b, which is what makes Damm's
// check catch every adjacent transposition; each step is a bijection in s and in d, which makes
// it catch every single substitution. The start state is the group's 1-based position mod 32
// (catches swapped groups that are fewer than 32 apart) and the last group must end in state 1
// instead of 0 (catches a code cut after a whole group).

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

function times2(s: number): number {
  const doubled = s << 1;
  return doubled & 32 ? doubled ^ 0b100101 : doubled;
}

function groupState(position: number, digits: readonly number[]): number {
  let state = position % 32;
  for (const d of digits) state = times2(state) ^ d;
  return state;
}

/** The check digit for the data digits of group `position` (1-based). */
export function groupCheck(position: number, digits: readonly number[], isLast: boolean): number {
  return times2(groupState(position, digits)) ^ (isLast ? 1 : 0);
}

/** The text form of an invite: "T1-XXXXC-XXXXC-…". */
export function encodeInvite(invite: Invite): string {
  const problem = relayUrlProblem(invite.relayUrl);
  if (problem !== undefined) throw new Malformed(`cannot make an invite: ${problem}`);
  if (invite.rootFingerprint.length !== ROSTER_FINGERPRINT_BYTES) {
    throw new Malformed(`cannot make an invite: the root fingerprint must be ${ROSTER_FINGERPRINT_BYTES} bytes`);
  }
  if (invite.secret.length !== INVITE_SECRET_BYTES) {
    throw new Malformed(`cannot make an invite: the secret must be ${INVITE_SECRET_BYTES} bytes (use createInvite)`);
  }
  const payload = concatBytes(
    new Uint8Array([INVITE_VERSION]),
    invite.rootFingerprint,
    invite.secret,
    utf8(invite.relayUrl),
  );
  const data = toCrockfordBase32(payload);
  const groups: string[] = [];
  const count = Math.ceil(data.length / INVITE_GROUP_DATA_CHARS);
  for (let g = 0; g < count; g++) {
    const chunk = data.slice(g * INVITE_GROUP_DATA_CHARS, (g + 1) * INVITE_GROUP_DATA_CHARS);
    const digits = [...chunk].map((c) => ALPHABET.indexOf(c));
    groups.push(chunk + ALPHABET[groupCheck(g + 1, digits, g === count - 1)]);
  }
  return INVITE_PREFIX + groups.join("-");
}

/**
 * What a person may type for a character, in ASCII only: ASCII spaces, tabs, line breaks and
 * dashes are dropped, a-z become A-Z, O→0, I/L→1. Nothing else is mapped: full Unicode rules would
 * read 'ı' as 1, 'ſ' as S and 'ß' as SS, or drop a no-break space, so a code that is not the one
 * printed could decode. Any other character stays and makes its group invalid.
 */
function normalise(code: string): string {
  return code
    .replace(/[ \t\r\n-]+/g, "")
    .replace(/[a-z]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 32))
    .replace(/O/g, "0")
    .replace(/[IL]/g, "1");
}

/**
 * Reads an invite code typed by a person or scanned from a QR code. Throws InviteCodeInvalid;
 * when a group fails its check, `group` is that group's 1-based number.
 */
export function decodeInvite(code: string): Invite {
  if (typeof code !== "string") throw new InviteCodeInvalid("an invite code is text");
  if (code.length > MAX_INPUT_CHARS) throw new InviteCodeInvalid("this is too long to be an invite code");
  const prefix = normalise(INVITE_PREFIX);
  refuseNonAscii(code, prefix);
  const text = normalise(code);
  if (!text.startsWith(prefix)) throw new InviteCodeInvalid(`an invite code starts with "${INVITE_PREFIX}"`);
  const body = text.slice(prefix.length);
  const size = INVITE_GROUP_DATA_CHARS + 1;
  const count = Math.ceil(body.length / size);
  if (count === 0) throw new InviteCodeInvalid("the invite code is empty after its prefix");
  const data: number[] = [];
  for (let g = 0; g < count; g++) {
    const group = g + 1;
    const chars = body.slice(g * size, (g + 1) * size);
    const bad = [...chars].find((c) => !ALPHABET.includes(c));
    if (bad !== undefined) {
      // The character is not echoed: the code holds a secret, and messages end up in logs.
      throw new InviteCodeInvalid(`group ${group} contains a character that invite codes never use`, group);
    }
    if (chars.length < 2) throw new InviteCodeInvalid(`group ${group} is incomplete`, group);
    const digits = [...chars].map((c) => ALPHABET.indexOf(c));
    const check = digits.pop() as number;
    const isLast = group === count;
    if (groupCheck(group, digits, isLast) !== check) {
      throw new InviteCodeInvalid(
        isLast
          ? `group ${group} has a typing error, or the code is incomplete: check it`
          : `group ${group} has a typing error: check it`,
        group,
      );
    }
    data.push(...digits);
  }
  const payload = fromDigits(data);
  if (payload === undefined) throw new InviteCodeInvalid("the invite code is incomplete", count);
  if (payload[0] !== INVITE_VERSION) {
    throw new InviteCodeInvalid("this invite was made by another version of Testigo: update the app", 1);
  }
  if (payload.length <= HEADER_BYTES) throw new InviteCodeInvalid("the invite code is incomplete", count);
  let relayUrl: string;
  try {
    relayUrl = fromUtf8(payload.subarray(HEADER_BYTES));
  } catch {
    throw new InviteCodeInvalid("the relay address in this invite is not valid");
  }
  const problem = relayUrlProblem(relayUrl);
  if (problem !== undefined) throw new InviteCodeInvalid(problem);
  return {
    relayUrl,
    rootFingerprint: payload.slice(1, 1 + ROSTER_FINGERPRINT_BYTES),
    secret: payload.slice(1 + ROSTER_FINGERPRINT_BYTES, HEADER_BYTES),
  };
}

/**
 * Invite codes are ASCII. A character outside it (a full-width digit, a Cyrillic or Greek look-alike,
 * a Unicode space or dash) is refused by name, with its group when it is inside one, rather than
 * guessed at: the code printed is the code decoded, or nothing.
 */
function refuseNonAscii(code: string, normalPrefix: string): void {
  let at = 0;
  while (at < code.length && code.charCodeAt(at) <= 0x7f) at++;
  if (at === code.length) return;
  const before = normalise(code.slice(0, at));
  const what =
    "a character that is not a plain ASCII letter, digit or dash (e.g. a full-width digit or a look-alike letter from another alphabet)";
  if (!before.startsWith(normalPrefix)) {
    throw new InviteCodeInvalid(`the invite code starts with ${what}: type "${INVITE_PREFIX}" and the groups again`);
  }
  const group = Math.floor((before.length - normalPrefix.length) / (INVITE_GROUP_DATA_CHARS + 1)) + 1;
  throw new InviteCodeInvalid(`group ${group} contains ${what}: retype it`, group);
}

/** Crockford base32 digits back to bytes; undefined unless they are exactly what the encoder makes. */
function fromDigits(digits: readonly number[]): Uint8Array | undefined {
  const out = new Uint8Array(Math.floor((digits.length * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let index = 0;
  for (const d of digits) {
    buffer = (buffer << 5) | d;
    bits += 5;
    if (bits >= 8) {
      out[index++] = (buffer >>> (bits - 8)) & 0xff;
      bits -= 8;
      buffer &= (1 << bits) - 1;
    }
  }
  // The encoder pads the last character with fewer than 5 zero bits.
  return bits < 5 && buffer === 0 ? out : undefined;
}

/** Crockford base32 text (the decoder to keys.ts's encoder); lenient like decodeInvite, strict on padding bits. */
export function fromCrockfordBase32(text: string): Uint8Array | undefined {
  const normal = normalise(text);
  const digits = [...normal].map((c) => ALPHABET.indexOf(c));
  return digits.includes(-1) ? undefined : fromDigits(digits);
}

// ---- what the relay sees ----

// Lengths come from hostile input (reports, requests): a wrong one is Malformed, a ProtocolError.
function checkSecret(secret: Uint8Array): void {
  if (secret.length !== INVITE_SECRET_BYTES) throw new Malformed(`an invite secret has ${INVITE_SECRET_BYTES} bytes`);
}

/** What the volunteer sends to redeem: BLAKE2b-256("testigo/v1/invite-redeem" || 0x00 || secret). */
export function inviteRedeemToken(secret: Uint8Array): Uint8Array {
  checkSecret(secret);
  return hashWithDomain(DOMAIN.inviteRedeem, INVITE_TOKEN_BYTES, secret);
}

/** What the relay stores and looks up: BLAKE2b-256("testigo/v1/invite-stored" || 0x00 || token). */
export function inviteStoredHash(redeemToken: Uint8Array): Uint8Array {
  if (redeemToken.length !== INVITE_TOKEN_BYTES) throw new Malformed(`a redeem token has ${INVITE_TOKEN_BYTES} bytes`);
  return hashWithDomain(DOMAIN.inviteStored, INVITE_TOKEN_BYTES, redeemToken);
}

/**
 * Proof that the holder of an invite's secret enrolled these volunteer keys: keyed BLAKE2b-256
 * (key = secret) over "testigo/v1/invite-proof" || 0x00 || signingKey || encryptionKey. The
 * relay cannot compute it (it never has the secret); every coordinator device can (invite key).
 */
export function inviteProof(secret: Uint8Array, signingKey: Uint8Array, encryptionKey: Uint8Array): Uint8Array {
  checkSecret(secret);
  if (signingKey.length !== PUBLIC_KEY_BYTES || encryptionKey.length !== PUBLIC_KEY_BYTES) {
    throw new Malformed("volunteer public keys have 32 bytes");
  }
  return sodium().crypto_generichash(
    INVITE_TOKEN_BYTES,
    separated(DOMAIN.inviteProof, signingKey, encryptionKey),
    secret,
  );
}

/** Constant-time check of an inviteProof; false for any malformed input. */
export function verifyInviteProof(
  secret: Uint8Array,
  signingKey: Uint8Array,
  encryptionKey: Uint8Array,
  proof: Uint8Array,
): boolean {
  if (secret.length !== INVITE_SECRET_BYTES) return false;
  if (signingKey.length !== PUBLIC_KEY_BYTES || encryptionKey.length !== PUBLIC_KEY_BYTES) return false;
  return bytesEqual(inviteProof(secret, signingKey, encryptionKey), proof);
}

/** base64url forms, as they travel in JSON requests and reports. */
export function inviteRedeemTokenBase64url(secret: Uint8Array): string {
  return toBase64url(inviteRedeemToken(secret));
}

export function inviteStoredHashBase64url(redeemToken: Uint8Array): string {
  return toBase64url(inviteStoredHash(redeemToken));
}

export function inviteProofBase64url(secret: Uint8Array, signingKey: Uint8Array, encryptionKey: Uint8Array): string {
  return toBase64url(inviteProof(secret, signingKey, encryptionKey));
}
