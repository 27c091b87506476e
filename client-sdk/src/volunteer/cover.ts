// Cover items: what keeps a queued outbox from giving a duress unlock away
// (protocol/spec/duress-and-wipe.md §2.4).
//
// The real profile seals its outbox's SHAPE into the duress capsule (never its contents): per
// item, in queue order, whether it is a short envelope, an acta (and its envelope's size bucket)
// or a photo (and its chunk count), and whether it waits, was refused or is kept after sending.
// After a duress unlock the decoy queues, in the same unlock's batch, one cover item per entry,
// signed like everything the decoy sends by the duress key D and marked `cover` inside the sealed
// message: so `status` under the duress PIN counts what it counted under the PIN, and the decoy's
// sync sends the same number of envelopes in the same buckets, and photos of the same chunk
// counts, in the same order. A cover photo has no chunk files: each chunk is generated when sent,
// from a seed kept in its item, as random-looking bytes of a real chunk's size. Coordinators file
// covers as `duress`, flagged `cover`, and never try to open their photos.
//
// What covers cannot hide (accepted, §2.4): their invented contents from whoever decrypts the
// decoy's records, and the missing chunk files of a cover photo on a forensic image.
//
// Shape grammar: tokens separated by ",", each an optional state ("r" refused, "k" kept after
// sending; none: waiting) then "s" (an envelope that is not an acta: every such kind is bucket
// 0), "a<bucket>" (an acta envelope), "p<chunks>" (a photo of the acta token before it) or
// "o<chunks>" (a photo whose acta already left, or is not in the outbox).
import {
  envelopeBucketOf,
  fromBase64url,
  type InnerMessage,
  MAX_PHOTO_CHUNKS,
  MAX_PHOTOS_PER_ACTA,
  MAX_TALLY_COUNT,
  MAX_TALLY_ENTRIES,
  PHOTO_CHUNK_BUCKETS,
  PHOTO_CHUNK_CIPHERTEXT_BYTES,
  PHOTO_CHUNK_PLAINTEXT_BYTES,
  type PhotoRef,
  REPORT_KIND,
  randomBytes,
  TEXT_MAX_CHARS,
  toBase64url,
  xchachaEncrypt,
} from "@testigo/protocol";
import type { EnvelopeItem, OutboxItem, PhotoItem } from "./records.js";
import type { VolunteerStore } from "./volunteer-store.js";

/** Most outbox items the capsule describes (and a real unlock re-writes): the rest get no cover. */
export const MAX_SHAPE_ITEMS = 200;
/** The refusal code a refused cover item carries (`status` shows only how many were refused). */
const COVER_REFUSAL = "REFUSED";
const SEED_BYTES = 32;
const NONCE_BYTES = 24;

type State = "waiting" | "refused" | "kept";

export type ShapeEntry =
  | { readonly state: State; readonly type: "short" }
  | { readonly state: State; readonly type: "acta"; readonly bucket: number }
  | { readonly state: State; readonly type: "photo"; readonly chunkCount: number; readonly attached: boolean };

const STATE_PREFIX: Record<State, string> = { waiting: "", refused: "r", kept: "k" };

function stateOf(item: OutboxItem): State {
  if (item.refused !== undefined) return "refused";
  if (item.sentAt !== undefined) return "kept";
  return "waiting";
}

/**
 * One token per item, in queue order (at most MAX_SHAPE_ITEMS). A photo is "attached" when its
 * acta is the last acta token before it, which is how queueActa lays them out.
 */
export function outboxShapeTokens(items: readonly OutboxItem[]): string[] {
  const tokens: string[] = [];
  let lastActa: string | undefined;
  for (const item of items.slice(0, MAX_SHAPE_ITEMS)) {
    const prefix = STATE_PREFIX[stateOf(item)];
    if (item.type === "photo") {
      tokens.push(`${prefix}${item.actaId === lastActa ? "p" : "o"}${item.chunkCount}`);
    } else if (item.message.kind === REPORT_KIND.acta) {
      lastActa = item.id;
      tokens.push(`${prefix}a${envelopeBucketOf(item.message)}`);
    } else {
      lastActa = undefined;
      tokens.push(`${prefix}s`);
    }
  }
  return tokens;
}

