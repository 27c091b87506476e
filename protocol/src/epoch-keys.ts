// Epoch keys: short-lived X25519 keys that give volunteers' reports forward secrecy.
//
// Each coordinator device publishes, signed by its roster signing key, one epoch key per period
// (24 h by default) and always the current and the next one, so a key exists before it is
// needed. Volunteers seal to the epoch key of every roster device valid now (± 1 h for clock
// skew). A coordinator erases an epoch's private key at notAfter + relay retention + grace: by
// then the relay has dropped every envelope sealed to it, and a laptop seized later holds no key
// that opens ciphertext captured earlier.
import { z } from "zod";
import { fromBase64url, toBase64url } from "./bytes.js";
import { DOMAIN } from "./domain.js";
import { DecryptionFailed, Malformed, ProtocolError } from "./errors.js";
import { type EncryptionKeyPair, generateEncryptionKeyPair } from "./keys.js";
import { type Roster, rosterDeviceKeys } from "./roster.js";
import { campaignId, shortId, timestamp, x25519PublicKey } from "./schemas/common.js";
import { openSignedDocument, type SignedDocument, signDocument } from "./signed-document.js";

export const EPOCH_KEY_VERSION = 1;
const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
export const DEFAULT_EPOCH_PERIOD_MS = DAY;
export const MIN_EPOCH_PERIOD_MS = HOUR;
export const MAX_EPOCH_PERIOD_MS = 7 * DAY;
/** Clock skew tolerated between a volunteer's phone and the coordinators' laptops. */
export const EPOCH_GRACE_MS = HOUR;
/** How long the relay keeps an envelope at most (the relay's default retention). */
export const DEFAULT_RELAY_RETENTION_MS = 14 * DAY;

export const epochKey = z
  .strictObject({
    v: z.literal(EPOCH_KEY_VERSION),
    campaignId,
    deviceId: shortId,
    epoch: z.number().int().nonnegative().max(0xffffffff),
    // Volunteers seal reports to it: a low-order key would make every seal fail (review L8).
    publicKey: x25519PublicKey,
    notBefore: timestamp,
    notAfter: timestamp,
  })
  .superRefine((value, ctx) => {
    const period = value.notAfter - value.notBefore;
    if (period < MIN_EPOCH_PERIOD_MS || period > MAX_EPOCH_PERIOD_MS) {
      ctx.addIssue({ code: "custom", message: "epoch period out of range", path: ["notAfter"] });
    } else if (value.notBefore !== value.epoch * period) {
      ctx.addIssue({ code: "custom", message: "notBefore must be epoch × period", path: ["notBefore"] });
    }
  });

export type EpochKey = z.infer<typeof epochKey>;

/** The epoch number containing `now` (ms). */
export function epochAt(now: number, periodMs: number = DEFAULT_EPOCH_PERIOD_MS): number {
  return Math.floor(now / periodMs);
}

/** [notBefore, notAfter) of an epoch. */
export function epochWindow(
  epoch: number,
  periodMs: number = DEFAULT_EPOCH_PERIOD_MS,
): { notBefore: number; notAfter: number } {
  return { notBefore: epoch * periodMs, notAfter: (epoch + 1) * periodMs };
}

/** The epochs a device must have published at `now`: the current one and the next one. */
export function epochsToPublish(now: number, periodMs: number = DEFAULT_EPOCH_PERIOD_MS): [number, number] {
  const current = epochAt(now, periodMs);
  return [current, current + 1];
}

export interface CreateEpochKeyInput {
  readonly campaignId: string;
  readonly deviceId: string;
  readonly epoch: number;
  /** The device's roster signing key (64-byte libsodium private key). */
  readonly deviceSigningKey: Uint8Array;
  readonly periodMs?: number;
  /** Fixed key pair for test vectors; a fresh one otherwise. */
  readonly keyPair?: EncryptionKeyPair;
}

export interface CreatedEpochKey {
  readonly signed: SignedDocument;
  readonly value: EpochKey;
  /** Keep it (encrypted at rest) until epochPrivateKeyDeletionTime, then erase it. */
  readonly keyPair: EncryptionKeyPair;
}

/** Generates and signs one epoch key of a coordinator device. */
export function createEpochKey(input: CreateEpochKeyInput): CreatedEpochKey {
  const keyPair = input.keyPair ?? generateEncryptionKeyPair();
  const window = epochWindow(input.epoch, input.periodMs ?? DEFAULT_EPOCH_PERIOD_MS);
  const value: EpochKey = {
    v: EPOCH_KEY_VERSION,
    campaignId: input.campaignId,
    deviceId: input.deviceId,
    epoch: input.epoch,
    publicKey: toBase64url(keyPair.publicKey),
    notBefore: window.notBefore,
    notAfter: window.notAfter,
  };
  const signed = signDocument(DOMAIN.epochKeySignature, value, epochKey, input.deviceSigningKey);
  return { signed, value, keyPair };
}

