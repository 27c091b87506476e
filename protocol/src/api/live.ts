// Live push of a coordinator device's inbox over WebSocket: the frames both sides send, the close
// codes the relay uses, and how the session token travels. protocol/spec/relay-api.md
// ("Live inbox") is the prose; these schemas are normative.
import { z } from "zod";
import { RELAY_ERROR_CODES } from "./errors.js";
import { inboxAckRequest, inboxItem, MAX_INBOX_BATCH } from "./inbox.js";

/** GET (WebSocket upgrade): the same path family as the HTTP inbox, so the same session rules apply. */
export const LIVE_INBOX_ROUTE = { method: "GET", path: "/v1/campaigns/:campaignId/inbox/live" } as const;

/**
 * Browsers cannot set headers on a WebSocket, and a token in the URL ends up in access logs, so a
 * client that cannot send `Authorization: Bearer <token>` offers two subprotocols instead:
 * `LIVE_SUBPROTOCOL` and `LIVE_TOKEN_PROTOCOL_PREFIX + token`. The relay authenticates during the
 * upgrade (before a socket exists) and answers with `LIVE_SUBPROTOCOL` only, never echoing the token.
 */
export const LIVE_SUBPROTOCOL = "testigo.live.v1";
export const LIVE_TOKEN_PROTOCOL_PREFIX = "testigo.bearer.";

/** Largest frame a client may send (an ack of MAX_INBOX_BATCH cursors fits with room); larger → 1009. */
export const MAX_LIVE_CLIENT_FRAME_BYTES = 128 * 1024;
/** Most items pushed and not yet acked on one socket; the relay waits for acks before pushing more. */
export const LIVE_WINDOW_ITEMS = 1000;
/** Items per `items` frame. */
export const LIVE_PAGE_ITEMS = 100;

/**
 * Close codes. 1000–1015 are RFC 6455's; 4000–4999 are ours. `retry` says whether a client should
 * reconnect (with backoff): everything unacked is sent again on the next connection.
 */
export const LIVE_CLOSE = {
  /** The client closed, or the relay ended the stream normally. */
  normal: { code: 1000, reason: "normal", retry: false },
  /** The relay is shutting down (graceful shutdown); reconnect, perhaps to another node. */
  goingAway: { code: 1001, reason: "going-away", retry: true },
  /** A binary frame: the protocol is JSON text frames only. */
  unsupportedData: { code: 1003, reason: "text-frames-only", retry: false },
  /** A text frame that is not valid UTF-8 (closed by the WebSocket library itself, RFC 6455 §8.1). */
  invalidUtf8: { code: 1007, reason: "invalid-utf8", retry: false },
  /** A frame that is not valid JSON or does not match `liveClientFrame`. */
  malformedFrame: { code: 1008, reason: "malformed-frame", retry: false },
  /** A frame larger than MAX_LIVE_CLIENT_FRAME_BYTES. */
  frameTooLarge: { code: 1009, reason: "frame-too-large", retry: false },
  /** The relay failed on its side; reconnect later. */
  internal: { code: 1011, reason: "internal-error", retry: true },
  /** The session expired or was closed: open a new session, then reconnect. */
  sessionEnded: { code: 4401, reason: "session-ended", retry: true },
  /** The device is no longer in the campaign's roster: do not reconnect. */
  forbidden: { code: 4403, reason: "forbidden", retry: false },
  /** The client did not read its socket fast enough (the relay's send buffer hit its bound). */
  slowConsumer: { code: 4008, reason: "slow-consumer", retry: true },
  /** Acks came faster than the session's rate limit allows. */
  rateLimited: { code: 4429, reason: "rate-limited", retry: true },
  /** The relay's store failed (it fails closed); reconnect later. */
  storeUnavailable: { code: 4503, reason: "store-unavailable", retry: true },
} as const;

export type LiveCloseName = keyof typeof LIVE_CLOSE;
export type LiveCloseCode = (typeof LIVE_CLOSE)[LiveCloseName]["code"];

/** The named close of a code, or undefined for a code the relay never sends (e.g. 1006: network). */
export function liveCloseByCode(code: number): (typeof LIVE_CLOSE)[LiveCloseName] | undefined {
  return Object.values(LIVE_CLOSE).find((entry) => entry.code === code);
}

// --- server → client

/** Inbox items, oldest first, in the same schema as GET .../inbox. */
export const liveItemsFrame = z.object({ type: z.literal("items"), items: z.array(inboxItem).min(1) }).strict();
/** Everything unacked at connection time has been sent (the backlog); later frames are new items. */
export const liveReadyFrame = z.object({ type: z.literal("ready") }).strict();
/** Answer to an ack frame: how many items the store acked (unknown cursors count 0). */
export const liveAckedFrame = z.object({ type: z.literal("acked"), count: z.number().int().nonnegative() }).strict();
/** Sent just before the relay closes the socket for a reason it can name. */
export const liveErrorFrame = z
  .object({ type: z.literal("error"), code: z.enum(RELAY_ERROR_CODES), message: z.string() })
  .strict();

export const liveServerFrame = z.discriminatedUnion("type", [
  liveItemsFrame,
  liveReadyFrame,
  liveAckedFrame,
  liveErrorFrame,
]);
export type LiveServerFrame = z.infer<typeof liveServerFrame>;

// --- client → server

/** Acks pushed items by cursor (1..MAX_INBOX_BATCH), exactly like POST .../inbox/ack. */
export const liveAckFrame = z
  .object({ type: z.literal("ack"), cursors: inboxAckRequest.shape.cursors.max(MAX_INBOX_BATCH) })
  .strict();

export const liveClientFrame = z.discriminatedUnion("type", [liveAckFrame]);
export type LiveClientFrame = z.infer<typeof liveClientFrame>;
