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
// Shape grammar: tokens separated by ",". First the counts of refused items ("r<n>") and of
// items kept after sending ("k<n>"), which are never sent again: the decoy only shows them
// (OutboxIndex.covered), no record each. Then every waiting item in queue order (at most
// MAX_SHAPE_ITEMS): "s" (an envelope that is not an acta: every such kind is bucket 0),
// "a<bucket>" (an acta envelope), "p<chunks>" (a photo of the acta token before it) or
// "o<chunks>:<photoId>" (a photo whose acta is not waiting: already sent, kept or refused; its
// wire id, which the relay already knows, so the decoy resumes that upload with cover chunks
// where the real device would have resumed it). A token repeated n times in a row is "<token>*n".
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
const SEED_BYTES = 32;
const NONCE_BYTES = 24;

export type ShapeEntry =
  | { readonly type: "short" }
  | { readonly type: "acta"; readonly bucket: number }
  | { readonly type: "photo"; readonly chunkCount: number; readonly attached: true }
  | { readonly type: "photo"; readonly chunkCount: number; readonly attached: false; readonly id: string };

/** What a shape says: the refused and kept counts, and the waiting items to cover. */
export interface OutboxShape {
  readonly refused: number;
  readonly kept: number;
  readonly waiting: readonly ShapeEntry[];
}

/** Largest refused or kept count a shape carries (what `status` shows, nothing is written per item). */
const MAX_COUNT = 1_000_000;

/**
 * The shape's tokens, counts first (so the capsule, when short of room, drops waiting items from
 * the end first). A photo is "attached" when its acta is the last waiting acta before it, which is
 * how queueActa lays them out.
 */
export function outboxShapeTokens(items: readonly OutboxItem[]): string[] {
  const refused = items.filter((item) => item.refused !== undefined).length;
  const kept = items.filter((item) => item.refused === undefined && item.sentAt !== undefined).length;
  const waiting: string[] = [];
  let lastActa: string | undefined;
  for (const item of items.filter((i) => i.refused === undefined && i.sentAt === undefined).slice(0, MAX_SHAPE_ITEMS)) {
    if (item.type === "photo") {
      waiting.push(item.actaId === lastActa ? `p${item.chunkCount}` : `o${item.chunkCount}:${item.id}`);
    } else if (item.message.kind === REPORT_KIND.acta) {
      lastActa = item.id;
      waiting.push(`a${envelopeBucketOf(item.message)}`);
    } else {
      lastActa = undefined;
      waiting.push("s");
    }
  }
  return [...(refused > 0 ? [`r${refused}`] : []), ...(kept > 0 ? [`k${kept}`] : []), ...runLengths(waiting)];
}

/** Consecutive equal tokens as "<token>*n" (photo ids make "o" tokens unique). */
function runLengths(tokens: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < tokens.length; ) {
    let n = 1;
    while (tokens[i + n] === tokens[i]) n++;
    out.push(n === 1 ? (tokens[i] as string) : `${tokens[i]}*${n}`);
    i += n;
  }
  return out;
}

const TOKEN = /^(?:([rk])(\d{1,7})|(s|a(\d{1,3})|p(\d{1,3})|o(\d{1,3}):([A-Za-z0-9_-]{22}))(?:\*(\d{1,3}))?)$/;

/** What a shape string says; a token that does not parse is skipped (the capsule is ours). */
export function parseOutboxShape(shape: string): OutboxShape {
  let refused = 0;
  let kept = 0;
  const waiting: ShapeEntry[] = [];
  for (const token of shape === "" ? [] : shape.split(",")) {
    const match = TOKEN.exec(token);
    if (match === null) continue;
    const [, countKind, count, body, bucket, attached, orphan, id, repeat] = match;
    if (countKind !== undefined) {
      if (countKind === "r") refused = Math.min(Number(count), MAX_COUNT);
      else kept = Math.min(Number(count), MAX_COUNT);
      continue;
    }
    let entry: ShapeEntry;
    if (body === "s") entry = { type: "short" };
    else if (bucket !== undefined) entry = { type: "acta", bucket: Number(bucket) };
    else {
      const chunkCount = Number(attached ?? orphan);
      if (!PHOTO_CHUNK_BUCKETS.includes(chunkCount)) continue;
      entry =
        attached !== undefined
          ? { type: "photo", chunkCount, attached: true }
          : { type: "photo", chunkCount, attached: false, id: id as string };
    }
    for (let n = Number(repeat ?? 1); n > 0 && waiting.length < MAX_SHAPE_ITEMS; n--) waiting.push(entry);
  }
  return { refused, kept, waiting };
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
 * Queues one cover item per waiting entry on the decoy's store (the duress unlock's batch), in
 * order, and writes its outbox index (replacing any: the decoy was never opened, so an index of
 * its own is a crashed earlier run's) with them and the refused and kept counts to show. Writes
 * nothing for an empty shape.
 * Envelopes are left unsealed: sync seals them to the coordinators' current keys when it sends
 * them, as it does any item queued without keys.
 */
export async function queueCovers(store: VolunteerStore, shape: OutboxShape, now: number): Promise<void> {
  if (shape.waiting.length === 0 && shape.refused + shape.kept === 0) return;
  const identity = await store.identity();
  const items: OutboxItem[] = [];
  let acta: { id: string; photos: PhotoItem[]; bucket: number } | undefined;
  const flushActa = async () => {
    if (acta === undefined) return;
    const { id, photos, bucket } = acta;
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
        photos: photos.map((p) => coverPhotoRef(p.id, p.chunkCount)),
        cover: true,
      },
      bucket,
    );
    items.push(envelope(id, seq, message, now), ...photos);
  };
  for (const entry of shape.waiting) {
    if (entry.type === "photo" && entry.attached && acta !== undefined && acta.photos.length < MAX_PHOTOS_PER_ACTA) {
      acta.photos.push(coverPhoto(toBase64url(randomBytes(16)), entry.chunkCount, acta.id, now));
      continue;
    }
    await flushActa();
    if (entry.type === "acta") {
      acta = { id: toBase64url(randomBytes(16)), photos: [], bucket: entry.bucket };
    } else if (entry.type === "photo") {
      // An orphan takes over the real upload's id (the relay already knows it); an attached
      // photo whose acta was dropped (more than MAX_PHOTOS_PER_ACTA) gets a fresh one.
      const id = entry.attached ? toBase64url(randomBytes(16)) : entry.id;
      items.push(coverPhoto(id, entry.chunkCount, toBase64url(randomBytes(16)), now));
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
      items.push(envelope(id, seq, message, now));
    }
  }
  await flushActa();
  for (const item of items) await store.putItem(item);
  const covered = shape.refused + shape.kept > 0 ? { covered: { refused: shape.refused, kept: shape.kept } } : {};
  await store.putOutboxIndex({ items: items.map((item) => item.id), ...covered });
}

function envelope(id: string, seq: number, message: InnerMessage, now: number): EnvelopeItem {
  return { type: "envelope", id, seq, message, resealed: false, queuedAt: now };
}

function coverPhoto(id: string, chunkCount: number, actaId: string, now: number): PhotoItem {
  return { type: "photo", id, chunkCount, actaId, queuedAt: now, cover: toBase64url(randomBytes(SEED_BYTES)) };
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
