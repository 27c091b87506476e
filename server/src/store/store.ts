// The one storage interface of the relay. Two backends implement it (embedded SQLite and
// Redis / Redis Cluster) and both pass the same conformance suite (conformance.ts).
//
// Rules every backend follows:
// - A method resolves only once its writes are durable in that backend's configured sense
//   (SQLite: committed with synchronous=FULL; Redis: acknowledged by the server, whose
//   appendfsync policy the operator chose). No method resolves after a failed write.
// - Everything stored is opaque ciphertext, hashes or public keys. No IP address, no plaintext.
// - The store never records which volunteer submitted which envelope.
// - Methods that change state are atomic: concurrent calls on several relay nodes are safe.
// - Times are milliseconds since the epoch, passed in by the caller (so tests control time).

export type Role = "coordinator" | "volunteer";

export interface CampaignRecord {
  readonly campaignId: string;
  readonly rootPublicKey: string; // base64url
  /** The signed roster exactly as the coordinators uploaded it (opaque to the store). */
  readonly roster: Uint8Array;
  readonly rosterSerial: number;
  /** Coordinator device ids in the current roster: one inbox each. */
  readonly deviceIds: readonly string[];
  /** Signing public keys (base64url) of the roster's devices, by device id. */
  readonly deviceSigningKeys: Readonly<Record<string, string>>;
  readonly createdAt: number;
}

export interface VolunteerRecord {
  readonly campaignId: string;
  readonly pseudonym: string;
  readonly signingKey: string; // base64url
  readonly encryptionKey: string; // base64url
  /**
   * The duress key (base64url Ed25519), enrolled beside the signing key: a session signed by
   * either opens alike, and nothing records which one did (duress-and-wipe.md §2).
   */
  readonly duressKey?: string;
  readonly enrolledAt: number; // coarsened by the caller
  readonly revoked: boolean;
}

export type SubmitResult =
  /** Newly stored and fanned out to every coordinator inbox. */
  | { readonly status: "accepted" }
  /** The same message id with the same bytes was stored before: nothing changed. */
  | { readonly status: "duplicate" }
  /** The message id is taken by different bytes: refused, nothing changed. */
  | { readonly status: "conflict" };

export type RedeemResult =
  | { readonly status: "redeemed" }
  | { readonly status: "unknown" } // no such invite, already used, or expired: one answer for all
  | { readonly status: "pseudonym-taken" };

export type InboxItem =
  | {
      readonly kind: "envelope";
      readonly cursor: string;
      readonly messageId: string;
      readonly envelope: Uint8Array;
      readonly receivedAt: number; // coarsened
    }
  | {
      /** A photo whose every chunk has arrived; fetch its chunks, then ack this item. */
      readonly kind: "photo";
      readonly cursor: string;
      readonly photoId: string;
      readonly chunkCount: number;
      readonly receivedAt: number; // coarsened
    };

export interface MailboxItem {
  readonly messageId: string;
  readonly message: Uint8Array; // fixed size (CONTROL_MESSAGE_BYTES)
}

export type ChunkResult =
  | { readonly status: "stored"; readonly complete: boolean }
  | { readonly status: "duplicate"; readonly complete: boolean }
  | { readonly status: "conflict" } // a different chunk count or different bytes for that index
  | { readonly status: "unknown-photo" };

export type ChunkRunResult =
  /** Every chunk of the run is held now: `stored` new ones, `duplicate` ones held before with the same bytes. */
  | { readonly status: "stored"; readonly stored: number; readonly duplicate: number; readonly complete: boolean }
  /** An index out of the photo's range, or a held index with different bytes: nothing written. */
  | { readonly status: "conflict" }
  | { readonly status: "unknown-photo" };

/** A one-chunk run's result as putPhotoChunk answers it (both stores store one chunk as a run of one). */
export function singleChunkResult(run: ChunkRunResult): ChunkResult {
  if (run.status !== "stored") return run;
  return { status: run.stored > 0 ? "stored" : "duplicate", complete: run.complete };
}

/** What one relay node drew from a rate-limit bucket since its previous merge. */
export interface BucketDraw {
  /** Keyed hash of the bucket's name: never a pseudonym, device id or token. */
  readonly bucket: string;
  /** Tokens this node took since its previous merge. */
  readonly taken: number;
  /** This node's own level at the merge time (stored when the store holds no level yet). */
  readonly level: number;
  readonly capacity: number;
  readonly refillPerSecond: number;
}

/** A bucket level as stored: `tokens` at time `at` (a coarse time), refilling from there. */
export interface StoredBucket {
  readonly bucket: string;
  readonly tokens: number;
  readonly at: number;
  readonly capacity: number;
  readonly refillPerSecond: number;
}

/** Called for every inbox item as soon as it is appended, on any relay node sharing the store. */
export type InboxListener = (campaignId: string) => void;

export interface Store {
  // --- lifecycle and health
  /** Throws if the store cannot serve requests (the relay then answers 503: fails closed). */
  ping(): Promise<void>;
  close(): Promise<void>;

  // --- campaigns and rosters
  /** False if the campaign already exists. */
  createCampaign(record: CampaignRecord): Promise<boolean>;
  getCampaign(campaignId: string): Promise<CampaignRecord | undefined>;
  /** Replaces the roster only if `record.rosterSerial` is greater than the stored one; creates inboxes of new devices. */
  updateRoster(record: CampaignRecord): Promise<boolean>;
  /** Stores the signed epoch-key documents of one coordinator device (replacing its previous list). */
  putEpochKeys(campaignId: string, deviceId: string, signedEpochKeys: Uint8Array): Promise<void>;
  /** Signed epoch-key documents of every device of the campaign, by device id. */
  getEpochKeys(campaignId: string): Promise<Readonly<Record<string, Uint8Array>>>;

