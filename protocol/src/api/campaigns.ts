// Campaign registration, rosters and epoch keys.
import { z } from "zod";
import { base64urlBytesBetween, campaignId, shortId, signature } from "../schemas/common.js";

/** Largest signed payload (roster or epoch-key document) the relay accepts (as signed-document.ts). */
const MAX_PAYLOAD_BYTES = 64 * 1024;
/** Most epoch-key documents one coordinator device may publish at a time. */
export const MAX_EPOCH_KEY_DOCUMENTS = 16;

/** A signed document as carried on the wire: payload bytes and a detached Ed25519 signature. */
export const signedDocumentWire = z
  .object({
    payload: base64urlBytesBetween(1, MAX_PAYLOAD_BYTES),
    signature,
  })
  .strict();
export type SignedDocumentWire = z.infer<typeof signedDocumentWire>;

export const campaignParams = z.object({ campaignId }).strict();
export type CampaignParams = z.infer<typeof campaignParams>;

/** POST /v1/campaigns (operator token) and PUT /v1/campaigns/:campaignId/roster (coordinator). */
export const rosterRequest = z.object({ roster: signedDocumentWire }).strict();
export type RosterRequest = z.infer<typeof rosterRequest>;

export const registerCampaignResponse = z.object({ campaignId });
export type RegisterCampaignResponse = z.infer<typeof registerCampaignResponse>;

export const rosterResponse = z.object({ roster: signedDocumentWire });
export type RosterResponse = z.infer<typeof rosterResponse>;

export const updateRosterResponse = z.object({ serial: z.number().int().nonnegative() });
export type UpdateRosterResponse = z.infer<typeof updateRosterResponse>;

/** PUT /v1/campaigns/:campaignId/epoch-keys: the calling device's signed epoch-key documents. */
export const putEpochKeysRequest = z
  .object({ documents: z.array(signedDocumentWire).min(1).max(MAX_EPOCH_KEY_DOCUMENTS) })
  .strict();
export type PutEpochKeysRequest = z.infer<typeof putEpochKeysRequest>;

/** GET /v1/campaigns/:campaignId/epoch-keys: every device's documents, by device id. */
export const epochKeysResponse = z.object({
  devices: z.record(shortId, z.array(signedDocumentWire)),
});
export type EpochKeysResponse = z.infer<typeof epochKeysResponse>;
