// Session requests: POST /v1/auth/challenge, then POST /v1/auth/session (see ../auth.ts).
import { z } from "zod";
import { AUTH_ROLES, CHALLENGE_BYTES, SESSION_TOKEN_BYTES } from "../auth.js";
import { base64urlBytes, campaignId, pseudonym, shortId, signature, timestamp } from "../schemas/common.js";

export const challengeResponse = z.object({
  challenge: base64urlBytes(CHALLENGE_BYTES),
  expiresAt: timestamp,
});
export type ChallengeResponse = z.infer<typeof challengeResponse>;

export const sessionRequest = z
  .object({
    campaignId,
    role: z.enum(AUTH_ROLES),
    /** Device id (coordinator) or pseudonym (volunteer). */
    principal: z.union([shortId, pseudonym]),
    challenge: base64urlBytes(CHALLENGE_BYTES),
    signature,
  })
  .strict();
export type SessionRequest = z.infer<typeof sessionRequest>;

export const sessionResponse = z.object({
  /** Opaque to clients: sent back as `Authorization: Bearer <token>`, never parsed. */
  token: base64urlBytes(SESSION_TOKEN_BYTES),
  expiresAt: timestamp,
});
export type SessionResponse = z.infer<typeof sessionResponse>;