  // --- invites and volunteers
  /** Registers invite hashes (already hashed twice by the client: never a secret). Existing ones are kept. */
  addInvites(campaignId: string, invites: readonly { storedHash: string; expiresAt: number }[]): Promise<void>;
  /** Burns the invite and enrolls the volunteer atomically; of two concurrent redemptions exactly one succeeds. */
  redeemInvite(campaignId: string, storedHash: string, volunteer: VolunteerRecord, now: number): Promise<RedeemResult>;
  /** Whether an unexpired, unredeemed invite with this hash exists (a read: writes nothing). */
  inviteLive(campaignId: string, storedHash: string, now: number): Promise<boolean>;
  getVolunteer(campaignId: string, pseudonym: string): Promise<VolunteerRecord | undefined>;
  listVolunteers(campaignId: string): Promise<readonly VolunteerRecord[]>;
  /** Refuses the credential from now on and deletes the mailbox. */
  revokeVolunteer(campaignId: string, pseudonym: string): Promise<void>;

  // --- authentication
  /**
   * Marks a challenge used until `expiresAt` (the relay checked it was issued and is unexpired):
   * true exactly once per challenge, false for every later (or concurrent) use.
   */
  burnChallenge(challenge: string, expiresAt: number): Promise<boolean>;
  /**
   * The relay's 32-byte secret, shared by every node of the store: stores `candidate` if no
   * secret exists yet (set-if-absent, atomic), and returns the stored one. Session tokens are
   * sealed under a key derived from it, so the relay stores nothing per session.
   */
  relaySecret(candidate: Uint8Array): Promise<Uint8Array>;

  // --- submissions and coordinator inboxes
  /** Idempotent by message id; fans the envelope out to every coordinator device's inbox. */
  submitEnvelope(
    campaignId: string,
    messageId: string,
    envelope: Uint8Array,
    receivedAt: number,
  ): Promise<SubmitResult>;
  /** Declares a photo and its chunk count (idempotent; a different count is a conflict). */
  createPhoto(
    campaignId: string,
    photoId: string,
    chunkCount: number,
    now: number,
  ): Promise<"created" | "exists" | "conflict">;
  /** Stores one chunk; when the last missing chunk arrives the photo is appended to every inbox. */
  putPhotoChunk(
    campaignId: string,
    photoId: string,
    index: number,
    chunk: Uint8Array,
    now: number,
  ): Promise<ChunkResult>;
  /**
   * Stores a run of consecutive chunks (indices first, first + 1, ...) atomically: either every
   * chunk of the run is held afterwards (new ones stored, held ones checked byte for byte) or the
   * run is refused and nothing is written. One durable write for the whole run. When the last
   * missing chunk arrives the photo is appended to every inbox, as with putPhotoChunk.
   */
  putPhotoChunks(
    campaignId: string,
    photoId: string,
    first: number,
    chunks: readonly Uint8Array[],
    now: number,
  ): Promise<ChunkRunResult>;
  /** Indices of the chunks the relay holds (for resuming), or undefined for an unknown photo. */
  listPhotoChunks(campaignId: string, photoId: string): Promise<readonly number[] | undefined>;
  /** A chunk of a complete photo; undefined while incomplete or once deleted. */
  getPhotoChunk(campaignId: string, photoId: string, index: number): Promise<Uint8Array | undefined>;
  /** Unacked items of one device's inbox in arrival order, after `afterCursor` if given. */
  readInbox(campaignId: string, deviceId: string, limit: number, afterCursor?: string): Promise<readonly InboxItem[]>;
  /** Acks items; data acked by every device of the roster is deleted. Unknown cursors are ignored. */
  ackInbox(campaignId: string, deviceId: string, cursors: readonly string[]): Promise<number>;
  /** Live notification of new inbox items (across relay nodes for Redis). Returns an unsubscribe function. */
  onInboxAppend(listener: InboxListener): Promise<() => Promise<void>>;

  // --- volunteer mailboxes (control messages from coordinators)
  putMailbox(
    campaignId: string,
    pseudonym: string,
    item: MailboxItem,
    expiresAt: number,
  ): Promise<"stored" | "duplicate" | "unknown-volunteer">;
  readMailbox(campaignId: string, pseudonym: string, limit: number, now: number): Promise<readonly MailboxItem[]>;
  ackMailbox(campaignId: string, pseudonym: string, messageIds: readonly string[]): Promise<number>;

  // --- limits and retention
  /**
   * Rate limits are counted in each node's memory; this is their ONE batched write, once per
   * interval (and at start and shutdown). Atomically, for each draw: the stored level refilled
   * to `at` minus `taken` (or, with no stored level, the draw's `level`; either may be below 0,
   * a debt); a bucket
   * whose level reaches capacity is deleted, and so is any stored bucket that has refilled to
   * capacity by `at`. Resolves with every bucket still stored (so nodes learn each other's).
   */
  mergeRateBuckets(draws: readonly BucketDraw[], at: number): Promise<readonly StoredBucket[]>;
  /** Deletes everything older than `olderThan` (retention), returns how many records went. */
  expire(olderThan: number, now: number): Promise<number>;
}
