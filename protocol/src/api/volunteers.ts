// Coordinators list and revoke their campaign's volunteers.
import { z } from "zod";
import { pseudonym, timestamp } from "../schemas/common.js";

export const volunteerListResponse = z.object({
  volunteers: z.array(z.object({ pseudonym, enrolledAt: timestamp, revoked: z.boolean() })),
});
export type VolunteerListResponse = z.infer<typeof volunteerListResponse>;

export const revokeResponse = z.object({ status: z.literal("revoked") });
export type RevokeResponse = z.infer<typeof revokeResponse>;
