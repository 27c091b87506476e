// Session hook: opens the sealed token of `Authorization: Bearer <token>` (no store access),
// checks expiry, role, campaign, revocation (the volunteer's record, remembered per node for at
// most 1 s by volunteer-status.ts; the roster for coordinators)
// and the per-credential rate limit. Runs on `onRequest`, before any body is read, so
// unauthenticated uploads cost the relay nothing. Nothing here writes to the store.
import {
  type AuthRole,
  campaignId as campaignIdSchema,
  LIVE_TOKEN_PROTOCOL_PREFIX,
  openSessionToken,
  SESSION_TOKEN_LENGTH,
  type SessionClaims,
} from "@testigo/protocol";
import type { FastifyRequest, onRequestHookHandler } from "fastify";
import type { RelayContext } from "./context.js";
import { errors, RelayError } from "./errors.js";
import type { RelayKeys } from "./relay-keys.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the session hook on authenticated routes. */
    session: SessionClaims | null;
  }
}

const TOKEN = new RegExp(`^[A-Za-z0-9_-]{${SESSION_TOKEN_LENGTH}}$`);
const BEARER = new RegExp(`^Bearer ([A-Za-z0-9_-]{${SESSION_TOKEN_LENGTH}})$`);

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  return BEARER.exec(header)?.[1] ?? "";
}

/**
 * The live inbox's token: the Authorization header, or else (browsers cannot set headers on a
 * WebSocket) a `testigo.bearer.<token>` subprotocol. Never from the URL: URLs end up in logs.
 */
export function liveToken(request: FastifyRequest): string | undefined {
  const header = bearerToken(request);
  if (header !== undefined) return header;
  const offered = request.headers["sec-websocket-protocol"];
  if (offered === undefined) return undefined;
  const protocol = offered
    .split(",")
    .map((part) => part.trim())
    .find((part) => part.startsWith(LIVE_TOKEN_PROTOCOL_PREFIX));
  if (protocol === undefined) return undefined;
  return TOKEN.exec(protocol.slice(LIVE_TOKEN_PROTOCOL_PREFIX.length))?.[0] ?? "";
}

/** Bound on the opened tokens remembered per relay node; the oldest goes first. */
const MAX_OPENED_TOKENS = 20_000;
/** Per relay keyring (never shared between two relays in one process). */
const openedTokens = new WeakMap<RelayKeys, Map<string, SessionClaims>>();

/**
 * openSessionToken, remembered: a token always opens to the same claims under the same keys
 * (authenticated encryption; the relay's keys never change while it runs), so a volunteer's
 * burst of requests opens its token once. Only tokens that opened are kept, so bad tokens cannot
 * fill it; expiry, role, campaign, revocation and rate limit are still checked on every request.
 */
function openToken(token: string, keys: RelayKeys): SessionClaims | undefined {
  let opened = openedTokens.get(keys);
  if (opened === undefined) {
    opened = new Map();
    openedTokens.set(keys, opened);
  }
  const known = opened.get(token);
  if (known !== undefined) return known;
  const claims = openSessionToken(token, keys.session);
  if (claims === undefined) return undefined;
  if (opened.size >= MAX_OPENED_TOKENS) {
    const oldest = opened.keys().next();
    if (oldest.done !== true) opened.delete(oldest.value);
  }
  // Shared by every request that presents this token: frozen, so none can change another's claims.
  opened.set(token, Object.freeze(claims));
  return claims;
}

/** Forgets an expired token (it can never open to a live session again). */
function forgetToken(token: string, keys: RelayKeys): void {
  openedTokens.get(keys)?.delete(token);
}

/** Takes one token from a bucket (in this node's memory); 429 with Retry-After when empty. */
export async function rateLimit(ctx: RelayContext, key: string, capacity?: number, refill?: number): Promise<void> {
  checkAllowed(
    ctx,
    await ctx.limiter.take(
      key,
      capacity ?? ctx.config.rateLimit.capacity,
      refill ?? ctx.config.rateLimit.refillPerSecond,
    ),
  );
}

/** A rate-limit answer: nothing if allowed, RATE_LIMITED (429 with Retry-After) if not. */
function checkAllowed(ctx: RelayContext, result: { allowed: boolean; retryAfterMs: number }): void {
  if (!result.allowed) {
    ctx.metrics.count("rate_limited");
    const seconds = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
    throw new RelayError("RATE_LIMITED", `too many requests; retry in ${seconds} s`, seconds);
  }
}

/** The session's credential bucket and its quota: coordinator devices have their own, larger one. */
function sessionQuota(ctx: RelayContext, session: SessionClaims): [string, number, number] {
  const quota = (session.role === "coordinator" ? ctx.config.rateLimit.coordinator : undefined) ?? ctx.config.rateLimit;
  return [credentialBucket(session), quota.capacity, quota.refillPerSecond];
}

/** One token from the session's credential bucket: coordinator devices have their own, larger quota. */
export async function rateLimitSession(ctx: RelayContext, session: SessionClaims): Promise<void> {
  const [bucket, capacity, refill] = sessionQuota(ctx, session);
  checkAllowed(ctx, await ctx.limiter.take(bucket, capacity, refill));
}

/** Bound on the path campaign ids remembered as valid; the oldest goes first. */
const MAX_VALID_CAMPAIGN_IDS = 20_000;
/** Path texts that passed the campaign id schema (a pure check of the text): checked once each. */
const validCampaignIds = new Set<string>();

