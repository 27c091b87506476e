// Cover items (cover.ts): the outbox shape the capsule carries, the cover items a decoy queues
// from it, and cover photo chunks.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import {
  envelopeBucketOf,
  initSodium,
  MAX_PHOTOS_PER_ACTA,
  MAX_TALLY_COUNT,
  MAX_TALLY_ENTRIES,
  PHOTO_CHUNK_CIPHERTEXT_BYTES,
  photoChunkCount,
  REPORT_KIND,
  randomBytes,
  TEXT_MAX_CHARS,
  toBase64url,
} from "@testigo/protocol";
import { newProfile } from "../crypto/key-slots.js";
import { MemoryStorage } from "../storage/memory-storage.js";
import { ProfileStore } from "../storage/profile-store.js";
import { coverChunk, MAX_SHAPE_ITEMS, outboxShapeTokens, parseOutboxShape, queueCovers } from "./cover.js";
import { countOutbox, loadOutbox } from "./outbox.js";
import type { EnvelopeItem, OutboxItem, PhotoItem } from "./records.js";
import { VolunteerStore } from "./volunteer-store.js";

const b64 = (bytes: number) => toBase64url(randomBytes(bytes));
let campaignId = "";

before(async () => {
  await initSodium();
  campaignId = b64(16);
});

async function decoyStore(): Promise<VolunteerStore> {
  const profile = newProfile();
  const store = new VolunteerStore(new ProfileStore(new MemoryStorage(), profile.dataKey, profile.profileId));
  const pair = () => ({ publicKey: b64(32), privateKey: b64(64) });
  await store.putIdentity({
    v: 1,
    relayUrl: "http://127.0.0.1:1",
    campaignId,
    rootFingerprint: b64(16),
    pseudonym: "v-test",
    signing: pair(),
    encryption: pair(),
    duress: pair(),
    invite: { nonce: b64(8), storedHash: b64(32), proof: b64(32) },
    enrolledAt: 1,
  });
  await store.takeSeq();
  return store;
}

function envelope(kind: "status" | "checkin", state: Partial<EnvelopeItem> = {}): EnvelopeItem {
  const id = b64(16);
  const message = { v: 1, kind, messageId: id, campaignId, seq: 1, sentAt: 1, table: "7", text: "MARKER" } as const;
  return { type: "envelope", id, seq: 1, message, resealed: false, queuedAt: 1, ...state };
}

function acta(photos: readonly PhotoItem[], tallies: Record<string, number> = {}): EnvelopeItem {
  const id = photos[0]?.actaId ?? b64(16);
  const refs = photos.map((p) => ({
    photoId: p.id,
    key: b64(32),
    header: b64(24),
    sha256: b64(32),
    size: p.chunkCount * 65_536,
    chunkCount: p.chunkCount,
  }));
  const message = {
    v: 1,
    kind: REPORT_KIND.acta,
    messageId: id,
    campaignId,
    seq: 2,
    sentAt: 1,
    table: "7",
    text: "MARKER".repeat(50),
    tallies,
    photos: refs,
  } as const;
  return { type: "envelope", id, seq: 2, message, resealed: false, queuedAt: 1 };
}

function photo(actaId: string, chunkCount: number, state: Partial<PhotoItem> = {}): PhotoItem {
  return { type: "photo", id: b64(16), chunkCount, actaId, queuedAt: 1, ...state };
}

describe("the outbox shape", () => {
  it("counts refused and kept items, then says per waiting item: short, acta (bucket), photo (chunks; its id if its acta left)", () => {
    const actaId = b64(16);
    const photos = [photo(actaId, 31), photo(actaId, 1)];
    const orphan = photo(b64(16), 12);
    const items: OutboxItem[] = [
      envelope("status"),
      envelope("status"),
      acta(photos, { A: 3 }),
      ...photos,
      orphan,
      photo(b64(16), 12, { refused: "NOT_FOUND" }),
      envelope("checkin", { sentAt: 5 }),
      envelope("status", { refused: "MALFORMED_REQUEST" }),
    ];
    const tokens = outboxShapeTokens(items);
    const bucket = envelopeBucketOf((items[2] as EnvelopeItem).message);
    assert.deepEqual(tokens, ["r2", "k1", "s*2", `a${bucket}`, "p31", "p1", `o12:${orphan.id}`]);
    // Nothing of the contents: no text, no key.
    assert.ok(!tokens.join(",").includes("MARKER"));
    assert.deepEqual(parseOutboxShape(tokens.join(",")), {
      refused: 2,
      kept: 1,
      waiting: [
        { type: "short" },
        { type: "short" },
        { type: "acta", bucket },
        { type: "photo", chunkCount: 31, attached: true },
        { type: "photo", chunkCount: 1, attached: true },
        { type: "photo", chunkCount: 12, attached: false, id: orphan.id },
      ],
    });
  });

  it("describes at most MAX_SHAPE_ITEMS waiting items and skips tokens it cannot read", () => {
    const many = Array.from({ length: MAX_SHAPE_ITEMS + 10 }, () => envelope("status"));
    assert.deepEqual(outboxShapeTokens(many), [`s*${MAX_SHAPE_ITEMS}`]);
    assert.equal(parseOutboxShape(`s*${MAX_SHAPE_ITEMS},s*9`).waiting.length, MAX_SHAPE_ITEMS);
    assert.deepEqual(parseOutboxShape(""), { refused: 0, kept: 0, waiting: [] });
    assert.deepEqual(parseOutboxShape("s,x,a,p18,p12,zs,k3,p1000,o12:short,s*2"), {
      refused: 0,
      kept: 3,
      waiting: [
        { type: "short" },
        { type: "photo", chunkCount: 12, attached: true },
        { type: "short" },
        { type: "short" },
      ],
    });
  });
});

