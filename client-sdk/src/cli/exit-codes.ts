// Exit codes of the `testigo` command: a contract for scripts (docs/cli-volunteer.md and docs/cli-coordinator.md list them).
export const EXIT = {
  ok: 0,
  /** Something failed that is not covered below; the message says what. */
  failure: 1,
  /** Wrong flags or arguments: nothing was done. */
  usage: 2,
  /** The relay could not be reached: what was asked is kept locally and retried by `sync`. */
  relayUnreachable: 3,
  /** The relay refused the request (bad credential, revoked, invalid invite, rate limit...). */
  refused: 4,
  /** Wrong PIN or passphrase: nothing changed (apart from the failed-attempt counter). */
  wrongSecret: 5,
  /** The device folder is missing, damaged or not initialised. */
  badState: 6,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
