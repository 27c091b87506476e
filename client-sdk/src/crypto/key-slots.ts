// PIN-protected key slots: how a device's data key is kept at rest.
//
// All of a profile's local data is encrypted under one random 32-byte data key. The key-slot
// file holds TWO slots, always: each is `nonce(24) || XChaCha20-Poly1305(dataKey(32) || profileId(16))`
// under a key-encryption key derived from a PIN with argon2id (crypto_pwhash) and one shared salt.
// With only a real PIN set, the second slot is random bytes of the same length, so the file does
// not reveal whether a duress PIN exists. Unlocking derives the KEK once and tries both slots, so
// the real PIN, the duress PIN and a wrong PIN cost the same time. Destroying a slot (overwriting it
// with random bytes) is the crypto-erase of that profile: its data stays on disk but can never be
// decrypted again.
//
// The file also holds a fixed-size CAPSULE region (protocol/spec/duress-and-wipe.md): random bytes,
// or a crypto_box_seal to an X25519 key only the decoy profile holds. Sealed and random capsules
// have the same length, and the real profile re-seals it at enrollment, at every unlock and at the
// end of every sync (client-sdk/src/volunteer/duress.ts refreshCapsule), whether or not a duress
// PIN exists (to a key nobody holds when there is none), so the file never says whether one exists.
// `maxFailedUnlocks` is in clear, like the counter, so the limit is enforced before unlocking.
//
// This module does no I/O: callers read and write the file through a DeviceStorage.
import { concatBytes, fromBase64url, randomBytes, sodium, toBase64url, utf8, wipe } from "@testigo/protocol";
import { z } from "zod";

export const DATA_KEY_BYTES = 32;
export const PROFILE_ID_BYTES = 16;
const NONCE_BYTES = 24;
const SLOT_BYTES = NONCE_BYTES + DATA_KEY_BYTES + PROFILE_ID_BYTES + 16;
const SLOT_COUNT = 2;
const SALT_BYTES = 16;
const SLOT_AD = "testigo/v1/key-slot";
/** crypto_box_seal adds an ephemeral public key (32) and a tag (16). */
const SEAL_OVERHEAD_BYTES = 48;
/** Bytes of the capsule region, sealed or random. */
export const CAPSULE_BYTES = 1024;
/** Plaintext a capsule carries (zero-padded to exactly this). */
export const CAPSULE_PLAINTEXT_BYTES = CAPSULE_BYTES - SEAL_OVERHEAD_BYTES;
/** Failed unlocks in a row after which the device erases itself, unless set at enrollment. */
export const DEFAULT_MAX_FAILED_UNLOCKS = 10;
export const MAX_MAX_FAILED_UNLOCKS = 1000;

/** argon2id cost. The default (64 MiB, 2 passes) is libsodium's "interactive" level: cheap phones manage it. */
export interface KdfLimits {
  readonly opsLimit: number;
  readonly memLimit: number;
}

export const DEFAULT_KDF_LIMITS: KdfLimits = { opsLimit: 2, memLimit: 64 * 1024 * 1024 };
/** The floor accepted when reading a file; tests use it to stay fast. Never lower in production. */
export const MIN_KDF_LIMITS: KdfLimits = { opsLimit: 1, memLimit: 8 * 1024 };
const MAX_KDF_LIMITS: KdfLimits = { opsLimit: 10, memLimit: 1024 * 1024 * 1024 };

/** PINs shorter than this are refused: the key-slot file can be copied and guessed offline. */
export const MIN_PIN_LENGTH = 6;

const keySlotFileSchema = z.strictObject({
  v: z.literal(1),
  kdf: z.strictObject({
    alg: z.literal("argon2id13"),
    opsLimit: z.number().int().min(MIN_KDF_LIMITS.opsLimit).max(MAX_KDF_LIMITS.opsLimit),
    memLimit: z.number().int().min(MIN_KDF_LIMITS.memLimit).max(MAX_KDF_LIMITS.memLimit),
    salt: z.string(),
  }),
  slots: z.array(z.string()).length(SLOT_COUNT),
  /** CAPSULE_BYTES, base64url: a sealed duress capsule or random bytes (indistinguishable). */
  capsule: z.string(),
  /** Consecutive failed unlocks; readable before unlocking so the device can enforce a limit. */
  failedUnlocks: z.number().int().nonnegative(),
  /** At this many failed unlocks in a row the device erases itself. */
  maxFailedUnlocks: z.number().int().min(1).max(MAX_MAX_FAILED_UNLOCKS),
});

export type KeySlotFile = z.infer<typeof keySlotFileSchema>;

export interface UnlockedProfile {
  /** Which slot opened: lets the caller erase the OTHER one (duress) or this one (wipe). */
  readonly slot: number;
  readonly dataKey: Uint8Array;
  readonly profileId: Uint8Array;
}

