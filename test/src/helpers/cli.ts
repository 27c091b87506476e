// The `testigo` command as users and outside scripts run it: `node client-sdk/bin/testigo.js …`
// in a child process, secrets in files (--pin-file, --passphrase-file) or the environment
// (TESTIGO_RELAY_TOKEN), never as arguments. The child gets a minimal environment so that a
// developer's own TESTIGO_* variables cannot leak into a test.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The `testigo` entry point, from test/dist/helpers/ up to the repository's root. */
export const TESTIGO_BIN = fileURLToPath(new URL("../../../client-sdk/bin/testigo.js", import.meta.url));
/** The repository's root. */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** No single command may hang a test: a run longer than this is killed and reported. */
const COMMAND_TIMEOUT_MS = 120_000;

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Starts `testigo ARGS…`; the caller owns the child (e.g. to SIGKILL it). */
export function startTestigo(args: readonly string[], env: Readonly<Record<string, string>> = {}): ChildProcess {
  return spawn(process.execPath, [TESTIGO_BIN, ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Collects a child's output until it closes (killed after COMMAND_TIMEOUT_MS). */
export function collect(child: ChildProcess): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), COMMAND_TIMEOUT_MS);
  return new Promise((resolve) =>
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    }),
  );
}

/** Runs `testigo ARGS…` to the end. */
export function testigo(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<CliRun> {
  return collect(startTestigo(args, env));
}

/** Runs `testigo ARGS…` and fails, with everything it printed, unless it exits 0. */
export async function testigoOk(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<CliRun> {
  const run = await testigo(args, env);
  if (run.code !== 0) {
    throw new Error(
      `testigo ${args.join(" ")} exited ${run.code ?? run.signal}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`,
    );
  }
  return run;
}
