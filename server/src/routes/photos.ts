// Chunked photo upload by volunteers (declare, upload by index, list what is there) and chunk
// download by coordinators once the photo is complete.
import {
  API,
  type ChunkListResponse,
  type CreatePhotoResponse,
  chunkParams,
  createPhotoRequest,
  OCTET_STREAM,
  PHOTO_CHUNK_CIPHERTEXT_BYTES,
  type PutChunkResponse,
  photoParams,
} from "@testigo/protocol";
import type { FastifyInstance } from "fastify";
import { requireSession } from "../auth.js";
import type { RelayContext } from "../context.js";
import { errors, RelayError } from "../errors.js";
import { coarsen, MINUTE_MS } from "../time.js";
import { bodyBytes, parseOr400 } from "../validate.js";

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
      const result = await ctx.store.putPhotoChunk(
        campaignId,
        photoId,
        index,
        new Uint8Array(chunk),
        coarsen(ctx.clock(), MINUTE_MS),
      );
      switch (result.status) {
        case "stored":
          ctx.metrics.count("photo_chunks_stored");
          if (result.complete) ctx.metrics.count("photos_completed");
          return { status: "stored", complete: result.complete };
        case "duplicate":
          ctx.metrics.count("photo_chunks_duplicate");
          return { status: "stored", complete: result.complete };
        case "conflict":
          throw new RelayError(
            "CONFLICT",
            "this chunk index is out of range or holds different bytes; re-declare the photo under a new id",
          );
        case "unknown-photo":
          throw errors.notFound("photo (declare it first with PUT .../photos/:photoId)");
        default: {
          const never: never = result;
          throw new Error(`unexpected chunk result ${JSON.stringify(never)}`);
        }
      }
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
