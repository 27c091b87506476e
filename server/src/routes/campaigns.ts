// Campaign registration (operator token), roster fetch (public: it is signed) and roster update
// (a coordinator session; higher serial, same root key).
import {
  API,
  bytesEqual,
  campaignParams,
  type RegisterCampaignResponse,
  type RosterResponse,
  rosterRequest,
  sha256,
  type UpdateRosterResponse,
  utf8,
} from "@testigo/protocol";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { requireSession, sessionOf } from "../auth.js";
import type { RelayContext } from "../context.js";
import { errors, RelayError } from "../errors.js";
import { campaignRecord, checkRoster, storedRoster } from "../roster-check.js";
import { coarsen, HOUR_MS } from "../time.js";
import { parseOr400 } from "../validate.js";

function requireOperator(ctx: RelayContext, request: FastifyRequest): void {
  const token = request.headers.authorization?.startsWith("Bearer ")
    ? request.headers.authorization.slice("Bearer ".length)
    : undefined;
  // Compare digests in constant time, so neither the content nor the length of the token leaks.
  if (token === undefined || !bytesEqual(sha256(utf8(token)), sha256(utf8(ctx.config.registrationToken)))) {
    throw new RelayError(
      "AUTH_REQUIRED",
      "registering a campaign needs the operator's registration token: Authorization: Bearer <token>",
    );
  }
}

export function registerCampaignRoutes(app: FastifyInstance, ctx: RelayContext): void {
  app.route({
    method: API.registerCampaign.method,
    url: API.registerCampaign.path,
    onRequest: async (request) => requireOperator(ctx, request),
    handler: async (request, reply): Promise<RegisterCampaignResponse> => {
      const body = parseOr400(rosterRequest, request.body, "campaign registration");
      const roster = checkRoster(body.roster);
      const created = await ctx.store.createCampaign(
        campaignRecord(body.roster, roster, coarsen(ctx.clock(), HOUR_MS)),
      );
      if (!created)
        throw new RelayError("CAMPAIGN_EXISTS", "this campaign is already registered; update its roster instead");
      void reply.code(201);
      return { campaignId: roster.campaignId };
    },
  });

  app.route({
    method: API.getRoster.method,
    url: API.getRoster.path,
    handler: async (request): Promise<RosterResponse> => {
      const { campaignId } = parseOr400(campaignParams, request.params, "path");
      const campaign = await ctx.store.getCampaign(campaignId);
      if (campaign === undefined) throw errors.notFound("campaign");
      return { roster: storedRoster(campaign) };
    },
  });

  app.route({
    method: API.putRoster.method,
    url: API.putRoster.path,
    onRequest: requireSession(ctx, "coordinator"),
    handler: async (request): Promise<UpdateRosterResponse> => {
      sessionOf(request);
      const { campaignId } = parseOr400(campaignParams, request.params, "path");
      const body = parseOr400(rosterRequest, request.body, "roster update");
      const roster = checkRoster(body.roster);
      const current = await ctx.store.getCampaign(campaignId);
      if (current === undefined) throw errors.notFound("campaign");
      if (roster.campaignId !== campaignId || roster.rootKey !== current.rootPublicKey) {
        throw new RelayError("ROSTER_INVALID", "the roster belongs to another campaign or root key");
      }
      const stale = () =>
        new RelayError("ROSTER_STALE", `the roster's serial must be greater than ${current.rosterSerial}`);
      if (roster.serial <= current.rosterSerial) throw stale();
      const updated = await ctx.store.updateRoster(campaignRecord(body.roster, roster, current.createdAt));
      if (!updated) throw stale();
      return { serial: roster.serial };
    },
  });
}
