// What the harness tells a volunteer worker process (written to a JSON file, path in argv[2]).
export interface WorkerConfig {
  /** The worker's name in the history ("v1", "v2", …). */
  readonly name: string;
  /** The enrolled device folder (NodeStorage). */
  readonly dir: string;
  readonly pinFile: string;
  /** Relay nodes, the one in the invite first; the worker fails over between them. */
  readonly relays: readonly string[];
  readonly historyFile: string;
  /** When this file exists the worker stops queueing, empties its outbox, records "done", exits 0. */
  readonly stopFile: string;
  /** Every n-th report is an acta with one photo (0: never). */
  readonly photoEvery: number;
  /** Real acta scans to send, in turn; when empty, synthetic photos of `photoBytes` bytes. */
  readonly photoFiles: readonly string[];
  readonly photoBytes: number;
  /** A random pause of up to this many milliseconds between reports. */
  readonly pauseMs: number;
  /** Stop queueing after this many reports (in addition to the stop file). */
  readonly maxReports?: number;
  /** Queue at least this many reports, even once the stop file exists (default 0). */
  readonly minReports?: number;
}
