// Chunked photo upload by volunteers (declare, upload by index, list what is there) and chunk
// download by coordinators once the photo is complete.
import {
  API,
  type ChunkListResponse,
  type ChunkRunParams,
  type CreatePhotoResponse,
  chunkParams,
  chunkRunParams,
  createPhotoRequest,
  MAX_CHUNK_RUN,
  MAX_CHUNK_RUN_BYTES,
  MAX_PHOTO_CHUNKS,
  OCTET_STREAM,
  PHOTO_CHUNK_CIPHERTEXT_BYTES,
  type PutChunkResponse,
  type PutChunkRunResponse,
  photoParams,
} from "@testigo/protocol";
import type { FastifyInstance } from "fastify";
import { requireSession } from "../auth.js";
import type { RelayContext } from "../context.js";
import { errors, RelayError } from "../errors.js";
import { coarsen, MINUTE_MS } from "../time.js";
import { bodyBytes, parseOr400 } from "../validate.js";

const CHUNK_CONFLICT = "this chunk index is out of range or holds different bytes; re-declare the photo under a new id";

/**
 * Stores a run of consecutive chunks with ONE store call: the store checks the run's range and
 * the chunks it already holds (a retry: same bytes; other bytes: conflict) before writing
 * anything, so a refused run stores nothing, and writes the rest in one durable write (one
 * SQLite transaction and WAL sync, one Redis script). Answers once the run is durable.
 */
async function putRun(
  ctx: RelayContext,
  { campaignId, photoId, first }: ChunkRunParams,
  chunks: readonly Uint8Array[],
): Promise<boolean> {
  const result = await ctx.store.putPhotoChunks(campaignId, photoId, first, chunks, coarsen(ctx.clock(), MINUTE_MS));
  switch (result.status) {
    case "stored":
      if (result.stored > 0) ctx.metrics.count("photo_chunks_stored", result.stored);
      if (result.duplicate > 0) ctx.metrics.count("photo_chunks_duplicate", result.duplicate);
      if (result.complete && result.stored > 0) ctx.metrics.count("photos_completed");
      return result.complete;
    case "conflict":
      throw new RelayError("CONFLICT", CHUNK_CONFLICT);
    case "unknown-photo":
      throw errors.notFound("photo (declare it first with PUT .../photos/:photoId)");
    default: {
      const never: never = result;
      throw new Error(`unexpected chunk run result ${JSON.stringify(never)}`);
    }
  }
}

export function registerPhotoRoutes(app: FastifyInstance, ctx: RelayContext): void {
  app.route({
    method: API.createPhoto.method,
    url: API.createPhoto.path,
    onRequest: requireSession(ctx, "volunteer"),
    handler: async (request, reply): Promise<CreatePhotoResponse> => {
      const { campaignId, photoId } = parseOr400(photoParams, request.params, "path");
      const { chunkCount } = parseOr400(createPhotoRequest, request.body, "photo");
      const result = await ctx.store.createPhoto(campaignId, photoId, chunkCount, coarsen(ctx.clock(), MINUTE_MS));
      if (result === "conflict") {
        throw new RelayError("CONFLICT", "this photo id was declared with another chunk count; use a new photo id");
      }
      void reply.code(result === "created" ? 201 : 200);
      return { status: result };
    },
  });

  app.route({
    method: API.listChunks.method,
    url: API.listChunks.path,
    onRequest: requireSession(ctx, "volunteer", "coordinator"),
    handler: async (request): Promise<ChunkListResponse> => {
      const { campaignId, photoId } = parseOr400(photoParams, request.params, "path");
      const have = await ctx.store.listPhotoChunks(campaignId, photoId);
      if (have === undefined) throw errors.notFound("photo");
      return { have: [...have] };
    },
  });

  app.route({
    method: API.putChunk.method,
    url: API.putChunk.path,
    bodyLimit: PHOTO_CHUNK_CIPHERTEXT_BYTES,
    onRequest: requireSession(ctx, "volunteer"),
    handler: async (request): Promise<PutChunkResponse> => {
      const { campaignId, photoId, index } = parseOr400(chunkParams, request.params, "path");
      if (request.headers["content-type"] !== OCTET_STREAM) {
        throw new RelayError("UNSUPPORTED_MEDIA_TYPE", `send chunks as ${OCTET_STREAM}`);
      }
      const chunk = bodyBytes(request.body);
      if (chunk.length !== PHOTO_CHUNK_CIPHERTEXT_BYTES) {
        throw errors.malformed(`a photo chunk must be exactly ${PHOTO_CHUNK_CIPHERTEXT_BYTES} bytes`);
      }
      // One chunk is a run of one: the same checks, the same single durable write.
      return {
        status: "stored",
        complete: await putRun(ctx, { campaignId, photoId, first: index }, [new Uint8Array(chunk)]),
      };
    },
  });

  app.route({
    method: API.putChunkRun.method,
    url: API.putChunkRun.path,
    bodyLimit: MAX_CHUNK_RUN_BYTES,
    onRequest: requireSession(ctx, "volunteer"),
    handler: async (request): Promise<PutChunkRunResponse> => {
      const params = parseOr400(chunkRunParams, request.params, "path");
      if (request.headers["content-type"] !== OCTET_STREAM) {
        throw new RelayError("UNSUPPORTED_MEDIA_TYPE", `send chunk runs as ${OCTET_STREAM}`);
      }
      const body = bodyBytes(request.body);
      const count = body.length / PHOTO_CHUNK_CIPHERTEXT_BYTES;
      if (!Number.isInteger(count) || count < 1 || count > MAX_CHUNK_RUN) {
        throw errors.malformed(
          `a chunk run must be 1 to ${MAX_CHUNK_RUN} chunks of exactly ${PHOTO_CHUNK_CIPHERTEXT_BYTES} bytes each`,
        );
      }
      if (params.first + count > MAX_PHOTO_CHUNKS) {
        throw errors.malformed(`a chunk run must end at chunk index ${MAX_PHOTO_CHUNKS - 1} at most`);
      }
      // Views into the body (fastify's own buffer for this request, never a pooled one at this
      // size); the store copies what it keeps.
      const chunks = Array.from({ length: count }, (_, i) =>
        body.subarray(i * PHOTO_CHUNK_CIPHERTEXT_BYTES, (i + 1) * PHOTO_CHUNK_CIPHERTEXT_BYTES),
      );
      const complete = await putRun(ctx, params, chunks);
      return { status: "stored", first: params.first, count, complete };
    },
  });

  app.route({
    method: API.getChunk.method,
    url: API.getChunk.path,
    onRequest: requireSession(ctx, "coordinator"),
    handler: async (request, reply) => {
      const { campaignId, photoId, index } = parseOr400(chunkParams, request.params, "path");
      const chunk = await ctx.store.getPhotoChunk(campaignId, photoId, index);
      if (chunk === undefined) throw errors.notFound("chunk (the photo is incomplete, unknown or already deleted)");
      return reply.type(OCTET_STREAM).send(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    },
  });
}
