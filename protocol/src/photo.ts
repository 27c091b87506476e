// Photos: chunked encryption with crypto_secretstream_xchacha20poly1305 under a fresh key.
//
// A photo of `size` bytes is zero-padded to `chunkCount` whole 64 KiB chunks, where chunkCount
// is the smallest entry of PHOTO_CHUNK_BUCKETS holding ceil(size / 64 KiB) (see photoChunkCount),
// so every chunk on the wire is exactly PHOTO_CHUNK_CIPHERTEXT_BYTES and the relay learns only a
// bucketed chunk count. Chunk i is pushed with
//
//   ad  = "testigo/v1/photo-chunk" || 0x00 || photoId(16) || u32be(i) || u32be(chunkCount)
//   tag = MESSAGE, or FINAL for i = chunkCount - 1
//
// secretstream itself rejects reordered, dropped or replayed chunks and a stream without FINAL;
// the AD makes a chunk from another photo, index or count fail too. The key, the 24-byte header,
// the true size and the SHA-256 of the photo as taken travel in the (encrypted, signed) report,
// never on the relay. Chunks are independent byte strings, so a device can encrypt a whole photo
// to local files first and upload them by index, resuming at any chunk boundary.
import type { StateAddress } from "libsodium-wrappers-sumo";
import { bytesEqual, randomBytes, wipe } from "./bytes.js";
import { DOMAIN, separated } from "./domain.js";
import { DecryptionFailed, Malformed, TooLarge } from "./errors.js";
import { MAX_PHOTO_CHUNKS, PHOTO_CHUNK_CIPHERTEXT_BYTES, PHOTO_CHUNK_PLAINTEXT_BYTES } from "./limits.js";
import { sha256 } from "./primitives.js";
import { sodium } from "./sodium.js";

export const PHOTO_ID_BYTES = 16;
export const PHOTO_KEY_BYTES = 32;
export const PHOTO_HEADER_BYTES = 24;
export const PHOTO_SHA256_BYTES = 32;
export const MAX_PHOTO_BYTES = MAX_PHOTO_CHUNKS * PHOTO_CHUNK_PLAINTEXT_BYTES;

/** Everything needed to open a photo; it goes inside the report, never to the relay alone. */
export interface SealedPhotoRef {
  readonly photoId: Uint8Array; // 16 random bytes, also the relay's upload id
  readonly key: Uint8Array; // 32-byte secretstream key, fresh per photo
  readonly header: Uint8Array; // 24-byte secretstream header
  readonly sha256: Uint8Array; // of the photo as taken (unpadded)
  readonly size: number; // true length in bytes
  readonly chunkCount: number; // padded chunk count (a PHOTO_CHUNK_BUCKETS entry)
}

export interface SealedPhoto {
  readonly ref: SealedPhotoRef;
  readonly chunks: Uint8Array[];
}

/** Test vectors only: fixed key and photo id. `sha256` lets a caller that already hashed the photo skip a pass. */
export interface PhotoSealOptions {
  readonly key?: Uint8Array;
  readonly photoId?: Uint8Array;
  readonly sha256?: Uint8Array;
}

// Chunk-count buckets: every count up to 9, then each bucket is floor(previous * 1.12) until
// MAX_PHOTO_CHUNKS. A photo of more than 9 chunks (576 KiB) is padded by less than 12% of its
// size; smaller ones by less than one chunk. 49 buckets in all.
function buildChunkBuckets(): readonly number[] {
  const buckets: number[] = [];
  let count = 1;
  while (count < MAX_PHOTO_CHUNKS) {
    buckets.push(count);
    count = Math.max(count + 1, Math.floor((count * 112) / 100));
  }
  buckets.push(MAX_PHOTO_CHUNKS);
  return Object.freeze(buckets);
}

/** The chunk counts a photo can have on the wire. */
export const PHOTO_CHUNK_BUCKETS: readonly number[] = buildChunkBuckets();

