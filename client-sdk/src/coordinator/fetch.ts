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
// sees who signed an envelope), the invite's expiry when this device minted it, and that the
// relay really enrolled that key. Refused enrollments are security alerts.
import {
  bytesEqual,
  DecryptionFailed,
  deriveInviteSecret,
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
} from "@testigo/protocol";
import { RelayProtocolError, RelayRefused, RelayUnreachable } from "../transport/errors.js";
import { relayBytes } from "../transport/relay-client.js";
import { bytesOf, type CoordinatorDevice } from "./device.js";
import {
  type FetchOutput,
  type PhotoLine,
  QUARANTINE_REASON,
  type QuarantineEntry,
  type ReportLine,
  SECURITY_REASONS,
} from "./output.js";
import { inviteRecord, RECORD, type VolunteerRecord } from "./state.js";

export const DEFAULT_FETCH_PAGE = 100;

export interface FetchProgress {
  readonly items: number;
  readonly written: number;
  readonly photos: number;
  readonly quarantined: number;
}

export interface FetchOptions {
  readonly limit?: number;
  readonly onProgress?: (progress: FetchProgress) => void;
  /** Test hook: called after each durable step ("photo", "lines", "registry", "ack"). */
  readonly onStep?: (step: string) => void | Promise<void>;
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
    if (typeof error === "object" && error !== null) localFailures.add(error);
    throw error;
  }
}

