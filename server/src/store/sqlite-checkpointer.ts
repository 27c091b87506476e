// Runs the SQLite store's checkpoints in a worker thread (sqlite-checkpoint-worker.ts), one at a
// time. The store decides when (sqlite-store.ts); this only starts the thread on first use, passes
// requests and answers, and stops it.
import { Worker } from "node:worker_threads";
import type { CheckpointReply } from "./sqlite-checkpoint-worker.js";

export interface CheckpointResult {
  /** Frames in the WAL, and how many of them are now in the database file. */
  readonly log: number;
  readonly checkpointed: number;
}

/** A checkpoint that failed (its code is SQLite's, e.g. SQLITE_IOERR_FSYNC), or a dead thread. */
export class CheckpointError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined) {
    super(message);
    this.name = "CheckpointError";
    this.code = code;
  }
}

export class SqliteCheckpointer {
  readonly #file: string;
  #worker: Worker | undefined;
  #ready: Promise<void> | undefined;
  #pending: { resolve: (result: CheckpointResult) => void; reject: (error: unknown) => void } | undefined;
  #dead: unknown;

  constructor(file: string) {
    this.#file = file;
  }

  /** One PASSIVE checkpoint (never two at once: the caller waits for each before the next). */
  async checkpoint(): Promise<CheckpointResult> {
    if (this.#pending !== undefined) throw new Error("a checkpoint is already running");
    const worker = this.#start();
    // Referenced while a request is out (a pending answer keeps the process alive), not between.
    worker.ref();
    try {
      await this.#ready;
      if (this.#dead !== undefined) throw this.#dead;
      return await new Promise<CheckpointResult>((resolve, reject) => {
        this.#pending = { resolve, reject };
        worker.postMessage({ type: "checkpoint" });
      });
    } finally {
      if (this.#worker === worker) worker.unref();
    }
  }

  /** Stops the thread after the running checkpoint (if any); its connection closes, never the last. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (worker === undefined) return;
    this.#worker = undefined;
    worker.ref();
    if (this.#dead !== undefined) {
      await worker.terminate();
      return;
    }
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    await this.#ready?.catch(() => undefined);
    worker.postMessage({ type: "close" });
    await exited;
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(new URL("./sqlite-checkpoint-worker.js", import.meta.url), {
      workerData: { file: this.#file },
    });
    // The store closes it; a forgotten store must not keep the process alive.
    worker.unref();
    this.#worker = worker;
    this.#ready = new Promise<void>((resolve) => {
      const settle = (reply: CheckpointReply): void => {
        if (reply.type === "ready") {
          resolve();
          return;
        }
        if (reply.type === "failed" && this.#pending === undefined) {
          this.#dead ??= new CheckpointError(reply.message, reply.code);
          resolve();
          return;
        }
        const pending = this.#pending;
        this.#pending = undefined;
        if (pending === undefined) return;
        if (reply.type === "done") pending.resolve({ log: reply.log, checkpointed: reply.checkpointed });
        else pending.reject(new CheckpointError(reply.message, reply.type === "failed" ? reply.code : undefined));
      };
      worker.on("message", settle);
      const died = (error: unknown): void => {
        this.#dead ??= error instanceof Error ? error : new CheckpointError(String(error), undefined);
        resolve();
        const pending = this.#pending;
        this.#pending = undefined;
        pending?.reject(this.#dead);
      };
      worker.on("error", died);
      worker.on("exit", (code) => {
        if (this.#worker === worker) died(new CheckpointError(`checkpointer exited (${code})`, undefined));
      });
    });
    return worker;
  }
}
