// Volunteer mailboxes: coordinators post fixed-size control messages (sealed to the volunteer and
// signed by the coordinator: the relay cannot read them); the volunteer reads a response padded
// to MAILBOX_SLOTS slots, so an empty mailbox, a notice and a wipe all have the same length.
import {
  type AckResponse,
  API,
  CONTROL_MESSAGE_BYTES,
  campaignParams,
  DOMAIN,
  hashWithDomain,
  MAILBOX_SLOTS,
  MAILBOX_TTL_MS,
  type MailboxResponse,
  type MailboxSlot,
  mailboxAckRequest,
  mailboxParams,
  OCTET_STREAM,
  type PutMailboxResponse,
  randomBytes,
  toBase64url,
} from "@testigo/protocol";
import type { FastifyInstance } from "fastify";
import { requireSession, sessionOf } from "../auth.js";
import type { RelayContext } from "../context.js";
import { errors, RelayError } from "../errors.js";
import { coarsenUp, MINUTE_MS } from "../time.js";
import { bodyBytes, parseOr400 } from "../validate.js";

/** Random bytes of a real slot's shape: they fail to open, so clients skip them. */
function fillerSlot(): MailboxSlot {
  return { messageId: toBase64url(randomBytes(16)), message: toBase64url(randomBytes(CONTROL_MESSAGE_BYTES)) };
}

export function registerMailboxRoutes(app: FastifyInstance, ctx: RelayContext): void {
  app.route({
    method: API.putMailbox.method,
    url: API.putMailbox.path,
    bodyLimit: CONTROL_MESSAGE_BYTES,
    onRequest: requireSession(ctx, "coordinator"),
    handler: async (request, reply): Promise<PutMailboxResponse> => {
      const { campaignId, pseudonym } = parseOr400(mailboxParams, request.params, "path");
      if (request.headers["content-type"] !== OCTET_STREAM) {
        throw new RelayError("UNSUPPORTED_MEDIA_TYPE", `send control messages as ${OCTET_STREAM}`);
      }
      const message = bodyBytes(request.body);
      if (message.length !== CONTROL_MESSAGE_BYTES) {
        throw errors.malformed(`a control message must be exactly ${CONTROL_MESSAGE_BYTES} bytes`);
      }
      // The id is a hash of the message, so a retried post is recognised as the same message.
      const messageId = toBase64url(hashWithDomain(DOMAIN.mailboxMessageId, 16, message));
      const now = ctx.clock();
      const result = await ctx.store.putMailbox(
        campaignId,
        pseudonym,
        { messageId, message: new Uint8Array(message) },
        coarsenUp(now + MAILBOX_TTL_MS, MINUTE_MS),
      );
      if (result === "unknown-volunteer") throw errors.notFound("volunteer (unknown or revoked)");
      ctx.metrics.count("mailbox_messages_stored");
      void reply.code(result === "stored" ? 201 : 200);
      return { status: "stored", messageId };
    },
  });

  app.route({
    method: API.readMailbox.method,
    url: API.readMailbox.path,
    onRequest: requireSession(ctx, "volunteer"),
    handler: async (request): Promise<MailboxResponse> => {
      const session = sessionOf(request);
      parseOr400(campaignParams, request.params, "path");
      const items = await ctx.store.readMailbox(session.campaignId, session.principal, MAILBOX_SLOTS, ctx.clock());
      const slots: MailboxSlot[] = items
        .slice(0, MAILBOX_SLOTS)
        .map((item) => ({ messageId: item.messageId, message: toBase64url(item.message) }));
      while (slots.length < MAILBOX_SLOTS) slots.push(fillerSlot());
      // Shuffle, so the position of real messages says nothing either.
      for (let i = slots.length - 1; i > 0; i--) {
        const j = (randomBytes(1)[0] as number) % (i + 1);
        [slots[i], slots[j]] = [slots[j] as MailboxSlot, slots[i] as MailboxSlot];
      }
      return { slots };
    },
  });

  app.route({
    method: API.ackMailbox.method,
    url: API.ackMailbox.path,
    onRequest: requireSession(ctx, "volunteer"),
    handler: async (request): Promise<AckResponse> => {
      const session = sessionOf(request);
      const body = parseOr400(mailboxAckRequest, request.body, "ack");
      const acked = await ctx.store.ackMailbox(session.campaignId, session.principal, body.messageIds);
      return { acked };
    },
  });
}
