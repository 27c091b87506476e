// `fetch`: pull the inbox, verify, decrypt, write, and only then ack.
//
// Exactly once: the output itself (reports.jsonl) is the record of what was written. Each page
// is handled as: open every envelope → write photos (durable) → append the page's lines (one
// durable write) → update the volunteer registry → ack. A kill at any point leaves items either
// written-and-acked, written-not-acked (redelivered, recognised by id, acked without writing) or
// not written (redelivered, written). A torn last line is cut off by the output when it opens.
//
// Photos: an acta is written only once every photo it references is on disk, verified against
// the SHA-256 the volunteer signed. Its envelope stays un-acked (and is re-read next time) until
// the photo's inbox item has arrived. A photo is acked with its acta's line.
//
// Anything that fails to open or verify is quarantined with a readable reason, durably, then
// acked so it does not block the inbox. That holds for ANY error while handling one item (a
// hostile volunteer can sign content that passes the schema but breaks later steps): only a
// failure of this device's own storage (OUT folder, device store) or of the relay connection
// stops a fetch, since those would stop every item alike and nothing is acked.
//
// Enrollment (`enrolled` reports) is where a volunteer's key becomes trusted, so it is checked
// hardest: the invite proof, ONE key per invite (the relay cannot enforce this, because it never
// sees who signed an envelope), the invite's expiry when this device minted it, that the relay
// really enrolled that key, and D's own proof before a duress key is accepted. Refused
// enrollments are security alerts.
import {
  bytesEqual,
  DecryptionFailed,
  deriveInviteSecret,
  type EnrolledReport,
  type InboxItem,
  type InnerMessage,
  inviteProof,
  inviteRedeemToken,
  inviteStoredHash,
  isValidPhotoRef,
  openEnvelope,
  PhotoOpener,
  pseudonymFromKeys,
  type SealedPhotoRef,
  toBase64url,
  toHex,
  verifyDuressProof,
} from "@testigo/protocol";
import { RelayProtocolError, RelayRefused, RelayUnreachable } from "../transport/errors.js";
import { relayBytes } from "../transport/relay-client.js";
import { bytesOf, type CoordinatorDevice } from "./device.js";
import { CoordinatorError } from "./errors.js";
import {
  type FetchOutput,
  type PhotoLine,
  QUARANTINE_REASON,
  type QuarantineEntry,
  type ReportLine,
  SECURITY_REASONS,
  startPhotoDownload,
} from "./output.js";
import { RelayRetry, type RelayRetryOptions, RequestCancelled } from "./relay-retry.js";
import { inviteRecord, RECORD, type VolunteerRecord } from "./state.js";

export const DEFAULT_FETCH_PAGE = 100;
/** Chunk requests in flight per photo: enough to hide latency, few enough to share a rate limit. */
export const DEFAULT_PHOTO_CONCURRENCY = 4;
/** How often a long-running fetch (--follow) looks for wipe deadlines that passed. */
const REVOKE_CHECK_MS = 60_000;

export interface FetchProgress {
  readonly items: number;
  readonly written: number;
  readonly photos: number;
  readonly quarantined: number;
}

export interface FetchOptions {
  readonly limit?: number;
  readonly onProgress?: (progress: FetchProgress) => void;
  /** Test hook: called after each durable step ("chunk", "photo", "lines", "registry", "ack"). */
  readonly onStep?: (step: string) => void | Promise<void>;
  /** Chunk requests in flight per photo (default 4); chunks are still written in order. */
  readonly photoConcurrency?: number;
  /** How relay requests are retried (429 Retry-After, network failures) and when fetch gives up. */
  readonly retry?: RelayRetryOptions;
  /**
   * Stops the fetch after the item being handled: what was handled is committed (written, then
   * acked), the rest stays in the inbox. The summary is returned as usual.
   */
  readonly signal?: AbortSignal;
}

export interface FetchSummary {
  /** Lines appended to reports.jsonl by this run. */
  readonly written: number;
  /** Photos written by this run. */
  readonly photos: number;
  /** Envelopes and photos quarantined by this run. */
  readonly quarantined: number;
  /** Items already written by an earlier (interrupted) run: acked, not written again. */
  readonly alreadyWritten: number;
  /** Actas whose photos have not all arrived yet: left in the inbox for the next fetch. */
  readonly waitingForPhotos: number;
  /** Of the quarantined: enrollments refused as attacks (reused or expired invite, …). */
  readonly security: number;
  /** Volunteers revoked at the relay by this run (wipe acknowledged, or its deadline passed). */
  readonly revoked: number;
}

type EnvelopeItem = Extract<InboxItem, { kind: "envelope" }>;
type PhotoItem = Extract<InboxItem, { kind: "photo" }>;

interface Opened {
  readonly item: EnvelopeItem;
  readonly message?: InnerMessage;
  readonly signingKey?: Uint8Array;
  /** Undefined only if the relay's base64 itself was unreadable. */
  readonly bytes?: Uint8Array;
}

/** An accepted sender: the volunteer, and whether it signed with its duress key. */
interface Sender {
  readonly volunteer: VolunteerRecord;
  readonly underDuress: boolean;
}