/** Padded chunk count for a photo of `size` bytes (1..MAX_PHOTO_BYTES); throws TooLarge / Malformed. */
export function photoChunkCount(size: number): number {
  if (!Number.isSafeInteger(size) || size < 1) throw new Malformed("a photo must have at least one byte");
  if (size > MAX_PHOTO_BYTES) throw new TooLarge(`photo of ${size} bytes exceeds ${MAX_PHOTO_BYTES} bytes`);
  const needed = Math.ceil(size / PHOTO_CHUNK_PLAINTEXT_BYTES);
  const bucket = PHOTO_CHUNK_BUCKETS.find((count) => count >= needed);
  // Unreachable: the last bucket is MAX_PHOTO_CHUNKS and size was checked against it.
  if (bucket === undefined) throw new TooLarge(`photo of ${size} bytes exceeds ${MAX_PHOTO_BYTES} bytes`);
  return bucket;
}

const AD_PREFIX_BYTES = DOMAIN.photoChunk.length + 1;

/** The associated data of every chunk of one photo, with the index rewritten in place per chunk. */
class ChunkAd {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  constructor(photoId: Uint8Array, chunkCount: number) {
    this.bytes = separated(DOMAIN.photoChunk, photoId, new Uint8Array(8));
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    this.view.setUint32(AD_PREFIX_BYTES + PHOTO_ID_BYTES + 4, chunkCount, false);
  }
  at(index: number): Uint8Array {
    this.view.setUint32(AD_PREFIX_BYTES + PHOTO_ID_BYTES, index, false);
    return this.bytes;
  }
}

/** The AD of chunk `index` (exported for the spec's examples and the tests). */
export function photoChunkAd(photoId: Uint8Array, index: number, chunkCount: number): Uint8Array {
  if (!hasLength(photoId, PHOTO_ID_BYTES)) throw new Malformed(`photo id must be ${PHOTO_ID_BYTES} bytes`);
  for (const value of [index, chunkCount]) {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new Malformed(`photoChunkAd: ${value} is not an unsigned 32-bit integer`);
    }
  }
  return new ChunkAd(photoId, chunkCount).at(index).slice();
}

const SECRETSTREAM_STATE_BYTES = 52;

interface RawLibsodium {
  readonly HEAPU8: Uint8Array;
  _free(address: number): void;
}

/**
 * libsodium.js allocates secretstream state in the WebAssembly heap and never frees it. We zero
 * the 52 bytes (they hold the stream key) and free them once a stream is done.
 */
function releaseState(state: StateAddress): void {
  const raw = (sodium() as unknown as { libsodium?: RawLibsodium }).libsodium;
  const address = typeof state === "number" ? state : (state as { address?: unknown }).address;
  if (raw === undefined || typeof address !== "number") return;
  raw.HEAPU8.fill(0, address, address + SECRETSTREAM_STATE_BYTES);
  raw._free(address);
}

function checkLength(bytes: Uint8Array | undefined, length: number, what: string): void {
  if (bytes !== undefined && bytes.length !== length) throw new Malformed(`${what} must be ${length} bytes`);
}

/**
 * Incremental sealer: declare the size, push the photo in pieces of any length, get ciphertext
 * chunks as soon as each is complete (index order), then finish() for the remaining chunks and
 * the reference. Full chunks are encrypted straight from the caller's bytes, without a copy.
 */
export class PhotoSealer {
  readonly photoId: Uint8Array;
  readonly chunkCount: number;
  private readonly key: Uint8Array;
  private readonly header: Uint8Array;
  private state: StateAddress | undefined;
  private readonly ad: ChunkAd;
  private readonly digest: Uint8Array | undefined;
  private hashState: StateAddress | undefined;
  private readonly pending = new Uint8Array(PHOTO_CHUNK_PLAINTEXT_BYTES);
  private pendingBytes = 0;
  private received = 0;
  private nextIndex = 0;

  constructor(
    readonly size: number,
    options: PhotoSealOptions = {},
  ) {
    this.chunkCount = photoChunkCount(size);
    checkLength(options.key, PHOTO_KEY_BYTES, "photo key");
    checkLength(options.photoId, PHOTO_ID_BYTES, "photo id");
    checkLength(options.sha256, PHOTO_SHA256_BYTES, "photo sha256");
    const s = sodium();
    this.key = options.key ?? randomBytes(s.crypto_secretstream_xchacha20poly1305_KEYBYTES);
    this.photoId = options.photoId ?? randomBytes(PHOTO_ID_BYTES);
    const { state, header } = s.crypto_secretstream_xchacha20poly1305_init_push(this.key);
    this.state = state;
    this.header = header;
    this.ad = new ChunkAd(this.photoId, this.chunkCount);
    this.digest = options.sha256;
    if (this.digest === undefined) this.hashState = s.crypto_hash_sha256_init();
  }