function stopsFetch(error: unknown): boolean {
  if (error instanceof RelayUnreachable || error instanceof RelayRefused || error instanceof RelayProtocolError) {
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
}

const iso = (ms: number) => new Date(ms).toISOString();

export async function fetchInbox(
  device: CoordinatorDevice,
  output: FetchOutput,
  options: FetchOptions = {},
): Promise<FetchSummary> {
  return new FetchRun(device, output, options).run();
}

class FetchRun {
  private readonly written: Set<string> = new Set();
  private readonly photoItems = new Map<string, PhotoItem>();
  private readonly waiting = new Map<string, WaitingActa>();
  private readonly photoOwner = new Map<string, string>();
  private readonly bySigningKey = new Map<string, VolunteerRecord | null>();
  private readonly dirty = new Set<string>();
  private keys: Awaited<ReturnType<CoordinatorDevice["epochKeyPairs"]>> = [];
  private lines: ReportLine[] = [];
  private acks: string[] = [];
  private stats = { items: 0, written: 0, photos: 0, quarantined: 0, alreadyWritten: 0, security: 0 };
  /** The relay's volunteer list (pseudonym → enrolledAt), loaded at the first enrollment of a run. */
  private relayVolunteers: Map<string, { enrolledAt: number; revoked: boolean }> | undefined;
  private relayListPage = -1;
  private pageNumber = 0;

  constructor(
    private readonly device: CoordinatorDevice,
    private readonly output: FetchOutput,
    private readonly options: FetchOptions,
  ) {}

  async run(): Promise<FetchSummary> {
    await this.device.maintainEpochKeys();
    this.keys = await this.device.epochKeyPairs();
    for (const id of await this.output.writtenIds()) this.written.add(id);
    let after: string | undefined;
    for (;;) {
      const items = await io(this.device.client.readInbox(this.options.limit ?? DEFAULT_FETCH_PAGE, after));
      if (items.length === 0) break;
      after = items[items.length - 1]?.cursor;
      this.pageNumber++;
      await this.page(items);
      this.stats.items += items.length;
      this.options.onProgress?.({ ...this.stats });
    }
    return { ...this.stats, waitingForPhotos: this.waiting.size };
  }

  private async page(items: readonly InboxItem[]): Promise<void> {
    const entries = orderPerVolunteer(items.map((item) => (item.kind === "envelope" ? this.open(item) : item)));
    for (const entry of entries) {
      try {
        if ("kind" in entry) await this.photoItem(entry);
        else await this.envelope(entry);
      } catch (error) {
        if (stopsFetch(error)) throw error;
        await this.poisoned(entry);
      }
    }
    await this.commit();
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
    const volunteer = await this.resolveSender(signingKey, message, item);
    if ("reason" in volunteer) return this.quarantine(item, entry.bytes, volunteer);
    if (isRevoked(volunteer, message)) return this.quarantine(item, entry.bytes, { reason: QUARANTINE_REASON.revoked });
    const line = lineOf(item, message, volunteer);
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
      };
      this.waiting.set(item.messageId, waiting);
      for (const r of refs) this.photoOwner.set(r.wire, item.messageId);
      await this.tryComplete(waiting);
      return;
    }
    this.emit(item, line, volunteer, message);
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
      const existing = await io(this.output.findPhoto(wire, ref.sha256));
      if (existing !== undefined) {
        waiting.done.set(wire, photoLine(wire, ref, existing));
      } else if (item !== undefined) {
        waiting.done.set(wire, await this.downloadPhoto(item, wire, ref));
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
    this.emit(waiting.item, line, waiting.volunteer, undefined);
    this.acks.push(...waiting.photoCursors);
  }

  private async downloadPhoto(item: PhotoItem, wire: string, ref: SealedPhotoRef): Promise<PhotoLine> {
    let bytes: Uint8Array | undefined;
    if (item.chunkCount === ref.chunkCount) {
      let opener: PhotoOpener | undefined;
      try {
        opener = new PhotoOpener(ref);
        const out = new Uint8Array(ref.size);
        let offset = 0;
        for (let index = 0; index < ref.chunkCount; index++) {
          const piece = opener.push(await this.chunk(wire, index));
          out.set(piece, offset);
          offset += piece.length;
        }
        opener.finish();
        bytes = out;
      } catch (error) {
        opener?.abort();
        // The relay connection and our own storage stop the fetch; anything about this photo's
        // content (or a chunk the relay no longer has) quarantines the photo only.
        if (stopsFetch(error)) throw error;
      }
    }
    if (bytes === undefined) {
      await this.quarantinePhoto(item, QUARANTINE_REASON.photoCorrupt);
      return { photoId: wire, path: null, sha256: toHex(ref.sha256), size: ref.size, status: "quarantined" };
    }
    const path = await io(this.output.writePhoto(wire, bytes));
    this.stats.photos++;
    await io(this.options.onStep?.("photo"));
    return photoLine(wire, ref, path);
  }

  /** A chunk from the relay; a chunk the relay does not have is the photo's problem, not the fetch's. */
  private async chunk(wire: string, index: number): Promise<Uint8Array> {
    try {
      return await this.device.client.getChunk(wire, index);
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
  ): void {
    this.lines.push(line);
    this.written.add(item.messageId);
    this.acks.push(item.cursor);
    const updated: VolunteerRecord = {
      ...volunteer,
      counts: { ...volunteer.counts, [line.kind]: (volunteer.counts[line.kind] ?? 0) + 1 },
      lastSeen: Math.max(volunteer.lastSeen ?? 0, item.receivedAt),
      duress: volunteer.duress || line.kind === "duress",
      wipe: message?.kind === "wipe-ack" ? "acknowledged" : volunteer.wipe,
      // After its wipe-ack the device has erased its keys: anything signed later with them comes
      // from a copy (a phone imaged before the wipe), so it is refused.
      ...(message?.kind === "wipe-ack" && volunteer.revoked === undefined
        ? { revoked: { reason: "wiped" as const, at: item.receivedAt, afterSeq: message.seq } }
        : {}),
    };
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
  ): Promise<VolunteerRecord | Refusal> {
    const keyText = toBase64url(signingKey);
    let known = this.bySigningKey.get(keyText);
    if (known === undefined) {
      known = (await io(this.device.volunteerBySigningKey(signingKey))) ?? null;
      this.bySigningKey.set(keyText, known);
    }
    if (known !== null) return known;
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
    return record;
  }

  /**
   * The relay's record of a pseudonym. The list is loaded at most once per page: an `enrolled`
   * report can only be submitted after the relay enrolled its key, so a list loaded after the
   * page was read knows every key the page can name.
   */
  private async atRelay(pseudonym: string): Promise<{ enrolledAt: number; revoked: boolean } | undefined> {
    const cached = this.relayVolunteers?.get(pseudonym);
    if (cached !== undefined || this.relayListPage === this.pageNumber) return cached;
    const listed = await io(this.device.client.listVolunteers());
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

  /** Lines, then registry, then acks: each step durable before the next. */
  private async commit(): Promise<void> {
    if (this.lines.length > 0) {
      await io(this.output.appendReports(this.lines));
      this.stats.written += this.lines.length;
      this.lines = [];
      await io(this.options.onStep?.("lines"));
    }
    for (const key of this.dirty) {
      const record = this.bySigningKey.get(key);
      if (record) await io(this.device.putVolunteer(record));
    }
    this.dirty.clear();
    await io(this.options.onStep?.("registry"));
    for (let start = 0; start < this.acks.length; start += 500) {
      await io(this.device.client.ackInbox(this.acks.slice(start, start + 500)));
    }
    this.acks = [];
    await io(this.options.onStep?.("ack"));
  }
}

/** A report from a revoked key: anything after a wipe-ack's seq, or anything once the relay revoked it. */
function isRevoked(volunteer: VolunteerRecord, message: InnerMessage): boolean {
  const revoked = volunteer.revoked;
  if (revoked === undefined) return false;
  return revoked.afterSeq === undefined || message.seq > revoked.afterSeq;
}

function photoLine(wire: string, ref: SealedPhotoRef, path: string): PhotoLine {
  return { photoId: wire, path, sha256: toHex(ref.sha256), size: ref.size, status: "ok" };
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
