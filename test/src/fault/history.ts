// The history recorder: every volunteer worker appends what it queued and what the relay
// acknowledged to its own JSON-lines file, fsynced line by line, so that a `kill -9` of the worker
// never loses a recorded acknowledgement. The checker reads every file back.
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";

export type HistoryRecord =
  /** A worker (re)started on its device. */
  | { readonly t: "start"; readonly volunteer: string; readonly pseudonym: string }
  /** A report put in the outbox: `n` is the worker's own number, `seq` the device's. */
  | {
      readonly t: "queued";
      readonly volunteer: string;
      readonly n: number;
      readonly id: string;
      readonly seq: number;
      readonly kind: string;
      /** Photos of an acta: id and SHA-256 (hex) of the bytes the volunteer took. */
      readonly photos: readonly { readonly photoId: string; readonly sha256: string }[];
    }
  /** The relay answered "accepted" for this envelope. */
  | { readonly t: "acked"; readonly volunteer: string; readonly id: string; readonly kind: string }
  /** Every chunk of this photo was accepted. */
  | { readonly t: "photo-acked"; readonly volunteer: string; readonly photoId: string }
  /** The relay refused an item for good. */
  | { readonly t: "refused"; readonly volunteer: string; readonly id: string; readonly code: string }
  /** The worker emptied its outbox after the stop request and exited. */
  | { readonly t: "done"; readonly volunteer: string };

export const HISTORY_SUFFIX = ".history.jsonl";

/** Appends records to one file, each line written and fsynced before `append` returns. */
export class HistoryWriter {
  readonly #fd: number;
  constructor(readonly path: string) {
    this.#fd = openSync(path, "a", 0o600);
  }
  /** Appends `record` with the time it was written (`at`, ms since the epoch, for diagnosis). */
  append(record: HistoryRecord): void {
    writeSync(this.#fd, `${JSON.stringify({ ...record, at: Date.now() })}\n`);
    fsyncSync(this.#fd);
  }
  close(): void {
    closeSync(this.#fd);
  }
}

/** The records of one file; a last line torn by a kill is ignored (it was never complete). */
export function readHistoryFile(path: string): HistoryRecord[] {
  const text = readFileSync(path, "utf8");
  // Whether or not the text ends with "\n", the last piece is either empty or torn.
  return text
    .split("\n")
    .slice(0, -1)
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as HistoryRecord);
}

/** Every record of every `*.history.jsonl` file in `dir`. */
export function readHistory(dir: string): HistoryRecord[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith(HISTORY_SUFFIX))
    .sort()
    .flatMap((name) => readHistoryFile(join(dir, name)));
}
