// The campaign roster: the coordinator devices a campaign's volunteers seal to and accept control
// messages from, signed by the campaign's root key.
//
// Volunteers never learn the root key from the relay: the invite carries the first 16 bytes of
// the root key's fingerprint, and every roster the relay hands out must name a root key with that
// fingerprint and be signed by it. A relay can therefore withhold a roster or replay an old one
// (the serial rule below refuses rollbacks), but it cannot substitute keys.
import { z } from "zod";
import { bytesEqual, fromBase64url, fromUtf8, toBase64url } from "./bytes.js";
import { DOMAIN } from "./domain.js";
import { DecryptionFailed, Malformed, ProtocolError } from "./errors.js";
import {
  campaignIdFromRootKey,
  type DevicePublicKeys,
  hashWithDomain,
  type SigningKeyPair,
  toCrockfordBase32,
} from "./keys.js";
import { MAX_RECIPIENTS } from "./limits.js";
import { campaignId, publicKey, shortId, timestamp, x25519PublicKey } from "./schemas/common.js";
import { openSignedDocument, type SignedDocument, signDocument, unverifiedPayloadBytes } from "./signed-document.js";

export const ROSTER_VERSION = 1;
/** Bytes of the root key's fingerprint carried in invites (128 bits). */
export const ROSTER_FINGERPRINT_BYTES = 16;
export const MAX_DEVICE_LABEL_LENGTH = 64;
/** Serials are positive 32-bit integers, so every implementation compares them exactly. */
export const MAX_ROSTER_SERIAL = 0xffffffff;

export const rosterDevice = z.strictObject({
  id: shortId,
  // X25519, of full order: a low-order key would make every seal to it fail (review L8).
  encryptionKey: x25519PublicKey,
  signingKey: publicKey,
  // Shown to coordinators only ("laptop of R."); control characters could forge a display.
  label: z
    .string()
    .min(1)
    .max(MAX_DEVICE_LABEL_LENGTH)
    .regex(/^[^\p{Cc}\p{Cf}]+$/u, "must not contain control or format characters")
    .optional(),
});

export type RosterDevice = z.infer<typeof rosterDevice>;

export const roster = z
  .strictObject({
    v: z.literal(ROSTER_VERSION),
    campaignId,
    serial: z.number().int().min(1).max(MAX_ROSTER_SERIAL),
    issuedAt: timestamp,
    rootKey: publicKey,
    devices: z.array(rosterDevice).min(1).max(MAX_RECIPIENTS),
  })
  .superRefine((value, ctx) => {
    if (value.campaignId !== campaignIdFromRootKey(fromBase64url(value.rootKey) ?? new Uint8Array())) {
      ctx.addIssue({ code: "custom", message: "campaignId must be derived from rootKey", path: ["campaignId"] });
    }
    const ids = new Set(value.devices.map((d) => d.id));
    const encryptionKeys = new Set(value.devices.map((d) => d.encryptionKey));
    const signingKeys = new Set(value.devices.map((d) => d.signingKey));
    const n = value.devices.length;
    if (ids.size !== n) ctx.addIssue({ code: "custom", message: "device ids must be unique", path: ["devices"] });
    if (encryptionKeys.size !== n || signingKeys.size !== n) {
      ctx.addIssue({ code: "custom", message: "device keys must be unique", path: ["devices"] });
    }
    // The root key signs rosters only; a device using it would blur the two roles.
    if (signingKeys.has(value.rootKey)) {
      ctx.addIssue({ code: "custom", message: "a device must not sign with the root key", path: ["devices"] });
    }
  });

export type Roster = z.infer<typeof roster>;

export interface RosterDeviceInput {
  readonly id: string;
  readonly encryptionKey: Uint8Array;
  readonly signingKey: Uint8Array;
  readonly label?: string;
}

export interface CreateRosterInput {
  readonly root: SigningKeyPair;
  readonly serial: number;
  readonly issuedAt: number;
  readonly devices: readonly RosterDeviceInput[];
}

/** Builds and signs a roster with the campaign's root key. Throws Malformed on invalid input. */
export function createRoster(input: CreateRosterInput): SignedDocument {
  const value: Roster = {
    v: ROSTER_VERSION,
    campaignId: campaignIdFromRootKey(input.root.publicKey),
    serial: input.serial,
    issuedAt: input.issuedAt,
    rootKey: toBase64url(input.root.publicKey),
    devices: input.devices.map((d) => ({
      id: d.id,
      encryptionKey: toBase64url(d.encryptionKey),
      signingKey: toBase64url(d.signingKey),
      ...(d.label === undefined ? {} : { label: d.label }),
    })),
  };
  return signDocument(DOMAIN.rosterSignature, value, roster, input.root.privateKey);
}

/**
 * The 16-byte root fingerprint an invite carries. It is the campaign id's raw bytes
 * (`campaignIdFromRootKey`: BLAKE2b-128 of the root key under the campaign-id label), so one
 * value both names the campaign at the relay and pins the key that must sign its roster: a
 * volunteer holding only the invite knows which campaign to ask for and which roster to trust.
 */