export class InvalidPin extends Error {
  readonly code = "INVALID_PIN" as const;
  override readonly name = "InvalidPin";
}

export class CorruptKeySlots extends Error {
  readonly code = "CORRUPT_KEY_SLOTS" as const;
  override readonly name = "CorruptKeySlots";
}

export function assertPinAcceptable(pin: string): void {
  if ([...pin].length < MIN_PIN_LENGTH) {
    throw new InvalidPin(`a PIN must have at least ${MIN_PIN_LENGTH} characters`);
  }
}

export function parseKeySlotFile(bytes: Uint8Array): KeySlotFile {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new CorruptKeySlots("the key-slot file is not valid JSON: the device folder is damaged");
  }
  const parsed = keySlotFileSchema.safeParse(json);
  const salt = parsed.success ? fromBase64url(parsed.data.kdf.salt) : undefined;
  const slotsOk = parsed.success && parsed.data.slots.every((slot) => fromBase64url(slot)?.length === SLOT_BYTES);
  const capsuleOk = parsed.success && fromBase64url(parsed.data.capsule)?.length === CAPSULE_BYTES;
  if (!parsed.success || salt?.length !== SALT_BYTES || !slotsOk || !capsuleOk) {
    throw new CorruptKeySlots("the key-slot file does not have the expected format: the device folder is damaged");
  }
  return parsed.data;
}

export function serializeKeySlotFile(file: KeySlotFile): Uint8Array {
  return utf8(JSON.stringify(file));
}

function deriveKek(pin: string, salt: Uint8Array, limits: KdfLimits): Uint8Array {
  const s = sodium();
  return s.crypto_pwhash(
    DATA_KEY_BYTES,
    utf8(pin.normalize("NFC")),
    salt,
    limits.opsLimit,
    limits.memLimit,
    s.crypto_pwhash_ALG_ARGON2ID13,
  );
}

function slotAd(index: number): Uint8Array {
  return concatBytes(utf8(SLOT_AD), new Uint8Array([0, index]));
}

function sealSlot(kek: Uint8Array, index: number, dataKey: Uint8Array, profileId: Uint8Array): string {
  const nonce = randomBytes(NONCE_BYTES);
  const plaintext = concatBytes(dataKey, profileId);
  const sealed = sodium().crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, slotAd(index), null, nonce, kek);
  wipe(plaintext);
  return toBase64url(concatBytes(nonce, sealed));
}

function openSlot(kek: Uint8Array, index: number, slot: string): UnlockedProfile | undefined {
  const bytes = fromBase64url(slot);
  if (bytes?.length !== SLOT_BYTES) return undefined;
  let plaintext: Uint8Array;
  try {
    plaintext = sodium().crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      bytes.subarray(NONCE_BYTES),
      slotAd(index),
      bytes.subarray(0, NONCE_BYTES),
      kek,
    );
  } catch {
    return undefined;
  }
  // Copy out, then erase the decrypted slot: one copy of the data key in memory, not two.
  const unlocked = {
    slot: index,
    dataKey: plaintext.slice(0, DATA_KEY_BYTES),
    profileId: plaintext.slice(DATA_KEY_BYTES),
  };
  wipe(plaintext);
  return unlocked;
}

function randomSlot(): string {
  return toBase64url(randomBytes(SLOT_BYTES));
}

export interface NewProfile {
  readonly dataKey: Uint8Array;
  readonly profileId: Uint8Array;
}

export function newProfile(): NewProfile {
  return { dataKey: randomBytes(DATA_KEY_BYTES), profileId: randomBytes(PROFILE_ID_BYTES) };
}

/**
 * A key-slot file with the real profile under `pin`, and the decoy under `duressPin` if given.
 * The real profile's slot index is random, so slot order reveals nothing.
 */
export function createKeySlots(options: {
  pin: string;
  real: NewProfile;
  duress?: { pin: string; decoy: NewProfile };
  limits?: KdfLimits;
  maxFailedUnlocks?: number;
}): KeySlotFile {
  const maxFailedUnlocks = options.maxFailedUnlocks ?? DEFAULT_MAX_FAILED_UNLOCKS;
  assertMaxFailedUnlocks(maxFailedUnlocks);
  assertPinAcceptable(options.pin);
  if (options.duress !== undefined) {
    assertPinAcceptable(options.duress.pin);
    if (options.duress.pin.normalize("NFC") === options.pin.normalize("NFC")) {
      throw new InvalidPin("the duress PIN must differ from the PIN");
    }
  }
  const limits = options.limits ?? DEFAULT_KDF_LIMITS;
  const salt = randomBytes(SALT_BYTES);
  const realIndex = (randomBytes(1)[0] ?? 0) & 1;
  const slots = [randomSlot(), randomSlot()];
  const kek = deriveKek(options.pin, salt, limits);
  slots[realIndex] = sealSlot(kek, realIndex, options.real.dataKey, options.real.profileId);
  wipe(kek);
  if (options.duress !== undefined) {
    const duressIndex = 1 - realIndex;
    const duressKek = deriveKek(options.duress.pin, salt, limits);
    slots[duressIndex] = sealSlot(duressKek, duressIndex, options.duress.decoy.dataKey, options.duress.decoy.profileId);
    wipe(duressKek);
  }
  return {
    v: 1,
    kdf: { alg: "argon2id13", opsLimit: limits.opsLimit, memLimit: limits.memLimit, salt: toBase64url(salt) },
    slots,
    capsule: randomCapsule(),
    failedUnlocks: 0,
    maxFailedUnlocks,
  };
}

