// Envelope submission (POST /v1/campaigns/:campaignId/envelopes, body: the envelope bytes).
import { z } from "zod";
import { messageId } from "../schemas/common.js";

/** The same answer for a new envelope and for a retry of one already stored. */
export const submitResponse = z.object({ status: z.literal("accepted"), messageId });
export type SubmitResponse = z.infer<typeof submitResponse>;
