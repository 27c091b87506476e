// The asynchronous photo path: SHA-256 with WebCrypto (photoSha256) and sealPhotoAsync, which
// must give exactly what the synchronous, libsodium-only path gives.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import fc from "fast-check";
import { randomBytes } from "./bytes.js";
import { Malformed, TooLarge } from "./errors.js";
import { PHOTO_CHUNK_CIPHERTEXT_BYTES, PHOTO_CHUNK_PLAINTEXT_BYTES } from "./limits.js";
import {
  MAX_PHOTO_BYTES,
  openPhoto,
  PhotoSealer,
  photoChunkCount,
  photoSha256,
  sealPhoto,
  sealPhotoAsync,
} from "./photo.js";
import { sha256 } from "./primitives.js";
import { initSodium } from "./sodium.js";

before(async () => {
  await initSodium();
});

const SIZES = [1, 2, 55, 56, 63, 64, 65, 1000, PHOTO_CHUNK_PLAINTEXT_BYTES - 1, PHOTO_CHUNK_PLAINTEXT_BYTES, 200_001];

describe("photoSha256 (WebCrypto)", () => {
  it("equals libsodium's SHA-256 for the FIPS 180-2 example and for sizes around block edges", async () => {
    const abc = await photoSha256(new TextEncoder().encode("abc"));
    assert.equal(Buffer.from(abc).toString("hex"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert.deepEqual(await photoSha256(new Uint8Array(0)), sha256(new Uint8Array(0)));
    for (const size of SIZES) {
      const photo = randomBytes(size);
      assert.deepEqual(await photoSha256(photo), sha256(photo), `size ${size}`);
    }
  });

  it("hashes exactly the view it is given, not the whole underlying buffer", async () => {
    const buffer = randomBytes(5000);
    const view = buffer.subarray(100, 4100);
    assert.deepEqual(await photoSha256(view), sha256(view));
  });

  it("falls back to libsodium where WebCrypto is missing", async () => {
    const descriptor = Object.getOwnPropertyDescriptor(globalThis, "crypto");
    assert.ok(descriptor?.configurable, "globalThis.crypto can be replaced in this runtime");
    const photo = randomBytes(3000);
    Object.defineProperty(globalThis, "crypto", { value: undefined, configurable: true, writable: true });
    try {
      assert.deepEqual(await photoSha256(photo), sha256(photo));
    } finally {
      Object.defineProperty(globalThis, "crypto", descriptor);
    }
    assert.ok(globalThis.crypto?.subtle, "WebCrypto restored");
  });
});

describe("sealPhotoAsync", () => {
  it("gives a reference with the true SHA-256 and chunks that open to the photo", async () => {
    for (const size of [1, PHOTO_CHUNK_PLAINTEXT_BYTES, 3 * PHOTO_CHUNK_PLAINTEXT_BYTES + 7]) {
      const photo = randomBytes(size);
      const sealed = await sealPhotoAsync(photo);
      assert.deepEqual(sealed.ref.sha256, sha256(photo));
      assert.equal(sealed.ref.size, size);
      assert.equal(sealed.ref.chunkCount, photoChunkCount(size));
      assert.equal(sealed.chunks.length, sealed.ref.chunkCount);
      for (const chunk of sealed.chunks) assert.equal(chunk.length, PHOTO_CHUNK_CIPHERTEXT_BYTES);
      assert.deepEqual(openPhoto(sealed.ref, sealed.chunks), photo);
    }
  });

  it("is byte-for-byte sealPhoto with the same key and photo id, whatever the photo", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 3 * PHOTO_CHUNK_PLAINTEXT_BYTES }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        async (photo, key, photoId) => {
          const viaAsync = await sealPhotoAsync(photo, { key, photoId });
          const viaSync = sealPhoto(photo, { key, photoId });
          assert.deepEqual(viaAsync.ref.sha256, viaSync.ref.sha256);
          assert.deepEqual(viaAsync.ref.photoId, viaSync.ref.photoId);
          assert.deepEqual(viaAsync.ref.key, viaSync.ref.key);
          assert.equal(viaAsync.ref.chunkCount, viaSync.ref.chunkCount);
          // Same key, but secretstream's header is random: the chunks differ, both open.
          assert.deepEqual(openPhoto(viaAsync.ref, viaAsync.chunks), photo);
        },
      ),
      { numRuns: 25 },
    );
  });

  it("uses a digest passed in as is, and feeds a PhotoSealer for chunk-by-chunk output", async () => {
    const photo = randomBytes(2 * PHOTO_CHUNK_PLAINTEXT_BYTES + 1);
    const digest = await photoSha256(photo);
    const given = await sealPhotoAsync(photo, { sha256: digest });
    assert.deepEqual(given.ref.sha256, sha256(photo));
    const sealer = new PhotoSealer(photo.length, { sha256: digest });
    const chunks = [...sealer.push(photo)];
    const finished = sealer.finish();
    chunks.push(...finished.chunks);
    assert.deepEqual(openPhoto(finished.ref, chunks), photo);
  });

  it("refuses what sealPhoto refuses, with the same errors", async () => {
    await assert.rejects(sealPhotoAsync(new Uint8Array(0)), Malformed);
    await assert.rejects(sealPhotoAsync(randomBytes(10), { key: new Uint8Array(31) }), Malformed);
    await assert.rejects(sealPhotoAsync(randomBytes(10), { photoId: new Uint8Array(17) }), Malformed);
    await assert.rejects(sealPhotoAsync(randomBytes(10), { sha256: new Uint8Array(31) }), Malformed);
    await assert.rejects(sealPhotoAsync(new Uint8Array(MAX_PHOTO_BYTES + 1)), TooLarge);
  });
});
