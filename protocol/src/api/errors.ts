// The relay's wire errors: every error response is `{ error: { code, message } }` with one of
// these stable codes (docs/errors.md explains each). Clients switch on `code`, never on text.
import { z } from "zod";

export const RELAY_ERROR_CODES = [
  "MALFORMED_REQUEST",
  "UNSUPPORTED_MEDIA_TYPE",
  "PAYLOAD_TOO_LARGE",
  "HEADERS_TOO_LARGE",
  "REQUEST_TIMEOUT",
  "AUTH_REQUIRED",
  "AUTH_FAILED",
  "FORBIDDEN",
  "REVOKED",
  "NOT_FOUND",
  "INVITE_INVALID",
  "CAMPAIGN_EXISTS",
  "ROSTER_INVALID",
  "ROSTER_STALE",
  "ENVELOPE_INVALID",
  "EPOCH_KEY_INVALID",
  "CONFLICT",
  "ALREADY_ENROLLED",
  "RATE_LIMITED",
  "STORE_UNAVAILABLE",
  "INTERNAL",
] as const;

export const relayErrorCode = z.enum(RELAY_ERROR_CODES);
export type RelayErrorCode = z.infer<typeof relayErrorCode>;

export const wireError = z.object({
  error: z.object({
    code: relayErrorCode,
    message: z.string(),
  }),
});
export type WireError = z.infer<typeof wireError>;
