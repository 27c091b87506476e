// Coordinator inboxes: every coordinator device reads its own copy of every item, then acks it.
import {
  type AckResponse,
  API,
  campaignParams,
  DEFAULT_INBOX_BATCH,
  type InboxResponse,
  inboxAckRequest,
  inboxQuery,
  toBase64url,
  type InboxItem as WireInboxItem,
} from "@testigo/protocol";
import type { FastifyInstance } from "fastify";
import { requireSession, sessionOf } from "../auth.js";
import type { RelayContext } from "../context.js";
import type { InboxItem } from "../store/store.js";
import { parseOr400 } from "../validate.js";

/** A stored inbox item as the wire carries it (HTTP inbox and live push alike). */
export function wireInboxItem(item: InboxItem): WireInboxItem {
  return item.kind === "envelope"
    ? {
        kind: "envelope",
        cursor: item.cursor,
        messageId: item.messageId,
        envelope: toBase64url(item.envelope),
        receivedAt: item.receivedAt,
      }
    : {
        kind: "photo",
        cursor: item.cursor,
        photoId: item.photoId,
        chunkCount: item.chunkCount,
        receivedAt: item.receivedAt,
      };
}

export function registerInboxRoutes(app: FastifyInstance, ctx: RelayContext): void {
  app.route({
    method: API.readInbox.method,
    url: API.readInbox.path,
    onRequest: requireSession(ctx, "coordinator"),
    handler: async (request): Promise<InboxResponse> => {
      const session = sessionOf(request);
      parseOr400(campaignParams, request.params, "path");
      const query = parseOr400(inboxQuery, request.query, "query");
      const items = await ctx.store.readInbox(
        session.campaignId,
        session.principal,
        query.limit ?? DEFAULT_INBOX_BATCH,
        query.after,
      );
      ctx.metrics.count("inbox_items_delivered", items.length);
      return { items: items.map(wireInboxItem) };
    },
  });

  app.route({
    method: API.ackInbox.method,
    url: API.ackInbox.path,
    onRequest: requireSession(ctx, "coordinator"),
    handler: async (request): Promise<AckResponse> => {
      const session = sessionOf(request);
      const body = parseOr400(inboxAckRequest, request.body, "ack");
      const acked = await ctx.store.ackInbox(session.campaignId, session.principal, body.cursors);
      ctx.metrics.count("inbox_items_acked", acked);
      return { acked };
    },
  });
}
