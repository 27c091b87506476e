// The processes of a fault run: relay nodes (the real `testigo relay` via startRelay, or the
// SQLite fault relay), volunteer workers and the coordinator's `testigo coordinator fetch` loop.
// Each is a separate OS process the harness can SIGKILL and start again.
import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { freePort } from "@testigo/server/testing";
import { collect, startTestigo } from "../helpers/cli.js";
import type { WorkerConfig } from "./worker-config.js";

const READY_TIMEOUT_MS = 30_000;
const WORKER_JS = fileURLToPath(new URL("./volunteer-worker.js", import.meta.url));
const FAULT_RELAY_JS = fileURLToPath(new URL("./fault-relay.js", import.meta.url));

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `start` (a process start that waits for readiness) up to `attempts` times: on a loaded
 * 2-core CI machine a start can miss its readiness deadline; a real failure fails every time.
 * Returns how many attempts it took.
 */
export async function startWithRetries(start: () => Promise<unknown>, attempts = 3): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      await start();
      return attempt;
    } catch (error) {
      if (attempt >= attempts) throw error;
    }
  }
}

/** What the harness needs of a relay node (client-sdk's RelayProcess has all of it). */
export interface RelayNode {
  readonly url: string;
  readonly pid: number;
  kill9(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** GET /readyz: its status, or 0 when nothing answers. */
export async function readyz(url: string): Promise<number> {
  try {
    const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
}

/** Polls /readyz until `want(status)` (false after `timeoutMs`). */
export async function waitReadyz(url: string, want: (status: number) => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (want(await readyz(url))) return true;
    await sleep(100);
  }
  return false;
}

/** The relay on SQLite with its write-fault injector (fault-relay.ts); `armWriteFault` sends SIGUSR2. */
export async function startFaultRelay(
  dataDir: string,
  token: string,
): Promise<RelayNode & { armWriteFault(): void; output(): string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let output = "";
  const launch = async (): Promise<void> => {
    const proc = spawn(process.execPath, [FAULT_RELAY_JS, "--port", String(port), "--data", dataDir], {
      env: { PATH: process.env.PATH ?? "", TESTIGO_RELAY_TOKEN: token },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = proc;
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString("utf8")).slice(-8_000);
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    if (
      !(await waitReadyz(url, (s) => s === 200 || proc.exitCode !== null, READY_TIMEOUT_MS)) ||
      proc.exitCode !== null
    ) {
      proc.kill("SIGKILL");
      throw new Error(`the fault relay did not start:\n${output}`);
    }
  };
  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc === undefined) return;
    proc.kill(signal);
    await exited(proc);
  };
  await launch();
  return {
    url,
    get pid() {
      return child?.pid ?? -1;
    },
    output: () => output,
    armWriteFault() {
      child?.kill("SIGUSR2");
    },
    kill9: () => halt("SIGKILL"),
    async restart() {
      await halt("SIGTERM");
      await launch();
    },
    stop: () => halt("SIGTERM"),
  };
}

/** One volunteer worker process; `restart()` starts it again on the same device and history. */
export class Worker {
  #child: ChildProcess | undefined;
  #exit: Promise<number | null> = Promise.resolve(null);
  #chunkWaiters: (() => void)[] = [];
  #stderr = "";
  #markReady: () => void = () => undefined;
  readonly #ready = new Promise<void>((resolve) => {
    this.#markReady = resolve;
  });
  /** Exits the harness did not cause (code ≠ 0 and not our SIGKILL). */
  readonly crashes: string[] = [];

  constructor(
    readonly config: WorkerConfig,
    readonly configFile: string,
    /** The worker's standard error, across restarts. */
    readonly logFile: string,
  ) {
    writeFileSync(configFile, JSON.stringify(config));
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  start(): void {
    const child = spawn(process.execPath, [WORKER_JS, this.configFile], {
      env: { PATH: process.env.PATH ?? "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#child = child;
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (text: string) => {
      if (text.includes("ready\n")) this.#markReady();
      if (!text.includes("chunk ")) return;
      const waiters = this.#chunkWaiters;
      this.#chunkWaiters = [];
      for (const wake of waiters) wake();
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString("utf8")).slice(-4_000);
      appendFileSync(this.logFile, chunk);
    });
    this.#exit = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        if (signal !== "SIGKILL" && code !== 0) {
          this.crashes.push(`${this.config.name} exited ${code ?? signal}: ${this.#stderr.slice(-1_000)}`);
        }
        resolve(code);
      }),
    );
  }

  /** Waits (up to `ms`) until the worker has run its first sync; false if it did not. */
  waitReady(ms: number): Promise<boolean> {
    return Promise.race([this.#ready.then(() => true), sleep(ms).then(() => false)]);
  }

  /** Waits (up to `ms`) for the worker to report an uploaded photo chunk; false if none came. */
  waitForChunk(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.#chunkWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  async kill9(): Promise<void> {
    this.#child?.kill("SIGKILL");
    await this.#exit;
  }

  /** Resolves with the exit code when the worker ends (at most `ms`; undefined on timeout). */
  async waitExit(ms: number): Promise<number | null | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    });
    const result = await Promise.race([this.#exit, timeout]);
    clearTimeout(timer);
    return result;
  }

  stderr(): string {
    return this.#stderr;
  }
}

export interface FetchCoordinator {
  readonly dir: string;
  readonly passphraseFile: string;
}

export interface FetchRunSummary {
  readonly written: number;
  readonly waitingForPhotos: number;
}

/** The last failed fetch's exit and standard error (for a harness problem report). */
export let lastFetchFailure = "";

/** `testigo coordinator fetch --json` once: its summary, or undefined when it did not exit 0. */
export function startFetch(
  coordinator: FetchCoordinator,
  out: string,
): { child: ChildProcess; done: Promise<FetchRunSummary | undefined> } {
  const child = startTestigo([
    "coordinator",
    "fetch",
    "--dir",
    coordinator.dir,
    "--out",
    out,
    "--passphrase-file",
    coordinator.passphraseFile,
    "--json",
  ]);
  const done = collect(child).then((run) => {
    try {
      if (run.code === 0) return JSON.parse(run.stdout) as FetchRunSummary;
    } catch {
      // not JSON: reported below
    }
    lastFetchFailure = `exit ${run.code ?? run.signal}: ${run.stderr.slice(-600)}`;
    return undefined;
  });
  return { child, done };
}

/** The coordinator's fetch, run again and again (as `--follow` would) until stopped. */
export class FetchLoop {
  #stopped = false;
  #current: ReturnType<typeof startFetch> | undefined;
  #loop: Promise<void> = Promise.resolve();
  runs = 0;
  failed = 0;

  constructor(
    private readonly coordinator: FetchCoordinator,
    private readonly out: string,
  ) {}

  start(): void {
    this.#loop = (async () => {
      while (!this.#stopped) {
        this.#current = startFetch(this.coordinator, this.out);
        const summary = await this.#current.done;
        this.#current = undefined;
        this.runs++;
        if (summary === undefined) this.failed++;
        await sleep(summary === undefined ? 700 : 300);
      }
    })();
  }

  /**
   * SIGKILLs a fetch `afterMs` after it started (a fetch that ends first does not count: the next
   * one is tried, for up to 15 s); false if no kill landed on a running fetch.
   */
  async kill9(afterMs: number): Promise<boolean> {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const current = this.#current;
      if (current === undefined) {
        await sleep(20);
        continue;
      }
      await sleep(afterMs);
      if (current.child.exitCode !== null || current.child.signalCode !== null) continue;
      current.child.kill("SIGKILL");
      await current.done;
      return true;
    }
    return false;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }
}
