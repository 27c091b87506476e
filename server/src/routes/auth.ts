// POST /v1/auth/challenge and POST /v1/auth/session: a signed one-time challenge yields a
// short-lived session token sealed by the relay. Issuing a challenge stores nothing (challenges.ts);
// opening a session writes only the challenge's burn mark: no session record exists anywhere.
//
// Flood resistance (DESIGN A5): the challenge route is pure computation, so it has no relay-wide
// bucket that one anonymous client could drain for everyone. The session route refuses a
// challenge this relay did not issue, or an expired one, and a principal that does not exist,
// before it writes anything; then it takes a token from that principal's own bucket, so a flood
// aimed at one pseudonym or device cannot lock out another.
import {
  API,
  type ChallengeResponse,
  fromBase64url,
  SESSION_TTL_MS,
  type SessionRequest,
  type SessionResponse,
  sealSessionToken,
  sessionRequest,
  verifyAuthStatement,
} from "@testigo/protocol";
import type { FastifyInstance } from "fastify";
import { rateLimit } from "../auth.js";
import { checkChallenge, issueChallenge } from "../challenges.js";
import type { RelayContext } from "../context.js";
import { errors } from "../errors.js";
import { parseOr400 } from "../validate.js";

/** The keys a principal may sign a session request with (a volunteer's duress key too, issue 5). */
interface Principal {
  readonly keys: readonly string[];
  readonly revoked: boolean;
}

export function registerAuthRoutes(app: FastifyInstance, ctx: RelayContext): void {
  app.route({
    method: API.challenge.method,
    url: API.challenge.path,
    handler: async (_request, reply): Promise<ChallengeResponse> => {
      const keys = await ctx.keys.get();
      void reply.code(201);
      return issueChallenge(keys.challenge, ctx.clock());
    },
  });

  app.route({
    method: API.session.method,
    url: API.session.path,
    handler: async (request, reply): Promise<SessionResponse> => {
      const body = parseOr400(sessionRequest, request.body, "session request");
      const keys = await ctx.keys.get();
      const challengeExpiresAt = checkChallenge(keys.challenge, body.challenge, ctx.clock());
      if (challengeExpiresAt === undefined) throw fail(ctx);
      const principal = await findPrincipal(ctx, body);
      if (principal === undefined) throw fail(ctx);
      const quota = body.role === "coordinator" ? ctx.config.rateLimit.coordinator : undefined;
      await rateLimit(
        ctx,
        `auth:${body.campaignId}:${body.role}:${body.principal}`,
        quota?.capacity,
        quota?.refillPerSecond,
      );
      // Burn the challenge before the signature is checked: one attempt per challenge, right or wrong.
      if (!(await ctx.store.burnChallenge(body.challenge, challengeExpiresAt))) throw fail(ctx);
      // Every key is tried (no early exit): the answer takes as long whichever key signed.
      const verified = principal.keys.map((key) => {
        const publicKey = fromBase64url(key);
        return publicKey !== undefined && verifyAuthStatement(body, body.signature, publicKey);
      });
      if (!verified.includes(true)) throw fail(ctx);
      // Only the key's holder learns that it is revoked.
      if (principal.revoked) throw errors.revoked();
      const expiresAt = ctx.clock() + SESSION_TTL_MS;
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

async function findPrincipal(ctx: RelayContext, body: SessionRequest): Promise<Principal | undefined> {
  if (body.role === "coordinator") {
    const key = (await ctx.store.getCampaign(body.campaignId))?.deviceSigningKeys[body.principal];
    return key === undefined ? undefined : { keys: [key], revoked: false };
  }
  // A volunteer signs with its signing key or its duress key (the decoy after a duress unlock):
  // both open the same session, and nothing records which one did.
  const volunteer = await ctx.store.getVolunteer(body.campaignId, body.principal);
  if (volunteer === undefined) return undefined;
  const keys = volunteer.duressKey === undefined ? [volunteer.signingKey] : [volunteer.signingKey, volunteer.duressKey];
  return { keys, revoked: volunteer.revoked };
}

function fail(ctx: RelayContext) {
  ctx.metrics.count("auth_failures");
  return errors.authFailed();
}
