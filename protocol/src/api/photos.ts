// Chunked photo upload: declare, upload chunks by index (idempotent), ask what is there, fetch.
import { z } from "zod";
import { MAX_PHOTO_CHUNKS, PHOTO_CHUNK_CIPHERTEXT_BYTES } from "../limits.js";
import { base64urlBytes, campaignId } from "../schemas/common.js";

export const photoId = base64urlBytes(16);

export const photoParams = z.object({ campaignId, photoId }).strict();
export type PhotoParams = z.infer<typeof photoParams>;

/** Path segments are text: the index must be a canonical decimal integer. */
export const chunkIndex = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,3})$/, "must be a decimal chunk index")
  .transform(Number)
  .pipe(
    z
      .number()
      .int()
      .max(MAX_PHOTO_CHUNKS - 1),
  );

export const chunkParams = z.object({ campaignId, photoId, index: chunkIndex }).strict();
export type ChunkParams = z.infer<typeof chunkParams>;

export const createPhotoRequest = z.object({ chunkCount: z.number().int().min(1).max(MAX_PHOTO_CHUNKS) }).strict();
export type CreatePhotoRequest = z.infer<typeof createPhotoRequest>;

export const createPhotoResponse = z.object({ status: z.enum(["created", "exists"]) });
export type CreatePhotoResponse = z.infer<typeof createPhotoResponse>;

export const chunkListResponse = z.object({ have: z.array(z.number().int().nonnegative()) });
export type ChunkListResponse = z.infer<typeof chunkListResponse>;

/** Same answer for a new chunk and a retried one; `complete` once every chunk is there. */
export const putChunkResponse = z.object({ status: z.literal("stored"), complete: z.boolean() });
export type PutChunkResponse = z.infer<typeof putChunkResponse>;

/**
 * Most chunks in one run upload (PUT .../chunk-runs/:first): 16 × 65553 bytes, about 1 MiB per
 * request, so a photo needs one request and one durable write per MiB instead of per 64 KiB.
 */
export const MAX_CHUNK_RUN = 16;
/** Body limit of a run upload: every chunk of a run is exactly PHOTO_CHUNK_CIPHERTEXT_BYTES. */
export const MAX_CHUNK_RUN_BYTES = MAX_CHUNK_RUN * PHOTO_CHUNK_CIPHERTEXT_BYTES;

/** `first`: the index of the run's first chunk; the body holds chunks first, first + 1, … */
export const chunkRunParams = z.object({ campaignId, photoId, first: chunkIndex }).strict();
export type ChunkRunParams = z.infer<typeof chunkRunParams>;

/** Same answer for a new run and a retried one; `complete` once every chunk of the photo is there. */
export const putChunkRunResponse = z.object({
  status: z.literal("stored"),
  first: z.number().int().nonnegative(),
  count: z.number().int().min(1).max(MAX_CHUNK_RUN),
  complete: z.boolean(),
});
export type PutChunkRunResponse = z.infer<typeof putChunkRunResponse>;