  /** Feeds the next bytes of the photo; returns the chunks completed by them (possibly none). */
  push(piece: Uint8Array): Uint8Array[] {
    if (this.state === undefined) throw new Malformed("photo sealer already finished");
    if (this.received + piece.length > this.size) throw new Malformed("more photo bytes than the declared size");
    this.received += piece.length;
    if (this.hashState !== undefined) sodium().crypto_hash_sha256_update(this.hashState, piece);
    const out: Uint8Array[] = [];
    let offset = 0;
    if (this.pendingBytes > 0) {
      const take = Math.min(piece.length, PHOTO_CHUNK_PLAINTEXT_BYTES - this.pendingBytes);
      this.pending.set(piece.subarray(0, take), this.pendingBytes);
      this.pendingBytes += take;
      offset = take;
      if (this.pendingBytes === PHOTO_CHUNK_PLAINTEXT_BYTES) {
        out.push(this.encrypt(this.pending));
        this.pendingBytes = 0;
      }
    }
    while (piece.length - offset >= PHOTO_CHUNK_PLAINTEXT_BYTES) {
      out.push(this.encrypt(piece.subarray(offset, offset + PHOTO_CHUNK_PLAINTEXT_BYTES)));
      offset += PHOTO_CHUNK_PLAINTEXT_BYTES;
    }
    if (offset < piece.length) {
      this.pending.set(piece.subarray(offset), 0);
      this.pendingBytes = piece.length - offset;
    }
    return out;
  }

  /** Pads, emits the last chunks (the final one tagged FINAL) and returns the reference. */
  finish(): SealedPhoto {
    if (this.state === undefined) throw new Malformed("photo sealer already finished");
    if (this.received !== this.size) throw new Malformed("fewer photo bytes than the declared size");
    const chunks: Uint8Array[] = [];
    if (this.pendingBytes > 0) {
      this.pending.fill(0, this.pendingBytes);
      chunks.push(this.encrypt(this.pending));
      this.pendingBytes = 0;
    }
    wipe(this.pending);
    // After the data, whole chunks of zeros up to the bucket: `pending` is now all zeros.
    while (this.nextIndex < this.chunkCount) chunks.push(this.encrypt(this.pending));
    releaseState(this.state);
    this.state = undefined;
    let digest = this.digest;
    if (digest === undefined && this.hashState !== undefined) {
      digest = sodium().crypto_hash_sha256_final(this.hashState);
      this.hashState = undefined;
    }
    if (digest === undefined)
      throw new Malformed("the photo's SHA-256 was not computed: a bug in @testigo/protocol, report it");
    const ref: SealedPhotoRef = {
      photoId: this.photoId,
      key: this.key,
      header: this.header,
      sha256: digest,
      size: this.size,
      chunkCount: this.chunkCount,
    };
    return { ref, chunks };
  }

  private encrypt(plaintext: Uint8Array): Uint8Array {
    const s = sodium();
    const index = this.nextIndex++;
    const tag =
      index === this.chunkCount - 1
        ? s.crypto_secretstream_xchacha20poly1305_TAG_FINAL
        : s.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
    return s.crypto_secretstream_xchacha20poly1305_push(this.state as StateAddress, plaintext, this.ad.at(index), tag);
  }
}

/**
 * Seals a whole photo: a fresh key and photo id (unless fixed for test vectors), padded to its
 * chunk bucket. Returns the reference for the report and the chunks in index order.
 */
export function sealPhoto(photo: Uint8Array, options: PhotoSealOptions = {}): SealedPhoto {
  const sealer = new PhotoSealer(photo.length, { ...options, sha256: options.sha256 ?? sha256(photo) });
  const first = sealer.push(photo);
  const { ref, chunks } = sealer.finish();
  return { ref, chunks: first.length === 0 ? chunks : first.concat(chunks) };
}

