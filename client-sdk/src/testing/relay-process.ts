// A real relay in a child process, for tests that must cross a real HTTP connection and survive
// real crashes: `node server/dist/main.js --host 127.0.0.1 --port P --data DIR`, with the
// operator's token in TESTIGO_RELAY_TOKEN. Tests only (Node-only: child processes, sockets).
//
//   const relay = await startRelay();
//   … relay.url …
//   await relay.kill9();   // crash it (SIGKILL): nothing acknowledged may be lost
//   await relay.restart(); // same port, same data folder
//   await relay.stop();    // SIGTERM and wait
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The relay's entry point, from client-sdk/dist/testing/ (or src/testing/) up to the repository root. */
export const RELAY_MAIN = fileURLToPath(new URL("../../../server/dist/main.js", import.meta.url));

/** How long a relay may take to answer GET /readyz = 200. */
const READY_TIMEOUT_MS = 20_000;
/** How long `stop()` waits after SIGTERM before it sends SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;
/** Kept of the child's stderr, for the error message when it dies. */
const MAX_STDERR_CHARS = 8_000;

export interface StartRelayOptions {
  /** Data folder; a fresh temporary one (removed by `stop({ removeData: true })`) if omitted. */
  readonly dataDir?: string;
  /** TCP port; a free one if omitted. */
  readonly port?: number;
  /** Operator registration token; a random one if omitted. */
  readonly token?: string;
  /** Extra environment variables for the child (e.g. TESTIGO_LOG_LEVEL). */
  readonly env?: Readonly<Record<string, string>>;
  /** Extra command-line flags (e.g. ["--redis", url]). */
  readonly args?: readonly string[];
}

export interface RelayProcess {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** The operator's registration token the relay was started with. */
  readonly token: string;
  /** The current child's process id (changes on restart). */
  readonly pid: number;
  /** Everything the current child wrote to stdout and stderr so far (bounded). */
  output(): string;
  /** SIGTERM, then wait for the exit (SIGKILL after 10 s). With removeData, deletes a temporary data folder. */
  stop(options?: { removeData?: boolean }): Promise<void>;
  /** SIGKILL and wait for the exit: a crash, as far as the relay can tell. */
  kill9(): Promise<void>;
  /** Starts the relay again on the same port and data folder (stopping it first if it runs). */
  restart(): Promise<void>;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function startRelay(options: StartRelayOptions = {}): Promise<RelayProcess> {
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "testigo-relay-"));
  const token = options.token ?? randomBytes(32).toString("base64url");
  let port = options.port ?? (await freePort());
  let child: ChildProcess | undefined;
  let output = "";

  const launch = async (): Promise<void> => {
    output = "";
    const proc = spawn(
      process.execPath,
      [RELAY_MAIN, "--host", "127.0.0.1", "--port", String(port), "--data", dataDir, ...(options.args ?? [])],
      {
        env: { ...process.env, TESTIGO_RELAY_TOKEN: token, ...options.env },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    child = proc;
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString("utf8")).slice(-MAX_STDERR_CHARS);
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    await waitReady(proc, `http://127.0.0.1:${port}`, () => output);
  };

  const waitExit = async (signal: NodeJS.Signals, graceMs: number): Promise<void> => {
    const proc = child;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), graceMs);
    });
    if ((await Promise.race([exited, timeout])) === "timeout") {
      proc.kill("SIGKILL");
      await exited;
    }
    clearTimeout(timer);
  };

  try {
    await launch();
  } catch (error) {
    // Someone may have taken the free port between our probe and the child's listen: once more.
    if (options.port !== undefined || !output.includes("EADDRINUSE")) throw error;
    port = await freePort();
    await launch();
  }

  return {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dataDir,
    token,
    get pid() {
      return child?.pid ?? -1;
    },
    output: () => output,
    async stop(stopOptions = {}) {
      await waitExit("SIGTERM", STOP_TIMEOUT_MS);
      if (stopOptions.removeData === true && ownsDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
    async kill9() {
      await waitExit("SIGKILL", STOP_TIMEOUT_MS);
    },
    async restart() {
      await waitExit("SIGTERM", STOP_TIMEOUT_MS);
      await launch();
    },
  };
}

/** Polls GET /readyz until 200; fails early, with the child's output, if the child exits. */
async function waitReady(proc: ChildProcess, url: string, output: () => string): Promise<void> {
  let exit: string | undefined;
  proc.once("exit", (code, signal) => {
    exit = signal === null ? `exit code ${code}` : `signal ${signal}`;
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exit !== undefined) {
      throw new Error(`the relay (${RELAY_MAIN}) exited during start-up (${exit}):\n${output()}`);
    }
    try {
      const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  proc.kill("SIGKILL");
  throw new Error(`the relay did not become ready within ${READY_TIMEOUT_MS} ms:\n${output()}`);
}
