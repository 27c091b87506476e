// Errors of the coordinator side. Each has a literal `code`; the CLI maps them to exit codes.
export type CoordinatorErrorCode =
  | "NOT_INITIALISED"
  | "ALREADY_INITIALISED"
  | "WRONG_PASSPHRASE"
  | "WEAK_PASSPHRASE"
  | "UNKNOWN_VOLUNTEER"
  | "NOT_ROOT_DEVICE"
  | "BAD_JOIN_FILE"
  | "JOIN_PENDING"
  /** The relay kept failing or rate-limiting every request for the fetch's stall deadline. */
  | "RELAY_RETRY_DEADLINE";

export class CoordinatorError extends Error {
  override readonly name = "CoordinatorError";
  constructor(
    readonly code: CoordinatorErrorCode,
    message: string,
  ) {
    super(message);
  }
}
