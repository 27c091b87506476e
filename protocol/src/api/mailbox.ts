// Volunteer mailboxes: coordinators post fixed-size control messages; the volunteer fetches a
// response padded to MAILBOX_SLOTS slots of the same size, so an empty mailbox, a notice and a
// wipe are indistinguishable by length. Unused slots carry random bytes that fail to open.
import { z } from "zod";
import { CONTROL_MESSAGE_BYTES } from "../limits.js";
import { base64urlBytes, campaignId, messageId, pseudonym } from "../schemas/common.js";

export const MAILBOX_SLOTS = 4;
/** How long an undelivered control message waits in a mailbox. */
export const MAILBOX_TTL_MS = 30 * 24 * 60 * 60 * 1000;

export const mailboxParams = z.object({ campaignId, pseudonym }).strict();
export type MailboxParams = z.infer<typeof mailboxParams>;

export const mailboxSlot = z.object({ messageId, message: base64urlBytes(CONTROL_MESSAGE_BYTES) });
export type MailboxSlot = z.infer<typeof mailboxSlot>;

export const mailboxResponse = z.object({ slots: z.array(mailboxSlot).length(MAILBOX_SLOTS) });
export type MailboxResponse = z.infer<typeof mailboxResponse>;

/** POST /v1/campaigns/:campaignId/mailboxes/:pseudonym: the id is a hash of the message (retries are duplicates). */
export const putMailboxResponse = z.object({ status: z.literal("stored"), messageId });
export type PutMailboxResponse = z.infer<typeof putMailboxResponse>;

export const mailboxAckRequest = z.object({ messageIds: z.array(messageId).min(1).max(MAILBOX_SLOTS) }).strict();
export type MailboxAckRequest = z.infer<typeof mailboxAckRequest>;
