// POST /v1/auth/challenge and POST /v1/auth/session: a signed one-time challenge yields a
// short-lived session token sealed by the relay. Opening a session writes nothing but the
// challenge's deletion: no session record exists anywhere in the store.
import {
  API,
  CHALLENGE_TTL_MS,
  type ChallengeResponse,
  fromBase64url,
  newChallenge,
  SESSION_TTL_MS,
  type SessionResponse,
  sealSessionToken,
  sessionRequest,
  verifyAuthStatement,
} from "@testigo/protocol";
import type { FastifyInstance } from "fastify";
import { rateLimit } from "../auth.js";
import type { RelayContext } from "../context.js";
import { errors } from "../errors.js";
import { coarsenUp, SECOND_MS } from "../time.js";
import { parseOr400 } from "../validate.js";

/** Challenges are unauthenticated: one relay-wide bucket, far larger than a credential's. */
const ANONYMOUS_FACTOR = 50;

export function registerAuthRoutes(app: FastifyInstance, ctx: RelayContext): void {
  const { capacity, refillPerSecond } = ctx.config.rateLimit;

  app.route({
    method: API.challenge.method,
    url: API.challenge.path,
    handler: async (_request, reply): Promise<ChallengeResponse> => {
      await rateLimit(ctx, "anon:challenge", capacity * ANONYMOUS_FACTOR, refillPerSecond * ANONYMOUS_FACTOR);
      const challenge = newChallenge();
      const expiresAt = coarsenUp(ctx.clock() + CHALLENGE_TTL_MS, 10 * SECOND_MS);
      await ctx.store.putChallenge(challenge, expiresAt);
      void reply.code(201);
      return { challenge, expiresAt };
    },
  });

  app.route({
    method: API.session.method,
    url: API.session.path,
    handler: async (request, reply): Promise<SessionResponse> => {
      const body = parseOr400(sessionRequest, request.body, "session request");
      await rateLimit(ctx, `auth:${body.campaignId}`, capacity * ANONYMOUS_FACTOR, refillPerSecond * ANONYMOUS_FACTOR);
      // Burn the challenge first: each one allows exactly one attempt, right or wrong.
      if (!(await ctx.store.takeChallenge(body.challenge, ctx.clock()))) throw fail(ctx);
      let signingKeys: (string | undefined)[] = [];
      let revoked = false;
      if (body.role === "coordinator") {
        const campaign = await ctx.store.getCampaign(body.campaignId);
        signingKeys = [campaign?.deviceSigningKeys[body.principal]];
      } else {
        // A volunteer signs with its signing key or its duress key (the decoy after a duress
        // unlock): both open the same session, and nothing records which one did.
        const volunteer = await ctx.store.getVolunteer(body.campaignId, body.principal);
        signingKeys = [volunteer?.signingKey, volunteer?.duressKey];
        revoked = volunteer?.revoked ?? false;
      }
      // Every key is tried (no early exit): the answer takes as long whichever key signed.
      const verified = signingKeys.map((key) => {
        const publicKey = key === undefined ? undefined : fromBase64url(key);
        return publicKey !== undefined && verifyAuthStatement(body, body.signature, publicKey);
      });
      if (!verified.includes(true)) throw fail(ctx);
      // Only the key's holder learns that it is revoked.
      if (revoked) throw errors.revoked();
      const expiresAt = ctx.clock() + SESSION_TTL_MS;
      const keys = await ctx.keys.get();
      const token = sealSessionToken(
        { campaignId: body.campaignId, role: body.role, principal: body.principal, expiresAt },
        keys.session,
      );
      ctx.metrics.count("sessions_opened");
      void reply.code(201);
      return { token, expiresAt };
    },
  });
}

function fail(ctx: RelayContext) {
  ctx.metrics.count("auth_failures");
  return errors.authFailed();
}
