// Errors of the volunteer side. Each has a literal `code`; the CLI maps them to exit codes.
export type VolunteerErrorCode =
  | "NOT_ENROLLED"
  | "ALREADY_ENROLLED"
  | "WRONG_PIN"
  | "ROSTER_MISMATCH"
  | "RELAY_LIED"
  | "DAMAGED";

export class VolunteerError extends Error {
  override readonly name = "VolunteerError";
  constructor(
    readonly code: VolunteerErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A wrong PIN: nothing changed except the failed-unlock counter — or, when no attempt is left,
 * the device erased itself (the wrong-PIN limit).
 */
export class WrongPin extends VolunteerError {
  constructor(readonly attemptsLeft: number) {
    super(
      "WRONG_PIN",
      attemptsLeft === 0
        ? "wrong PIN: that was the last attempt; the device erased itself"
        : `wrong PIN: nothing changed; ${attemptsLeft} attempt${attemptsLeft === 1 ? "" : "s"} left before the device erases itself`,
    );
  }
}