/** Opens one epoch key document with its device's signing key; DecryptionFailed on any failure. */
export function openEpochKey(signed: unknown, deviceSigningKey: Uint8Array): EpochKey {
  return openSignedDocument(DOMAIN.epochKeySignature, signed, epochKey, deviceSigningKey);
}

/** Valid at `now` with the clock-skew grace on both ends. */
export function isEpochKeyCurrent(key: EpochKey, now: number): boolean {
  return key.notBefore - EPOCH_GRACE_MS <= now && now < key.notAfter + EPOCH_GRACE_MS;
}

/** Some roster devices have no epoch key valid now: sealing must wait for them to publish. */
export class NoCurrentEpochKey extends ProtocolError {
  readonly code = "NO_CURRENT_EPOCH_KEY" as const;
  override readonly name = "NoCurrentEpochKey";
  constructor(readonly deviceIds: readonly string[]) {
    super(
      `no valid epoch key for coordinator device(s) ${deviceIds.join(", ")}: fetch epoch keys again later or check the phone's clock`,
    );
  }
}

export interface SelectedEpochKey {
  readonly deviceId: string;
  readonly epoch: number;
  /** X25519 public key to seal to. */
  readonly publicKey: Uint8Array;
  readonly value: EpochKey;
}

/**
 * For every device of a verified roster, the epoch key to seal to at `now`, in roster order.
 *
 * `signedByDevice` maps a device id to the documents the relay served for it. Every document is
 * verified with that roster device's signing key; a forged document, one for another campaign or
 * device, or one under a device id the roster does not list throws DecryptionFailed (the relay
 * is lying: send nothing). Among the valid documents of a device, the one whose window contains
 * `now` wins, else the one within the grace period, the later epoch first.
 */
export function selectEpochKeys(
  signedByDevice: Readonly<Record<string, readonly unknown[]>>,
  roster: Roster,
  now: number,
): SelectedEpochKey[] {
  // The roster and the time come from the caller: a wrong one is a bug there, not the relay's lie.
  if (
    typeof roster !== "object" ||
    roster === null ||
    typeof roster.campaignId !== "string" ||
    !Array.isArray(roster.devices)
  ) {
    throw new Malformed("selectEpochKeys needs a roster verified with verifyRoster");
  }
  if (!Number.isFinite(now)) throw new Malformed(`selectEpochKeys: ${now} is not a time in milliseconds`);
  // The map comes from the relay: anything but an object of arrays is a lie like a bad signature.
  if (typeof signedByDevice !== "object" || signedByDevice === null || Array.isArray(signedByDevice)) {
    throw new DecryptionFailed();
  }
  if (roster.devices.some((d: unknown) => typeof d !== "object" || d === null)) {
    throw new Malformed("selectEpochKeys needs a roster verified with verifyRoster");
  }
  const devices = new Map(roster.devices.map((d) => [d.id, d]));
  for (const id of Object.keys(signedByDevice)) if (!devices.has(id)) throw new DecryptionFailed();
  const missing: string[] = [];
  const selected: SelectedEpochKey[] = [];
  for (const device of roster.devices) {
    const { signingKey } = rosterDeviceKeys(device);
    const docs = Object.hasOwn(signedByDevice, device.id) ? (signedByDevice[device.id] ?? []) : [];
    if (!Array.isArray(docs)) throw new DecryptionFailed();
    let best: EpochKey | undefined;
    for (const doc of docs) {
      const key = openEpochKey(doc, signingKey);
      if (key.campaignId !== roster.campaignId || key.deviceId !== device.id) throw new DecryptionFailed();
      if (isEpochKeyCurrent(key, now) && (best === undefined || preferable(key, best, now))) best = key;
    }
    if (best === undefined) {
      missing.push(device.id);
      continue;
    }
    const keyBytes = fromBase64url(best.publicKey);
    if (keyBytes === undefined) throw new DecryptionFailed();
    selected.push({ deviceId: device.id, epoch: best.epoch, publicKey: keyBytes, value: best });
  }
  if (missing.length > 0) throw new NoCurrentEpochKey(missing);
  return selected;
}

function contains(key: EpochKey, now: number): boolean {
  return key.notBefore <= now && now < key.notAfter;
}

/** Deterministic preference: containing `now`, then later epoch, then the smaller public key text. */
function preferable(a: EpochKey, b: EpochKey, now: number): boolean {
  if (contains(a, now) !== contains(b, now)) return contains(a, now);
  if (a.epoch !== b.epoch) return a.epoch > b.epoch;
  return a.publicKey < b.publicKey;
}

/**
 * When the coordinator must erase an epoch's private key: notAfter + relay retention + grace.
 * Any envelope sealed to it was accepted before notAfter + grace and is gone from the relay
 * retention later; the private key is not needed after that, and keeping it only helps whoever
 * seizes the laptop.
 */
export function epochPrivateKeyDeletionTime(
  key: Pick<EpochKey, "notAfter">,
  retentionMs: number = DEFAULT_RELAY_RETENTION_MS,
): number {
  return key.notAfter + retentionMs + EPOCH_GRACE_MS;
}
