// What every `testigo` subcommand looks like. Commands get their I/O through `CliContext`
// so tests can run them in-process with captured output.
import type { FlagSpec, ParsedArgs } from "./args.js";

export interface CliContext {
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: NodeJS.ReadStream;
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  readonly now: () => number;
  /**
   * Runs `handler` on the first SIGINT or SIGTERM instead of dying (a second one kills as usual);
   * returns a function that removes it. For long-running commands that stop cleanly.
   */
  readonly onInterrupt?: (handler: () => void) => () => void;
}

export interface Command {
  /** Words after `testigo`, e.g. ["volunteer", "report"]. */
  readonly path: readonly string[];
  readonly summary: string;
  /** Usage line(s) shown by --help, exactly as in DESIGN §5. */
  readonly usage: string;
  /** Longer help: flags, environment, examples. */
  readonly help: string;
  readonly flags: FlagSpec;
  /** Resolves with the exit code; throws CliError for failures people can act on. */
  run(args: ParsedArgs, context: CliContext): Promise<number>;
}