/** Why a sender is not accepted, and for the quarantine file what is known of it. */
interface Refusal {
  readonly reason: string;
  readonly pseudonym?: string;
  readonly inviteHolder?: string;
}

// Errors of this device's own storage (OUT, the device store) and of the relay connection stop a
// fetch: they would stop every item alike, and nothing unwritten is acked. They are marked as they
// cross `io()`; any other error while handling one item is that item's fault and quarantines it.
const localFailures = new WeakSet<object>();

async function io<T>(work: Promise<T> | T): Promise<T> {
  try {
    return await work;
  } catch (error) {
    markLocal(error);
    throw error;
  }
}

function markLocal(error: unknown): void {
  if (typeof error === "object" && error !== null) localFailures.add(error);
}

function stopsFetch(error: unknown): boolean {
  if (
    error instanceof RelayUnreachable ||
    error instanceof RelayRefused ||
    error instanceof RelayProtocolError ||
    error instanceof CoordinatorError ||
    error instanceof RequestCancelled
  ) {
    return true;
  }
  return typeof error === "object" && error !== null && localFailures.has(error);
}

interface WaitingActa {
  readonly item: EnvelopeItem;
  readonly bytes: Uint8Array | undefined;
  readonly line: ReportLine;
  readonly refs: readonly { readonly wire: string; readonly ref: SealedPhotoRef }[];
  readonly done: Map<string, PhotoLine>;
  readonly photoCursors: string[];
  readonly volunteer: VolunteerRecord;
  readonly underDuress: boolean;
}

const iso = (ms: number) => new Date(ms).toISOString();

export async function fetchInbox(
  device: CoordinatorDevice,
  output: FetchOutput,
  options: FetchOptions = {},
): Promise<FetchSummary> {
  const run = new FetchRun(device, output, options);
  await run.start();
  return run.pull();
}

/**
 * One fetch session: `start()` once, then `pull()` (the HTTP inbox, to its end) or `batch()` for
 * each batch the live inbox pushes. It remembers, across batches, actas waiting for their photos.
 */
export class FetchRun {
  private readonly written: Set<string> = new Set();
  private readonly photoItems = new Map<string, PhotoItem>();
  private readonly waiting = new Map<string, WaitingActa>();
  private readonly photoOwner = new Map<string, string>();
  private readonly bySigningKey = new Map<string, VolunteerRecord | null>();
  /** Duress key → its volunteer's signing key (what that key signs is flagged "under duress"). */
  private readonly duressOwner = new Map<string, string>();
  private readonly dirty = new Set<string>();
  private keys: Awaited<ReturnType<CoordinatorDevice["epochKeyPairs"]>> = [];
  private lines: ReportLine[] = [];
  private acks: string[] = [];
  private stats = { items: 0, written: 0, photos: 0, quarantined: 0, alreadyWritten: 0, security: 0, revoked: 0 };
  private readonly retry: RelayRetry;
  /** Pseudonyms to revoke at the relay once the registry is durable (their wipe was acknowledged). */
  private readonly toRevoke = new Set<string>();
  private nextRevokeCheck = 0;
  /** The relay's volunteer list (pseudonym → enrolledAt), loaded at the first enrollment of a run. */
  private relayVolunteers: Map<string, { enrolledAt: number; revoked: boolean }> | undefined;
  private relayListPage = -1;
  private pageNumber = 0;

  constructor(
    private readonly device: CoordinatorDevice,
    private readonly output: FetchOutput,
    private readonly options: FetchOptions = {},
  ) {
    this.retry = new RelayRetry(options.retry);
  }

  /** Epoch keys maintained and loaded, what the output holds read, overdue wipes revoked. */
  async start(): Promise<void> {
    await this.retry.run(() => this.device.maintainEpochKeys());
    this.keys = await this.device.epochKeyPairs();
    for (const id of await this.output.writtenIds()) this.written.add(id);
    await this.revokeDue();
  }

  /** Reads the HTTP inbox to its end (or until the signal stops it). */
  async pull(): Promise<FetchSummary> {
    let after: string | undefined;
    while (this.options.signal?.aborted !== true) {
      const limit = this.options.limit ?? DEFAULT_FETCH_PAGE;
      const items = await this.relay(() => this.device.client.readInbox(limit, after));
      if (items.length === 0) break;
      after = items[items.length - 1]?.cursor;
      const acks = await this.batch(items);
      for (let start = 0; start < acks.length; start += 500) {
        const some = acks.slice(start, start + 500);
        await this.relay(() => this.device.client.ackInbox(some));
      }
      await this.step("ack");
    }
    return this.summary();
  }

  summary(): FetchSummary {
    return { ...this.stats, waitingForPhotos: this.waiting.size };
  }

  /**
   * Handles one batch of inbox items: everything durable (photos, lines, registry, relay
   * revocations) before it returns the cursors that may now be acked.
   */
  async batch(items: readonly InboxItem[]): Promise<string[]> {
    // A long follow: wipe deadlines that passed since the last check.
    if (this.device.now() >= this.nextRevokeCheck) await this.revokeDue();
    this.pageNumber++;
    const handled = await this.page(items);
    this.stats.items += handled;
    this.options.onProgress?.({ ...this.stats });
    const acks = this.acks;
    this.acks = [];
    return acks;
  }

