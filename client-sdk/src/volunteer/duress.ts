// The duress path (protocol/spec/duress-and-wipe.md).
//
// The key-slot file's capsule region holds, sealed with crypto_box_seal to a key only the decoy
// profile holds, the least the device needs to sign and send ONE duress report as the real
// identity: its signing key, a reserved seq and message id, the relay and campaign. The report is
// signed and sealed when it is sent, to the epoch keys current then, so the capsule never goes
// stale when coordinators rotate and erase epoch keys. The real profile seals the capsule at
// enrollment, always — to the decoy's capsule key when a duress PIN exists, to a key nobody holds
// otherwise — so the region looks the same on every device: bytes indistinguishable from random.
//
// A profile whose capsule secret key opens the capsule is the decoy being opened: the duress PIN.
// Then, before anything else: the real slot is overwritten with random bytes and the capsule is
// re-sealed with `sentAt` fixed (one atomic write of the key-slot file), and every record file the
// decoy cannot decrypt (the real profile's keys, outbox, photos) is deleted. The capsule stays
// pending until the relay accepted the report (the decoy's sync sends it), then becomes random.
import {
  fromBase64url,
  fromUtf8,
  generateDeviceKeys,
  generateEncryptionKeyPair,
  pseudonymFromKeys,
  publicKeysOf,
  REPORT_KIND,
  type Roster,
  randomBytes,
  sodium,
  toBase64url,
  utf8,
  verifyRoster,
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
import { RelayRefused, TransportError } from "../transport/errors.js";
import type { HttpTransport } from "../transport/http.js";
import { RelayClient } from "../transport/relay-client.js";
import { readKeySlots, writeKeySlots } from "./device.js";
import { type CapsuleKeysRecord, type CapsulePayload, capsulePayload, RECORD, type SettingsRecord } from "./records.js";
import { type RetryPolicy, withRetry } from "./retry.js";
import { currentRecipients, seal } from "./sealing.js";
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
 * that this profile can open alone: that is a pending duress report, which must not be lost.
 */
export async function refreshCapsule(storage: DeviceStorage, store: VolunteerStore): Promise<void> {
  const keys = await store.capsuleKeys();
  if (keys === undefined) return;
  const file = await readKeySlots(storage);
  if (openCapsule(file, bytesOf(keys.secretKey)) !== undefined) return;
  const identity = await store.identity();
  const payload: CapsulePayload = {
    v: 1,
    relayUrl: identity.relayUrl,
    campaignId: identity.campaignId,
    rootFingerprint: identity.rootFingerprint,
    pseudonym: identity.pseudonym,
    signingKey: identity.signing.privateKey,
    seq: await store.takeSeq(),
    messageId: toBase64url(randomBytes(16)),
  };
  // Read again: takeSeq wrote records, never the key-slot file, but keep the write last and fresh.
  await writeKeySlots(storage, sealCapsule(await readKeySlots(storage), bytesOf(keys.peerKey), encodePayload(payload)));
}

/**
 * Run at every unlock. If this profile opens the capsule, the duress PIN was entered: erase the
 * other profile (slot, then files) and return the pending duress report. Idempotent: a crash at
 * any point is completed by the next unlock with the duress PIN.
 */
export async function takeDuress(
  storage: DeviceStorage,
  store: VolunteerStore,
  openedSlot: number,
  now: number,
): Promise<CapsulePayload | undefined> {
  const keys = await store.capsuleKeys();
  if (keys === undefined) return undefined;
  const secretKey = bytesOf(keys.secretKey);
  const file = await readKeySlots(storage);
  const plaintext = openCapsule(file, secretKey);
  if (plaintext === undefined) return undefined;
  let payload = decodePayload(plaintext);
  plaintext.fill(0);
  if (payload === undefined) {
    await writeKeySlots(storage, clearCapsule(file));
    return undefined;
  }
  if (payload.sentAt === undefined) {
    payload = { ...payload, sentAt: now };
    const ownPublicKey = sodium().crypto_scalarmult_base(secretKey);
    let erased = file;
    for (let index = 0; index < file.slots.length; index++) if (index !== openedSlot) erased = eraseSlot(erased, index);
    await writeKeySlots(storage, sealCapsule(erased, ownPublicKey, encodePayload(payload)));
  }
  await store.records.destroyOthers();
  return payload;
}

/** Overwrites a pending capsule of this profile with random bytes (the duress report was accepted). */
export async function settleDuress(storage: DeviceStorage, store: VolunteerStore): Promise<void> {
  const keys = await store.capsuleKeys();
  if (keys === undefined) return;
  const file = await readKeySlots(storage);
  if (openCapsule(file, bytesOf(keys.secretKey)) !== undefined) await writeKeySlots(storage, clearCapsule(file));
}

export interface SendDuressOptions {
  readonly retry: RetryPolicy;
  readonly transport?: HttpTransport;
  readonly timeoutMs?: number;
}

/**
 * Sends the duress report as the real identity, with the same requests in the same order as an
 * ordinary sync that sends one status report: roster, epoch keys, session, envelope, mailbox read
 * and ack. The report is sealed now, to the epoch keys current now (verified against the roster
 * from the invite's fingerprint). True once the relay accepted it (or can never accept it: the
 * identity was revoked); false if it must be tried again at the next sync.
 */
export async function sendDuress(payload: CapsulePayload, options: SendDuressOptions): Promise<boolean> {
  const signingKey = bytesOf(payload.signingKey);
  const client = new RelayClient(
    payload.relayUrl,
    { campaignId: payload.campaignId, role: "volunteer", principal: payload.pseudonym, signingPrivateKey: signingKey },
    {
      ...(options.transport === undefined ? {} : { transport: options.transport }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      now: options.retry.now,
    },
  );
  const call = <T>(operation: () => Promise<T>) => withRetry(operation, options.retry);
  try {
    let roster: Roster;
    const signed = await call(() => client.getRoster(payload.campaignId));
    try {
      roster = verifyRoster(signed, bytesOf(payload.rootFingerprint));
    } catch {
      return false;
    }
    const epochDocs = await call(() => client.getEpochKeys(payload.campaignId));
    const recipients = currentRecipients(
      { fetchedAt: options.retry.now(), devices: { ...epochDocs } },
      roster,
      options.retry.now(),
    );
    if (recipients === undefined) return false;
    const sealed = seal(
      payload.campaignId,
      { publicKey: signingKey.slice(32), privateKey: signingKey },
      {
        kind: REPORT_KIND.duress,
        v: 1,
        messageId: payload.messageId,
        campaignId: payload.campaignId,
        seq: payload.seq,
        sentAt: payload.sentAt ?? options.retry.now(),
        table: "0",
        text: "",
      },
      recipients,
    );
    try {
      await call(() => client.submitEnvelope(fromBase64url(sealed.envelope) ?? new Uint8Array()));
    } catch (error) {
      // CONFLICT: an earlier copy (same random id, sealed before a crash) was accepted. Any other
      // refusal is thrown to the catch below, which keeps the capsule (unless REVOKED).
      if (!(error instanceof RelayRefused) || error.code !== "CONFLICT") throw error;
    }
    try {
      const slots = await call(() => client.readMailbox());
      await call(() => client.ackMailbox(slots.map((slot) => slot.messageId)));
    } catch {
      // The report is in: the mailbox read only keeps the run shaped like any other.
    }
    return true;
  } catch (error) {
    // Settled only when the report can never go: the identity was revoked. Any other refusal
    // (even a permanent one) keeps the capsule for the next sync, never discarding the report.
    if (error instanceof TransportError) return error instanceof RelayRefused && error.code === "REVOKED";
    return false;
  } finally {
    signingKey.fill(0);
  }
}

/**
 * A plausible profile under the duress PIN: the same relay, campaign and roster, keys of its own
 * (never enrolled), the same settings, an empty outbox, and NOTHING of the real profile: its
 * invite fields are random bytes of the right sizes (the real invite's nonce and hash would tie
 * the decoy to the real enrollment); its capsule keys have the same shape as the real profile's.
 */
export async function writeDecoyProfile(
  store: VolunteerStore,
  options: {
    relayUrl: string;
    campaignId: string;
    rootFingerprint: string;
    now: number;
    settings: SettingsRecord;
    capsuleKeys: CapsuleKeysRecord;
  },
): Promise<void> {
  const keys = generateDeviceKeys();
  const { signingKey, encryptionKey } = publicKeysOf(keys);
  await store.putIdentity({
    v: 1,
    relayUrl: options.relayUrl,
    campaignId: options.campaignId,
    rootFingerprint: options.rootFingerprint,
    pseudonym: pseudonymFromKeys({ signingKey, encryptionKey }),
    signing: { publicKey: toBase64url(signingKey), privateKey: toBase64url(keys.signing.privateKey) },
    encryption: { publicKey: toBase64url(encryptionKey), privateKey: toBase64url(keys.encryption.privateKey) },
    invite: {
      nonce: toBase64url(randomBytes(INVITE_NONCE_BYTES)),
      storedHash: toBase64url(randomBytes(32)),
      proof: toBase64url(randomBytes(32)),
    },
    enrolledAt: options.now,
  });
  await store.putSettings(options.settings);
  await store.putCapsuleKeys(options.capsuleKeys);
  // The same first seq as the real profile (its `enrolled` report took seq 0).
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
