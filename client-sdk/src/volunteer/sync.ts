// One sync run: refresh the roster and epoch keys, send the outbox, read the mailbox.
//
// Order on the wire ("small reports first"): every pending envelope goes before any photo chunk,
// in queue order — status reports, check-ins, `enrolled` AND the acta envelopes themselves (an
// acta envelope is small: it carries the photos' keys and hashes, not the photos). Then each
// photo is declared, the relay is asked which chunks it already has, and only the missing ones
// are uploaded, consecutive ones up to MAX_CHUNK_RUN per request (a photo interrupted by a crash
// or a lost connection resumes at the first chunk the relay lacks). Coordinators therefore usually see an acta before its photos and must wait
// for them; they must accept the other order too (a photo completed by an earlier run whose acta
// was re-sealed later).
//
// Accepted items are deleted from the device (or kept, marked sent, with settings.keepSent).
// Idempotency: an envelope's message id is fixed when it is queued; re-sending the same bytes is
// a duplicate the relay answers "accepted" again. An envelope re-sealed to newer epoch keys has
// the same id but other bytes: if the relay answers CONFLICT for it, an earlier copy was already
// accepted (ids are 16 random bytes that only this device knows), so it counts as accepted.
import {
  acceptRoster,
  type ControlPayload,
  controlSignersOf,
  DecryptionFailed,
  fromBase64url,
  MAX_CHUNK_RUN,
  type OpenedControl,
  openControl,
  REPORT_KIND,
  type Roster,
  RosterRollback,
  toBase64url,
  verifyRoster,
} from "@testigo/protocol";
import { RelayRefused, TransportError } from "../transport/errors.js";
import type { RelayClient } from "../transport/relay-client.js";
import { type RefusalReason, refusalReason } from "./control-refusal.js";
import { coverChunk } from "./cover.js";
import { eraseDevice } from "./device.js";
import { VolunteerError } from "./errors.js";
import { isPending, loadOutbox, queueMessage } from "./outbox.js";
import {
  type EnvelopeItem,
  MAX_RECEIVED_KEPT,
  type OutboxItem,
  type PhotoItem,
  type ReceivedControl,
} from "./records.js";
import { type RetryPolicy, withRetry } from "./retry.js";
import { currentRecipients, seal, sealedToCurrent } from "./sealing.js";
import { bytesOf, deviceKeysOf, type VolunteerStore } from "./volunteer-store.js";

/** Refusals that concern this device's credential, not one item: stop the run. */
const CREDENTIAL_REFUSALS = new Set(["REVOKED", "AUTH_FAILED", "AUTH_REQUIRED", "FORBIDDEN"]);

export type SyncEvent =
  | { readonly type: "envelope-sent"; readonly id: string; readonly kind: string }
  | { readonly type: "photo-start"; readonly id: string; readonly total: number; readonly done: number }
  | { readonly type: "chunk-sent"; readonly id: string; readonly done: number; readonly total: number }
  | { readonly type: "photo-done"; readonly id: string };

export interface SyncOptions {
  readonly client: RelayClient;
  readonly retry: RetryPolicy;
  readonly onEvent?: (event: SyncEvent) => void;
  /**
   * Called once the envelopes are sent and after each photo: Volunteer re-seals the duress
   * capsule there, so its outbox shape does not go on describing sent items if the run dies.
   */
  readonly afterSent?: () => Promise<void>;
}

export interface SyncResult {
  readonly envelopesSent: number;
  readonly photosSent: number;
  readonly chunksSent: number;
  /** Items the relay refused for good during this run: id and the relay's error code. */
  readonly refused: readonly { readonly id: string; readonly code: string }[];
  /** Set when the relay could not be reached (within the run's time budget): the rest stays queued. */
  readonly unreachable?: string;
  /** Set when envelopes wait for coordinator epoch keys that are not published yet. */
  readonly waitingForKeys?: boolean;
  /** Verified control messages received in this run. */
  readonly controls: readonly ReceivedControl[];
  /** A verified wipe order, if one arrived (its erase is the caller's: see wipe.ts). */
  readonly wipe?: Extract<ControlPayload, { kind: "wipe" }>;
  /** Control messages for this device that were refused; a `security-notice` was queued for each. */
  readonly securityNotices: readonly RefusalReason[];
  /** Set when this run ended with the device erased (a verified remote wipe). */
  readonly wiped?: boolean;
}

class Stop extends Error {}