  /** The test hook after a durable step; what it throws stops the fetch like a kill. */
  private async step(name: string): Promise<void> {
    try {
      await this.options.onStep?.(name);
    } catch (error) {
      markLocal(error);
      throw error;
    }
  }

  /** A relay request, retried as the relay asks; stops the fetch if it fails for good. */
  private relay<T>(request: () => Promise<T>): Promise<T> {
    return io(this.retry.run(request, this.options.signal));
  }

  /** Returns how many items were handled (fewer than given when the signal stopped it). */
  private async page(items: readonly InboxItem[]): Promise<number> {
    const entries = orderPerVolunteer(items.map((item) => (item.kind === "envelope" ? this.open(item) : item)));
    let handled = 0;
    for (const entry of entries) {
      if (this.options.signal?.aborted === true) break;
      try {
        if ("kind" in entry) await this.photoItem(entry);
        else await this.envelope(entry);
        handled++;
      } catch (error) {
        // Stopping in the middle of an item (a photo download): it stays in the inbox (its
        // downloaded chunks are kept), what was handled before it is committed below.
        if (error instanceof RequestCancelled) break;
        handled++;
        if (stopsFetch(error)) throw error;
        await this.poisoned(entry);
      }
    }
    await this.commit();
    return handled;
  }

  /** Never throws: anything wrong with the envelope leaves `message` undefined (quarantined). */
  private open(item: EnvelopeItem): Opened {
    let bytes: Uint8Array | undefined;
    try {
      bytes = relayBytes(item.envelope);
      const opened = openEnvelope(bytes, {
        campaignId: this.device.config.campaignId,
        recipient: this.keys,
        // Known-sender checks need the store (async): done right after, in resolveSender.
        senderKnown: () => true,
      });
      return { item, bytes, message: opened.message, signingKey: opened.senderSigningKey };
    } catch {
      return bytes === undefined ? { item } : { item, bytes };
    }
  }

  /** An item whose handling failed on its own content: quarantined and acked, the fetch goes on. */
  private async poisoned(entry: Opened | PhotoItem): Promise<void> {
    if ("kind" in entry) {
      // A photo item: its acta (if waiting) cannot be completed either.
      this.photoItems.delete(entry.photoId);
      const owner = this.photoOwner.get(entry.photoId);
      const waiting = owner === undefined ? undefined : this.waiting.get(owner);
      if (waiting !== undefined) {
        this.dropWaiting(waiting);
        await this.quarantine(waiting.item, waiting.bytes, { reason: QUARANTINE_REASON.unprocessable });
      }
      await this.quarantinePhoto(entry, QUARANTINE_REASON.unprocessable);
      this.ack(entry.cursor, false);
      return;
    }
    const waiting = this.waiting.get(entry.item.messageId);
    if (waiting !== undefined) this.dropWaiting(waiting);
    if (this.written.has(entry.item.messageId)) return this.ack(entry.item.cursor, true);
    await this.quarantine(entry.item, entry.bytes, { reason: QUARANTINE_REASON.unprocessable });
  }

  private dropWaiting(waiting: WaitingActa): void {
    this.waiting.delete(waiting.item.messageId);
    for (const r of waiting.refs) this.photoOwner.delete(r.wire);
  }

  private async envelope(entry: Opened): Promise<void> {
    const { item, message, signingKey } = entry;
    const known = this.written.has(item.messageId);
    if (message === undefined || signingKey === undefined) {
      if (known) return this.ack(item.cursor, true);
      return this.quarantine(item, entry.bytes, { reason: QUARANTINE_REASON.undecryptable });
    }
    if (known) {
      // Written by an earlier run: the registry already counted it.
      return this.ack(item.cursor, true);
    }
    const sender = await this.resolveSender(signingKey, message, item);
    if ("reason" in sender) return this.quarantine(item, entry.bytes, sender);
    const { volunteer, underDuress } = sender;
    if (isRevoked(volunteer, message, underDuress)) {
      return this.quarantine(item, entry.bytes, { reason: QUARANTINE_REASON.revoked });
    }
    // Only a decoy sends cover items, and it signs with the duress key: a cover signed otherwise
    // is not what it claims (its photos would be dropped unread).
    if ("cover" in message && message.cover === true && !underDuress) {
      return this.quarantine(item, entry.bytes, { reason: QUARANTINE_REASON.unprocessable });
    }
    const line = duressLine(lineOf(item, message, volunteer), item, message, volunteer, underDuress);
    if (message.kind === "acta" && message.photos.length > 0) {
      const refs = message.photos.map((p) => ({
        wire: p.photoId,
        ref: {
          photoId: bytesOf(p.photoId),
          key: bytesOf(p.key),
          header: bytesOf(p.header),
          sha256: bytesOf(p.sha256),
          size: p.size,
          chunkCount: p.chunkCount,
        },
      }));
      // A reference that cannot describe a sealed photo can never be opened: refuse the acta now
      // rather than wait for (or choke on) its photo.
      if (!refs.every((r) => isValidPhotoRef(r.ref))) {
        return this.quarantine(item, entry.bytes, { reason: QUARANTINE_REASON.unprocessable });
      }
      const waiting: WaitingActa = {
        item,
        bytes: entry.bytes,
        line,
        refs,
        done: new Map(),
        photoCursors: [],
        volunteer,
        underDuress,
      };
      this.waiting.set(item.messageId, waiting);
      for (const r of refs) this.photoOwner.set(r.wire, item.messageId);
      await this.tryComplete(waiting);
      return;
    }
    this.emit(item, line, volunteer, message, underDuress);
  }