describe("cover items", () => {
  it("have the outbox's shape: the same counts, order, buckets and chunk counts; all marked cover", async () => {
    const actaId = b64(16);
    const photos = [photo(actaId, 31), photo(actaId, 5)];
    const orphan = photo(b64(16), 12);
    const real: OutboxItem[] = [
      envelope("status"),
      acta(photos, { A: 3, B: 9 }),
      ...photos,
      orphan,
      envelope("checkin", { sentAt: 5 }),
      envelope("status", { refused: "MALFORMED_REQUEST" }),
    ];
    const store = await decoyStore();
    await queueCovers(store, parseOutboxShape(outboxShapeTokens(real).join(",")), 1_000);
    const covers = await loadOutbox(store);
    // Refused and kept items are counts only (no record each); the waiting ones are cover items.
    assert.deepEqual((await store.outboxIndex()).covered, { refused: 1, kept: 1 });
    assert.deepEqual(countOutbox(covers), { ...countOutbox(real), refused: 0, kept: 0 });
    assert.deepEqual(outboxShapeTokens(covers), outboxShapeTokens(real).slice(2));
    for (const item of covers) {
      if (item.type === "photo") assert.equal(typeof item.cover, "string");
      else assert.equal("cover" in item.message && item.message.cover, true);
    }
    // The cover acta references its cover photos, with sizes that give their chunk counts.
    const coverActa = covers[1] as EnvelopeItem;
    assert.ok(coverActa.message.kind === "acta");
    assert.deepEqual(
      coverActa.message.photos.map((p) => [p.photoId, p.chunkCount, photoChunkCount(p.size)]),
      covers.slice(2, 4).map((p) => [p.id, (p as PhotoItem).chunkCount, (p as PhotoItem).chunkCount]),
    );
    // The photo whose acta already left is resumed under its wire id.
    assert.equal(covers[4]?.id, orphan.id);
    // Envelopes take the decoy's next seqs.
    assert.deepEqual(
      covers.flatMap((item) => (item.type === "envelope" ? [item.seq] : [])),
      [1, 2],
    );
  });

  it("reach every bucket a real acta reaches, with any number of photos", async () => {
    for (const photoCount of [0, 1, 3, MAX_PHOTOS_PER_ACTA]) {
      const actaId = b64(16);
      const photos = Array.from({ length: photoCount }, () => photo(actaId, 9));
      const smallest = envelopeBucketOf(acta(photos, photoCount === 0 ? { A: 1 } : {}).message);
      const tallies = Object.fromEntries(
        Array.from({ length: MAX_TALLY_ENTRIES }, (_, i) => [`${i}`.padStart(32, "T"), MAX_TALLY_COUNT]),
      );
      const largest = envelopeBucketOf({
        ...acta(photos, tallies).message,
        text: "x".repeat(TEXT_MAX_CHARS),
      } as EnvelopeItem["message"]);
      for (let bucket = smallest; bucket <= largest; bucket++) {
        const store = await decoyStore();
        const shape = [`a${bucket}`, ...photos.map(() => "p9")].join(",");
        await queueCovers(store, parseOutboxShape(shape), 1);
        const [cover] = await loadOutbox(store);
        assert.ok(cover?.type === "envelope");
        assert.equal(envelopeBucketOf(cover.message), bucket, `${photoCount} photos, bucket ${bucket}`);
      }
    }
  });

  it("photo chunks are a real chunk's size, the same for the same seed and index, different otherwise", () => {
    const seed = b64(32);
    const chunk = coverChunk(seed, 3);
    assert.equal(chunk.length, PHOTO_CHUNK_CIPHERTEXT_BYTES);
    assert.deepEqual(coverChunk(seed, 3), chunk);
    assert.notDeepEqual(coverChunk(seed, 4), chunk);
    assert.notDeepEqual(coverChunk(b64(32), 3), chunk);
    assert.throws(() => coverChunk(b64(16), 0), RangeError);
  });
});
