// GET /v1/campaigns/:campaignId/inbox/live: the coordinator inbox pushed over WebSocket.
// Authentication runs in onRequest, during the upgrade: no socket exists for an unknown caller.
import { campaignParams, LIVE_INBOX_ROUTE } from "@testigo/protocol";
import type { FastifyInstance } from "fastify";
import { liveToken, requireSessionFrom, sessionOf } from "../auth.js";
import { LIVE_DEFAULTS } from "../config/config.js";
import type { RelayContext } from "../context.js";
import { LiveConnection } from "../live/live-connection.js";
import type { LiveHub } from "../live/live-hub.js";
import { parseOr400 } from "../validate.js";

export function registerLiveInboxRoutes(app: FastifyInstance, ctx: RelayContext, hub: LiveHub): void {
  const limits = { ...LIVE_DEFAULTS, ...ctx.config.live };
  app.route({
    method: LIVE_INBOX_ROUTE.method,
    url: LIVE_INBOX_ROUTE.path,
    websocket: true,
    onRequest: requireSessionFrom(ctx, liveToken, "coordinator"),
    handler: async (socket, request) => {
      parseOr400(campaignParams, request.params, "path");
      const connection = new LiveConnection({
        ctx,
        hub,
        socket,
        session: sessionOf(request),
        limits,
      });
      await connection.start();
    },
  });
}
