// The duress path (protocol/spec/duress-and-wipe.md).
//
// Every device enrolls a second Ed25519 key, the duress key D, beside its signing key. The relay
// opens a session signed by either; coordinators take whatever D signs as the volunteer's, sent
// UNDER DURESS. The real profile keeps D's private key; the decoy profile (duress PIN) signs with
// D as its own signing key, under the real pseudonym, and so syncs, reports and sends actas
// through the relay like any device — but never holds the real signing key.
//
// The key-slot file's capsule region holds, sealed with crypto_box_seal to a key only the decoy
// profile holds, no key at all: it says "the decoy was opened" (only the decoy's capsule key opens
// it) and the message id reserved for the duress report. The real profile seals it at
// enrollment, always — to the decoy's capsule key when a duress PIN exists, to a key nobody holds
// otherwise — so the region looks the same on every device: bytes indistinguishable from random.
//
// On a duress unlock, before anything else: the real slot is overwritten with random bytes (one
// atomic write of the key-slot file), every record file the decoy cannot decrypt (the real
// profile's keys, outbox, photos) is deleted, the decoy queues a `duress` report signed by D at
// the front of its outbox, and last the capsule becomes random bytes. The unlock's flush sends it.
import {
  fromUtf8,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  REPORT_KIND,
  randomBytes,
  toBase64url,
  utf8,
} from "@testigo/protocol";
import {
  assertPinAcceptable,
  CAPSULE_PLAINTEXT_BYTES,
  clearCapsule,
  eraseSlot,
  fillSlot,
  InvalidPin,
  newProfile,
  openCapsule,
  sealCapsule,
  unlockKeySlots,
} from "../crypto/key-slots.js";
import { ProfileStore } from "../storage/profile-store.js";
import type { DeviceStorage } from "../storage/storage.js";
import { readKeySlots, writeKeySlots } from "./device.js";
import { queueMessage } from "./outbox.js";
import {
  type CapsuleKeysRecord,
  type CapsulePayload,
  capsulePayload,
  type IdentityRecord,
  RECORD,
  type SettingsRecord,
} from "./records.js";
import { bytesOf, VolunteerStore } from "./volunteer-store.js";

/** Bytes of the invite nonce an `enrolled` report carries (the decoy's are random). */
const INVITE_NONCE_BYTES = 8;

/** The capsule-key records of a new device: the decoy's only if a duress PIN was given. */
export function newCapsuleKeys(withDuress: boolean): { real: CapsuleKeysRecord; decoy?: CapsuleKeysRecord } {
  const b = toBase64url;
  const capsule = generateEncryptionKeyPair();
  const real = {
    secretKey: b(generateEncryptionKeyPair().privateKey),
    peerKey: b(withDuress ? capsule.publicKey : generateEncryptionKeyPair().publicKey),
  };
  if (!withDuress) return { real };
  return { real, decoy: { secretKey: b(capsule.privateKey), peerKey: b(generateEncryptionKeyPair().publicKey) } };
}

function encodePayload(payload: CapsulePayload): Uint8Array {
  const json = utf8(JSON.stringify(payload));
  if (json.length + 2 > CAPSULE_PLAINTEXT_BYTES) throw new RangeError("capsule payload too large");
  const out = new Uint8Array(json.length + 2);
  out[0] = json.length >> 8;
  out[1] = json.length & 0xff;
  out.set(json, 2);
  return out;
}

