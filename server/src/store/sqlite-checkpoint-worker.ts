// The SQLite store's checkpointer (a worker thread, started by sqlite-checkpointer.ts): its own
// connection to the store's database, used only for PASSIVE checkpoints, so copying the WAL into
// the database file and syncing both never runs on the relay's event loop.
//
// A checkpoint syncs the WAL before it copies anything (synchronous = NORMAL: "the WAL file is
// synchronized before each checkpoint and the database file is synchronized after each completed
// checkpoint"), so it only ever copies frames that are on disk, whatever the store's own WAL sync
// is doing. This connection never writes a transaction.
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

export interface CheckpointRequest {
  readonly type: "checkpoint" | "close";
}

export type CheckpointReply =
  | { readonly type: "ready" }
  | { readonly type: "done"; readonly busy: number; readonly log: number; readonly checkpointed: number }
  | { readonly type: "failed"; readonly code: string | undefined; readonly message: string };

const port = parentPort;
if (port === null) throw new Error("sqlite-checkpoint-worker runs as a worker thread only");
const { file } = workerData as { file: string };

const post = (reply: CheckpointReply): void => port.postMessage(reply);
const failure = (error: unknown): CheckpointReply => ({
  type: "failed",
  code: typeof (error as { code?: unknown }).code === "string" ? (error as { code: string }).code : undefined,
  message: error instanceof Error ? error.message : String(error),
});

let db: Database.Database;
try {
  // The store created the file and switched it to WAL (a persistent mode) before starting this.
  db = new Database(file, { fileMustExist: true });
  const mode = db.pragma("journal_mode", { simple: true });
  if (mode !== "wal") throw new Error(`the checkpointer found journal mode ${String(mode)}, not wal`);
  db.pragma("synchronous = NORMAL");
  db.pragma("wal_autocheckpoint = 0");
} catch (error) {
  post(failure(error));
  throw error;
}
const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
post({ type: "ready" });

port.on("message", (message: CheckpointRequest) => {
  if (message.type === "close") {
    // Never the last connection (the store closes its own after this one): no checkpoint on close.
    db.close();
    port.close();
    return;
  }
  try {
    const row = checkpoint.get() as { busy: number; log: number; checkpointed: number };
    post({ type: "done", busy: row.busy, log: row.log, checkpointed: row.checkpointed });
  } catch (error) {
    post(failure(error));
  }
});
