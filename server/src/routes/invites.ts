// Invites (a coordinator registers hashes) and enrollment (a volunteer redeems one, once).
import {
  type AddInvitesResponse,
  API,
  addInvitesRequest,
  campaignParams,
  type EnrollResponse,
  enrollRequest,
  fromBase64url,
  inviteStoredHashBase64url,
  pseudonymFromKeys,
  verifyEnrollment,
  verifyEnrollmentDuress,
} from "@testigo/protocol";
import type { FastifyInstance } from "fastify";
import { requireSession, sessionOf } from "../auth.js";
import type { RelayContext } from "../context.js";
import { errors, RelayError } from "../errors.js";
import { coarsen, HOUR_MS } from "../time.js";
import { parseOr400 } from "../validate.js";

/** Invites may live at most this long. */
export const MAX_INVITE_LIFETIME_MS = 366 * 24 * HOUR_MS;

function inviteInvalid(): RelayError {
  // One answer for unknown, used and expired invites: the relay says nothing about which.
  return new RelayError("INVITE_INVALID", "this invite is unknown, already used or expired; ask for a new one");
}

export function registerInviteRoutes(app: FastifyInstance, ctx: RelayContext): void {
  app.route({
    method: API.addInvites.method,
    url: API.addInvites.path,
    onRequest: requireSession(ctx, "coordinator"),
    handler: async (request, reply): Promise<AddInvitesResponse> => {
      const session = sessionOf(request);
      const body = parseOr400(addInvitesRequest, request.body, "invites");
      const now = ctx.clock();
      for (const invite of body.invites) {
        if (invite.expiresAt <= now || invite.expiresAt > now + MAX_INVITE_LIFETIME_MS) {
          throw errors.malformed("every invite's expiresAt must be in the future and within 366 days");
        }
      }
      await ctx.store.addInvites(
        session.campaignId,
        body.invites.map((i) => ({ storedHash: i.storedHash, expiresAt: i.expiresAt })),
      );
      void reply.code(201);
      return { count: body.invites.length };
    },
  });

  app.route({
    method: API.enroll.method,
    url: API.enroll.path,
    handler: async (request, reply): Promise<EnrollResponse> => {
      const { campaignId } = parseOr400(campaignParams, request.params, "path");
      const body = parseOr400(enrollRequest, request.body, "enrollment");
      // The schema guarantees these decode to 32 bytes each.
      const token = fromBase64url(body.redeemToken) ?? new Uint8Array();
      const signingKey = fromBase64url(body.signingKey) ?? new Uint8Array();
      const encryptionKey = fromBase64url(body.encryptionKey) ?? new Uint8Array();
      const signature = fromBase64url(body.signature) ?? new Uint8Array();
      // The schema refused a small-order or invalid duress key; the same key twice would make the
      // duress key sign ordinary reports (coordinators could not tell them apart).
      const duressKey = body.duressKey === undefined ? undefined : fromBase64url(body.duressKey);
      if (body.duressKey === body.signingKey) {
        throw errors.malformed("the duress key must differ from the signing key: generate a new duress key");
      }
      if (!verifyEnrollment(token, signingKey, encryptionKey, signature, duressKey)) {
        throw new RelayError("AUTH_FAILED", "the enrollment signature does not verify with the given signing key");
      }
      // Proof of possession of D (the schema requires duressSignature with duressKey): without it,
      // anyone who saw a volunteer's public key could enroll it as its own device's duress key.
      const duressSignature = body.duressSignature === undefined ? undefined : fromBase64url(body.duressSignature);
      if (
        duressKey !== undefined &&
        (duressSignature === undefined ||
          !verifyEnrollmentDuress(token, signingKey, encryptionKey, duressKey, duressSignature))
      ) {
        throw new RelayError(
          "AUTH_FAILED",
          "the duress signature does not verify with the given duress key: sign the enrollment with the duress key's private key",
        );
      }
      if ((await ctx.store.getCampaign(campaignId)) === undefined) throw inviteInvalid();
      const pseudonym = pseudonymFromKeys({ signingKey, encryptionKey });
      const now = ctx.clock();
      const storedHash = inviteStoredHashBase64url(token);
      // Reads only until an invite is known to exist: a flood of made-up invites writes nothing and
      // drains no shared bucket (a campaign-wide one would let anyone who knows the campaign id
      // block every enrollment). Each live invite can be redeemed once, so it needs no bucket.
      const result = !(await ctx.store.inviteLive(campaignId, storedHash, now))
        ? ({ status: "unknown" } as const)
        : await ctx.store.redeemInvite(
            campaignId,
            storedHash,
            {
              campaignId,
              pseudonym,
              signingKey: body.signingKey,
              encryptionKey: body.encryptionKey,
              ...(body.duressKey === undefined ? {} : { duressKey: body.duressKey }),
              enrolledAt: coarsen(now, HOUR_MS),
              revoked: false,
            },
            now,
          );
      switch (result.status) {
        case "redeemed":
          ctx.metrics.count("enrollments");
          void reply.code(201);
          return { pseudonym };
        case "unknown": {
          // A retry after a lost answer: the invite is burned, but these exact keys (the
          // signature proves the caller holds them) are enrolled and not revoked. Same answer
          // as the first time, nothing written, and no invite-to-pseudonym link is ever stored.
          const enrolled = await ctx.store.getVolunteer(campaignId, pseudonym);
          if (
            enrolled !== undefined &&
            !enrolled.revoked &&
            enrolled.signingKey === body.signingKey &&
            enrolled.encryptionKey === body.encryptionKey &&
            enrolled.duressKey === body.duressKey
          ) {
            void reply.code(201);
            return { pseudonym };
          }
          throw inviteInvalid();
        }
        case "pseudonym-taken":
          throw new RelayError(
            "ALREADY_ENROLLED",
            "these keys are already enrolled; generate new keys to enroll again",
          );
        default: {
          const never: never = result;
          throw new Error(`unexpected redeem result ${JSON.stringify(never)}`);
        }
      }
    },
  });
}
