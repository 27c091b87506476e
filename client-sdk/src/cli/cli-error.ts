// The one error type the command prints and turns into an exit code. Everything a person can
// meet says what went wrong and what to do next, with a stable code for scripts (--json).
import { EXIT, type ExitCode } from "./exit-codes.js";

export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: ExitCode = EXIT.failure,
  ) {
    super(message);
  }
}

export function usageError(message: string): CliError {
  return new CliError("USAGE", `${message} (see --help)`, EXIT.usage);
}
