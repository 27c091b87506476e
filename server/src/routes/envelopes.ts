// Submissions: a volunteer posts a sealed envelope; the relay reads only its header, stores it
// idempotently by message id and fans it out to every coordinator device's inbox.
import {
  API,
  BUCKET_SIZES,
  envelopeLength,
  MAX_RECIPIENTS,
  OCTET_STREAM,
  readEnvelopeHeader,
  type SubmitResponse,
} from "@testigo/protocol";
import type { FastifyInstance } from "fastify";
import { requireSession, sessionOf } from "../auth.js";
import type { RelayContext } from "../context.js";
import { RelayError } from "../errors.js";
import { coarsen, MINUTE_MS } from "../time.js";
import { bodyBytes } from "../validate.js";

/** The largest valid envelope: the last bucket sealed to the most recipients. */
export const MAX_ENVELOPE_BYTES = envelopeLength(BUCKET_SIZES.length - 1, MAX_RECIPIENTS) ?? 0;

function envelopeInvalid(reason: string): RelayError {
  return new RelayError("ENVELOPE_INVALID", `${reason}; seal envelopes with the Testigo SDK`);
}

export function registerEnvelopeRoutes(app: FastifyInstance, ctx: RelayContext): void {
  app.route({
    method: API.submitEnvelope.method,
    url: API.submitEnvelope.path,
    bodyLimit: MAX_ENVELOPE_BYTES,
    onRequest: requireSession(ctx, "volunteer"),
    handler: async (request, reply): Promise<SubmitResponse> => {
      // The session hook has validated the path's campaign id and matched it with the session's.
      const { campaignId } = sessionOf(request);
      if (request.headers["content-type"] !== OCTET_STREAM) {
        throw new RelayError("UNSUPPORTED_MEDIA_TYPE", `send the envelope as ${OCTET_STREAM}`);
      }
      const envelope = bodyBytes(request.body);
      let header: ReturnType<typeof readEnvelopeHeader>;
      try {
        header = readEnvelopeHeader(envelope);
      } catch {
        throw envelopeInvalid("the envelope's header or length is invalid");
      }
      if (header.campaignId !== campaignId) throw envelopeInvalid("the envelope belongs to another campaign");
      // Copy out of fastify's pooled buffer before it is kept.
      const bytes = new Uint8Array(envelope);
      const result = await ctx.store.submitEnvelope(
        campaignId,
        header.messageId,
        bytes,
        coarsen(ctx.clock(), MINUTE_MS),
      );
      switch (result.status) {
        case "accepted":
          ctx.metrics.count("submissions_accepted");
          break;
        case "duplicate":
          ctx.metrics.count("submissions_duplicate");
          break;
        case "conflict":
          ctx.metrics.count("submissions_conflict");
          throw new RelayError(
            "CONFLICT",
            "another envelope with this message id was already accepted; seal again with a new id",
          );
        default: {
          const never: never = result;
          throw new Error(`unexpected submit result ${JSON.stringify(never)}`);
        }
      }
      // A retry gets the very same answer as the first attempt.
      void reply.code(202);
      return { status: "accepted", messageId: header.messageId };
    },
  });
}