export function rosterFingerprint(rootPublicKey: Uint8Array): Uint8Array {
  return hashWithDomain(DOMAIN.campaignId, ROSTER_FINGERPRINT_BYTES, rootPublicKey);
}

/** The campaign id (base64url) named by an invite's root fingerprint. */
export function campaignIdFromFingerprint(rootFingerprint: Uint8Array): string {
  if (rootFingerprint.length !== ROSTER_FINGERPRINT_BYTES) {
    throw new Malformed(`a roster fingerprint has ${ROSTER_FINGERPRINT_BYTES} bytes`);
  }
  return toBase64url(rootFingerprint);
}

/**
 * The fingerprint for people to compare out of band (read aloud, on paper): 26 Crockford base32
 * characters in groups of four, e.g. "0123 4567 89AB CDEF GHJK MNPQ RS".
 */
export function formatRosterFingerprint(rootFingerprint: Uint8Array): string {
  if (rootFingerprint.length !== ROSTER_FINGERPRINT_BYTES) {
    throw new Malformed(`a roster fingerprint has ${ROSTER_FINGERPRINT_BYTES} bytes`);
  }
  return (
    toCrockfordBase32(rootFingerprint)
      .match(/.{1,4}/g)
      ?.join(" ") ?? ""
  );
}

/**
 * Verifies a roster received from anywhere (the relay, a file) against the root fingerprint the
 * invite carried. Throws DecryptionFailed for any failure: wrong root, bad signature, schema
 * violation, campaign id not derived from the root key.
 *
 * The root key has to be read from the unverified payload before the signature can be checked;
 * it is trusted only after its fingerprint matches, and the whole payload is parsed only after
 * the signature over its exact bytes verifies.
 */
export function verifyRoster(signed: unknown, expectedRootFingerprint: Uint8Array): Roster {
  const rootKey = unverifiedRootKey(signed);
  if (rootKey === undefined || !bytesEqual(rosterFingerprint(rootKey), expectedRootFingerprint)) {
    throw new DecryptionFailed();
  }
  const value = openSignedDocument(DOMAIN.rosterSignature, signed, roster, rootKey);
  // The signed payload must name the key that verified it (always true unless the JSON holds
  // "rootKey" twice, which a signer never produces; refuse rather than guess).
  if (value.rootKey !== toBase64url(rootKey)) throw new DecryptionFailed();
  return value;
}

function unverifiedRootKey(signed: unknown): Uint8Array | undefined {
  const bytes = unverifiedPayloadBytes(signed);
  if (bytes === undefined) return undefined;
  try {
    const json: unknown = JSON.parse(fromUtf8(bytes));
    const candidate = z.object({ rootKey: publicKey }).safeParse(json);
    return candidate.success ? fromBase64url(candidate.data.rootKey) : undefined;
  } catch {
    return undefined;
  }
}

/** True if `candidate` is a later roster of the same campaign than `current`. */
export function isNewerRoster(candidate: Roster, current: Roster): boolean {
  return candidate.campaignId === current.campaignId && candidate.serial > current.serial;
}

/** A roster older than (or conflicting with) the one a client already holds. */
export class RosterRollback extends ProtocolError {
  readonly code = "ROSTER_ROLLBACK" as const;
  override readonly name = "RosterRollback";
}

/**
 * The rollback rule: a client keeps the roster with the highest serial it has seen and refuses
 * lower ones. Returns the roster to keep. Two different rosters with the same serial mean the
 * root key signed conflicting histories (or leaked): refused as well, the client keeps its own.
 * A roster of another campaign is not for this client: DecryptionFailed.
 */
export function acceptRoster(current: Roster | undefined, candidate: Roster): Roster {
  if (current === undefined) return candidate;
  if (candidate.campaignId !== current.campaignId || candidate.rootKey !== current.rootKey) {
    throw new DecryptionFailed();
  }
  if (candidate.serial > current.serial) return candidate;
  if (candidate.serial === current.serial && JSON.stringify(candidate) === JSON.stringify(current)) return current;
  throw new RosterRollback(
    candidate.serial === current.serial
      ? `two different rosters carry serial ${candidate.serial}; keeping the one already held`
      : `roster serial ${candidate.serial} is older than the held serial ${current.serial}`,
  );
}

/** A roster device's public keys as bytes (the schema guarantees they decode). */
export function rosterDeviceKeys(device: RosterDevice): DevicePublicKeys {
  const encryptionKey = fromBase64url(device.encryptionKey);
  const signingKey = fromBase64url(device.signingKey);
  if (encryptionKey === undefined || signingKey === undefined) throw new DecryptionFailed();
  return { encryptionKey, signingKey };
}

/** The roster device whose signing key is `signingKey`, if any. */
export function findRosterDeviceBySigningKey(value: Roster, signingKey: Uint8Array): RosterDevice | undefined {
  const text = toBase64url(signingKey);
  return value.devices.find((d) => d.signingKey === text);
}
