// What a volunteer device keeps in its encrypted store (ProfileStore records), as zod schemas.
// Record names are the only strings that say what a record is; ProfileStore hides them on disk
// (file names are keyed hashes, contents are encrypted under the profile's data key).
import { innerMessage, shortId, signedDocument, timestamp } from "@testigo/protocol";
import { z } from "zod";

const b64 = z.string().regex(/^[A-Za-z0-9_-]*$/);

/** The key-slot file: the only file on the device that is not encrypted (KDF parameters, slots, counter). */
export const KEY_SLOT_FILE = "keyslots.json";

export const RECORD = {
  /** Identity: relay, campaign, keys, pseudonym, invite proof. Written once, at enrollment. */
  identity: "identity",
  /** The next `seq` to use: persisted BEFORE an item is queued, so a seq never repeats. */
  seq: "seq",
  /** The verified roster with the highest serial seen (acceptRoster's rollback rule). */
  roster: "roster",
  /** The epoch-key documents last served by the relay (verified again against the roster at every use). */
  epochKeys: "epoch-keys",
  /** The ordered list of queued item ids: the commit point of every queue operation. */
  outbox: "outbox",
  item: (id: string) => `item/${id}`,
  chunk: (photoId: string, index: number) => `chunk/${photoId}/${index}`,
  /** Control messages: last counter accepted, notices and receipts seen. */
  mailbox: "mailbox",
  /** When the last sync ran and what happened. */
  syncLog: "sync-log",
  settings: "settings",
  /** The two X25519 keys of the duress capsule (duress.ts): same shape in every profile. */
  capsuleKeys: "capsule-keys",
  /**
   * Random bytes a real unlock writes where a duress unlock writes the decoy's records and cover
   * items (duress.ts finishUnlock): the same number of writes, of the same sizes, without
   * re-writing records that other commands change.
   */
  pad: (index: number) => `pad/${index}`,
} as const;

/** The records of a profile that are not outbox items or photo chunks (a duress unlock keeps the decoy's). */
export const FIXED_RECORDS: readonly string[] = [
  RECORD.identity,
  RECORD.seq,
  RECORD.roster,
  RECORD.epochKeys,
  RECORD.outbox,
  RECORD.mailbox,
  RECORD.syncLog,
  RECORD.settings,
  RECORD.capsuleKeys,
];

export const identityRecord = z.strictObject({
  v: z.literal(1),
  relayUrl: z.string(),
  campaignId: z.string(),
  /** The root fingerprint from the invite (16 bytes): every roster must match it. */
  rootFingerprint: b64,
  pseudonym: z.string(),
  signing: z.strictObject({ publicKey: b64, privateKey: b64 }),
  encryption: z.strictObject({ publicKey: b64, privateKey: b64 }),
  /**
   * The duress key D (Ed25519), enrolled at the relay beside `signing` and announced to the
   * coordinators by the `enrolled` report; what it signs is flagged "under duress". The real
   * profile keeps it to hand it to a decoy; a decoy signs with D as its `signing` key and holds
   * here a pair nobody enrolled (same shape in every profile).
   */
  duress: z.strictObject({ publicKey: b64, privateKey: b64 }),
  /** What the `enrolled` report carries, kept so the report can be re-sealed. */
  invite: z.strictObject({ nonce: b64, storedHash: b64, proof: b64 }),
  enrolledAt: timestamp,
});
export type IdentityRecord = z.infer<typeof identityRecord>;

export const seqRecord = z.strictObject({ next: z.number().int().nonnegative() });

export const rosterRecord = z.strictObject({ serial: z.number().int().positive(), signed: signedDocument });
export type RosterRecord = z.infer<typeof rosterRecord>;

export const epochKeysRecord = z.strictObject({
  fetchedAt: timestamp,
  devices: z.record(z.string(), z.array(signedDocument)),
});
export type EpochKeysRecord = z.infer<typeof epochKeysRecord>;

export const outboxIndex = z.strictObject({
  items: z.array(z.string()),
  /**
   * A decoy's only: the real profile's refused and kept item counts at the duress unlock
   * (cover.ts), which `status` adds to its own (such items are never sent; nothing is written
   * per item).
   */
  covered: z.strictObject({ refused: z.number().int().nonnegative(), kept: z.number().int().nonnegative() }).optional(),
});
export type OutboxIndex = z.infer<typeof outboxIndex>;

/** A public key an envelope was sealed to, so sync can tell whether it must be re-sealed. */
const sealedTo = z.strictObject({ deviceId: z.string(), epoch: z.number().int(), publicKey: b64 });

export const envelopeItem = z.strictObject({
  type: z.literal("envelope"),
  /** The envelope's message id (random, 16 bytes): the relay's idempotency key. */
  id: b64,
  seq: z.number().int().nonnegative(),
  /** The inner message, kept so the envelope can be re-sealed to newer epoch keys with the same id. */
  message: innerMessage,
  /** Absent when no valid epoch key was known at queue time: sealed at send time. */
  sealed: z.strictObject({ envelope: b64, to: z.array(sealedTo) }).optional(),
  /** True once the item was sealed more than once: a CONFLICT then means an earlier copy was accepted. */
  resealed: z.boolean(),
  queuedAt: timestamp,
  /** Set when the relay accepted it and settings.keepSent is on. */
  sentAt: timestamp.optional(),
  /** A permanent refusal (code), kept for `status`; the item is no longer sent. */
  refused: z.string().optional(),
});
export type EnvelopeItem = z.infer<typeof envelopeItem>;

