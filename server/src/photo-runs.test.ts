// PUT .../photos/:photoId/chunk-runs/:first: consecutive chunks in one request, through inject()
// on a real SQLite store and a real redis-server. A refused run must leave the store exactly as
// it was (storeDigest).
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  API,
  apiPath,
  initSodium,
  MAX_CHUNK_RUN,
  MAX_PHOTO_CHUNKS,
  PHOTO_CHUNK_CIPHERTEXT_BYTES,
  putChunkRunResponse,
  randomBytes,
  toBase64url,
} from "@testigo/protocol";
import type { FastifyInstance } from "fastify";
import { buildApp } from "./app.js";
import { appConfig } from "./config/config.js";
import { createLogger } from "./logger.js";
import { RedisStore } from "./store/redis-store.js";
import {
  bearer,
  type Campaign,
  coordinatorToken,
  enrollVolunteer,
  OPERATOR_TOKEN,
  octet,
  type Relay,
  registerCampaign,
  startRelay,
  type Volunteer,
} from "./test-fixture.js";
import { type RedisProcess, startRedis } from "./testing/redis-server.js";
import { type DigestSection, digestChanges, type StoreDigest, storeDigest } from "./testing/store-digest.js";

let relay: Relay;
let campaign: Campaign;
let coordinator: string;
let volunteer: Volunteer;

/** A digest of everything the current relay's store holds (see the suites below). */
let digest: () => Promise<StoreDigest>;
/** Rate limits, challenges and sessions move without anything being stored. */
const STORED: readonly DigestSection[] = ["data", "sequences"];

/** The relay of test-fixture.ts over a real redis-server instead of SQLite. */
async function redisRelay(url: string): Promise<Relay> {
  await initSodium();
  const store = await RedisStore.connect(url);
  const relay = {
    app: undefined as unknown as FastifyInstance,
    store,
    logs: [] as string[],
    dir: "",
    now: Date.UTC(2024, 6, 28, 18, 0, 0),
    async close() {
      await relay.app.close();
      await store.close();
    },
  };
  relay.app = buildApp(appConfig({ registrationToken: OPERATOR_TOKEN }), {
    store,
    logger: createLogger({ level: "silent" }),
    clock: () => relay.now,
  });
  return relay as unknown as Relay;
}

const campaignId = () => campaign.campaignId;

async function declare(chunkCount: number): Promise<{ photoId: string; chunks: Uint8Array[] }> {
  const photoId = toBase64url(randomBytes(16));
  const res = await relay.app.inject({
    method: API.createPhoto.method,
    url: apiPath(API.createPhoto, { campaignId: campaignId(), photoId }),
    headers: bearer(volunteer.token),
    payload: { chunkCount },
  });
  assert.equal(res.statusCode, 201, res.body);
  return { photoId, chunks: Array.from({ length: chunkCount }, () => randomBytes(PHOTO_CHUNK_CIPHERTEXT_BYTES)) };
}

function putRun(photoId: string, first: number | string, body: Uint8Array, token = volunteer.token) {
  return relay.app.inject({
    method: API.putChunkRun.method,
    url: apiPath(API.putChunkRun, { campaignId: campaignId(), photoId, first }),
    headers: octet(token),
    payload: Buffer.from(body),
  });
}

function putOne(photoId: string, index: number, chunk: Uint8Array) {
  return relay.app.inject({
    method: API.putChunk.method,
    url: apiPath(API.putChunk, { campaignId: campaignId(), photoId, index }),
    headers: octet(volunteer.token),
    payload: Buffer.from(chunk),
  });
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(chunks.map((c) => Buffer.from(c))));
}

async function have(photoId: string): Promise<number[]> {
  const res = await relay.app.inject({
    method: API.listChunks.method,
    url: apiPath(API.listChunks, { campaignId: campaignId(), photoId }),
    headers: bearer(volunteer.token),
  });
  assert.equal(res.statusCode, 200, res.body);
  return (res.json() as { have: number[] }).have.sort((a, b) => a - b);
}

/** The coordinator downloads every chunk of a complete photo and gets the uploaded bytes. */
async function assertDelivered(photoId: string, chunks: readonly Uint8Array[]) {
  for (const [index, chunk] of chunks.entries()) {
    const res = await relay.app.inject({
      method: API.getChunk.method,
      url: apiPath(API.getChunk, { campaignId: campaignId(), photoId, index }),
      headers: bearer(coordinator),
    });
    assert.equal(res.statusCode, 200, `chunk ${index}: ${res.body}`);
    assert.deepEqual(new Uint8Array(res.rawPayload), chunk, `chunk ${index}`);
  }
}