export async function syncOutbox(store: VolunteerStore, options: SyncOptions): Promise<SyncResult> {
  const { client, retry } = options;
  const now = retry.now;
  const identity = await store.identity();
  const keys = deviceKeysOf(identity);
  const settings = await store.settings();
  const refused: { id: string; code: string }[] = [];
  let envelopesSent = 0;
  let photosSent = 0;
  let chunksSent = 0;
  let unreachable: string | undefined;
  let waitingForKeys = false;
  let controls: ReceivedControl[] = [];
  let wipe: SyncResult["wipe"];
  let securityNotices: RefusalReason[] = [];

  const call = async <T>(operation: () => Promise<T>): Promise<T> => {
    try {
      return await withRetry(operation, retry);
    } catch (error) {
      if (error instanceof TransportError && error.shouldRetry()) {
        unreachable = error.message;
        throw new Stop();
      }
      if (error instanceof RelayRefused && error.code === "REVOKED") {
        // The coordinators revoked this identity (e.g. a wipe ordered while the phone was offline
        // reached its deadline): erase like the wipe would have (spec duress-and-wipe.md).
        await eraseDevice(store.records.storage);
        throw new VolunteerError(
          "NOT_ENROLLED",
          "the coordinators revoked this device, so it erased itself: ask your coordinator for a new invite",
        );
      }
      if (error instanceof RelayRefused && CREDENTIAL_REFUSALS.has(error.code)) {
        throw new VolunteerError(
          "NOT_ENROLLED",
          `the relay refused this device (${error.code}): it may have been revoked; ask your coordinator`,
        );
      }
      throw error;
    }
  };

  const finish = async (item: OutboxItem): Promise<void> => {
    if (settings.keepSent) {
      await store.putItem({ ...item, sentAt: now() });
      return;
    }
    await store.putOutboxIds((await store.outboxIds()).filter((id) => id !== item.id));
    await store.deleteItem(item.id);
    // A cover photo (cover.ts) has no chunk files.
    if (item.type === "photo" && item.cover === undefined) {
      for (let index = 0; index < item.chunkCount; index++) await store.deleteChunk(item.id, index);
    }
  };

  const refuse = async (item: OutboxItem, code: string): Promise<void> => {
    refused.push({ id: item.id, code });
    await store.putItem({ ...item, refused: code });
  };

  try {
    const roster = await refreshRoster(store, client, bytesOf(identity.rootFingerprint), call);
    const epochDocs = await call(() => client.getEpochKeys(identity.campaignId));
    const epochKeys = { fetchedAt: now(), devices: { ...epochDocs } };
    // Verify before keeping: forged documents throw RELAY_LIED here.
    currentRecipients(epochKeys, roster, now());
    await store.putEpochKeys(epochKeys);

    const pending = (await loadOutbox(store)).filter(isPending);
    const envelopes = pending.filter((item): item is EnvelopeItem => item.type === "envelope");
    const photos = pending.filter((item): item is PhotoItem => item.type === "photo");

    for (const original of envelopes) {
      let item = original;
      const recipients = currentRecipients(epochKeys, roster, now());
      if (recipients === undefined) {
        waitingForKeys = true;
        break;
      }
      if (!sealedToCurrent(item, recipients)) {
        // Persist before sending: if this copy is accepted and the device crashes before the
        // item is deleted, the next run must know that a CONFLICT means "already accepted".
        item = {
          ...item,
          sealed: seal(identity.campaignId, keys.signing, item.message, recipients),
          resealed: item.resealed || item.sealed !== undefined,
        };
        await store.putItem(item);
      }
      const envelope = bytesOf(item.sealed?.envelope ?? "");
      try {
        await call(() => client.submitEnvelope(envelope));
      } catch (error) {
        if (!(error instanceof RelayRefused)) throw error;
        if (!(error.code === "CONFLICT" && item.resealed)) {
          await refuse(item, error.code);
          continue;
        }
      }
      await finish(item);
      envelopesSent++;
      options.onEvent?.({ type: "envelope-sent", id: item.id, kind: item.message.kind });
    }
    if (envelopesSent > 0) await options.afterSent?.();

    for (const photo of photos) {
      try {
        await uploadPhoto(
          store,
          client,
          photo,
          call,
          (event) => {
            chunksSent++;
            options.onEvent?.(event);
          },
          options.onEvent,
        );
      } catch (error) {
        if (!(error instanceof RelayRefused) && !(error instanceof VolunteerError && error.code === "DAMAGED"))
          throw error;
        await refuse(photo, error.code);
        continue;
      }
      await finish(photo);
      photosSent++;
      options.onEvent?.({ type: "photo-done", id: photo.id });
      await options.afterSent?.();
    }

    ({ controls, wipe, securityNotices } = await readMailbox(store, client, roster, call, now));
  } catch (error) {
    if (!(error instanceof Stop)) throw error;
  }

  const log = await store.syncLog();
  await store.putSyncLog({
    ...log,
    lastSyncAt: now(),
    ...(unreachable === undefined ? { lastSuccessAt: now() } : {}),
    ...(unreachable === undefined ? {} : { lastError: unreachable }),
  });
  return {
    envelopesSent,
    photosSent,
    chunksSent,
    refused,
    ...(unreachable === undefined ? {} : { unreachable }),
    ...(waitingForKeys ? { waitingForKeys } : {}),
    controls,
    ...(wipe === undefined ? {} : { wipe }),
    securityNotices,
  };
}

