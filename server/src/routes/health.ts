// Liveness, readiness (the store answers) and Prometheus counts.
import { API } from "@testigo/protocol";
import type { FastifyInstance } from "fastify";
import type { RelayContext } from "../context.js";

export function registerHealthRoutes(app: FastifyInstance, ctx: RelayContext): void {
  app.route({
    method: API.healthz.method,
    url: API.healthz.path,
    handler: async () => ({ status: "ok" }),
  });
  app.route({
    method: API.readyz.method,
    url: API.readyz.path,
    // A failing ping throws STORE_UNAVAILABLE (503) through the guarded store.
    handler: async () => {
      await ctx.store.ping();
      return { status: "ready" };
    },
  });
  app.route({
    method: API.metrics.method,
    url: API.metrics.path,
    handler: async (_request, reply) => {
      void reply.type("text/plain; version=0.0.4; charset=utf-8");
      return ctx.metrics.render();
    },
  });
}
