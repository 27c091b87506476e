// Invites (coordinators register hashes) and enrollment (a volunteer redeems one).
import { z } from "zod";
import { base64urlBytes, pseudonym, publicKey, signature, timestamp, x25519PublicKey } from "../schemas/common.js";

/** Most invites one request may register. */
export const MAX_INVITES_PER_REQUEST = 1000;
export const INVITE_STORED_HASH_BYTES = 32;
export const REDEEM_TOKEN_BYTES = 32;

export const addInvitesRequest = z
  .object({
    invites: z
      .array(z.object({ storedHash: base64urlBytes(INVITE_STORED_HASH_BYTES), expiresAt: timestamp }).strict())
      .min(1)
      .max(MAX_INVITES_PER_REQUEST),
  })
  .strict();
export type AddInvitesRequest = z.infer<typeof addInvitesRequest>;

export const addInvitesResponse = z.object({ count: z.number().int().nonnegative() });
export type AddInvitesResponse = z.infer<typeof addInvitesResponse>;

/**
 * POST /v1/campaigns/:campaignId/enroll. `signature` proves possession of `signingKey`: it signs
 * `enrollMessage(...)` (../auth.ts) under DOMAIN.enrollSignature. No personal data: keys and a token only.
 */
export const enrollRequest = z
  .object({
    redeemToken: base64urlBytes(REDEEM_TOKEN_BYTES),
    signingKey: publicKey,
    // Coordinators seal control messages (a wipe) to it: a low-order key would make them fail.
    encryptionKey: x25519PublicKey,
    signature,
  })
  .strict();
export type EnrollRequest = z.infer<typeof enrollRequest>;

export const enrollResponse = z.object({ pseudonym });
export type EnrollResponse = z.infer<typeof enrollResponse>;