type Call = <T>(operation: () => Promise<T>) => Promise<T>;

/**
 * Fetches the relay's roster, verifies it against the invite's root fingerprint and applies the
 * rollback rule. A roster that does not verify means the relay tried to substitute keys: stop.
 */
async function refreshRoster(
  store: VolunteerStore,
  client: RelayClient,
  rootFingerprint: Uint8Array,
  call: Call,
): Promise<Roster> {
  const identity = await store.identity();
  const held = await store.roster(rootFingerprint);
  const signed = await call(() => client.getRoster(identity.campaignId));
  let candidate: Roster;
  try {
    candidate = verifyRoster(signed, rootFingerprint);
  } catch {
    throw new VolunteerError(
      "ROSTER_MISMATCH",
      "the relay's roster does not match the invite: do not use this relay (nothing was sent)",
    );
  }
  let kept: Roster;
  try {
    kept = acceptRoster(held, candidate);
  } catch (error) {
    // An older or conflicting roster: keep ours (the relay may replay, never roll us back).
    if (error instanceof RosterRollback && held !== undefined) return held;
    if (error instanceof DecryptionFailed) {
      throw new VolunteerError(
        "ROSTER_MISMATCH",
        "the relay's roster belongs to another campaign: do not use this relay",
      );
    }
    throw error;
  }
  if (kept !== held) await store.putRoster(kept.serial, signed);
  return kept;
}

/** Declares the photo, asks which chunks the relay has, uploads the others. */
async function uploadPhoto(
  store: VolunteerStore,
  client: RelayClient,
  photo: PhotoItem,
  call: Call,
  onChunk: (event: SyncEvent) => void,
  onEvent: SyncOptions["onEvent"],
): Promise<void> {
  await call(() => client.createPhoto(photo.id, photo.chunkCount));
  const have = new Set(await call(() => client.listChunks(photo.id)));
  let done = have.size;
  onEvent?.({ type: "photo-start", id: photo.id, total: photo.chunkCount, done });
  let index = 0;
  while (index < photo.chunkCount) {
    if (have.has(index)) {
      index++;
      continue;
    }
    // A run of consecutive chunks the relay lacks, sent in one request (about 1 MiB at most).
    const chunks: Uint8Array[] = [];
    for (let next = index; next < photo.chunkCount && !have.has(next) && chunks.length < MAX_CHUNK_RUN; next++) {
      const chunk = photo.cover === undefined ? await store.chunk(photo.id, next) : coverChunk(photo.cover, next);
      if (chunk === undefined) {
        throw new VolunteerError("DAMAGED", "a queued photo's chunk is missing from the device");
      }
      chunks.push(chunk);
    }
    await sendChunks(client, photo.id, index, chunks, call, (sent) => {
      for (let i = 0; i < sent; i++) {
        done++;
        onChunk({ type: "chunk-sent", id: photo.id, done, total: photo.chunkCount });
      }
    });
    index += chunks.length;
  }
}

/** Relays that answered a chunk run with "no such route" (older relays): single chunks from then on. */
const singleChunkRelays = new WeakSet<RelayClient>();

/**
 * Sends consecutive chunks from `first`: as one run, or one by one where runs are not served.
 * `sent(n)` reports chunks as the relay accepts them.
 */
