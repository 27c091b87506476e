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
// it) and carries the real profile's last sync times and check-in time, so the decoy's `status`
// shows the same and its `sync` queues a check-in when the real one's would. The real profile
// seals it at enrollment, at every unlock and at the end of every sync, always — to the decoy's
// capsule key when a duress PIN exists, to a key nobody holds otherwise — so the region looks the
// same on every device: 1,024 bytes indistinguishable from random.
//
// On a duress unlock, before anything else: the real slot is overwritten with random bytes in the
// unlock's own write of the key-slot file (unlockWrite), then, in one batch (finishUnlock), every
// record file that is not one of the decoy's own is unlinked (the real profile's keys, outbox,
// photos), a filler profile takes their place (as on a device without a duress PIN) and the decoy
// takes over the real profile's sync and check-in times; last, the capsule is re-sealed to a key
// nobody holds. A real unlock does the same writes (the batch re-writes its own records). Every
// read-modify-write of the key-slot file holds the folder's lock (DeviceStorage.exclusive).
// Nothing else: no special report is queued. The unlock then goes on exactly like a real one —
// its flush queues a `checkin`, which the decoy signs with D, and coordinators write everything D
// signs as `duress`. So the decoy's outbox never holds anything that says "duress" to whoever
// forced the PIN.
import {
  fromUtf8,
  generateEncryptionKeyPair,
  generateSigningKeyPair,
  randomBytes,
  toBase64url,
  utf8,
} from "@testigo/protocol";
import {
  assertPinAcceptable,
  CAPSULE_PLAINTEXT_BYTES,
  eraseSlot,
  fillSlot,
  InvalidPin,
  type KeySlotFile,
  type NewProfile,
  newProfile,
  openCapsule,
  sealCapsule,
  unlockKeySlots,
} from "../crypto/key-slots.js";
import { ProfileStore, RECORD_FILE_PREFIX } from "../storage/profile-store.js";
import { type DeviceStorage, WriteBatch } from "../storage/storage.js";
import { outboxShapeTokens, parseOutboxShape, queueCovers } from "./cover.js";
import { type OpenedProfile, type OwnSlot, ownSlotErased, readKeySlots, writeKeySlots } from "./device.js";
import { VolunteerError, WrongPin } from "./errors.js";
import { isPending, loadOutbox } from "./outbox.js";
import {
  type CapsuleKeysRecord,
  type CapsulePayload,
  capsulePayload,
  FIXED_RECORDS,
  type IdentityRecord,
  MAX_RECEIVED_KEPT,
  RECORD,
  type ReceivedControl,
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

/** Capsule-key record of a profile nobody will ever read through the capsule (a filler's). */
function unusedCapsuleKeys(): CapsuleKeysRecord {
  const b = toBase64url;
  return { secretKey: b(generateEncryptionKeyPair().privateKey), peerKey: b(generateEncryptionKeyPair().publicKey) };
}

/**
 * The capsule's plaintext: u16be(length) ‖ JSON, within CAPSULE_PLAINTEXT_BYTES. What does not fit
 * is left out, least useful first: the last error's text, then outbox entries from the end.
 */
function encodePayload(payload: CapsulePayload, shape: readonly string[] = []): Uint8Array {
  const room = CAPSULE_PLAINTEXT_BYTES - 2;
  const withShape = (fields: CapsulePayload, count: number): Uint8Array =>
    utf8(JSON.stringify(count === 0 ? fields : { ...fields, outbox: shape.slice(0, count).join(",") }));
  const { lastError: _dropped, ...withoutError } = payload;
  let json = withShape(payload, shape.length);
  if (json.length > room) json = withShape(withoutError, shape.length);
  for (let count = shape.length; json.length > room && count > 0; count--) json = withShape(withoutError, count - 1);
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
 * What this profile seals into the capsule: its sync times (what `status` shows), the time its
 * check-in timer counts from (what `sync` reads: the last check-in, else the enrollment), its
 * notice count and its outbox's shape (cover.ts): what a decoy taking over needs to look the same.
 */
async function payloadOf(store: VolunteerStore): Promise<Uint8Array> {
  const log = await store.syncLog();
  const notices = (await store.mailbox()).received.filter((c) => c.kind === "notice").length;
  const payload: CapsulePayload = {
    v: 4,
    ...(log.lastSyncAt === undefined ? {} : { lastSyncAt: log.lastSyncAt }),
    ...(log.lastSuccessAt === undefined ? {} : { lastSuccessAt: log.lastSuccessAt }),
    lastCheckinAt: log.lastCheckinAt ?? (await store.identity()).enrolledAt,
    ...(log.lastError === undefined ? {} : { lastError: log.lastError }),
    ...(notices === 0 ? {} : { notices }),
  };
  return encodePayload(payload, outboxShapeTokens(await loadOutbox(store)));
}

/**
 * Seals the capsule from this profile, with its current sync times: at enrollment, at the end of
 * every sync (and, through finishUnlock, at every unlock). So a capsule lost or left stale (a crash
 * inside `set-duress-pin` with an earlier version, a damaged region) is sealed again by the next
 * unlock with the PIN, and the decoy, if it takes over, finds the real profile's latest sync times.
 * Leaves a capsule that this profile can open alone: that is a pending duress unlock, which must
 * not be lost (only a decoy can be in that case; the real profile never opens the capsule). Runs
 * under the folder's lock; a profile erased meanwhile by another process (`own`'s slot was
 * overwritten) writes nothing, deletes what it can still decrypt and fails like a wrong PIN.
 */
export async function refreshCapsule(storage: DeviceStorage, store: VolunteerStore, own?: OwnSlot): Promise<void> {
  await storage.exclusive(async () => {
    const file = await readKeySlots(storage);
    await assertNotErased(file, store, own);
    const keys = await store.capsuleKeys();
    if (keys === undefined) return;
    const pending = openCapsule(file, bytesOf(keys.secretKey));
    if (pending !== undefined) {
      pending.fill(0);
      return;
    }
    await writeKeySlots(storage, sealCapsule(file, bytesOf(keys.peerKey), await payloadOf(store)));
  });
}

/**
 * A profile whose slot was overwritten since it opened (another process ran a duress unlock or an
 * erase meanwhile) must not write the key-slot file (it would seal a capsule for nothing, or worse
 * with an earlier version, write its slot back): its records that it can still decrypt (written
 * after the other process deleted the rest) are deleted, and it answers like a wrong PIN, which is
 * what the same PIN answers from then on.
 */
async function assertNotErased(file: KeySlotFile, store: VolunteerStore, own: OwnSlot | undefined): Promise<void> {
  if (!ownSlotErased(file, own)) return;
  await store.records.destroy();
  throw new WrongPin(Math.max(1, file.maxFailedUnlocks - file.failedUnlocks));
}

/**
 * Volunteer.open's write to the key-slot file, inside unlockDevice's locked section (so it is
 * the unlock's one durable write whichever PIN opened): the file as it was — or, if this profile
 * opens the capsule (the duress PIN was entered), with every other slot overwritten by random
 * bytes: the real profile is crypto-erased there, before the unlock returns. Both cases read the
 * profile's capsule keys and try one crypto_box_seal_open.
 */
export async function unlockWrite(file: KeySlotFile, opened: OpenedProfile): Promise<KeySlotFile> {
  const keys = await new VolunteerStore(opened.store).capsuleKeys();
  const plaintext = keys === undefined ? undefined : openCapsule(file, bytesOf(keys.secretKey));
  if (plaintext === undefined) return file;
  plaintext.fill(0);
  return eraseOtherSlots(file, opened.slot);
}

/**
 * The records a real unlock re-writes (same values, fresh nonces), as the duress unlock writes the
 * filler's six and the decoy's sync log. Identity, settings and capsule keys change only under
 * this lock (enrollment, set-duress-pin). Seq, roster, epoch keys and sync log may be changed
 * meanwhile by a command that does not take the lock (a background sync, a report being queued):
 * re-written from a stale read, a seq may be handed out twice (coordinators de-duplicate by
 * message id), or an older roster, epoch-key set or sync time comes back until the next sync
 * (which checks them again). The outbox, its items and the mailbox, whose stale copy could lose
 * a queued report or a pending wipe, are never re-written: padding records take their writes.
 */
const REWRITTEN_RECORDS = [
  RECORD.identity,
  RECORD.settings,
  RECORD.capsuleKeys,
  RECORD.seq,
  RECORD.roster,
  RECORD.epochKeys,
  RECORD.syncLog,
] as const;

/**
 * A real unlock's stand-ins for what a duress unlock writes beyond the filler and the decoy's
 * sync log when something is queued (the decoy's outbox index, its mailbox when the real profile
 * has notices, its seq when cover envelopes are queued, one cover item per waiting item): random
 * bytes the sizes of the records they stand for, as records `pad/<i>` written in the batch and
 * deleted in the same batch (WriteBatch.transient: written and synced, then unlinked, as a
 * duress unlock unlinks the real profile's files), so the folder keeps its shape.
 */
async function padWrites(batch: WriteBatch, store: VolunteerStore): Promise<void> {
  const items = await loadOutbox(store);
  const { waiting, refused, kept } = parseOutboxShape(outboxShapeTokens(items).join(","));
  if (waiting.length === 0 && refused + kept === 0) return;
  const sources: string[] = [RECORD.outbox];
  if ((await store.mailbox()).received.some((c) => c.kind === "notice")) sources.push(RECORD.mailbox);
  if (waiting.some((entry) => entry.type !== "photo")) sources.push(RECORD.seq);
  const ids = items.filter(isPending).map((item) => item.id);
  sources.push(...ids.slice(0, waiting.length).map((id) => RECORD.item(id)));
  const mine = store.records.on(batch);
  for (const [index, name] of sources.entries()) {
    const size = (await store.records.get(name))?.length ?? 16;
    await mine.put(RECORD.pad(index), randomBytes(size));
    batch.transient(store.records.fileNameOf(RECORD.pad(index)));
  }
}

/**
 * The rest of every unlock (Volunteer.open, after unlockDevice and unlockWrite), in one locked
 * section that does the same writes whichever PIN opened: ONE batch of record writes (one fsync
 * each, in parallel, then one folder sync: 7; with something queued, one more, plus one if cover
 * envelopes are queued, one if the real profile has notices, one per waiting item), then ONE
 * write of the key-slot file.
 *
 * - If this profile opens the capsule (the duress PIN; also after a crash in an earlier duress
 *   unlock): the batch deletes every record file that is not one of this profile's fixed records
 *   (the real profile's identity, outbox, photo chunks, mailbox; a half-written filler or covers),
 *   writes a filler profile in their place (six records, as enrollment without a duress PIN
 *   writes one: the folder keeps the shape of a device with two profiles), this profile's sync
 *   log with the real profile's times from the capsule, and cover items and notices in the shape
 *   the capsule describes (cover.ts); the key-slot write erases the other slots again and re-seals
 *   the capsule, to a key nobody holds: the pending duress is consumed. Until that write the
 *   capsule still opens, so a crash anywhere is completed by the next duress unlock.
 * - Otherwise (the PIN; the decoy's later unlocks): the batch re-writes seven records (same
 *   values, fresh nonces: REWRITTEN_RECORDS) and writes as many padding records as the duress
 *   path's cover writes, which it unlinks again (padWrites); the key-slot write re-seals the
 *   capsule with this profile's sync times and outbox shape (refreshCapsule).
 *
 * What still differs: a duress unlock unlinks the real profile's files (no overwrite, no per-file
 * sync: NodeStorage.batch), more than the pads, and lists the folder. True if the duress path ran.
 */
export async function finishUnlock(
  storage: DeviceStorage,
  store: VolunteerStore,
  own: OwnSlot,
  now: number,
): Promise<boolean> {
  return storage.exclusive(async () => {
    const file = await readKeySlots(storage);
    await assertNotErased(file, store, own);
    const keys = await store.capsuleKeys();
    if (keys === undefined)
      throw new VolunteerError("DAMAGED", "the stored capsule keys are missing: the device folder was altered");
    const plaintext = openCapsule(file, bytesOf(keys.secretKey));
    const batch = new WriteBatch(storage);
    const mine = new VolunteerStore(store.records.on(batch));
    let next = file;
    if (plaintext !== undefined) {
      // Only the real profile seals to this key: whatever the payload says, the decoy was opened.
      const payload = decodePayload(plaintext);
      plaintext.fill(0);
      // The decoy keeps only its fixed records: before this branch first completes it was never
      // opened, so any outbox item of its own is a cover item a crashed earlier run left.
      const kept = new Set(FIXED_RECORDS.map((name) => store.records.fileNameOf(name)));
      for (const name of await storage.list(RECORD_FILE_PREFIX)) if (!kept.has(name)) await batch.delete(name);
      await writeFillerProfile(batch, store);
      // The decoy shows the real profile's last sync, not "never", and its check-in timer goes on
      // from the real profile's (not from the decoy's own enrolledAt): a `sync` right after the
      // unlock queues a check-in with the duress PIN exactly when it would with the PIN.
      await mine.putSyncLog({
        ...(await store.syncLog()),
        ...(payload?.lastSyncAt === undefined ? {} : { lastSyncAt: payload.lastSyncAt }),
        ...(payload?.lastSuccessAt === undefined ? {} : { lastSuccessAt: payload.lastSuccessAt }),
        ...(payload?.lastCheckinAt === undefined ? {} : { lastCheckinAt: payload.lastCheckinAt }),
        ...(payload?.lastError === undefined ? {} : { lastError: payload.lastError }),
      });
      // The real profile's outbox and notices, in shape only: cover items (cover.ts) and notices
      // without text, so `status` and the next sync look as they would have with the PIN.
      const notices = Math.min(payload?.notices ?? 0, MAX_RECEIVED_KEPT);
      if (notices > 0) {
        await mine.putMailbox({ lastCounter: 0, received: Array.from({ length: notices }, () => coverNotice(now)) });
      }
      await queueCovers(mine, parseOutboxShape(payload?.outbox ?? ""), now);
      // The other slots are erased again in the key-slot write below (they already were by unlockWrite).
      next = eraseOtherSlots(file, own.slot);
    } else {
      for (const name of REWRITTEN_RECORDS) {
        const value = await store.records.get(name);
        if (value !== undefined) await mine.records.put(name, value);
      }
      await padWrites(batch, store);
    }
    await batch.commit();
    await writeKeySlots(storage, sealCapsule(next, bytesOf(keys.peerKey), await payloadOf(mine)));
    return plaintext !== undefined;
  });
}

/** A received notice without text: what a decoy keeps for each notice the real profile had. */
function coverNotice(now: number): ReceivedControl {
  return { kind: "notice", counter: 0, from: "", issuedAt: now, receivedAt: now };
}

function eraseOtherSlots(file: KeySlotFile, keep: number): KeySlotFile {
  let erased = file;
  for (let index = 0; index < file.slots.length; index++) if (index !== keep) erased = eraseSlot(erased, index);
  return erased;
}

/**
 * A second profile nobody can open, beside `store`'s: what enrollment writes when no duress PIN is
 * given (a decoy-shaped profile under a random data key that is then discarded), with `store`'s
 * relay, campaign, pseudonym, settings, roster and epoch keys, a duress key nobody enrolled and
 * capsule keys nothing refers to. Its slot is never filled.
 */
export async function writeFillerProfile(storage: DeviceStorage, store: VolunteerStore): Promise<void> {
  const filler = await writeSecondProfile(storage, store, {
    duressKey: newDuressKey(),
    now: (await store.identity()).enrolledAt,
    capsuleKeys: unusedCapsuleKeys(),
  });
  filler.dataKey.fill(0);
}

/**
 * A new profile beside `store`'s, decoy-shaped (writeDecoyProfile) with `store`'s relay,
 * campaign, pseudonym, settings, roster and epoch keys: the filler, or a decoy for a new duress PIN.
 */
async function writeSecondProfile(
  storage: DeviceStorage,
  store: VolunteerStore,
  options: { duressKey: IdentityRecord["duress"]; now: number; capsuleKeys: CapsuleKeysRecord },
): Promise<NewProfile> {
  const identity = await store.identity();
  const profile = newProfile();
  const profileStore = new VolunteerStore(new ProfileStore(storage, profile.dataKey, profile.profileId));
  await writeDecoyProfile(profileStore, {
    relayUrl: identity.relayUrl,
    campaignId: identity.campaignId,
    rootFingerprint: identity.rootFingerprint,
    pseudonym: identity.pseudonym,
    ...options,
    settings: await store.settings(),
  });
  await copyRosterAndEpochKeys(store, profileStore);
  return profile;
}

async function copyRosterAndEpochKeys(from: VolunteerStore, to: VolunteerStore): Promise<void> {
  const roster = await from.records.get(RECORD.roster);
  if (roster !== undefined) await to.records.put(RECORD.roster, roster);
  const epochKeys = await from.epochKeys();
  if (epochKeys !== undefined) await to.putEpochKeys(epochKeys);
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
 * real profile: its invite fields are random bytes of the right sizes, its own `duress` pair is
 * D again (enrolled, so it signs in like a real profile's); its capsule keys have the same shape
 * as the real profile's.
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
    // Its own duress key is D too: a session signed with it works at the relay like a real
    // profile's, and a decoy given a duress PIN of its own (set-duress-pin under coercion) makes a
    // decoy that signs with D again, still flagged by coordinators, instead of one the relay refuses.
    duress: { ...options.duressKey },
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
 * Sets (or replaces) the duress PIN from the unlocked real profile. Order, so that a crash (kill -9)
 * anywhere leaves either the old state or the new one, never a duress PIN that erases nothing:
 * the spare slot is erased (an earlier duress PIN stops opening anything), the previous decoy's (or
 * filler's) files go, a new decoy is written, the real profile records the new decoy's capsule key,
 * and last ONE atomic write of the key-slot file fills the spare slot under `duressPin` and seals
 * the capsule to the new decoy (the commit point). A crash before it leaves a device without a
 * duress PIN whose next unlock with the PIN seals the capsule to a decoy no PIN opens (harmless).
 */
export async function setDuressPin(
  storage: DeviceStorage,
  store: VolunteerStore,
  openedSlot: number,
  duressPin: string,
  now: number,
  own?: OwnSlot,
): Promise<void> {
  assertPinAcceptable(duressPin);
  if (openedSlot < 0) throw new RangeError("setDuressPin needs a profile opened with its PIN");
  await storage.exclusive(async () => {
    await assertNotErased(await readKeySlots(storage), store, own);
    if (unlockKeySlots(await readKeySlots(storage), duressPin)?.slot === openedSlot) {
      throw new InvalidPin("the duress PIN must differ from the PIN");
    }
    const identity = await store.identity();
    const realKeys = await store.capsuleKeys();
    const before = await readKeySlots(storage);
    const spare = before.slots.findIndex((_, index) => index !== openedSlot);
    await writeKeySlots(storage, eraseSlot(before, spare));
    await store.records.destroyOthers();
    const capsuleKeys = newCapsuleKeys(true);
    const decoy = await writeSecondProfile(storage, store, {
      duressKey: identity.duress,
      now,
      capsuleKeys: capsuleKeys.decoy ?? capsuleKeys.real,
    });
    const real = { secretKey: realKeys?.secretKey ?? capsuleKeys.real.secretKey, peerKey: capsuleKeys.real.peerKey };
    await store.putCapsuleKeys(real);
    const file = fillSlot(await readKeySlots(storage), spare, duressPin, decoy);
    await writeKeySlots(storage, sealCapsule(file, bytesOf(real.peerKey), await payloadOf(store)));
  });
}
