// Flags of the election-night benchmark.
import { parseArgs } from "node:util";
import type { CoordinatorMode } from "./messages.js";

export interface ElectionOptions {
  readonly scale: "ci" | "full";
  readonly volunteers: number;
  readonly reportsPerVolunteer: number;
  readonly seed: number;
  /** Volunteer worker processes. */
  readonly workers: number;
  /** Volunteers active at the same time in each worker. */
  readonly concurrency: number;
  readonly dropFraction: number;
  readonly outageMs: number;
  /** How the coordinator devices drain the inbox: the live inbox (default) or fetch runs in a loop. */
  readonly coordinatorMode: CoordinatorMode;
  /** Give up waiting for the coordinators after this long without progress. */
  readonly drainTimeoutMs: number;
  /** Write bench/results/election.{md,svg} (off for throw-away runs). */
  readonly write: boolean;
}

export const SCALES = { ci: 3_000, full: 30_000 } as const;

export const USAGE = `node bench/dist/election/election.js [--scale ci|full] [--volunteers N] [--reports-per-volunteer R]
       [--seed S] [--workers W] [--concurrency C] [--drop-fraction F] [--outage-ms MS]
       [--coordinator-mode follow|poll] [--no-write]

  --scale ci|full            3,000 (default) or 30,000 volunteers, unless --volunteers says otherwise
  --volunteers N             volunteers enrolled by invite, each sending R reports and one acta photo
  --reports-per-volunteer R  status reports and check-ins per volunteer (default 10)
  --seed S                   seeds each volunteer's schedule and link drops (default 1)
  --workers W                volunteer worker processes (default 2)
  --concurrency C            volunteers active at once in each worker (default 24)
  --drop-fraction F          fraction of acta uploads whose link drops mid-photo (default 0.05)
  --outage-ms MS             how long a dropped link stays down (default 1000)
  --coordinator-mode M       follow: the coordinator devices follow the live inbox (WebSocket push,
                             as \`testigo coordinator fetch --follow\`; the default); poll: they
                             run \`fetchInbox\` in a loop, 100 ms apart when idle
  --no-write                 print the results only; leave bench/results/election.* alone`;

function integer(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min)
    throw new RangeError(`--${name} must be an integer ≥ ${min}\n${USAGE}`);
  return value;
}

export function parseOptions(argv: readonly string[]): ElectionOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      scale: { type: "string" },
      volunteers: { type: "string" },
      "reports-per-volunteer": { type: "string" },
      seed: { type: "string" },
      workers: { type: "string" },
      concurrency: { type: "string" },
      "drop-fraction": { type: "string" },
      "outage-ms": { type: "string" },
      "coordinator-mode": { type: "string" },
      "drain-timeout-ms": { type: "string" },
      "no-write": { type: "boolean" },
    },
    strict: true,
  });
  const scale = values.scale ?? "ci";
  if (scale !== "ci" && scale !== "full") throw new RangeError(`--scale must be ci or full\n${USAGE}`);
  const coordinatorMode = values["coordinator-mode"] ?? "follow";
  if (coordinatorMode !== "follow" && coordinatorMode !== "poll") {
    throw new RangeError(`--coordinator-mode must be follow or poll\n${USAGE}`);
  }
  const dropFraction = Number(values["drop-fraction"] ?? "0.05");
  if (!(dropFraction >= 0 && dropFraction <= 1)) throw new RangeError(`--drop-fraction must be in [0, 1]\n${USAGE}`);
  return {
    scale,
    volunteers: integer("volunteers", values.volunteers, SCALES[scale], 1),
    reportsPerVolunteer: integer("reports-per-volunteer", values["reports-per-volunteer"], 10, 0),
    seed: integer("seed", values.seed, 1, 0),
    workers: integer("workers", values.workers, 2, 1),
    concurrency: integer("concurrency", values.concurrency, 24, 1),
    dropFraction,
    outageMs: integer("outage-ms", values["outage-ms"], 1_000, 0),
    coordinatorMode,
    drainTimeoutMs: integer("drain-timeout-ms", values["drain-timeout-ms"], 120_000, 1_000),
    write: values["no-write"] !== true,
  };
}