  private async photoItem(item: PhotoItem): Promise<void> {
    const owner = this.photoOwner.get(item.photoId);
    this.photoItems.set(item.photoId, item);
    const waiting = owner === undefined ? undefined : this.waiting.get(owner);
    if (waiting !== undefined) return this.tryComplete(waiting);
    // Its acta was written by an earlier run that stopped before acking the photo.
    if ((await io(this.output.findPhoto(item.photoId))) !== undefined) {
      this.photoItems.delete(item.photoId);
      this.ack(item.cursor, false);
    }
    // Otherwise its acta comes later in the inbox (or in a later fetch): keep it un-acked.
  }

  private async tryComplete(waiting: WaitingActa): Promise<void> {
    for (const { wire, ref } of waiting.refs) {
      if (waiting.done.has(wire)) continue;
      const item = this.photoItems.get(wire);
      const existing = waiting.line.cover ? undefined : await io(this.output.findPhoto(wire, ref.sha256));
      if (waiting.line.cover && item !== undefined) {
        // A cover photo is random bytes by design: nothing is opened or written. Its chunks are
        // still fetched, so the relay sees the download it sees for every photo.
        await this.fetchAndDiscard(wire, ref.chunkCount);
        waiting.done.set(wire, coverPhotoLine(wire, ref));
      } else if (existing !== undefined) {
        waiting.done.set(wire, photoLine(wire, ref, existing));
      } else if (item !== undefined) {
        // After a duress unlock the phone's decoy completes a photo the real profile had started
        // with cover chunks (random bytes: cover.ts), so for a volunteer under duress a photo that
        // does not open is that cover, not a corrupted upload.
        waiting.done.set(wire, await this.downloadPhoto(item, wire, ref, waiting.volunteer.duress));
      } else {
        continue;
      }
      if (item !== undefined) {
        waiting.photoCursors.push(item.cursor);
        this.photoItems.delete(wire);
      }
    }
    if (waiting.done.size < waiting.refs.length) return;
    this.waiting.delete(waiting.item.messageId);
    const photos = waiting.refs.map((r) => waiting.done.get(r.wire) as PhotoLine);
    const line = { ...waiting.line, photos };
    this.emit(waiting.item, line, waiting.volunteer, undefined, waiting.underDuress);
    this.acks.push(...waiting.photoCursors);
  }

  private async downloadPhoto(
    item: PhotoItem,
    wire: string,
    ref: SealedPhotoRef,
    underDuress: boolean,
  ): Promise<PhotoLine> {
    let path: string | undefined;
    if (item.chunkCount === ref.chunkCount) {
      // Twice at most: kept chunks that no longer decrypt (damaged on this disk) are dropped and
      // the photo is fetched again from the relay.
      for (let attempt = 0; attempt < 2 && path === undefined; attempt++) {
        const result = await this.streamPhoto(wire, ref);
        if (result === "bad-content") break;
        if (result !== "kept-unreadable") path = result;
      }
    }
    if (path === undefined && underDuress) return coverPhotoLine(wire, ref);
    if (path === undefined) {
      await this.quarantinePhoto(item, QUARANTINE_REASON.photoCorrupt);
      return { photoId: wire, path: null, sha256: toHex(ref.sha256), size: ref.size, status: "quarantined" };
    }
    this.stats.photos++;
    await this.step("photo");
    return photoLine(wire, ref, path);
  }

  /**
   * Decrypts the photo to the output chunk by chunk: first the chunks an interrupted run kept,
   * then the rest from the relay (a few requests in flight, consumed in order). The relay
   * connection and this device's storage stop the fetch (kept chunks stay for the next run);
   * anything about the photo's content (or a chunk the relay no longer has) is "bad-content".
   */
  private async streamPhoto(wire: string, ref: SealedPhotoRef): Promise<string | "bad-content" | "kept-unreadable"> {
    const download = await io(startPhotoDownload(this.output, wire));
    let opener: PhotoOpener | undefined;
    let replaying = true;
    try {
      opener = new PhotoOpener(ref);
      const open = opener;
      if (download.keptChunks > ref.chunkCount) throw new DecryptionFailed();
      for (let index = 0; index < download.keptChunks; index++) {
        const piece = open.push(await download.readKept(index));
        await io(download.write(piece));
      }
      replaying = false;
      await this.relayChunks(wire, download.keptChunks, ref.chunkCount, async (chunk) => {
        const piece = open.push(chunk);
        await io(download.keep(chunk));
        await io(download.write(piece));
        await this.step("chunk");
      });
      open.finish();
      opener = undefined;
      try {
        return await download.commit(ref.sha256, ref.size);
      } catch (error) {
        // A mismatch is the photo's; anything else (a full disk, …) is this device's storage.
        if (!(error instanceof DecryptionFailed)) markLocal(error);
        throw error;
      }
    } catch (error) {
      opener?.abort();
      if (stopsFetch(error)) {
        await download.close().catch(() => undefined);
        throw error;
      }
      await io(download.discard());
      return replaying ? "kept-unreadable" : "bad-content";
    }
  }

