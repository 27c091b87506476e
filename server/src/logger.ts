// The relay's one logger. It must never write an IP address, a pseudonym, a token or an invite
// secret: requests are logged as method + route pattern + status + time (never the raw URL,
// which can hold a pseudonym), and error text is scrubbed before it is written.
import { type DestinationStream, type Logger, pino } from "pino";

export type RelayLogger = Logger;

const PSEUDONYM = /v-[0-9A-HJKMNP-TV-Z]{16}/g;
const IPV4 = /\b(?:\d{1,3}\.){3}\d{1,3}\b/g;
const IPV6 = /\b(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{0,4}\b|::ffff:[0-9.]+|::1\b/g;
// Tokens, keys and hashes are base64url of 16+ bytes: anything that long is not worth the risk.
const LONG_B64 = /[A-Za-z0-9_-]{22,}/g;

/** Removes anything that looks like a pseudonym, an IP address or a token/key from text. */
export function scrub(text: string): string {
  return text
    .replace(PSEUDONYM, "v-<redacted>")
    .replace(IPV6, "<ip>")
    .replace(IPV4, "<ip>")
    .replace(LONG_B64, "<redacted>");
}

interface RequestLike {
  method?: string;
  routeOptions?: { url?: string };
}

export const serializers = {
  req(req: RequestLike) {
    return { method: req.method, route: req.routeOptions?.url ?? "(unmatched)" };
  },
  res(reply: { statusCode?: number }) {
    return { statusCode: reply.statusCode };
  },
  err(err: unknown) {
    if (!(err instanceof Error)) return { type: typeof err };
    const code = (err as { code?: unknown }).code;
    return {
      type: err.name,
      ...(typeof code === "string" ? { code } : {}),
      message: scrub(err.message),
      stack: err.stack === undefined ? undefined : scrub(err.stack),
    };
  },
};

export interface LoggerOptions {
  readonly level?: string;
  /** Where to write (a stream in tests); standard output by default. */
  readonly stream?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): RelayLogger {
  return pino(
    {
      level: options.level ?? "info",
      base: { service: "testigo-relay" },
      serializers,
      redact: {
        paths: [
          "req.headers",
          "headers",
          "authorization",
          "token",
          "*.token",
          "registrationToken",
          "redeemToken",
          "*.redeemToken",
          "pseudonym",
          "*.pseudonym",
        ],
        censor: "[redacted]",
      },
    },
    options.stream,
  );
}
