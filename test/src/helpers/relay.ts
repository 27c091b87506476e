// A real relay child process (`node server/dist/main.js`) whose standard output and standard
// error are kept COMPLETE, across restarts, in a log file: the seized-relay scan must read every
// byte the relay ever logged. (client-sdk's startRelay keeps only the last 8,000 characters of the
// current child, enough for its start-up errors but not for a scan.)
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, RELAY_MAIN } from "@testigo/client-sdk/testing";

const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

export interface LoggedRelayOptions {
  /** Extra flags, e.g. ["--redis", url]. */
  readonly args?: readonly string[];
  /** Extra environment variables (documented TESTIGO_* settings, e.g. TESTIGO_RATE_CAPACITY). */
  readonly env?: Readonly<Record<string, string>>;
}

export interface LoggedRelay {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** The relay's --data folder (the embedded store's files, the token file if any). */
  readonly dataDir: string;
  /** Every byte the relay's processes wrote to stdout and stderr, in order. */
  readonly logFile: string;
  /** The operator's registration token (given in TESTIGO_RELAY_TOKEN). */
  readonly token: string;
  readonly pid: number;
  logs(): string;
  /** SIGTERM and wait (SIGKILL after 10 s). */
  stop(): Promise<void>;
  kill9(): Promise<void>;
  /** Starts again on the same port and data folder. */
  restart(): Promise<void>;
  /** Stops it and deletes the data folder and the log. */
  remove(): Promise<void>;
}

export async function startLoggedRelay(options: LoggedRelayOptions = {}): Promise<LoggedRelay> {
  const base = mkdtempSync(join(tmpdir(), "testigo-e2e-relay-"));
  const dataDir = join(base, "data");
  const logFile = join(base, "relay.log");
  appendFileSync(logFile, "");
  const token = randomBytes(32).toString("base64url");
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const proc = spawn(
      process.execPath,
      [RELAY_MAIN, "--host", "127.0.0.1", "--port", String(port), "--data", dataDir, ...(options.args ?? [])],
      {
        env: { PATH: process.env.PATH ?? "", TESTIGO_RELAY_TOKEN: token, ...options.env },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    child = proc;
    // Synchronous appends keep stdout and stderr interleaved as they arrived, and nothing is lost
    // when the child is killed.
    proc.stdout?.on("data", (chunk: Buffer) => appendFileSync(logFile, chunk));
    proc.stderr?.on("data", (chunk: Buffer) => appendFileSync(logFile, chunk));
    await waitReady(proc, url, () => readFileSync(logFile, "utf8").slice(-4_000));
  };

  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    // "close" (not "exit"): the pipes are drained, so the log holds the last lines.
    const closed = new Promise<void>((resolve) => proc.once("close", () => resolve()));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await closed;
    clearTimeout(timer);
  };

  await launch();
  return {
    url,
    port,
    dataDir,
    logFile,
    token,
    get pid() {
      return child?.pid ?? -1;
    },
    logs: () => readFileSync(logFile, "utf8"),
    stop: () => halt("SIGTERM"),
    kill9: () => halt("SIGKILL"),
    async restart() {
      await halt("SIGTERM");
      await launch();
    },
    async remove() {
      await halt("SIGTERM");
      rmSync(base, { recursive: true, force: true });
    },
  };
}

async function waitReady(proc: ChildProcess, url: string, output: () => string): Promise<void> {
  let exit: string | undefined;
  proc.once("exit", (code, signal) => {
    exit = signal === null ? `exit code ${code}` : `signal ${signal}`;
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exit !== undefined) throw new Error(`the relay exited during start-up (${exit}):\n${output()}`);
    try {
      const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  proc.kill("SIGKILL");
  throw new Error(`the relay did not become ready within ${READY_TIMEOUT_MS} ms:\n${output()}`);
}
