// Every error this package throws on purpose. Each has a literal `code` so callers can switch
// over them; messages say what was wrong and what to do, except DecryptionFailed, which is
// deliberately the same whatever check failed (an attacker must learn nothing from it).

export type ProtocolErrorCode =
  | "DECRYPTION_FAILED"
  | "MALFORMED"
  | "UNSUPPORTED_VERSION"
  | "TOO_LARGE"
  | "INVITE_CODE_INVALID"
  | "ROSTER_ROLLBACK"
  | "NO_CURRENT_EPOCH_KEY"
  | "TEXT_REJECTED"
  | "SODIUM_NOT_READY";

export abstract class ProtocolError extends Error {
  abstract readonly code: ProtocolErrorCode;
  override readonly name: string = "ProtocolError";
}

/**
 * The one error for any failure to open, decrypt or verify: bad MAC, bad signature, wrong
 * recipient, wrong campaign, unknown signer, truncated stream, replayed counter, expiry...
 * It carries no detail on purpose.
 */
export class DecryptionFailed extends ProtocolError {
  readonly code = "DECRYPTION_FAILED" as const;
  override readonly name = "DecryptionFailed";
  constructor() {
    super("could not open or verify the message: it is corrupted, forged, replayed, expired or not meant for this key");
  }
}

/** Input that does not follow the wire format (bad length, bad encoding, schema mismatch). */
export class Malformed extends ProtocolError {
  readonly code = "MALFORMED" as const;
  override readonly name = "Malformed";
}

/** A version byte or field this implementation does not speak. Upgrade the older side. */
export class UnsupportedVersion extends ProtocolError {
  readonly code = "UNSUPPORTED_VERSION" as const;
  override readonly name = "UnsupportedVersion";
}

/** A size limit of the protocol was exceeded. */
export class TooLarge extends ProtocolError {
  readonly code = "TOO_LARGE" as const;
  override readonly name = "TooLarge";
}

/** An invite code that cannot be read; `group` is the 1-based group that failed its check, if known. */
export class InviteCodeInvalid extends ProtocolError {
  readonly code = "INVITE_CODE_INVALID" as const;
  override readonly name = "InviteCodeInvalid";
  constructor(
    message: string,
    readonly group?: number,
  ) {
    super(message);
  }
}

/**
 * Text that a person typed (a report's text, a table code) and that the protocol refuses: too
 * long, or holding characters that would make it display as something it does not say (control
 * characters, bidi overrides, zero-width characters...). `field` names the field; the message
 * says what to change and never repeats the text (it may be sensitive).
 */
export class TextRejected extends ProtocolError {
  readonly code = "TEXT_REJECTED" as const;
  override readonly name = "TextRejected";
  constructor(
    readonly field: "text" | "table",
    message: string,
  ) {
    super(message);
  }
}

/** The library was used before `await initSodium()` resolved: a programming error of the caller. */
export class SodiumNotReady extends ProtocolError {
  readonly code = "SODIUM_NOT_READY" as const;
  override readonly name = "SodiumNotReady";
  constructor() {
    super("libsodium is not ready: await initSodium() before using @testigo/protocol");
  }
}

export function isProtocolError(value: unknown): value is ProtocolError {
  return value instanceof ProtocolError;
}
