// Tests only: the real `testigo` bin in a child process, as a coordinator runs it. The child gets
// a minimal environment (PATH, the test passphrase, what the test adds), never the developer's.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const TEST_PASSPHRASE = "a long enough passphrase";
const BIN = fileURLToPath(new URL("../bin.js", import.meta.url));

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Starts `testigo ARGS…`; the caller owns the child (e.g. to kill it). */
export function startCli(args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? "", TESTIGO_PASSPHRASE: TEST_PASSPHRASE, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Runs `testigo ARGS…` to the end. */
export function runCli(args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  const child = startCli(args, env);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => {
    stdout += String(d);
  });
  child.stderr?.on("data", (d) => {
    stderr += String(d);
  });
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}
