// What the election-night processes tell each other over their IPC channels (child_process.fork),
// and the small helpers they share: a seeded random generator, the clock and percentiles.
import { performance } from "node:perf_hooks";

/** Milliseconds since the epoch with sub-millisecond precision, comparable across processes. */
export function clock(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** mulberry32: a small seeded generator, so a run's schedule and drops repeat with its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

// --- coordinator process

export interface CoordinatorStart {
  readonly type: "start";
  readonly index: number;
  /** The node this device talks to (its transport rewrites the campaign's relay URL to it). */
  readonly nodeUrl: string;
  /** The campaign's relay URL (what invites carry). */
  readonly relayUrl: string;
  readonly operatorToken: string;
  /** Files of the acta photos the volunteers send: the output checks photos byte for byte. */
  readonly photoFiles: readonly string[];
}

export type ToCoordinator =
  | CoordinatorStart
  | { readonly type: "init" }
  | { readonly type: "join-request" }
  | { readonly type: "add-device"; readonly request: string }
  | { readonly type: "complete-join"; readonly bundle: string }
  | { readonly type: "mint"; readonly count: number }
  | { readonly type: "drain"; readonly mode: CoordinatorMode }
  | { readonly type: "counters" }
  | { readonly type: "stop" };

/** How a coordinator device drains its inbox: the live inbox (WebSocket), or fetch runs in a loop. */
export type CoordinatorMode = "follow" | "poll";

/** What a coordinator device has sent and received so far (since it started). */
export interface CoordinatorCounters {
  /** HTTP requests answered by the relay. */
  readonly requests: number;
  /** Live inbox connections opened, frames received (item batches, "ready") and sent (acks). */
  readonly connections: number;
  readonly framesIn: number;
  readonly framesOut: number;
}

/** One report written to the coordinator's output: its id and when it was written (decrypted). */
export interface Written {
  readonly id: string;
  readonly kind: string;
  readonly at: number;
}

export type FromCoordinator =
  | { readonly type: "ready" }
  | { readonly type: "initialised"; readonly campaignId: string }
  | { readonly type: "join-request"; readonly request: string }
  | { readonly type: "bundle"; readonly bundle: string }
  | { readonly type: "joined" }
  | { readonly type: "invites"; readonly codes: readonly string[] }
  | { readonly type: "written"; readonly lines: readonly Written[] }
  | { readonly type: "counters"; readonly counters: CoordinatorCounters }
  | { readonly type: "stopped"; readonly stats: CoordinatorStats }
  | { readonly type: "error"; readonly message: string };

export interface CoordinatorStats {
  readonly written: number;
  /** Lines whose id this device had already written: must be 0. */
  readonly duplicates: number;
  readonly quarantined: number;
  /** Photos whose bytes are not one of the photos the volunteers took: must be 0. */
  readonly photoMismatches: number;
  readonly photos: number;
  readonly photoBytes: number;
  /** Fetch runs (poll), or 1 (follow: one session for the night). */
  readonly fetchRuns: number;
  /** Fetch runs stopped by a network error or a relay's temporary failure (and run again); live connections dropped (follow). */
  readonly fetchErrors: number;
}

// --- volunteer worker process

export interface WorkerStart {
  readonly type: "start";
  readonly worker: number;
  readonly seed: number;
  readonly codes: readonly string[];
  /** Relay nodes; volunteer i of this worker talks to nodes[i % nodes.length] (DNS round robin). */
  readonly nodes: readonly string[];
  readonly relayUrl: string;
  readonly reportsPerVolunteer: number;
  /** Volunteers active at the same time in this worker. */
  readonly concurrency: number;
  /** Fraction of acta uploads whose link drops mid-photo. */
  readonly dropFraction: number;
  /** How long a dropped link stays down. */
  readonly outageMs: number;
  readonly photoFiles: readonly string[];
}

export type ToWorker =
  | WorkerStart
  | { readonly type: "enroll" }
  | { readonly type: "night" }
  | { readonly type: "stop" };

/** One item the relay accepted: when it was submitted and what it carried. */
export interface Accepted {
  readonly id: string;
  readonly kind: string;
  readonly submitAt: number;
  readonly acceptedAt: number;
  /** Plaintext photo bytes (actas), 0 otherwise. */
  readonly photoBytes: number;
  /** Whether this acta's link was dropped mid-photo and the upload resumed. */
  readonly dropped: boolean;
}

export interface EnrollStats {
  readonly enrolled: number;
  /** Enrollment attempts that met a network error before the invite was redeemed, and were retried. */
  readonly retried: number;
  /** Volunteers whose enrollment failed for good (left out of the night). */
  readonly failed: number;
  readonly msSorted: readonly number[];
}

export interface NightStats {
  readonly refused: number;
  /** Link cuts simulated, and sync runs that ended "unreachable" and were run again. */
  readonly cuts: number;
  readonly resumedSyncs: number;
  readonly chunksSent: number;
  /** HTTP requests the volunteers' devices made during the night, and their total time (ms). */
  readonly requests: number;
  readonly requestMs: number;
}

export type FromWorker =
  | { readonly type: "ready" }
  | { readonly type: "accepted"; readonly items: readonly Accepted[] }
  | { readonly type: "enrolled"; readonly stats: EnrollStats }
  | { readonly type: "night-done"; readonly stats: NightStats }
  | { readonly type: "error"; readonly message: string };
