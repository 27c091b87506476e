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

/** A wrong PIN: nothing changed except the failed-unlock counter. */
export class WrongPin extends VolunteerError {
  constructor(readonly attemptsLeft: number) {
    super(
      "WRONG_PIN",
      `wrong PIN: nothing changed; ${attemptsLeft} attempt${attemptsLeft === 1 ? "" : "s"} left before the device erases itself`,
    );
  }
}