function storeSuite(storeName: "SQLite" | "Redis"): void {
  describe(`chunk runs (${storeName})`, { timeout: 120_000 }, () => {
    let redis: RedisProcess | undefined;
    before(async () => {
      if (storeName === "SQLite") {
        relay = await startRelay();
        const file = join(relay.dir, "relay.sqlite");
        digest = () => storeDigest({ kind: "sqlite", file }, { include: STORED });
      } else {
        redis = await startRedis();
        relay = await redisRelay(redis.url);
        const urls = [redis.url];
        digest = () => storeDigest({ kind: "redis", urls }, { include: STORED });
      }
      campaign = await registerCampaign(relay);
      coordinator = await coordinatorToken(relay, campaign);
      volunteer = await enrollVolunteer(relay, campaign, coordinator);
    });
    after(async () => {
      await relay.close();
      await redis?.stop();
    });

    it("stores a whole photo in one run, and answers a retry alike with nothing stored twice", async () => {
      const photo = await declare(5);
      const res = await putRun(photo.photoId, 0, concat(photo.chunks));
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(putChunkRunResponse.parse(res.json()), { status: "stored", first: 0, count: 5, complete: true });
      assert.deepEqual(await have(photo.photoId), [0, 1, 2, 3, 4]);

      const before = await digest();
      const retry = await putRun(photo.photoId, 0, concat(photo.chunks));
      assert.equal(retry.statusCode, 200, retry.body);
      assert.deepEqual(retry.json(), res.json());
      const retryTail = await putRun(photo.photoId, 3, concat(photo.chunks.slice(3)));
      assert.equal(retryTail.statusCode, 200, retryTail.body);
      assert.deepEqual(retryTail.json(), { status: "stored", first: 3, count: 2, complete: true });
      assert.deepEqual(digestChanges(before, await digest()), []);
      await assertDelivered(photo.photoId, photo.chunks);
    });

    it("stores a run that partly overlaps chunks already there", async () => {
      const photo = await declare(6);
      for (const index of [1, 2]) {
        assert.equal((await putOne(photo.photoId, index, photo.chunks[index] as Uint8Array)).statusCode, 200);
      }
      const head = await putRun(photo.photoId, 0, concat(photo.chunks.slice(0, 4)));
      assert.equal(head.statusCode, 200, head.body);
      assert.deepEqual(head.json(), { status: "stored", first: 0, count: 4, complete: false });
      assert.deepEqual(await have(photo.photoId), [0, 1, 2, 3]);
      const tail = await putRun(photo.photoId, 3, concat(photo.chunks.slice(3)));
      assert.equal(tail.statusCode, 200, tail.body);
      assert.deepEqual(tail.json(), { status: "stored", first: 3, count: 3, complete: true });
      await assertDelivered(photo.photoId, photo.chunks);
    });

    it("completes a photo from a mix of single chunks and runs", async () => {
      const photo = await declare(MAX_CHUNK_RUN + 4);
      const last = photo.chunks.length - 1;
      assert.equal((await putOne(photo.photoId, 0, photo.chunks[0] as Uint8Array)).statusCode, 200);
      const big = await putRun(photo.photoId, 1, concat(photo.chunks.slice(1, 1 + MAX_CHUNK_RUN)));
      assert.equal(big.statusCode, 200, big.body);
      assert.deepEqual(big.json(), { status: "stored", first: 1, count: MAX_CHUNK_RUN, complete: false });
      const single = await putOne(photo.photoId, last, photo.chunks[last] as Uint8Array);
      assert.deepEqual(single.json(), { status: "stored", complete: false });
      const gap = await putRun(photo.photoId, 1 + MAX_CHUNK_RUN, concat(photo.chunks.slice(1 + MAX_CHUNK_RUN, last)));
      assert.equal(gap.statusCode, 200, gap.body);
      assert.deepEqual(gap.json(), { status: "stored", first: 1 + MAX_CHUNK_RUN, count: 2, complete: true });
      await assertDelivered(photo.photoId, photo.chunks);
      // Complete, so every coordinator device's inbox lists the photo exactly once.
      const inbox = await relay.app.inject({
        method: API.readInbox.method,
        url: `${apiPath(API.readInbox, { campaignId: campaignId() })}?limit=100`,
        headers: bearer(coordinator),
      });
      assert.equal(inbox.statusCode, 200, inbox.body);
      const items = (inbox.json() as { items: { kind: string; photoId?: string }[] }).items;
      assert.equal(items.filter((item) => item.kind === "photo" && item.photoId === photo.photoId).length, 1);
    });

    describe("refuses a bad run and stores nothing of it", () => {
      let photo: { photoId: string; chunks: Uint8Array[] };
      before(async () => {
        photo = await declare(6);
        // Chunk 0 is stored: a run over it with other bytes is a conflict.
        assert.equal((await putOne(photo.photoId, 0, photo.chunks[0] as Uint8Array)).statusCode, 200);
      });

      const cases: {
        name: string;
        status: number;
        code: string;
        send: () => ReturnType<typeof putRun>;
      }[] = [
        {
          name: "an empty body",
          status: 400,
          code: "MALFORMED_REQUEST",
          send: () => putRun(photo.photoId, 1, new Uint8Array(0)),
        },
        {
          name: "a body one byte short of a chunk",
          status: 400,
          code: "MALFORMED_REQUEST",
          send: () => putRun(photo.photoId, 1, randomBytes(PHOTO_CHUNK_CIPHERTEXT_BYTES - 1)),
        },
        {
          name: "two chunks and one byte",
          status: 400,
          code: "MALFORMED_REQUEST",
          send: () => putRun(photo.photoId, 1, randomBytes(2 * PHOTO_CHUNK_CIPHERTEXT_BYTES + 1)),
        },
        {
          name: `${MAX_CHUNK_RUN + 1} chunks`,
          status: 413,
          code: "PAYLOAD_TOO_LARGE",
          send: () => putRun(photo.photoId, 0, randomBytes((MAX_CHUNK_RUN + 1) * PHOTO_CHUNK_CIPHERTEXT_BYTES)),
        },
        {
          name: "a run reaching past the photo's chunk count",
          status: 409,
          code: "CONFLICT",
          send: () => putRun(photo.photoId, 4, concat(photo.chunks.slice(3, 6))),
        },
        {
          name: "a run starting past the photo's chunk count",
          status: 409,
          code: "CONFLICT",
          send: () => putRun(photo.photoId, 6, randomBytes(PHOTO_CHUNK_CIPHERTEXT_BYTES)),
        },
        {
          name: "a run reaching past the protocol's last chunk index",
          status: 400,
          code: "MALFORMED_REQUEST",
          send: () => putRun(photo.photoId, MAX_PHOTO_CHUNKS - 1, randomBytes(2 * PHOTO_CHUNK_CIPHERTEXT_BYTES)),
        },
        {
          name: "a first index that is not canonical decimal",
          status: 400,
          code: "MALFORMED_REQUEST",
          send: () => putRun(photo.photoId, "01", randomBytes(PHOTO_CHUNK_CIPHERTEXT_BYTES)),
        },
        {
          name: "other bytes for a stored chunk, with new chunks after it",
          status: 409,
          code: "CONFLICT",
          send: () =>
            putRun(photo.photoId, 0, concat([randomBytes(PHOTO_CHUNK_CIPHERTEXT_BYTES), ...photo.chunks.slice(1, 4)])),
        },
        {
          name: "an undeclared photo",
          status: 404,
          code: "NOT_FOUND",
          send: () => putRun(toBase64url(randomBytes(16)), 0, concat(photo.chunks.slice(0, 2))),
        },
        {
          name: "a coordinator's session",
          status: 403,
          code: "FORBIDDEN",
          send: () => putRun(photo.photoId, 1, concat(photo.chunks.slice(1, 3)), coordinator),
        },
        {
          name: "another content type",
          status: 415,
          code: "UNSUPPORTED_MEDIA_TYPE",
          send: () =>
            relay.app.inject({
              method: API.putChunkRun.method,
              url: apiPath(API.putChunkRun, { campaignId: campaignId(), photoId: photo.photoId, first: 1 }),
              headers: { ...bearer(volunteer.token), "content-type": "application/json" },
              payload: JSON.stringify({ chunk: "x" }),
            }),
        },
      ];
      for (const c of cases) {
        it(c.name, async () => {
          const before = await digest();
          const res = await c.send();
          assert.equal(res.statusCode, c.status, res.body);
          assert.equal(res.json().error.code, c.code);
          assert.deepEqual(digestChanges(before, await digest()), []);
          assert.deepEqual(await have(photo.photoId), [0]);
        });
      }
    });
  });
}

storeSuite("SQLite");
storeSuite("Redis");