  /** Downloads a cover photo's chunks like a real photo's and drops them (a missing chunk ends it). */
  private async fetchAndDiscard(wire: string, count: number): Promise<void> {
    try {
      await this.relayChunks(wire, 0, count, async () => this.step("chunk"));
    } catch (error) {
      if (!(error instanceof DecryptionFailed)) throw error;
    }
  }

  /** Chunks `from`…`count - 1` of a photo, in order, with a bounded number of requests in flight. */
  private async relayChunks(
    wire: string,
    from: number,
    count: number,
    consume: (chunk: Uint8Array) => Promise<void>,
  ): Promise<void> {
    const width = Math.max(1, this.options.photoConcurrency ?? DEFAULT_PHOTO_CONCURRENCY);
    const cancel = new AbortController();
    const stop = () => cancel.abort();
    this.options.signal?.addEventListener("abort", stop, { once: true });
    const inFlight = new Map<number, Promise<Uint8Array>>();
    let next = from;
    try {
      for (let index = from; index < count; index++) {
        while (next < count && next < index + width) {
          const request = this.chunk(wire, next, cancel.signal);
          request.catch(() => undefined); // awaited below, in order; never an unhandled rejection
          inFlight.set(next, request);
          next++;
        }
        const request = inFlight.get(index) as Promise<Uint8Array>;
        inFlight.delete(index);
        await consume(await request);
      }
    } finally {
      // Requests still waiting (e.g. in a Retry-After) stop at once instead of running on.
      cancel.abort();
      this.options.signal?.removeEventListener("abort", stop);
    }
  }

  /** A chunk from the relay; a chunk the relay does not have is the photo's problem, not the fetch's. */
  private async chunk(wire: string, index: number, signal: AbortSignal): Promise<Uint8Array> {
    try {
      return await io(this.retry.run(() => this.device.client.getChunk(wire, index), signal));
    } catch (error) {
      if (error instanceof RelayRefused && error.code === "NOT_FOUND") throw new DecryptionFailed();
      throw error;
    }
  }

  private async quarantinePhoto(item: PhotoItem, reason: string): Promise<void> {
    await io(
      this.output.writeQuarantine({
        id: item.photoId,
        kind: "photo",
        reason,
        receivedAt: iso(item.receivedAt),
        quarantinedAt: iso(this.device.now()),
      }),
    );
    this.stats.quarantined++;
    await io(this.device.addQuarantined(1));
  }

  private emit(
    item: EnvelopeItem,
    line: ReportLine,
    volunteer: VolunteerRecord,
    message: InnerMessage | undefined,
    underDuress: boolean,
  ): void {
    this.lines.push(line);
    // A report signed by the duress key, whatever its kind, says the volunteer is under duress.
    const duress = line.kind === "duress" || underDuress;
    // Only the real key's wipe-ack counts: the duress key's device (the decoy) never opens a wipe.
    const wipeAck = message?.kind === "wipe-ack" && !underDuress ? message : undefined;
    this.written.add(item.messageId);
    this.acks.push(item.cursor);
    const updated: VolunteerRecord = {
      ...volunteer,
      counts: { ...volunteer.counts, [line.kind]: (volunteer.counts[line.kind] ?? 0) + 1 },
      lastSeen: Math.max(volunteer.lastSeen ?? 0, item.receivedAt),
      ...(line.kind === "checkin" ? { lastCheckin: Math.max(volunteer.lastCheckin ?? 0, item.receivedAt) } : {}),
      duress: volunteer.duress || duress,
      ...(duress ? { duressAt: Math.min(volunteer.duressAt ?? item.receivedAt, item.receivedAt) } : {}),
      wipe: wipeAck !== undefined ? "acknowledged" : volunteer.wipe,
      // After its wipe-ack the device has erased its keys: anything signed later with them comes
      // from a copy (a phone imaged before the wipe), so it is refused.
      ...(wipeAck !== undefined && volunteer.revoked === undefined
        ? { revoked: { reason: "wiped" as const, at: item.receivedAt, afterSeq: wipeAck.seq } }
        : {}),
    };
    if (wipeAck !== undefined && updated.relayRevokedAt === undefined) this.toRevoke.add(updated.pseudonym);
    this.remember(updated);
  }

  private remember(record: VolunteerRecord): void {
    this.bySigningKey.set(record.signingKey, record);
    this.dirty.add(record.signingKey);
    for (const w of this.waiting.values()) {
      if (w.volunteer.signingKey === record.signingKey) (w as { volunteer: VolunteerRecord }).volunteer = record;
    }
  }