function decodePayload(plaintext: Uint8Array): CapsulePayload | undefined {
  const length = ((plaintext[0] ?? 0) << 8) | (plaintext[1] ?? 0);
  if (length === 0 || length + 2 > plaintext.length) return undefined;
  try {
    const parsed = capsulePayload.safeParse(JSON.parse(fromUtf8(plaintext.subarray(2, 2 + length))));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Seals the capsule from this profile (enrollment; again whenever a duress PIN is set). Leaves a capsule
 * that this profile can open alone: that is a pending duress unlock, which must not be lost.
 */
export async function refreshCapsule(storage: DeviceStorage, store: VolunteerStore): Promise<void> {
  const keys = await store.capsuleKeys();
  if (keys === undefined) return;
  const file = await readKeySlots(storage);
  if (openCapsule(file, bytesOf(keys.secretKey)) !== undefined) return;
  const payload: CapsulePayload = { v: 2, messageId: toBase64url(randomBytes(16)) };
  await writeKeySlots(storage, sealCapsule(file, bytesOf(keys.peerKey), encodePayload(payload)));
}

/**
 * Run at every unlock. If this profile opens the capsule, the duress PIN was entered: erase the
 * other profile (slot, then files), queue the duress report (signed by D, this decoy's signing
 * key) at the front of the outbox, then clear the capsule. True if that happened. Idempotent: a
 * crash at any point is completed by the next unlock with the duress PIN, and the report, queued
 * under the capsule's reserved message id, is never queued twice.
 */
export async function takeDuress(
  storage: DeviceStorage,
  store: VolunteerStore,
  openedSlot: number,
  now: number,
): Promise<boolean> {
  const keys = await store.capsuleKeys();
  if (keys === undefined) return false;
  const file = await readKeySlots(storage);
  const plaintext = openCapsule(file, bytesOf(keys.secretKey));
  if (plaintext === undefined) return false;
  const payload = decodePayload(plaintext);
  plaintext.fill(0);
  if (payload === undefined) {
    await writeKeySlots(storage, clearCapsule(file));
    return false;
  }
  // 1. The real profile is crypto-erased: its data key is gone (one atomic write; the capsule stays).
  let erased = file;
  for (let index = 0; index < file.slots.length; index++) if (index !== openedSlot) erased = eraseSlot(erased, index);
  await writeKeySlots(storage, erased);
  // 2. Its files (identity, outbox, photo chunks, mailbox) go.
  await store.records.destroyOthers();
  // 3. The duress report, at the front of the queue, like a status report in every other way.
  if ((await store.item(payload.messageId)) === undefined) {
    await queueMessage(store, { kind: REPORT_KIND.duress, table: "0", text: "" }, now, [], payload.messageId, "front");
  }
  // The report is this device's sign of life: no check-in is due on top of it in this unlock.
  await store.putSyncLog({ ...(await store.syncLog()), lastCheckinAt: now });
  // 4. Nothing pending remains in the capsule.
  await writeKeySlots(storage, clearCapsule(await readKeySlots(storage)));
  return true;
}

/** A fresh Ed25519 pair as an identity record holds it (the duress key D; a decoy's unused one). */
export function newDuressKey(): IdentityRecord["duress"] {
  const pair = generateSigningKeyPair();
  return { publicKey: toBase64url(pair.publicKey), privateKey: toBase64url(pair.privateKey) };
}

/**
 * A plausible profile under the duress PIN: the same relay, campaign, roster and pseudonym; as
 * its signing key the duress key D (enrolled at the relay, so sync, report and acta work); an
 * encryption key of its own (control messages, sealed to the real one, never open here: they are
 * acknowledged silently like filler); the same settings, an empty outbox, and NOTHING else of the
 * real profile: its invite fields are random bytes of the right sizes and its own `duress` pair
 * was never enrolled; its capsule keys have the same shape as the real profile's.
 */
export async function writeDecoyProfile(
  store: VolunteerStore,
  options: {
    relayUrl: string;
    campaignId: string;
    rootFingerprint: string;
    pseudonym: string;
    duressKey: IdentityRecord["duress"];
    now: number;
    settings: SettingsRecord;
    capsuleKeys: CapsuleKeysRecord;
  },
): Promise<void> {
  const encryption = generateEncryptionKeyPair();
  await store.putIdentity({
    v: 1,
    relayUrl: options.relayUrl,
    campaignId: options.campaignId,
    rootFingerprint: options.rootFingerprint,
    pseudonym: options.pseudonym,
    signing: { ...options.duressKey },
    encryption: { publicKey: toBase64url(encryption.publicKey), privateKey: toBase64url(encryption.privateKey) },
    duress: newDuressKey(),
    invite: {
      nonce: toBase64url(randomBytes(INVITE_NONCE_BYTES)),
      storedHash: toBase64url(randomBytes(32)),
      proof: toBase64url(randomBytes(32)),
    },
    enrolledAt: options.now,
  });
  await store.putSettings(options.settings);
  await store.putCapsuleKeys(options.capsuleKeys);
  // The same first seq as the real profile (its `enrolled` report took seq 0). D's reports have
  // their own seq space: coordinators order them per signing key.
  await store.takeSeq();
}

/**
 * Sets (or replaces) the duress PIN from the unlocked real profile: the previous decoy's files go,
 * a new decoy is written, then the spare slot is filled under `duressPin` (the commit point), and
 * last the real profile seals its capsule to the new decoy's capsule key.
 */
export async function setDuressPin(
  storage: DeviceStorage,
  store: VolunteerStore,
  openedSlot: number,
  duressPin: string,
  now: number,
): Promise<void> {
  assertPinAcceptable(duressPin);
  if (openedSlot < 0) throw new RangeError("setDuressPin needs a profile opened with its PIN");
  if (unlockKeySlots(await readKeySlots(storage), duressPin)?.slot === openedSlot) {
    throw new InvalidPin("the duress PIN must differ from the PIN");
  }
  const identity = await store.identity();
  const realKeys = await store.capsuleKeys();
  await store.records.destroyOthers();
  const decoy = newProfile();
  const capsuleKeys = newCapsuleKeys(true);
  const decoyStore = new VolunteerStore(new ProfileStore(storage, decoy.dataKey, decoy.profileId));
  await writeDecoyProfile(decoyStore, {
    relayUrl: identity.relayUrl,
    campaignId: identity.campaignId,
    rootFingerprint: identity.rootFingerprint,
    pseudonym: identity.pseudonym,
    duressKey: identity.duress,
    now,
    settings: await store.settings(),
    capsuleKeys: capsuleKeys.decoy ?? capsuleKeys.real,
  });
  const roster = await store.records.get(RECORD.roster);
  if (roster !== undefined) await decoyStore.records.put(RECORD.roster, roster);
  const epochKeys = await store.epochKeys();
  if (epochKeys !== undefined) await decoyStore.putEpochKeys(epochKeys);
  const file = await readKeySlots(storage);
  const spare = file.slots.findIndex((_, index) => index !== openedSlot);
  await writeKeySlots(storage, fillSlot(file, spare, duressPin, decoy));
  await store.putCapsuleKeys({
    secretKey: realKeys?.secretKey ?? capsuleKeys.real.secretKey,
    peerKey: capsuleKeys.real.peerKey,
  });
  await refreshCapsule(storage, store);
}