export const photoItem = z.strictObject({
  type: z.literal("photo"),
  /** The photo id (base64url, 16 bytes), also the upload id on the relay. */
  id: b64,
  chunkCount: z.number().int().positive(),
  /** The acta envelope that references this photo. */
  actaId: b64,
  queuedAt: timestamp,
  sentAt: timestamp.optional(),
  refused: z.string().optional(),
  /**
   * A decoy's cover photo (cover.ts): no chunk files; each chunk is generated when it is sent,
   * from this 32-byte seed, as random-looking bytes of a real chunk's size.
   */
  cover: b64.optional(),
});
export type PhotoItem = z.infer<typeof photoItem>;

export const outboxItem = z.discriminatedUnion("type", [envelopeItem, photoItem]);
export type OutboxItem = z.infer<typeof outboxItem>;

export const receivedControl = z.strictObject({
  kind: z.string(),
  counter: z.number().int(),
  from: z.string(),
  issuedAt: timestamp,
  receivedAt: timestamp,
  text: z.string().optional(),
  messageIds: z.array(z.string()).optional(),
  /** The control message's own id: a copy read again (its ack was lost) is not reported as a replay. */
  messageId: z.string().optional(),
});
export type ReceivedControl = z.infer<typeof receivedControl>;

/** How many received control messages the mailbox record keeps. */
export const MAX_RECEIVED_KEPT = 50;

export const mailboxRecord = z.strictObject({
  /** Highest control counter accepted from any device: informational only, never used to refuse. */
  lastCounter: z.number().int().nonnegative(),
  /**
   * Highest control counter accepted per roster device id: what openControl checks, so one
   * device's counters never block another's (protocol spec photos-control.md §2.1). Absent in
   * records written before it existed: every device then starts at 0.
   */
  lastCounters: z.record(shortId, z.number().int().nonnegative()).optional(),
  received: z.array(receivedControl),
  /**
   * The counter of a verified wipe not yet executed: written in the same atomic write as the
   * counters, before the mailbox ack, so a lost ack or a crash before the erase cannot cancel the
   * wipe (the next open or sync erases first).
   */
  pendingWipe: z.number().int().nonnegative().optional(),
});
export type MailboxRecord = z.infer<typeof mailboxRecord>;

export const syncLogRecord = z.strictObject({
  lastSyncAt: timestamp.optional(),
  /** When the last `checkin` was queued (sync queues one when it is older than the interval). */
  lastCheckinAt: timestamp.optional(),
  lastSuccessAt: timestamp.optional(),
  lastError: z.string().optional(),
});
export type SyncLogRecord = z.infer<typeof syncLogRecord>;

export const settingsRecord = z.strictObject({
  /** Keep items (and photo chunks) on the device after the relay accepted them. Default: delete. */
  keepSent: z.boolean(),
  /** Check-in interval in ms (default DEFAULT_CHECKIN_INTERVAL_MS); 0 turns automatic check-ins off. */
  checkinIntervalMs: z.number().int().nonnegative().optional(),
});
export type SettingsRecord = z.infer<typeof settingsRecord>;

/**
 * Every profile holds one: `secretKey` opens the capsule region of the key-slot file, `peerKey` is
 * what this profile seals its own capsule to. The decoy's secretKey opens what the real profile
 * seals; the other two keys are halves of pairs whose other half was thrown away, so a real
 * profile, a decoy, and a device without a duress PIN all hold records of the same shape.
 */
export const capsuleKeysRecord = z.strictObject({ secretKey: b64, peerKey: b64 });
export type CapsuleKeysRecord = z.infer<typeof capsuleKeysRecord>;

/**
 * What the capsule carries: no key at all. That it opens (only with the decoy's capsule key) says
 * the decoy was opened; the payload is the real profile's last sync times, which the decoy takes
 * over so that its `status` shows them, and the time its check-in timer counts from (its last
 * check-in, or its enrollment), which the decoy takes over so that its next `sync` queues a
 * check-in exactly when the real profile's would; since v4, the shape of its outbox and its
 * notice count, so the decoy queues cover items of that shape (cover.ts). Zero-padded to a fixed
 * size (key-slots.ts).
 */
export const capsulePayload = z.strictObject({
  v: z.union([z.literal(3), z.literal(4)]),
  lastSyncAt: timestamp.optional(),
  lastSuccessAt: timestamp.optional(),
  lastCheckinAt: timestamp.optional(),
  lastError: z.string().optional(),
  /** The outbox's shape (cover.ts outboxShapeTokens): no text, no key; the ids of photos already announced. */
  outbox: z.string().max(1024).optional(),
  /** Notices received (what `status` counts). */
  notices: z.number().int().nonnegative().max(MAX_RECEIVED_KEPT).optional(),
});
export type CapsulePayload = z.infer<typeof capsulePayload>;
