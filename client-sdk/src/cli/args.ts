// Flag parsing for every subcommand, on node:util parseArgs (strict: unknown flags are errors).
import { parseArgs } from "node:util";
import { usageError } from "./cli-error.js";

export type FlagSpec = Readonly<Record<string, { readonly type: "string" | "boolean"; readonly multiple?: boolean }>>;

export interface ParsedArgs {
  readonly flags: Readonly<Record<string, string | boolean | string[] | undefined>>;
  readonly positionals: readonly string[];
}

/** Flags that would carry a secret on the command line, which `ps` and shell history would keep. */
const SECRET_FLAGS = ["pin", "duress-pin", "passphrase", "token", "relay-token", "password", "secret"];

export function parseFlags(argv: readonly string[], spec: FlagSpec): ParsedArgs {
  for (const arg of argv) {
    const name = arg.startsWith("--") ? (arg.slice(2).split("=")[0] ?? "") : "";
    if (SECRET_FLAGS.includes(name)) {
      throw usageError(
        `--${name} is not accepted: secrets never come from the command line. Use --${name}-file FILE or the TESTIGO_* environment variable, or type it at the prompt`,
      );
    }
  }
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: { ...spec, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    return { flags: values as ParsedArgs["flags"], positionals };
  } catch (error) {
    throw usageError(error instanceof Error ? error.message : String(error));
  }
}

export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const value = args.flags[name];
  return typeof value === "string" ? value : undefined;
}

export function requiredFlag(args: ParsedArgs, name: string): string {
  const value = stringFlag(args, name);
  if (value === undefined || value === "") throw usageError(`--${name} is required`);
  return value;
}

export function booleanFlag(args: ParsedArgs, name: string): boolean {
  return args.flags[name] === true;
}

export function integerFlag(args: ParsedArgs, name: string, fallback: number, min: number, max: number): number {
  const text = stringFlag(args, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw usageError(`--${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(text)}`);
  }
  return value;
}
