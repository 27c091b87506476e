// Coordinator inboxes: fetch a batch, then ack it. Every coordinator device has its own inbox.
import { z } from "zod";
import { messageId, timestamp } from "../schemas/common.js";
import { photoId } from "./photos.js";

export const MAX_INBOX_BATCH = 500;
export const DEFAULT_INBOX_BATCH = 100;
const cursor = z.string().regex(/^[A-Za-z0-9_:.-]{1,128}$/, "must be a cursor the relay returned");

export const inboxQuery = z
  .object({
    limit: z
      .string()
      .regex(/^[1-9][0-9]{0,3}$/, "must be a positive integer")
      .transform(Number)
      .pipe(z.number().max(MAX_INBOX_BATCH))
      .optional(),
    after: cursor.optional(),
  })
  .strict();
export type InboxQuery = z.infer<typeof inboxQuery>;

export const inboxItem = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("envelope"),
    cursor,
    messageId,
    envelope: z.string(), // base64url of the envelope bytes
    receivedAt: timestamp,
  }),
  z.object({
    kind: z.literal("photo"),
    cursor,
    photoId,
    chunkCount: z.number().int().positive(),
    receivedAt: timestamp,
  }),
]);
export type InboxItem = z.infer<typeof inboxItem>;

export const inboxResponse = z.object({ items: z.array(inboxItem) });
export type InboxResponse = z.infer<typeof inboxResponse>;

export const inboxAckRequest = z.object({ cursors: z.array(cursor).min(1).max(MAX_INBOX_BATCH) }).strict();
export type InboxAckRequest = z.infer<typeof inboxAckRequest>;

export const ackResponse = z.object({ acked: z.number().int().nonnegative() });
export type AckResponse = z.infer<typeof ackResponse>;