const TOKEN = /^([rk]?)(s|a(\d{1,3})|[po](\d{1,3}))$/;

/** The entries of a shape string; a token that does not parse is skipped (the capsule is ours). */
export function parseOutboxShape(shape: string): ShapeEntry[] {
  const entries: ShapeEntry[] = [];
  for (const token of shape === "" ? [] : shape.split(",").slice(0, MAX_SHAPE_ITEMS)) {
    const match = TOKEN.exec(token);
    if (match === null) continue;
    const state: State = match[1] === "r" ? "refused" : match[1] === "k" ? "kept" : "waiting";
    const body = match[2] ?? "";
    if (body === "s") entries.push({ state, type: "short" });
    else if (body.startsWith("a")) entries.push({ state, type: "acta", bucket: Number(match[3]) });
    else {
      const chunkCount = Number(match[4]);
      if (!PHOTO_CHUNK_BUCKETS.includes(chunkCount)) continue;
      entries.push({ state, type: "photo", chunkCount, attached: body.startsWith("p") });
    }
  }
  return entries;
}

function stateFields(state: State, now: number): { refused?: string; sentAt?: number } {
  if (state === "refused") return { refused: COVER_REFUSAL };
  if (state === "kept") return { sentAt: now };
  return {};
}

/** A photo reference as an acta carries it, for a cover photo of `chunkCount` chunks (random bytes). */
function coverPhotoRef(photoId: string, chunkCount: number): PhotoRef {
  const below = PHOTO_CHUNK_BUCKETS.filter((count) => count < chunkCount).at(-1) ?? 0;
  // Any size whose padded count is chunkCount: more than the previous bucket's capacity.
  const low = below * PHOTO_CHUNK_PLAINTEXT_BYTES + 1;
  const high = Math.min(chunkCount, MAX_PHOTO_CHUNKS) * PHOTO_CHUNK_PLAINTEXT_BYTES;
  const size = low + randomBelow(high - low + 1);
  const b = (bytes: number) => toBase64url(randomBytes(bytes));
  return { photoId, key: b(32), header: b(24), sha256: b(32), size, chunkCount };
}

/** Table-code alphabet: the codes and counts a cover acta's tallies are made of. */
function randomCode(length: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  let code = "";
  for (const byte of randomBytes(length)) code += alphabet[byte % alphabet.length];
  return code;
}

/**
 * A cover acta's message with `photos`, grown with tally entries (then text) until its envelope
 * falls in `bucket`: an entry adds about 50 bytes, less than the gap between two buckets, so
 * the growth cannot jump over it; a real acta's fields have the same bounds, so every bucket a
 * real acta reaches, a cover reaches.
 */
function coverActa(base: Omit<Extract<InnerMessage, { kind: "acta" }>, "tallies" | "text">, bucket: number) {
  const tallies: Record<string, number> = {};
  let text = "";
  const message = () => ({ ...base, text, tallies: { ...tallies } }) as InnerMessage;
  const below = () => envelopeBucketOf(message()) < bucket;
  if (base.photos.length === 0) tallies[randomCode(32)] = randomBelow(1000);
  while (below() && Object.keys(tallies).length < MAX_TALLY_ENTRIES) {
    const code = randomCode(32);
    tallies[code] = randomBelow(MAX_TALLY_COUNT);
    if (envelopeBucketOf(message()) > bucket) {
      delete tallies[code];
      break;
    }
  }
  while (below() && text.length + 16 <= TEXT_MAX_CHARS) text += randomCode(16);
  return message();
}