/** The campaign id in the path, checked (routes under /v1/campaigns/:campaignId). */
function pathCampaign(request: FastifyRequest): string {
  const params = request.params as { campaignId?: unknown };
  const text = params.campaignId;
  if (typeof text === "string" && validCampaignIds.has(text)) return text;
  const parsed = campaignIdSchema.safeParse(text);
  if (!parsed.success) throw errors.malformed("invalid campaign id in the path");
  if (parsed.data === text) {
    if (validCampaignIds.size >= MAX_VALID_CAMPAIGN_IDS) {
      const oldest = validCampaignIds.values().next();
      if (oldest.done !== true) validCampaignIds.delete(oldest.value);
    }
    validCampaignIds.add(text);
  }
  return parsed.data;
}

/** onRequest hook: a live session of this campaign in one of `roles`, not revoked, within its rate limit. */
export function requireSession(ctx: RelayContext, ...roles: readonly AuthRole[]): onRequestHookHandler {
  return requireSessionFrom(ctx, bearerToken, ...roles);
}

/**
 * requireSession with another way to find the token (the live inbox also reads a subprotocol).
 *
 * The checks run in this order, each refusing with its own error: token present and well formed,
 * campaign id in the path, token opens under the relay's keys, not expired, role and campaign,
 * rate limit (in memory, before any store access: a flood past the quota costs the store
 * nothing), then revocation (volunteers) or roster membership (coordinators). Every step that
 * can answer from memory does so without waiting (a callback hook: no promise per request when
 * the keys are loaded, the bucket known and the volunteer's status remembered).
 */
export function requireSessionFrom(
  ctx: RelayContext,
  tokenOf: (request: FastifyRequest) => string | undefined,
  ...roles: readonly AuthRole[]
): onRequestHookHandler {
  return (request, _reply, done) => {
    let pending: Promise<void> | undefined;
    try {
      pending = authenticate(ctx, request, tokenOf, roles);
    } catch (error) {
      done(error as Error);
      return;
    }
    if (pending === undefined) done();
    else
      pending.then(
        () => done(),
        (error: unknown) => done(error as Error),
      );
  };
}

/** The session checks; undefined once they passed without waiting, else a promise of the rest. */
function authenticate(
  ctx: RelayContext,
  request: FastifyRequest,
  tokenOf: (request: FastifyRequest) => string | undefined,
  roles: readonly AuthRole[],
): Promise<void> | undefined {
  const token = tokenOf(request);
  if (token === undefined) throw errors.authRequired();
  if (token === "") throw errors.sessionInvalid();
  const campaignId = pathCampaign(request);
  const keys = ctx.keys.current();
  if (keys === undefined) {
    return ctx.keys.get().then((loaded) => checkSession(ctx, request, token, campaignId, loaded, roles));
  }
  return checkSession(ctx, request, token, campaignId, keys, roles);
}

function checkSession(
  ctx: RelayContext,
  request: FastifyRequest,
  token: string,
  campaignId: string,
  keys: RelayKeys,
  roles: readonly AuthRole[],
): Promise<void> | undefined {
  const session = openToken(token, keys);
  if (session === undefined) throw errors.sessionInvalid();
  if (session.expiresAt <= ctx.clock()) {
    forgetToken(token, keys);
    throw errors.sessionInvalid();
  }
  if (!roles.includes(session.role) || session.campaignId !== campaignId) throw errors.forbidden(roles.join(" or "));
  const [bucket, capacity, refill] = sessionQuota(ctx, session);
  const taken = ctx.limiter.takeNow(bucket, capacity, refill);
  if (taken === undefined) {
    return ctx.limiter.take(bucket, capacity, refill).then((result) => {
      checkAllowed(ctx, result);
      return checkPrincipal(ctx, request, session, campaignId);
    });
  }
  checkAllowed(ctx, taken);
  return checkPrincipal(ctx, request, session, campaignId);
}

/** Revocation (volunteers) or roster membership (coordinators); sets the request's session. */
function checkPrincipal(
  ctx: RelayContext,
  request: FastifyRequest,
  session: SessionClaims,
  campaignId: string,
): Promise<void> | undefined {
  if (session.role === "volunteer") {
    if (ctx.volunteerStatus?.activeNow(campaignId, session.principal) === true) {
      request.session = session;
      return undefined;
    }
    const active =
      ctx.volunteerStatus === undefined
        ? volunteerActive(ctx, campaignId, session.principal)
        : ctx.volunteerStatus.isActive(campaignId, session.principal);
    return active.then((ok) => {
      if (!ok) throw errors.revoked();
      request.session = session;
    });
  }
  // A device dropped from the roster loses its sessions at once.
  return ctx.store.getCampaign(campaignId).then((campaign) => {
    if (campaign === undefined || !campaign.deviceIds.includes(session.principal))
      throw errors.forbidden("coordinator");
    request.session = session;
  });
}

/** Reads the volunteer's record: enrolled and not revoked. */
export async function volunteerActive(ctx: Pick<RelayContext, "store">, campaignId: string, pseudonym: string) {
  const volunteer = await ctx.store.getVolunteer(campaignId, pseudonym);
  return volunteer !== undefined && !volunteer.revoked;
}

/** A credential's rate-limit bucket: one per principal, whatever the number of its sessions. */
export function credentialBucket(session: SessionClaims): string {
  return `cred:${session.campaignId}:${session.role}:${session.principal}`;
}

/** The session set by `requireSession` (a programming error if the hook is missing). */
export function sessionOf(request: FastifyRequest): SessionClaims {
  if (request.session === null) throw new Error("route registered without requireSession");
  return request.session;
}