/**
 * SHA-256 of a photo with WebCrypto (`crypto.subtle.digest`: native code, off the main thread in
 * Node and in browsers), falling back to libsodium's WebAssembly where WebCrypto is absent (a
 * browser page that is not a secure context). Same digest either way; several times faster on
 * large photos, which is where sealPhoto spent most of its time.
 */
export async function photoSha256(photo: Uint8Array): Promise<Uint8Array> {
  const subtle = (globalThis as { crypto?: { subtle?: SubtleLike } }).crypto?.subtle;
  if (subtle === undefined) return sha256(photo);
  let digest: ArrayBuffer;
  try {
    digest = await subtle.digest("SHA-256", photo);
  } catch {
    return sha256(photo);
  }
  const out = new Uint8Array(digest);
  if (out.length !== PHOTO_SHA256_BYTES) return sha256(photo);
  return out;
}

interface SubtleLike {
  digest(algorithm: "SHA-256", data: Uint8Array): Promise<ArrayBuffer>;
}

/**
 * sealPhoto with the SHA-256 computed by photoSha256 (WebCrypto) while the chunks are encrypted:
 * the same result as sealPhoto, faster. `options.sha256`, when given, is used as is. Prefer this
 * (or `new PhotoSealer(size, { sha256: await photoSha256(photo) })` for chunk-by-chunk output)
 * wherever the caller can await.
 */
export async function sealPhotoAsync(photo: Uint8Array, options: PhotoSealOptions = {}): Promise<SealedPhoto> {
  if (options.sha256 !== undefined) return sealPhoto(photo, options);
  photoChunkCount(photo.length); // refuse a bad size before hashing anything
  // WebCrypto copies the input when the call is made, then hashes on another thread in Node
  // (a worker in some browsers) while secretstream runs here. The digest enters only the
  // reference, never a chunk, so the chunks can be made before it is known.
  const digest = photoSha256(photo);
  let sealed: SealedPhoto;
  try {
    sealed = sealPhoto(photo, { ...options, sha256: PENDING_DIGEST });
  } catch (error) {
    await digest.catch(() => undefined);
    throw error;
  }
  return { ref: { ...sealed.ref, sha256: await digest }, chunks: sealed.chunks };
}

/** Stands in for the digest while it is being computed; never leaves sealPhotoAsync. */
const PENDING_DIGEST = new Uint8Array(PHOTO_SHA256_BYTES);

function hasLength(bytes: unknown, length: number): boolean {
  return bytes instanceof Uint8Array && bytes.length === length;
}

/**
 * True if a reference can describe a sealed photo: field lengths, and a chunk count equal to
 * photoChunkCount(size). Opening refuses anything else with DecryptionFailed, like any other
 * failure: a reference comes from a (signed) report, and a coordinator must be able to treat
 * every bad one the same way.
 */
export function isValidPhotoRef(ref: SealedPhotoRef): boolean {
  if (typeof ref !== "object" || ref === null) return false;
  if (!hasLength(ref.photoId, PHOTO_ID_BYTES) || !hasLength(ref.key, PHOTO_KEY_BYTES)) return false;
  if (!hasLength(ref.header, PHOTO_HEADER_BYTES) || !hasLength(ref.sha256, PHOTO_SHA256_BYTES)) return false;
  if (!Number.isSafeInteger(ref.size) || ref.size < 1 || ref.size > MAX_PHOTO_BYTES) return false;
  return photoChunkCount(ref.size) === ref.chunkCount;
}

/**
 * Incremental opener: push the chunks in index order, get each one's photo bytes (padding cut
 * off), then finish(), which checks that the stream ended with FINAL, that the padding was zeros
 * and that the SHA-256 matches. Pieces are authentic (secretstream) but the photo is complete and
 * verified only once finish() returns. Every failure is DecryptionFailed.
 */
export class PhotoOpener {
  private state: StateAddress | undefined;
  private hashState: StateAddress | undefined;
  private readonly ad: ChunkAd;
  private nextIndex = 0;
  private failed = false;

