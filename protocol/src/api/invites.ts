// Invites (coordinators register hashes) and enrollment (a volunteer redeems one).
import { z } from "zod";
import { isUsableEd25519PublicKey } from "../auth.js";
import { fromBase64url } from "../bytes.js";
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

/** An Ed25519 public key someone must be able to sign under: a full-order, canonical point. */
export const ed25519PublicKey = publicKey.refine(
  (text) => {
    const bytes = fromBase64url(text);
    return bytes !== undefined && isUsableEd25519PublicKey(bytes);
  },
  { message: "must be an Ed25519 public key of full order (not a small-order or invalid point)" },
);

/**
 * POST /v1/campaigns/:campaignId/enroll. `signature` proves possession of `signingKey`: it signs
 * `enrollMessage(...)` (../auth.ts) under DOMAIN.enrollSignature; `duressSignature` proves
 * possession of `duressKey` the same way. No personal data: keys and a token only.
 */
export const enrollRequest = z
  .object({
    redeemToken: base64urlBytes(REDEEM_TOKEN_BYTES),
    signingKey: publicKey,
    // Coordinators seal control messages (a wipe) to it: a low-order key would make them fail.
    encryptionKey: x25519PublicKey,
    /**
     * The duress key D (duress-and-wipe.md §2): a second Ed25519 key whose private half the
     * decoy profile signs with. The relay accepts a session signed by it like one signed by
     * `signingKey`; coordinators flag whatever it signs. Covered by `signature` (enrollMessage's
     * 128-byte form). Optional on the wire only for clients that predate it; the SDK always sends it.
     */
    duressKey: ed25519PublicKey.optional(),
    signature,
    /**
     * Proof of possession of D: D's own signature over the same enrollMessage (128-byte form)
     * under DOMAIN.enrollDuressSignature (`signEnrollmentDuress`). Required with `duressKey`,
     * refused without it: nobody may enroll a public key it cannot sign with (a victim's).
     */
    duressSignature: signature.optional(),
  })
  .strict()
  .refine((body) => (body.duressKey === undefined) === (body.duressSignature === undefined), {
    message: "duressKey and duressSignature come together: sign the enrollment with the duress key too",
    path: ["duressSignature"],
  });
export type EnrollRequest = z.infer<typeof enrollRequest>;

export const enrollResponse = z.object({ pseudonym });
export type EnrollResponse = z.infer<typeof enrollResponse>;