  /**
   * The enrolled volunteer who signed, registering it on a valid `enrolled` report; or why the
   * sender is refused.
   */
  private async resolveSender(
    signingKey: Uint8Array,
    message: InnerMessage,
    item: EnvelopeItem,
  ): Promise<Sender | Refusal> {
    const keyText = toBase64url(signingKey);
    const owner = this.duressOwner.get(keyText);
    const ownerRecord = owner === undefined ? undefined : this.bySigningKey.get(owner);
    if (ownerRecord) return this.duressSigned(ownerRecord, signingKey, message);
    let known = this.bySigningKey.get(keyText);
    if (known === undefined) {
      const found = await io(this.device.volunteerByKey(signingKey));
      if (found?.duress === true) {
        const real = this.bySigningKey.get(found.volunteer.signingKey) ?? found.volunteer;
        this.bySigningKey.set(real.signingKey, real);
        this.duressOwner.set(keyText, real.signingKey);
        return this.duressSigned(real, signingKey, message);
      }
      known = found?.volunteer ?? null;
      this.bySigningKey.set(keyText, known);
    }
    if (known !== null) {
      // The same `enrolled` report delivered again after its duress key was refused (a crash before
      // its ack): refused again, not written as a line.
      if (message.kind === "enrolled" && message.duressKey !== undefined && known.duressKey === undefined) {
        return { reason: QUARANTINE_REASON.duressProofInvalid, pseudonym: known.pseudonym };
      }
      return { volunteer: known, underDuress: false };
    }
    // A duress key whose volunteer's `enrolled` report has not been seen: an unknown signer, like
    // any key (the `enrolled` report, seq 0 of the real key, registers it).
    if (message.kind !== "enrolled") return { reason: QUARANTINE_REASON.unknownSender };
    const encryptionKey = bytesOf(message.encryptionKey);
    const secret = deriveInviteSecret(this.device.inviteKey, bytesOf(message.invite.nonce));
    const storedHash = inviteStoredHash(inviteRedeemToken(secret));
    if (!bytesEqual(storedHash, bytesOf(message.invite.storedHash))) return { reason: QUARANTINE_REASON.unknownSender };
    if (!bytesEqual(inviteProof(secret, signingKey, encryptionKey), bytesOf(message.invite.proof))) {
      return { reason: QUARANTINE_REASON.unknownSender };
    }
    const hashText = toBase64url(storedHash);
    const pseudonym = pseudonymFromKeys({ signingKey, encryptionKey });
    // A duress key counts only with D's own proof over (campaign, S, E): anyone can announce a
    // public key it saw (a relay sees every volunteer's at enrollment). Without it the volunteer
    // is enrolled WITHOUT a duress key and the report is quarantined as a security alert, so a
    // hijack attempt neither captures nor blocks the key it names (duress-and-wipe.md §2.1).
    const duressRefused = message.duressKey !== undefined && !this.duressProven(message, signingKey, encryptionKey);
    // A duress key must be new: one already enrolled (another volunteer's signing or duress key,
    // or this one's signing key) would let this volunteer's duress reports pass as someone else's,
    // or someone else's reports pass as this volunteer's under duress.
    if (message.duressKey !== undefined && !duressRefused && (await this.keyTaken(message.duressKey, keyText))) {
      return { reason: QUARANTINE_REASON.duressKeyTaken, pseudonym };
    }
    // One identity per invite: the relay burns an invite at its first redemption, but any enrolled
    // volunteer holding an invite's secret can sign `enrolled` reports for new keys with it.
    const used = await io(this.device.inviteUse(hashText));
    if (used !== undefined && used.signingKey !== keyText) {
      await this.raiseOn(used.pseudonym);
      return { reason: QUARANTINE_REASON.inviteReused, pseudonym, inviteHolder: used.pseudonym };
    }
    // The relay must have enrolled exactly this key (it computes the same pseudonym from it).
    const atRelay = await this.atRelay(pseudonym);
    if (atRelay === undefined) return { reason: QUARANTINE_REASON.notEnrolledAtRelay, pseudonym };
    const invite = await io(
      this.device.store.getJson(RECORD.invite(message.invite.storedHash), (v) => inviteRecord.parse(v)),
    );
    // Known only for invites minted on this device (or copied with its records); the relay
    // refuses expired invites itself in any case. enrolledAt is floored to the hour.
    if (invite !== undefined && atRelay.enrolledAt > invite.expiresAt) {
      return { reason: QUARANTINE_REASON.inviteExpired, pseudonym };
    }
    const record: VolunteerRecord = {
      pseudonym,
      signingKey: keyText,
      encryptionKey: message.encryptionKey,
      ...(message.duressKey === undefined || duressRefused ? {} : { duressKey: message.duressKey }),
      ...(duressRefused ? { security: 1 } : {}),
      ...(invite?.label === undefined ? {} : { label: invite.label }),
      enrolledAt: message.sentAt,
      counts: {},
      duress: false,
      wipe: "none",
      lastControlCounter: 0,
      invite: hashText,
      ...(atRelay.revoked ? { revoked: { reason: "relay" as const, at: item.receivedAt } } : {}),
    };
    // Durable at once, the invite's use first: every later report of this volunteer depends on it,
    // and a crash between the two leaves the invite taken by this same key (accepted on retry).
    await io(this.device.putInviteUse({ storedHash: hashText, signingKey: keyText, pseudonym }));
    await io(this.device.putVolunteer(record));
    this.bySigningKey.set(keyText, record);
    if (record.duressKey !== undefined) this.duressOwner.set(record.duressKey, keyText);
    if (duressRefused) return { reason: QUARANTINE_REASON.duressProofInvalid, pseudonym };
    return { volunteer: record, underDuress: false };
  }