async function sendChunks(
  client: RelayClient,
  photoId: string,
  first: number,
  chunks: readonly Uint8Array[],
  call: Call,
  sent: (count: number) => void,
): Promise<void> {
  if (chunks.length > 1 && !singleChunkRelays.has(client)) {
    try {
      await call(() => client.putChunkRun(photoId, first, chunks));
      sent(chunks.length);
      return;
    } catch (error) {
      // 404 is also an unknown photo: the single upload below then answers 404 again.
      if (!(error instanceof RelayRefused && error.code === "NOT_FOUND")) throw error;
      singleChunkRelays.add(client);
    }
  }
  for (const [offset, chunk] of chunks.entries()) {
    await call(() => client.putChunk(photoId, first + offset, chunk));
    sent(1);
  }
}

/**
 * Reads the mailbox: every slot is tried; only messages that open for this device, verify against
 * the roster, are fresh and carry a counter above the last one are used, in counter order.
 * Everything read is acknowledged (real messages once recorded; filler, forged, replayed and
 * expired ones never open, and acknowledging them too keeps the acks uninformative).
 */
async function readMailbox(
  store: VolunteerStore,
  client: RelayClient,
  roster: Roster,
  call: Call,
  now: () => number,
): Promise<{
  controls: ReceivedControl[];
  wipe?: Extract<ControlPayload, { kind: "wipe" }>;
  securityNotices: RefusalReason[];
}> {
  const identity = await store.identity();
  const keys = deviceKeysOf(identity);
  const slots = await call(() => client.readMailbox());
  const mailbox = await store.mailbox();
  const signers = controlSignersOf(roster);
  // Counters are per signing device (a Map: device ids never touch an object's prototype).
  const lastCounters = new Map(Object.entries(mailbox.lastCounters ?? {}));
  const lastCounterOf = (deviceId: string) => lastCounters.get(deviceId) ?? 0;
  const opened: OpenedControl[] = [];
  const seenIds = new Set(mailbox.received.flatMap((c) => (c.messageId === undefined ? [] : [c.messageId])));
  const securityNotices: RefusalReason[] = [];
  for (const slot of slots) {
    const bytes = fromBase64url(slot.message);
    if (bytes === undefined) continue;
    const input = {
      campaignId: identity.campaignId,
      me: { pseudonym: identity.pseudonym, encryption: keys.encryption },
      signers,
      lastCounterOf,
      now: now(),
    };
    try {
      opened.push(openControl(bytes, input));
    } catch {
      // Filler and other pseudonyms' messages: ignored. Forged, replayed or expired ones that were
      // encrypted to this device: never acted upon, reported to the coordinators (spec §2.3) —
      // except a copy of one already accepted, read again because its ack was lost.
      const reason = refusalReason(bytes, input);
      const id = toBase64url(bytes.subarray(1, 17));
      if (reason !== undefined && !(reason === "replayed-control" && seenIds.has(id))) securityNotices.push(reason);
    }
  }
  opened.sort((a, b) => a.payload.counter - b.payload.counter);
  const controls: ReceivedControl[] = [];
  let wipe: Extract<ControlPayload, { kind: "wipe" }> | undefined;
  let lastCounter = mailbox.lastCounter;
  for (const { payload, signerId, messageId } of opened) {
    if (payload.counter <= lastCounterOf(signerId)) continue;
    lastCounters.set(signerId, payload.counter);
    lastCounter = Math.max(lastCounter, payload.counter);
    controls.push({
      kind: payload.kind,
      counter: payload.counter,
      from: payload.from,
      issuedAt: payload.issuedAt,
      receivedAt: now(),
      ...(payload.kind === "notice" ? { text: payload.text } : {}),
      ...(payload.kind === "receipt" ? { messageIds: payload.messageIds } : {}),
      messageId: toBase64url(messageId),
    });
    if (payload.kind === "wipe") wipe = payload;
  }
  if (controls.length > 0) {
    // One atomic write: the counters and, for a wipe, the pending wipe that the next open or sync
    // executes if this run never gets to the erase (lost ack, crash, killed process).
    const pendingWipe = wipe?.counter ?? mailbox.pendingWipe;
    await store.putMailbox({
      lastCounter,
      lastCounters: Object.fromEntries(lastCounters),
      received: [...mailbox.received, ...controls].slice(-MAX_RECEIVED_KEPT),
      ...(pendingWipe === undefined ? {} : { pendingWipe }),
    });
  }
  // Queued before the ack: once acked, the refused message is gone from the relay.
  for (const reason of securityNotices) {
    await queueMessage(store, { kind: REPORT_KIND.securityNotice, table: "0", text: "", reason }, now());
  }
  await call(() => client.ackMailbox(slots.map((slot) => slot.messageId)));
  return { controls, ...(wipe === undefined ? {} : { wipe }), securityNotices };
}
