// The outbox: reports and photos are sealed and written to the device BEFORE anything is sent, so
// a crash (kill -9, battery) at any point loses nothing that was reported as queued.
//
// Queueing is crash-safe by ordering: the seq counter is advanced first (a seq never repeats),
// then the photo chunk records and item records are written, and last the outbox index, which is
// the one atomic write that makes them visible. A crash before the index write leaves unreferenced
// records (never sent, never shown); a crash after it leaves a complete item.
import {
  type InnerMessage,
  PHOTO_CHUNK_PLAINTEXT_BYTES,
  type PhotoRef,
  PhotoSealer,
  photoSha256,
  REPORT_KIND,
  randomBytes,
  toBase64url,
} from "@testigo/protocol";
import type { EnvelopeItem, OutboxItem, PhotoItem } from "./records.js";
import { currentRecipients, seal } from "./sealing.js";
import { bytesOf, deviceKeysOf, type VolunteerStore } from "./volunteer-store.js";

export interface QueuedItem {
  readonly id: string;
  readonly seq: number;
  readonly kind: InnerMessage["kind"];
  /** Whether the envelope could be sealed now (false: no valid epoch key cached; sealed at send time). */
  readonly sealed: boolean;
  readonly photos: readonly { readonly photoId: string; readonly chunkCount: number; readonly sha256: string }[];
}

/** Fields of an inner message that the outbox fills in. */
type Filled = "v" | "messageId" | "campaignId" | "seq" | "sentAt";
export type DraftMessage = InnerMessage extends infer M ? (M extends InnerMessage ? Omit<M, Filled> : never) : never;

/**
 * Queues one envelope (and the photo items it references): reserves a seq, builds the message,
 * seals it if valid epoch keys are cached, writes the records, then commits the outbox index.
 */
export async function queueMessage(
  store: VolunteerStore,
  draft: DraftMessage,
  now: number,
  photos: readonly PhotoItem[] = [],
  messageId: string = toBase64url(randomBytes(16)),
): Promise<QueuedItem> {
  const identity = await store.identity();
  const seq = await store.takeSeq();
  const message = {
    ...draft,
    v: 1,
    messageId,
    campaignId: identity.campaignId,
    seq,
    sentAt: now,
  } as InnerMessage;
  const rootFingerprint = bytesOf(identity.rootFingerprint);
  const recipients = currentRecipients(await store.epochKeys(), await store.roster(rootFingerprint), now);
  const sealed =
    recipients === undefined
      ? undefined
      : seal(identity.campaignId, deviceKeysOf(identity).signing, message, recipients);
  const item: EnvelopeItem = {
    type: "envelope",
    id: messageId,
    seq,
    message,
    ...(sealed === undefined ? {} : { sealed }),
    resealed: false,
    queuedAt: now,
  };
  for (const photo of photos) await store.putItem(photo);
  await store.putItem(item);
  const added = [messageId, ...photos.map((p) => p.id)];
  const queued = await store.outboxIds();
  await store.putOutboxIds([...queued, ...added]);
  return {
    id: messageId,
    seq,
    kind: message.kind,
    sealed: sealed !== undefined,
    photos: [],
  };
}

/**
 * Encrypts a photo into chunk records (PhotoSealer, 64 KiB chunks padded to a bucket) and returns
 * the reference for the acta and the photo's outbox item (not yet committed to the index).
 */
export async function sealPhotoToStore(
  store: VolunteerStore,
  photo: Uint8Array,
  actaId: string,
  now: number,
): Promise<{ ref: PhotoRef; item: PhotoItem }> {
  // The digest by WebCrypto (native, off the main thread), not the sealer's incremental WASM hash.
  const sealer = new PhotoSealer(photo.length, { sha256: await photoSha256(photo) });
  const photoId = toBase64url(sealer.photoId);
  let index = 0;
  for (let offset = 0; offset < photo.length; offset += PHOTO_CHUNK_PLAINTEXT_BYTES) {
    for (const chunk of sealer.push(photo.subarray(offset, offset + PHOTO_CHUNK_PLAINTEXT_BYTES))) {
      await store.putChunk(photoId, index++, chunk);
    }
  }
  const { ref, chunks } = sealer.finish();
  for (const chunk of chunks) await store.putChunk(photoId, index++, chunk);
  return {
    ref: {
      photoId,
      key: toBase64url(ref.key),
      header: toBase64url(ref.header),
      sha256: toBase64url(ref.sha256),
      size: ref.size,
      chunkCount: ref.chunkCount,
    },
    item: { type: "photo", id: photoId, chunkCount: ref.chunkCount, actaId, queuedAt: now },
  };
}

export async function queueStatus(
  store: VolunteerStore,
  input: { table: string; text: string },
  now: number,
): Promise<QueuedItem> {
  return queueMessage(store, { kind: REPORT_KIND.status, table: input.table, text: input.text }, now);
}

/** Queues an acta: every photo is sealed to local chunk records first, then the acta envelope. */
export async function queueActa(
  store: VolunteerStore,
  input: { table: string; text?: string; photos: readonly Uint8Array[]; tallies?: Readonly<Record<string, number>> },
  now: number,
): Promise<QueuedItem> {
  const actaId = toBase64url(randomBytes(16));
  const refs: PhotoRef[] = [];
  const items: PhotoItem[] = [];
  for (const photo of input.photos) {
    const { ref, item } = await sealPhotoToStore(store, photo, actaId, now);
    refs.push(ref);
    items.push(item);
  }
  const queued = await queueMessage(
    store,
    {
      kind: REPORT_KIND.acta,
      table: input.table,
      text: input.text ?? "",
      tallies: { ...(input.tallies ?? {}) },
      photos: refs,
    },
    now,
    items,
    actaId,
  );
  return {
    ...queued,
    photos: refs.map((r) => ({ photoId: r.photoId, chunkCount: r.chunkCount, sha256: r.sha256 })),
  };
}

export interface OutboxCounts {
  /** Envelopes waiting to be sent (every kind, actas included). */
  readonly envelopes: number;
  readonly actas: number;
  readonly photos: number;
  /** Chunks of the photos still waiting (some may already be on the relay: sync asks it). */
  readonly chunks: number;
  /** Items the relay refused for good (kept for inspection, not sent again). */
  readonly refused: number;
  /** Items already accepted and kept because settings.keepSent is on. */
  readonly kept: number;
}

export async function loadOutbox(store: VolunteerStore): Promise<OutboxItem[]> {
  const items: OutboxItem[] = [];
  for (const id of await store.outboxIds()) {
    const item = await store.item(id);
    if (item !== undefined) items.push(item);
  }
  return items;
}

export function isPending(item: OutboxItem): boolean {
  return item.sentAt === undefined && item.refused === undefined;
}

export function countOutbox(items: readonly OutboxItem[]): OutboxCounts {
  let envelopes = 0;
  let actas = 0;
  let photos = 0;
  let chunks = 0;
  let refused = 0;
  let kept = 0;
  for (const item of items) {
    if (item.refused !== undefined) refused++;
    else if (item.sentAt !== undefined) kept++;
    else if (item.type === "envelope") {
      envelopes++;
      if (item.message.kind === REPORT_KIND.acta) actas++;
    } else {
      photos++;
      chunks += item.chunkCount;
    }
  }
  return { envelopes, actas, photos, chunks, refused, kept };
}