  /** Whether the `enrolled` report's duressProof is D's signature over (campaign, S, E). */
  private duressProven(message: EnrolledReport, signingKey: Uint8Array, encryptionKey: Uint8Array): boolean {
    if (message.duressKey === undefined || message.duressProof === undefined) return false;
    return verifyDuressProof(
      this.device.config.campaignId,
      signingKey,
      encryptionKey,
      bytesOf(message.duressKey),
      bytesOf(message.duressProof),
    );
  }

  /**
   * A report signed by `owner`'s duress key: `owner`'s, under duress. But an `enrolled` report
   * signed by a duress key is refused as an attack: a decoy never enrolls, and D must never become
   * anyone's signing key.
   */
  private duressSigned(owner: VolunteerRecord, signingKey: Uint8Array, message: InnerMessage): Sender | Refusal {
    if (message.kind !== "enrolled") return { volunteer: owner, underDuress: true };
    const pseudonym = pseudonymFromKeys({ signingKey, encryptionKey: bytesOf(message.encryptionKey) });
    return { reason: QUARANTINE_REASON.enrolledByDuressKey, pseudonym };
  }

  /** Whether `key` is `signingKey` itself or already any enrolled volunteer's signing or duress key. */
  private async keyTaken(key: string, signingKey: string): Promise<boolean> {
    if (key === signingKey || this.duressOwner.has(key)) return true;
    const cached = this.bySigningKey.get(key);
    if (cached) return true;
    return (await io(this.device.volunteerByKey(bytesOf(key)))) !== undefined;
  }

  /**
   * The relay's record of a pseudonym. The list is loaded at most once per page: an `enrolled`
   * report can only be submitted after the relay enrolled its key, so a list loaded after the
   * page was read knows every key the page can name.
   */
  private async atRelay(pseudonym: string): Promise<{ enrolledAt: number; revoked: boolean } | undefined> {
    const cached = this.relayVolunteers?.get(pseudonym);
    if (cached !== undefined || this.relayListPage === this.pageNumber) return cached;
    const listed = await this.relay(() => this.device.client.listVolunteers());
    this.relayVolunteers = new Map(listed.volunteers.map((v) => [v.pseudonym, v]));
    this.relayListPage = this.pageNumber;
    return this.relayVolunteers.get(pseudonym);
  }

  /** One more refused reuse of this volunteer's invite, shown by `coordinator volunteers`. */
  private async raiseOn(holder: string): Promise<void> {
    const record = await io(this.device.volunteer(holder));
    const current = record === undefined ? undefined : (this.bySigningKey.get(record.signingKey) ?? record);
    if (current) this.remember({ ...current, security: (current.security ?? 0) + 1 });
  }

  private async quarantine(item: EnvelopeItem, bytes: Uint8Array | undefined, refusal: Refusal): Promise<void> {
    const security = SECURITY_REASONS.has(refusal.reason) ? 1 : 0;
    const entry: QuarantineEntry = {
      id: item.messageId,
      kind: "envelope",
      reason: refusal.reason,
      receivedAt: iso(item.receivedAt),
      quarantinedAt: iso(this.device.now()),
      ...(bytes === undefined ? {} : { envelope: toBase64url(bytes) }),
      ...(refusal.pseudonym === undefined ? {} : { pseudonym: refusal.pseudonym }),
      ...(refusal.inviteHolder === undefined ? {} : { inviteHolder: refusal.inviteHolder }),
    };
    await io(this.output.writeQuarantine(entry));
    this.stats.quarantined++;
    this.stats.security += security;
    await io(this.device.addQuarantined(1, security));
    this.ack(item.cursor, false);
  }

  private ack(cursor: string, alreadyWritten: boolean): void {
    if (alreadyWritten) this.stats.alreadyWritten++;
    this.acks.push(cursor);
  }

  /** Lines, then registry, then relay revocations: each step durable before the next (acks last, by the caller). */
  private async commit(): Promise<void> {
    if (this.lines.length > 0) {
      await io(this.output.appendReports(this.lines));
      this.stats.written += this.lines.length;
      this.lines = [];
      await this.step("lines");
    }
    for (const key of this.dirty) {
      const record = this.bySigningKey.get(key);
      if (record) await io(this.device.putVolunteer(record));
    }
    this.dirty.clear();
    await this.step("registry");
    if (this.toRevoke.size > 0) await this.revokeDue();
  }