function randomBelow(limit: number): number {
  return Math.floor(Math.random() * limit);
}

/**
 * Queues one cover item per shape entry on the decoy's store (the duress unlock's batch), in
 * order, and appends them to its outbox index. Envelopes are left unsealed: sync seals them to the
 * coordinators' current keys when it sends them, as it does any item queued without keys.
 */
export async function queueCovers(store: VolunteerStore, entries: readonly ShapeEntry[], now: number): Promise<void> {
  if (entries.length === 0) return;
  const identity = await store.identity();
  const items: OutboxItem[] = [];
  let acta: { id: string; photos: PhotoItem[]; entry: Extract<ShapeEntry, { type: "acta" }> } | undefined;
  const flushActa = async () => {
    if (acta === undefined) return;
    const { id, photos, entry } = acta;
    acta = undefined;
    const seq = await store.takeSeq();
    const message = coverActa(
      {
        kind: REPORT_KIND.acta,
        v: 1,
        messageId: id,
        campaignId: identity.campaignId,
        seq,
        sentAt: now,
        table: randomCode(8),
        photos: photos.slice(0, MAX_PHOTOS_PER_ACTA).map((p) => coverPhotoRef(p.id, p.chunkCount)),
        cover: true,
      },
      entry.bucket,
    );
    items.push(envelope(id, seq, message, entry.state, now), ...photos);
  };
  for (const entry of entries) {
    if (entry.type === "photo" && entry.attached && acta !== undefined && acta.photos.length < MAX_PHOTOS_PER_ACTA) {
      acta.photos.push(coverPhoto(entry, acta.id, now));
      continue;
    }
    await flushActa();
    if (entry.type === "acta") {
      acta = { id: toBase64url(randomBytes(16)), photos: [], entry };
    } else if (entry.type === "photo") {
      items.push(coverPhoto(entry, toBase64url(randomBytes(16)), now));
    } else {
      const id = toBase64url(randomBytes(16));
      const seq = await store.takeSeq();
      const message: InnerMessage = {
        kind: REPORT_KIND.status,
        v: 1,
        messageId: id,
        campaignId: identity.campaignId,
        seq,
        sentAt: now,
        table: "0",
        text: "",
        cover: true,
      };
      items.push(envelope(id, seq, message, entry.state, now));
    }
  }
  await flushActa();
  for (const item of items) await store.putItem(item);
  await store.putOutboxIds([...(await store.outboxIds()), ...items.map((item) => item.id)]);
}

function envelope(id: string, seq: number, message: InnerMessage, state: State, now: number): EnvelopeItem {
  return { type: "envelope", id, seq, message, resealed: false, queuedAt: now, ...stateFields(state, now) };
}

function coverPhoto(entry: Extract<ShapeEntry, { type: "photo" }>, actaId: string, now: number): PhotoItem {
  return {
    type: "photo",
    id: toBase64url(randomBytes(16)),
    chunkCount: entry.chunkCount,
    actaId,
    queuedAt: now,
    cover: toBase64url(randomBytes(SEED_BYTES)),
    ...stateFields(entry.state, now),
  };
}

/**
 * Chunk `index` of a cover photo: the XChaCha20-Poly1305 encryption of zeros under the item's
 * seed, nonce = the index, exactly a real chunk's size. The same bytes every time, so an upload
 * resumed after a crash sends what the relay already has for the chunks it holds.
 */
export function coverChunk(seed: string, index: number): Uint8Array {
  const key = fromBase64url(seed);
  if (key === undefined || key.length !== SEED_BYTES) throw new RangeError("a cover photo's seed must be 32 bytes");
  const nonce = new Uint8Array(NONCE_BYTES);
  new DataView(nonce.buffer).setUint32(0, index, false);
  return xchachaEncrypt(new Uint8Array(PHOTO_CHUNK_CIPHERTEXT_BYTES - 16), new Uint8Array(0), nonce, key);
}
