// The operator's registration token: from TESTIGO_RELAY_TOKEN, or generated once into
// <data>/registration-token with owner-only permissions (0600, folder 0700).
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { randomBytes, toBase64url } from "@testigo/protocol";

export const TOKEN_FILE_NAME = "registration-token";

export interface RegistrationToken {
  readonly token: string;
  /** Absolute path of the token file, or undefined when it came from the environment. */
  readonly file: string | undefined;
}

export class TokenFileError extends Error {
  override readonly name = "TokenFileError";
  readonly code = "TOKEN_FILE_INVALID" as const;
}

/** Reads the token file, creating it with a fresh random token if it does not exist. */
export function ensureTokenFile(dataDir: string): RegistrationToken {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, TOKEN_FILE_NAME);
  try {
    // "wx": never overwrite a token an operator already handed out.
    writeFileSync(file, `${toBase64url(randomBytes(32))}\n`, { mode: 0o600, flag: "wx" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  // Tighten a file someone loosened; a token readable by others is no longer a secret.
  if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  const token = readFileSync(file, "utf8").trim();
  if (!/^[\x21-\x7e]{32,512}$/.test(token)) {
    throw new TokenFileError(
      `${file} must hold one token of 32 to 512 printable characters; delete it to make a new one`,
    );
  }
  return { token, file };
}

export function registrationToken(dataDir: string, fromEnv: string | undefined): RegistrationToken {
  return fromEnv === undefined ? ensureTokenFile(dataDir) : { token: fromEnv, file: undefined };
}