  /**
   * Revokes at the relay every volunteer whose wipe was acknowledged, or whose wipe deadline
   * passed without an acknowledgement, and records it (so each is revoked once). A revoked
   * volunteer's credential is refused and its mailbox deleted by the relay.
   */
  private async revokeDue(): Promise<void> {
    // Stopping: the registry still says who is due, the next run revokes them.
    if (this.options.signal?.aborted === true) return;
    const now = this.device.now();
    this.nextRevokeCheck = now + REVOKE_CHECK_MS;
    this.toRevoke.clear();
    for (const volunteer of await io(this.device.volunteers())) {
      if (volunteer.relayRevokedAt !== undefined) continue;
      const current = this.bySigningKey.get(volunteer.signingKey) ?? volunteer;
      const acknowledged = current.wipe === "acknowledged";
      const overdue = current.wipe === "requested" && current.wipeDeadline !== undefined && current.wipeDeadline <= now;
      if (!acknowledged && !overdue) continue;
      try {
        await this.relay(() => this.device.client.revokeVolunteer(current.pseudonym));
      } catch (error) {
        // Already gone at the relay: nothing left to revoke.
        if (!(error instanceof RelayRefused && error.code === "NOT_FOUND")) throw error;
      }
      const updated: VolunteerRecord = {
        ...current,
        relayRevokedAt: now,
        ...(current.revoked === undefined ? { revoked: { reason: "wipe-deadline" as const, at: now } } : {}),
      };
      await io(this.device.putVolunteer(updated));
      this.bySigningKey.set(updated.signingKey, updated);
      this.stats.revoked++;
    }
    await this.step("revoke");
  }
}

/**
 * A report from a revoked key: anything after a wipe-ack's seq, or anything once the relay revoked
 * it. The duress key has its own seq space (the wipe-ack's seq says nothing about it), and a wipe
 * erased the decoy too: once revoked, whatever it signs is refused.
 */
function isRevoked(volunteer: VolunteerRecord, message: InnerMessage, underDuress: boolean): boolean {
  const revoked = volunteer.revoked;
  if (revoked === undefined) return false;
  return underDuress || revoked.afterSeq === undefined || message.seq > revoked.afterSeq;
}

function photoLine(wire: string, ref: SealedPhotoRef, path: string): PhotoLine {
  return { photoId: wire, path, sha256: toHex(ref.sha256), size: ref.size, status: "ok" };
}

function coverPhotoLine(wire: string, ref: SealedPhotoRef): PhotoLine {
  return { photoId: wire, path: null, sha256: toHex(ref.sha256), size: ref.size, status: "cover" };
}

function lineOf(item: EnvelopeItem, message: InnerMessage, volunteer: VolunteerRecord): ReportLine {
  const base = {
    id: item.messageId,
    kind: message.kind,
    volunteer: volunteer.pseudonym,
    table: message.table,
    text: message.text,
    seq: message.seq,
    sentAt: iso(message.sentAt),
    receivedAt: iso(item.receivedAt),
    ...("cover" in message && message.cover === true ? { cover: true as const } : {}),
  };
  switch (message.kind) {
    case "acta":
      return { ...base, tallies: message.tallies, photos: [] };
    case "enrolled":
      return { ...base, inviteLabel: volunteer.label ?? null };
    case "wipe-ack":
      return { ...base, counter: message.counter };
    case "security-notice":
      return { ...base, reason: message.reason };
    default:
      return base;
  }
}

/**
 * The duress marks of a line. Every report signed by the duress key (status, checkin, acta, …) is
 * sent under duress, whatever the coerced command was: it is written as `kind: "duress"` with
 * `signedKind` the kind the device signed (an acta keeps its photos and fields), so coordinators
 * always get a duress line. A `duress` report (older devices send one, signed by either key) stays
 * the line of kind `duress`, without `signedKind`. A report the real key signed that the relay
 * received at or after the volunteer's first duress-signed report (by receipt time, not seq: the two
 * keys have separate seq spaces) keeps its kind and gets `afterDuress: true`: possibly sent by
 * whoever holds the phone.
 */
function duressLine(
  line: ReportLine,
  item: EnvelopeItem,
  message: InnerMessage,
  volunteer: VolunteerRecord,
  underDuress: boolean,
): ReportLine {
  if (message.kind === "duress") return line;
  if (underDuress) return { ...line, kind: "duress", signedKind: message.kind };
  const after = volunteer.duressAt !== undefined && item.receivedAt >= volunteer.duressAt;
  return after ? { ...line, afterDuress: true } : line;
}

/**
 * Within a page, each volunteer's reports in `seq` order (a retried upload may arrive after a
 * later one); positions of other volunteers' items and of photo items are kept.
 */
function orderPerVolunteer(entries: readonly (Opened | PhotoItem)[]): (Opened | PhotoItem)[] {
  const out = [...entries];
  const groups = new Map<string, number[]>();
  entries.forEach((entry, index) => {
    if ("kind" in entry || entry.signingKey === undefined || entry.message === undefined) return;
    const key = toHex(entry.signingKey);
    const list = groups.get(key) ?? [];
    list.push(index);
    groups.set(key, list);
  });
  for (const positions of groups.values()) {
    const sorted = positions
      .map((i) => entries[i] as Opened)
      .sort((a, b) => (a.message?.seq ?? 0) - (b.message?.seq ?? 0));
    positions.forEach((position, k) => {
      out[position] = sorted[k] as Opened;
    });
  }
  return out;
}
