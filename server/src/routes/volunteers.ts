// Coordinators list their campaign's volunteers and revoke one (credential refused, mailbox deleted).
import { API, campaignParams, mailboxParams, type RevokeResponse, type VolunteerListResponse } from "@testigo/protocol";
import type { FastifyInstance } from "fastify";
import { requireSession } from "../auth.js";
import type { RelayContext } from "../context.js";
import { errors } from "../errors.js";
import { coarsen, HOUR_MS } from "../time.js";
import { parseOr400 } from "../validate.js";

export function registerVolunteerRoutes(app: FastifyInstance, ctx: RelayContext): void {
  app.route({
    method: API.listVolunteers.method,
    url: API.listVolunteers.path,
    onRequest: requireSession(ctx, "coordinator"),
    handler: async (request): Promise<VolunteerListResponse> => {
      const { campaignId } = parseOr400(campaignParams, request.params, "path");
      const volunteers = await ctx.store.listVolunteers(campaignId);
      return {
        volunteers: volunteers.map((v) => ({
          pseudonym: v.pseudonym,
          enrolledAt: coarsen(v.enrolledAt, HOUR_MS),
          revoked: v.revoked,
        })),
      };
    },
  });

  app.route({
    method: API.revokeVolunteer.method,
    url: API.revokeVolunteer.path,
    onRequest: requireSession(ctx, "coordinator"),
    handler: async (request): Promise<RevokeResponse> => {
      const { campaignId, pseudonym } = parseOr400(mailboxParams, request.params, "path");
      const volunteer = await ctx.store.getVolunteer(campaignId, pseudonym);
      if (volunteer === undefined) throw errors.notFound("volunteer");
      await ctx.store.revokeVolunteer(campaignId, pseudonym);
      return { status: "revoked" };
    },
  });
}
