// Every error the relay answers with, and the ONE function that turns any thrown value into a
// wire error. Codes come from @testigo/protocol (RELAY_ERROR_CODES) and are documented in
// docs/errors.md. Messages say what to do; 500s say nothing about internals.
import type { RelayErrorCode, WireError } from "@testigo/protocol";

const STATUS: Readonly<Record<RelayErrorCode, number>> = {
  MALFORMED_REQUEST: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  PAYLOAD_TOO_LARGE: 413,
  HEADERS_TOO_LARGE: 431,
  REQUEST_TIMEOUT: 408,
  AUTH_REQUIRED: 401,
  AUTH_FAILED: 401,
  FORBIDDEN: 403,
  REVOKED: 403,
  NOT_FOUND: 404,
  INVITE_INVALID: 404,
  CAMPAIGN_EXISTS: 409,
  ROSTER_INVALID: 400,
  ROSTER_STALE: 409,
  ENVELOPE_INVALID: 400,
  EPOCH_KEY_INVALID: 400,
  CONFLICT: 409,
  ALREADY_ENROLLED: 409,
  RATE_LIMITED: 429,
  STORE_UNAVAILABLE: 503,
  INTERNAL: 500,
};

export class RelayError extends Error {
  override readonly name = "RelayError";
  readonly statusCode: number;
  constructor(
    readonly code: RelayErrorCode,
    message: string,
    /** Seconds, for 429 and 503 answers. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.statusCode = STATUS[code];
  }
}

export function statusOf(code: RelayErrorCode): number {
  return STATUS[code];
}

export interface MappedError {
  readonly statusCode: number;
  readonly body: WireError;
  readonly retryAfterSeconds?: number;
  /** True when the cause is ours (5xx other than a store outage): log it. */
  readonly internal: boolean;
}

const INTERNAL_MESSAGE = "the relay failed to handle this request; retry later";

/** fastify's own 4xx errors (bad JSON, body limits, media types, bad URLs) mapped to our codes. */
function fromFrameworkError(err: { code: string; statusCode: number }): RelayError {
  switch (err.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new RelayError("PAYLOAD_TOO_LARGE", "the request body exceeds this route's size limit");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new RelayError(
        "UNSUPPORTED_MEDIA_TYPE",
        "use Content-Type application/json, or application/octet-stream for binary bodies",
      );
    case "FST_ERR_NOT_FOUND":
      return new RelayError("NOT_FOUND", "no such route");
    default:
      return new RelayError("MALFORMED_REQUEST", "the request is malformed (body, headers or URL); fix it and retry");
  }
}

function isFrameworkClientError(err: unknown): err is { code: string; statusCode: number } {
  if (typeof err !== "object" || err === null) return false;
  const { code, statusCode } = err as { code?: unknown; statusCode?: unknown };
  return (
    typeof code === "string" &&
    code.startsWith("FST_") &&
    typeof statusCode === "number" &&
    statusCode >= 400 &&
    statusCode < 500
  );
}

/** The one mapping from anything thrown to what the client sees. */
export function toWireError(err: unknown): MappedError {
  let relayError: RelayError | undefined;
  if (err instanceof RelayError) relayError = err;
  else if (isFrameworkClientError(err)) relayError = fromFrameworkError(err);
  if (relayError === undefined || relayError.code === "INTERNAL") {
    return {
      statusCode: 500,
      body: { error: { code: "INTERNAL", message: INTERNAL_MESSAGE } },
      internal: true,
    };
  }
  return {
    statusCode: relayError.statusCode,
    body: { error: { code: relayError.code, message: relayError.message } },
    ...(relayError.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: relayError.retryAfterSeconds }),
    internal: false,
  };
}

// Constructors for the errors raised in more than one place, so their text stays the same.
export const errors = {
  malformed: (what: string) => new RelayError("MALFORMED_REQUEST", `${what}; see protocol/spec/relay-api.md`),
  authRequired: () =>
    new RelayError("AUTH_REQUIRED", "send Authorization: Bearer <session token>; get one from POST /v1/auth/session"),
  sessionInvalid: () =>
    new RelayError("AUTH_REQUIRED", "the session token is unknown or expired; open a new session and retry"),
  authFailed: () =>
    new RelayError(
      "AUTH_FAILED",
      "the challenge is unknown, used or expired, or the signature does not verify; ask for a new challenge",
    ),
  forbidden: (role: string) => new RelayError("FORBIDDEN", `this route needs a ${role} session of this campaign`),
  revoked: () => new RelayError("REVOKED", "this volunteer has been revoked by the campaign's coordinators"),
  notFound: (what: string) => new RelayError("NOT_FOUND", `${what} not found`),
  storeUnavailable: () =>
    new RelayError("STORE_UNAVAILABLE", "the relay's storage is unavailable; nothing was changed, retry later", 5),
} as const;
