// What a coordinator device keeps in its encrypted store (ProfileStore records), as zod schemas.
// Record names are the only strings that say what a record is; ProfileStore hides them on disk.
import { pseudonym, signedDocument, timestamp } from "@testigo/protocol";
import { z } from "zod";

const b64 = z.string().regex(/^[A-Za-z0-9_-]*$/);

export const RECORD = {
  config: "config",
  roster: "roster",
  counters: "counters",
  epoch: (epoch: number) => `epoch/${String(epoch).padStart(10, "0")}`,
  epochPrefix: "epoch/",
  invite: (storedHash: string) => `invite/${storedHash}`,
  volunteer: (name: string) => `volunteer/${name}`,
  volunteerPrefix: "volunteer/",
  volunteerKey: (signingKey: string) => `vkey/${signingKey}`,
  /** Which volunteer enrolled with an invite (by its stored hash): one identity per invite. */
  inviteUse: (storedHash: string) => `invite-use/${storedHash}`,
} as const;

export const deviceConfig = z.strictObject({
  v: z.literal(1),
  /** False between `join` (request made) and `join --bundle` (campaign known). */
  joined: z.boolean(),
  /** False until the relay accepted the campaign (init resumes registration if it was interrupted). */
  registered: z.boolean(),
  campaignId: z.string(),
  deviceId: z.string(),
  relayUrl: z.string(),
  rootFingerprint: b64,
  inviteKey: b64,
  encryption: z.strictObject({ publicKey: b64, privateKey: b64 }),
  signing: z.strictObject({ publicKey: b64, privateKey: b64 }),
  /** Only on the device that created the campaign: it alone signs new rosters. */
  root: z.strictObject({ publicKey: b64, privateKey: b64 }).optional(),
  createdAt: timestamp,
});
export type DeviceConfig = z.infer<typeof deviceConfig>;

export const rosterRecord = z.strictObject({ serial: z.number().int(), signed: signedDocument });
export type RosterRecord = z.infer<typeof rosterRecord>;

export const epochRecord = z.strictObject({
  epoch: z.number().int().nonnegative(),
  publicKey: b64,
  privateKey: b64,
  notBefore: timestamp,
  notAfter: timestamp,
  /** epochPrivateKeyDeletionTime: the record is erased then. */
  deleteAt: timestamp,
  signed: signedDocument,
});
export type EpochRecord = z.infer<typeof epochRecord>;

export const inviteRecord = z.strictObject({
  storedHash: b64,
  label: z.string().optional(),
  createdAt: timestamp,
  expiresAt: timestamp,
});
export type InviteRecord = z.infer<typeof inviteRecord>;

export const WIPE_STATES = ["none", "requested", "acknowledged"] as const;
export type WipeState = (typeof WIPE_STATES)[number];

export const volunteerRecord = z.strictObject({
  pseudonym,
  signingKey: b64,
  encryptionKey: b64,
  /**
   * The duress key its `enrolled` report announced: anything signed by it is this volunteer's,
   * sent UNDER DURESS (the decoy profile signs with it). Absent for devices that predate it.
   */
  duressKey: b64.optional(),
  label: z.string().optional(),
  enrolledAt: timestamp,
  /** receivedAt of the latest report of any kind. */
  lastSeen: timestamp.optional(),
  /** receivedAt of the latest `checkin` report. */
  lastCheckin: timestamp.optional(),
  counts: z.record(z.string(), z.number().int().nonnegative()),
  duress: z.boolean(),
  /**
   * receivedAt (relay clock) of the volunteer's first `duress` report or first report signed by
   * its duress key: reports the relay received at or after it are marked afterDuress.
   */
  duressAt: timestamp.optional(),
  wipe: z.enum(WIPE_STATES),
  /** A requested wipe not acknowledged by this time gets the volunteer revoked at the relay. */
  wipeDeadline: timestamp.optional(),
  /** When this device revoked the volunteer at the relay (after its wipe, or its wipe deadline). */
  relayRevokedAt: timestamp.optional(),
  /** Highest control-message counter this device used for the volunteer. */
  lastControlCounter: z.number().int().nonnegative(),
  /** Stored hash of the invite this volunteer enrolled with (base64url). */
  invite: b64.optional(),
  /**
   * Set once the volunteer's key must no longer be trusted: its device acknowledged a wipe (reports
   * with a higher `seq` than the wipe-ack are refused), or the relay lists it as revoked.
   */
  revoked: z
    .strictObject({
      reason: z.enum(["wiped", "relay", "wipe-deadline"]),
      at: timestamp,
      afterSeq: z.number().int().nonnegative().optional(),
    })
    .optional(),
  /** Enrollments of OTHER keys refused because they reused this volunteer's invite. */
  security: z.number().int().nonnegative().optional(),
});
export type VolunteerRecord = z.infer<typeof volunteerRecord>;

/** Key → volunteer index; `duress` marks the volunteer's duress key (what it signs is flagged). */
export const volunteerKeyRecord = z.strictObject({ pseudonym, duress: z.literal(true).optional() });

export const inviteUseRecord = z.strictObject({ storedHash: b64, signingKey: b64, pseudonym });
export type InviteUseRecord = z.infer<typeof inviteUseRecord>;

export const countersRecord = z.strictObject({
  quarantined: z.number().int().nonnegative(),
  /** Enrollments refused as attacks (reused or expired invite, key the relay never enrolled). */
  security: z.number().int().nonnegative().optional(),
});
export type CountersRecord = z.infer<typeof countersRecord>;
