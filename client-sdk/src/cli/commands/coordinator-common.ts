// What every `testigo coordinator …` command shares: the passphrase, opening the device folder,
// and turning SDK errors into messages that say what to do, with documented exit codes.

import { initSodium } from "@testigo/protocol";
import { CoordinatorDevice } from "../../coordinator/device.js";
import { CoordinatorError, type CoordinatorErrorCode } from "../../coordinator/errors.js";
import { CorruptKeySlots } from "../../crypto/key-slots.js";
import { NodeStorage } from "../../storage/node-storage.js";
import { CorruptRecord } from "../../storage/profile-store.js";
import { InsecureRelayUrl, RelayProtocolError, RelayRefused, RelayUnreachable } from "../../transport/errors.js";
import { type ParsedArgs, requiredFlag, stringFlag } from "../args.js";
import { CliError, usageError } from "../cli-error.js";
import type { CliContext } from "../command.js";
import { EXIT, type ExitCode } from "../exit-codes.js";
import { readSecret } from "../secrets.js";

export const PASSPHRASE_FLAGS = { dir: { type: "string" }, "passphrase-file": { type: "string" } } as const;

export const PASSPHRASE_HELP = `  --dir DIR               the coordinator device folder (keys encrypted under the passphrase)
  --passphrase-file F     read the passphrase from F (else TESTIGO_PASSPHRASE, else a prompt on a terminal)`;

export async function readPassphrase(args: ParsedArgs, context: CliContext): Promise<string> {
  return readSecret(
    {
      file: stringFlag(args, "passphrase-file"),
      envVar: "TESTIGO_PASSPHRASE",
      prompt: "Passphrase",
      fileFlag: "--passphrase-file",
    },
    context,
  );
}

export async function openDevice(args: ParsedArgs, context: CliContext): Promise<CoordinatorDevice> {
  const dir = requiredFlag(args, "dir");
  await initSodium();
  const passphrase = await readPassphrase(args, context);
  const storage = await NodeStorage.open(dir);
  return CoordinatorDevice.open(storage, passphrase, { now: context.now });
}

const COORDINATOR_EXIT: Record<CoordinatorErrorCode, ExitCode> = {
  NOT_INITIALISED: EXIT.badState,
  ALREADY_INITIALISED: EXIT.badState,
  WRONG_PASSPHRASE: EXIT.wrongSecret,
  WEAK_PASSPHRASE: EXIT.usage,
  UNKNOWN_VOLUNTEER: EXIT.failure,
  NOT_ROOT_DEVICE: EXIT.badState,
  BAD_JOIN_FILE: EXIT.usage,
  JOIN_PENDING: EXIT.badState,
  RELAY_RETRY_DEADLINE: EXIT.relayUnreachable,
};

/** Maps SDK errors to CliErrors; `unreachableHint` says what happened to the work (e.g. nothing acked). */
export function toCliError(error: unknown, unreachableHint: string): unknown {
  if (error instanceof CliError) return error;
  if (error instanceof CoordinatorError) return new CliError(error.code, error.message, COORDINATOR_EXIT[error.code]);
  if (error instanceof RelayUnreachable) {
    return new CliError(error.code, `${error.message}: ${unreachableHint}`, EXIT.relayUnreachable);
  }
  if (error instanceof RelayRefused) {
    return new CliError(error.code, error.message, error.shouldRetry() ? EXIT.relayUnreachable : EXIT.refused);
  }
  if (error instanceof RelayProtocolError) return new CliError(error.code, error.message, EXIT.failure);
  if (error instanceof InsecureRelayUrl) return new CliError(error.code, error.message, EXIT.usage);
  if (error instanceof CorruptKeySlots || error instanceof CorruptRecord) {
    return new CliError(error.code, error.message, EXIT.badState);
  }
  return error;
}

export async function mapErrors<T>(unreachableHint: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    throw toCliError(error, unreachableHint);
  }
}

const DURATION_UNITS_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration flag such as `90s`, `30m`, `6h` or `7d`, in ms; `fallbackMs` when absent. */
export function durationFlag(args: ParsedArgs, name: string, fallbackMs: number, maxMs: number): number {
  const text = stringFlag(args, name);
  if (text === undefined) return fallbackMs;
  const match = /^(\d{1,6})([smhd])$/.exec(text);
  const ms = match === null ? Number.NaN : Number(match[1]) * (DURATION_UNITS_MS[match[2] ?? ""] ?? Number.NaN);
  if (!Number.isFinite(ms) || ms <= 0 || ms > maxMs) {
    throw usageError(
      `--${name} must be a duration such as 90s, 30m, 6h or 7d (more than 0, at most ${maxMs / 86_400_000} days), not ${JSON.stringify(text)}`,
    );
  }
  return ms;
}

export function printJson(context: CliContext, value: unknown): void {
  context.stdout.write(`${JSON.stringify(value)}\n`);
}