export class InvalidUnlockLimit extends Error {
  readonly code = "INVALID_UNLOCK_LIMIT" as const;
  override readonly name = "InvalidUnlockLimit";
}

export function assertMaxFailedUnlocks(value: number): void {
  if (!Number.isInteger(value) || value < 1 || value > MAX_MAX_FAILED_UNLOCKS) {
    throw new InvalidUnlockLimit(`the wrong-PIN limit must be a whole number from 1 to ${MAX_MAX_FAILED_UNLOCKS}`);
  }
}

/** Tries `pin` against both slots (always both, for constant work). Undefined for a wrong PIN. */
export function unlockKeySlots(file: KeySlotFile, pin: string): UnlockedProfile | undefined {
  const salt = fromBase64url(file.kdf.salt);
  if (salt === undefined) throw new CorruptKeySlots("the key-slot file's salt is damaged");
  const kek = deriveKek(pin, salt, file.kdf);
  const results = file.slots.map((slot, index) => openSlot(kek, index, slot));
  wipe(kek);
  return results.find((result) => result !== undefined);
}

/** The same file with slot `index` replaced by random bytes: that profile is crypto-erased. */
export function eraseSlot(file: KeySlotFile, index: number): KeySlotFile {
  return { ...file, slots: file.slots.map((slot, i) => (i === index ? randomSlot() : slot)) };
}

/** Puts a (new) profile under `pin` into slot `index`, e.g. adding a duress PIN after enrollment. */
export function fillSlot(file: KeySlotFile, index: number, pin: string, profile: NewProfile): KeySlotFile {
  assertPinAcceptable(pin);
  const salt = fromBase64url(file.kdf.salt);
  if (salt === undefined) throw new CorruptKeySlots("the key-slot file's salt is damaged");
  const kek = deriveKek(pin, salt, file.kdf);
  const sealed = sealSlot(kek, index, profile.dataKey, profile.profileId);
  wipe(kek);
  return { ...file, slots: file.slots.map((slot, i) => (i === index ? sealed : slot)) };
}

function randomCapsule(): string {
  return toBase64url(randomBytes(CAPSULE_BYTES));
}

/**
 * The same file with `plaintext` (at most CAPSULE_PLAINTEXT_BYTES, zero-padded) sealed into the
 * capsule region with crypto_box_seal to `recipientPublicKey` (X25519).
 */
export function sealCapsule(file: KeySlotFile, recipientPublicKey: Uint8Array, plaintext: Uint8Array): KeySlotFile {
  if (plaintext.length > CAPSULE_PLAINTEXT_BYTES) throw new RangeError("capsule plaintext too large");
  const padded = new Uint8Array(CAPSULE_PLAINTEXT_BYTES);
  padded.set(plaintext);
  const sealed = sodium().crypto_box_seal(padded, recipientPublicKey);
  wipe(padded);
  return { ...file, capsule: toBase64url(sealed) };
}

/** The capsule's padded plaintext if it was sealed to `secretKey`'s public key, else undefined. */
export function openCapsule(file: KeySlotFile, secretKey: Uint8Array): Uint8Array | undefined {
  const bytes = fromBase64url(file.capsule);
  if (bytes?.length !== CAPSULE_BYTES) return undefined;
  const s = sodium();
  try {
    return s.crypto_box_seal_open(bytes, s.crypto_scalarmult_base(secretKey), secretKey);
  } catch {
    return undefined;
  }
}

/** The same file with random bytes in the capsule region. */
export function clearCapsule(file: KeySlotFile): KeySlotFile {
  return { ...file, capsule: randomCapsule() };
}

/**
 * The crypto-erase of the whole device: both slots and the capsule become random bytes and the
 * counter restarts, so the file looks like a fresh device's that no PIN opens.
 */
export function eraseKeySlots(file: KeySlotFile): KeySlotFile {
  return { ...file, slots: file.slots.map(() => randomSlot()), capsule: randomCapsule(), failedUnlocks: 0 };
}
