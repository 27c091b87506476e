// Enrollment from an invite code. The volunteer learns the coordinators' root fingerprint from the
// invite itself, never from the relay: the roster the relay serves must verify against it, and
// every epoch key must verify against that roster, BEFORE any key is generated or sent.
//
//   decodeInvite → GET roster → verifyRoster(invite fingerprint) → GET epoch-keys → selectEpochKeys
//   → fresh device keys → POST enroll (redeem token, keys, proofs of possession of S and D) → check pseudonym
//   → key slots + profile → queue the `enrolled` report → try to send it (sync).
//
// The relay answers the enrollment before the device writes anything: if the device dies in
// between, the invite is spent and a new one is needed (the keys were never stored, so nothing
// half-enrolled remains).
import {
  campaignIdFromFingerprint,
  decodeInvite,
  generateDeviceKeys,
  inviteNonceOf,
  inviteProofBase64url,
  inviteRedeemToken,
  inviteStoredHashBase64url,
  NoCurrentEpochKey,
  pseudonymFromKeys,
  publicKeysOf,
  REPORT_KIND,
  type Roster,
  selectEpochKeys,
  signDuressProof,
  signEnrollment,
  signEnrollmentDuress,
  toBase64url,
  verifyRoster,
} from "@testigo/protocol";
import {
  assertMaxFailedUnlocks,
  assertPinAcceptable,
  InvalidPin,
  type KdfLimits,
  newProfile,
} from "../crypto/key-slots.js";
import { ProfileStore } from "../storage/profile-store.js";
import type { DeviceStorage } from "../storage/storage.js";
import type { HttpTransport } from "../transport/http.js";
import { RelayClient } from "../transport/relay-client.js";
import { createDevice, hasDevice } from "./device.js";
import { newCapsuleKeys, newDuressKey, refreshCapsule, writeDecoyProfile } from "./duress.js";
import { VolunteerError } from "./errors.js";
import { type QueuedItem, queueMessage } from "./outbox.js";
import type { EpochKeysRecord } from "./records.js";
import { DEFAULT_BASE_DELAY_MS, defaultSleep, withRetry } from "./retry.js";
import { bytesOf, VolunteerStore } from "./volunteer-store.js";

/** How long enrollment keeps retrying requests whose answer was lost (wall-clock time). */
export const ENROLL_RETRY_MS = 60_000;
const ENROLL_MAX_DELAY_MS = 5_000;

export interface EnrollOptions {
  readonly storage: DeviceStorage;
  readonly inviteCode: string;
  readonly pin: string;
  /** A second PIN that opens a plausible decoy profile and triggers the duress path (duress.ts). */
  readonly duressPin?: string;
  readonly keepSent?: boolean;
  /** Failed unlocks in a row after which the device erases itself (default 10). */
  readonly maxFailedUnlocks?: number;
  /** How often sync queues a `checkin` (default 15 min; 0: never automatically). */
  readonly checkinIntervalMs?: number;
  readonly limits?: KdfLimits;
  readonly transport?: HttpTransport;
  readonly timeoutMs?: number;
  readonly now: () => number;
}

export interface Enrolled {
  readonly pseudonym: string;
  readonly relayUrl: string;
  readonly campaignId: string;
  readonly store: VolunteerStore;
  readonly enrolledReport: QueuedItem;
}

