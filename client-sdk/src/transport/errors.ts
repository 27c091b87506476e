// Errors a client meets when talking to the relay. Each answers `shouldRetry()`, so the outbox
// knows whether to keep an item for later (unreachable, overloaded) or to stop (refused).
import type { RelayErrorCode } from "@testigo/protocol";

export abstract class TransportError extends Error {
  abstract readonly code: string;
  abstract shouldRetry(): boolean;
}

/** The relay could not be reached, timed out, or failed on its side (5xx). Retry later. */
export class RelayUnreachable extends TransportError {
  readonly code = "RELAY_UNREACHABLE" as const;
  override readonly name = "RelayUnreachable";
  constructor(
    readonly relayUrl: string,
    detail: string,
  ) {
    super(`relay unreachable at ${relayUrl}: ${detail}`);
  }
  shouldRetry(): boolean {
    return true;
  }
}

/** The relay answered with a typed 4xx error. Retried only for rate limits. */
export class RelayRefused extends TransportError {
  override readonly name = "RelayRefused";
  constructor(
    readonly code: RelayErrorCode,
    readonly status: number,
    message: string,
    /** From Retry-After, for 429. */
    readonly retryAfterMs?: number,
  ) {
    super(`relay refused the request (${code}): ${message}`);
  }
  shouldRetry(): boolean {
    return this.code === "RATE_LIMITED" || this.code === "STORE_UNAVAILABLE";
  }
}

/** The relay answered something that does not follow the protocol: a bug, or not a Testigo relay. */
export class RelayProtocolError extends TransportError {
  readonly code = "RELAY_PROTOCOL_ERROR" as const;
  override readonly name = "RelayProtocolError";
  shouldRetry(): boolean {
    return false;
  }
}

/** A relay address the SDK refuses: plain http/ws except on loopback or an onion service. */
export class InsecureRelayUrl extends Error {
  readonly code = "INSECURE_RELAY_URL" as const;
  override readonly name = "InsecureRelayUrl";
}