  constructor(private readonly ref: SealedPhotoRef) {
    if (!isValidPhotoRef(ref)) throw new DecryptionFailed();
    const s = sodium();
    try {
      this.state = s.crypto_secretstream_xchacha20poly1305_init_pull(ref.header, ref.key);
    } catch {
      throw new DecryptionFailed();
    }
    this.hashState = s.crypto_hash_sha256_init();
    this.ad = new ChunkAd(ref.photoId, ref.chunkCount);
  }

  /** Opens the next chunk; returns its share of the photo (empty for a chunk of pure padding). */
  push(chunk: Uint8Array): Uint8Array {
    const state = this.state;
    if (state === undefined || this.failed) throw new DecryptionFailed();
    const index = this.nextIndex;
    if (
      !(chunk instanceof Uint8Array) ||
      index >= this.ref.chunkCount ||
      chunk.length !== PHOTO_CHUNK_CIPHERTEXT_BYTES
    ) {
      return this.fail();
    }
    const s = sodium();
    let pulled: { message: Uint8Array; tag: number } | false;
    try {
      pulled = s.crypto_secretstream_xchacha20poly1305_pull(state, chunk, this.ad.at(index));
    } catch {
      return this.fail();
    }
    const isLast = index === this.ref.chunkCount - 1;
    const finalTag = s.crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    if (pulled === false || (pulled.tag === finalTag) !== isLast) return this.fail();
    if (pulled.tag !== finalTag && pulled.tag !== s.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
      return this.fail();
    }
    this.nextIndex++;
    const start = index * PHOTO_CHUNK_PLAINTEXT_BYTES;
    const keep = Math.max(0, Math.min(PHOTO_CHUNK_PLAINTEXT_BYTES, this.ref.size - start));
    if (!isZero(pulled.message, keep)) return this.fail();
    const piece = keep === PHOTO_CHUNK_PLAINTEXT_BYTES ? pulled.message : pulled.message.subarray(0, keep);
    if (this.hashState !== undefined && keep > 0) s.crypto_hash_sha256_update(this.hashState, piece);
    return piece;
  }

  /** Checks completeness and the digest; throws DecryptionFailed if anything is missing or wrong. */
  finish(): void {
    if (this.failed || this.state === undefined || this.hashState === undefined) throw new DecryptionFailed();
    const complete = this.nextIndex === this.ref.chunkCount;
    const digest = sodium().crypto_hash_sha256_final(this.hashState);
    this.hashState = undefined;
    this.release();
    if (!complete || !bytesEqual(digest, this.ref.sha256)) throw new DecryptionFailed();
  }

  /** Drops the stream state without finishing (e.g. an abandoned download). */
  abort(): void {
    this.failed = true;
    this.release();
  }

  private fail(): never {
    this.abort();
    throw new DecryptionFailed();
  }

  private release(): void {
    if (this.state !== undefined) releaseState(this.state);
    this.state = undefined;
  }
}

function isZero(bytes: Uint8Array, from: number): boolean {
  let acc = 0;
  for (let i = from; i < bytes.length; i++) acc |= bytes[i] as number;
  return acc === 0;
}

/**
 * Opens a whole photo from its chunks (an array, or a function returning chunk i, e.g. from
 * disk). Returns exactly the bytes that were sealed; DecryptionFailed for anything wrong.
 */
export function openPhoto(
  ref: SealedPhotoRef,
  chunks: readonly Uint8Array[] | ((index: number) => Uint8Array | undefined),
): Uint8Array {
  const opener = new PhotoOpener(ref);
  const count = typeof chunks === "function" ? ref.chunkCount : chunks.length;
  if (count !== ref.chunkCount) {
    opener.abort();
    throw new DecryptionFailed();
  }
  const out = new Uint8Array(ref.size);
  let offset = 0;
  for (let index = 0; index < count; index++) {
    try {
      // A chunk source that throws (storage offline) propagates its own error, after cleanup.
      const chunk = typeof chunks === "function" ? chunks(index) : chunks[index];
      if (chunk === undefined) throw new DecryptionFailed();
      const piece = opener.push(chunk);
      out.set(piece, offset);
      offset += piece.length;
    } catch (error) {
      opener.abort();
      wipe(out);
      throw error;
    }
  }
  try {
    opener.finish();
  } catch (error) {
    wipe(out);
    throw error;
  }
  return out;
}