export async function enroll(options: EnrollOptions): Promise<Enrolled> {
  // Everything that can be checked offline is checked before the invite is spent.
  assertPinAcceptable(options.pin);
  if (options.maxFailedUnlocks !== undefined) assertMaxFailedUnlocks(options.maxFailedUnlocks);
  if (
    options.checkinIntervalMs !== undefined &&
    !(Number.isSafeInteger(options.checkinIntervalMs) && options.checkinIntervalMs >= 0)
  ) {
    throw new RangeError("checkinIntervalMs must be a whole number of milliseconds, 0 or more");
  }
  if (options.duressPin !== undefined) {
    assertPinAcceptable(options.duressPin);
    if (options.duressPin.normalize("NFC") === options.pin.normalize("NFC")) {
      throw new InvalidPin("the duress PIN must differ from the PIN");
    }
  }
  if (await hasDevice(options.storage)) {
    throw new VolunteerError(
      "ALREADY_ENROLLED",
      "this folder already holds an enrolled device: use another --dir (a device enrolls once)",
    );
  }
  const invite = decodeInvite(options.inviteCode);
  // The invite's root fingerprint is the campaign id (roster.ts): it names the campaign to ask
  // for and pins the root key that must have signed its roster.
  const campaignId = campaignIdFromFingerprint(invite.rootFingerprint);
  const client = new RelayClient(invite.relayUrl, undefined, {
    ...(options.transport === undefined ? {} : { transport: options.transport }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    now: options.now,
  });

  // A lost answer (a dropped link on a congested network) is retried: the reads are harmless, and
  // the relay answers a repeated enrollment of the same keys with the same pseudonym.
  const retryDeadline = Date.now() + ENROLL_RETRY_MS;
  const retrying = <T>(operation: () => Promise<T>) =>
    withRetry(operation, {
      deadline: retryDeadline,
      now: Date.now,
      sleep: defaultSleep,
      random: Math.random,
      baseDelayMs: DEFAULT_BASE_DELAY_MS,
      maxDelayMs: ENROLL_MAX_DELAY_MS,
    });

  const signedRoster = await retrying(() => client.getRoster(campaignId));
  let roster: Roster;
  try {
    roster = verifyRoster(signedRoster, invite.rootFingerprint);
  } catch {
    throw new VolunteerError("ROSTER_MISMATCH", "the relay's roster does not match the invite: do not use this relay");
  }
  if (roster.campaignId !== campaignId) {
    throw new VolunteerError("ROSTER_MISMATCH", "the relay's roster does not match the invite: do not use this relay");
  }
  const epochDocs = await retrying(() => client.getEpochKeys(campaignId));
  const epochKeys: EpochKeysRecord = { fetchedAt: options.now(), devices: { ...epochDocs } };
  try {
    selectEpochKeys(epochKeys.devices, roster, options.now());
  } catch (error) {
    // Missing keys only delay the first report (it is sealed at send time); forged ones stop here.
    if (!(error instanceof NoCurrentEpochKey)) {
      throw new VolunteerError(
        "RELAY_LIED",
        "the relay served coordinator keys that do not verify against the campaign's roster: do not use this relay",
      );
    }
  }

  const keys = generateDeviceKeys();
  const { signingKey, encryptionKey } = publicKeysOf(keys);
  // The duress key D, always (with or without a duress PIN): a decoy, now or after a later
  // `set-duress-pin`, signs with it; the relay and the coordinators learn it now.
  const duress = newDuressKey();
  const duressKey = bytesOf(duress.publicKey);
  const redeemToken = inviteRedeemToken(invite.secret);
  const duressPrivateKey = bytesOf(duress.privateKey);
  const enrollRequest = {
    redeemToken: toBase64url(redeemToken),
    signingKey: toBase64url(signingKey),
    encryptionKey: toBase64url(encryptionKey),
    duressKey: duress.publicKey,
    signature: signEnrollment(redeemToken, signingKey, encryptionKey, keys.signing.privateKey, duressKey),
    // D signs too: the relay and the coordinators accept a duress key only from its holder.
    duressSignature: signEnrollmentDuress(redeemToken, signingKey, encryptionKey, duressKey, duressPrivateKey),
  };
  // For the `enrolled` report: D's proof, bound to this campaign and these keys.
  const duressProof = signDuressProof(campaignId, signingKey, encryptionKey, duressPrivateKey);
  duressPrivateKey.fill(0);
  const pseudonym = await retrying(() => client.enroll(campaignId, enrollRequest));
  if (pseudonym !== pseudonymFromKeys({ signingKey, encryptionKey })) {
    throw new VolunteerError("RELAY_LIED", "the relay answered a pseudonym that does not belong to this device's keys");
  }

  const real = newProfile();
  // A decoy-shaped second profile always: with no duress PIN its data key is discarded (its slot
  // stays random bytes), so the folder has the same files and sizes either way.
  const decoy = newProfile();
  await createDevice(options.storage, {
    pin: options.pin,
    real,
    ...(options.duressPin === undefined ? {} : { duress: { pin: options.duressPin, decoy } }),
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    ...(options.maxFailedUnlocks === undefined ? {} : { maxFailedUnlocks: options.maxFailedUnlocks }),
  });
  const capsuleKeys = newCapsuleKeys(options.duressPin !== undefined);
  // Without a duress PIN: keys of the same shape that nothing else refers to.
  const decoyCapsuleKeys = capsuleKeys.decoy ?? newCapsuleKeys(true).decoy;
  const store = new VolunteerStore(new ProfileStore(options.storage, real.dataKey, real.profileId));
  const now = options.now();
  await store.putIdentity({
    v: 1,
    relayUrl: client.baseUrl,
    campaignId,
    rootFingerprint: toBase64url(invite.rootFingerprint),
    pseudonym,
    signing: { publicKey: toBase64url(signingKey), privateKey: toBase64url(keys.signing.privateKey) },
    encryption: { publicKey: toBase64url(encryptionKey), privateKey: toBase64url(keys.encryption.privateKey) },
    duress,
    invite: {
      nonce: toBase64url(inviteNonceOf(invite.secret)),
      storedHash: inviteStoredHashBase64url(redeemToken),
      proof: inviteProofBase64url(invite.secret, signingKey, encryptionKey),
    },
    enrolledAt: now,
  });
  const settings = {
    keepSent: options.keepSent === true,
    ...(options.checkinIntervalMs === undefined ? {} : { checkinIntervalMs: options.checkinIntervalMs }),
  };
  await store.putSettings(settings);
  await store.putRoster(roster.serial, signedRoster);
  await store.putEpochKeys(epochKeys);
  await store.putCapsuleKeys(capsuleKeys.real);
  if (decoyCapsuleKeys !== undefined) {
    const decoyStore = new VolunteerStore(new ProfileStore(options.storage, decoy.dataKey, decoy.profileId));
    await writeDecoyProfile(decoyStore, {
      relayUrl: client.baseUrl,
      campaignId,
      rootFingerprint: toBase64url(invite.rootFingerprint),
      pseudonym,
      // Without a duress PIN the filler profile (its data key is discarded) gets a key nobody enrolled.
      duressKey: options.duressPin === undefined ? newDuressKey() : duress,
      now,
      settings,
      capsuleKeys: decoyCapsuleKeys,
    });
    await decoyStore.putRoster(roster.serial, signedRoster);
    await decoyStore.putEpochKeys(epochKeys);
  }
  if (options.duressPin === undefined) decoy.dataKey.fill(0);

  const identity = await store.identity();
  const enrolledReport = await queueMessage(
    store,
    {
      kind: REPORT_KIND.enrolled,
      table: "0",
      text: "",
      invite: identity.invite,
      encryptionKey: identity.encryption.publicKey,
      duressKey: identity.duress.publicKey,
      duressProof,
    },
    now,
  );
  // From now on the duress PIN erases the real profile and opens the decoy, whose unlock check-in
  // (signed by D) is the alert.
  await refreshCapsule(options.storage, store);
  return { pseudonym, relayUrl: client.baseUrl, campaignId, store, enrolledReport };
}
